"""Pre-train a CNN as a per-frame classifier on a class-folder video data set: the "pre-trained non-recurrent
network" PreRNN converts (docs/models.md §4.2).

::

    videos ─► every k-th frame ─► Preprocessor (S×S, ImageNet normalisation; the runtime's code) ─► [N,3,S,S]
           ─► Trainer: CNN (all layers) ─► logits ─► cross-entropy with the video's label ─► state dict (.pth)

The state dict is what :func:`edgevid.models.prernn.build_cnn` / ``edgevid train prernn --weights`` load.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..fsutil import atomic_path
from ..log import get_logger
from .common import check_classes, check_sets, progress_bar, torch_threads, video_item
from .loop import Trainer, format_metric, seed_everything
from .prernn import frames_tensor, prernn_preprocessor

log = get_logger(__name__)

PathLike = Union[str, Path]


def frame_dataset(dataset, image_size: int, *, every: int = 1,
                  progress: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Every ``every``-th frame of every video, preprocessed: (frames [N,3,S,S], labels [N])."""
    if every < 1:
        raise ConfigError("every=%d" % every, "it is a frame stride", "pass every >= 1")
    check_classes(dataset, "frame")
    pre, xs, ys = prernn_preprocessor(image_size), [], []
    for i in progress_bar(range(len(dataset)), progress, "frames"):
        frames, label = video_item(dataset, i)
        picked = frames[::every]
        xs.append(frames_tensor(pre, np.ascontiguousarray(picked), image_size))
        ys.append(torch.full((picked.shape[0],), int(label), dtype=torch.long))
    return torch.cat(xs), torch.cat(ys)


def frame_loss_fn(model, batch, step):
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits, y), {"accuracy": float((logits.argmax(1) == y).float().mean())}


@dataclass
class FrameTrainResult:
    """The trained CNN (eval mode), its state dict file and the per-epoch history."""

    model: nn.Module
    weights: Path
    frames: int
    history: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def val_accuracy(self) -> Optional[float]:
        last = self.history[-1]["val"] if self.history else {}
        return last.get("accuracy")


def train_frame_classifier(cnn: nn.Module, train_set, val_set=None, *, image_size: int, weights_out: PathLike,
                           epochs: int, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0,
                           every: int = 1, seed: int = 0, threads: int = 2,
                           progress: bool = False) -> FrameTrainResult:
    """Train every layer of ``cnn`` (its output = one logit per class) on single frames labelled with their video's
    class; Adam, cross-entropy. Writes ``cnn.state_dict()`` to ``weights_out`` (atomically)."""
    classes = check_sets(train_set, val_set)
    seed_everything(seed)
    with torch_threads(threads):
        x, y = frame_dataset(train_set, image_size, every=every, progress=progress)
        with torch.no_grad():
            out = cnn.eval()(x[:1])
        if out.dim() != 2 or out.shape[1] != len(classes):
            raise ConfigError("the CNN outputs %s for %d classes" % (tuple(out.shape), len(classes)), None,
                              "build it with num_classes=%d" % len(classes))
        val = None if val_set is None else frame_dataset(val_set, image_size, every=every, progress=progress)
        trainer = Trainer(cnn, lambda m: torch.optim.Adam(m.parameters(), lr=lr, weight_decay=weight_decay),
                          frame_loss_fn, (x, y), epochs=epochs, val_data=val, batch_size=batch_size,
                          monitor="accuracy", seed=seed, progress=progress)
        fit = trainer.fit()
    cnn.eval()
    path = Path(weights_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(cnn.state_dict(), str(tmp))
    log.info("frame classifier: %d frames, %d epochs, val accuracy %s -> %s", x.shape[0], fit.epochs,
             format_metric("accuracy", fit.history[-1]["val"].get("accuracy") if fit.history else None), path)
    return FrameTrainResult(cnn, path, int(x.shape[0]), fit.history)
