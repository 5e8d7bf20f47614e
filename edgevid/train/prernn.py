"""Training PreRNN / PreRNN-SIH models and the traditional baseline (docs/models.md §4) on class-folder video.

::

    dataset ─► Preprocessor (S×S, ImageNet normalisation; the runtime's code) ─► frozen trunk
            ─► trunk outputs per frame: (x_t,) or (x_t, γ_t) [V,T,…] ── cached as <cache_dir>/prernn-<key>.pt
            ─► Trainer: drive (W_xy fine-tuned) ─► recurrence (W_h* new) ─► head ─► logits [N,T,C]
            ─► checkpoint: family "prernn", config, labels, full model state (trunk included)

The pretrained layers before the converted one stay frozen (the trunk's outputs are cached once, reusing
LiteEval's cache fingerprints); the converted layer's input weights, the new recurrent weights and the layers
after it are trained. Loss: cross-entropy averaged over **every real step** (not only the last): a streaming
model emits a label per frame, so every step is supervised; accuracy is reported on the last real step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CheckpointError
from ..log import get_logger
from ..models.prernn import PreRNNConfig, PreRNNModel, create_prernn
from ..models.checkpoint import family_config, load_prernn_checkpoint  # noqa: F401  (re-exported)
from ..models.modes import eval_mode
from ..families import prernn as rules
from .common import TensorCache, cache_key, dataset_flow, check_classes, length_mask, check_sets, dataset_fingerprint, module_fingerprint, pad_steps, progress_bar, torch_threads, video_item
from .losses import last_step_index
from .loop import Trainer, load_model_state, read_checkpoint, seed_everything

log = get_logger(__name__)

FAMILY = "prernn"
CACHE_VERSION = 1
PathLike = Union[str, Path]


class TrunkFeatures(NamedTuple):
    """Trunk outputs of a data set: ``feats`` = tuple of [V,T,…] ((x,) or (x, γ)), ``labels`` [V], ``lengths`` [V]."""

    feats: Tuple[torch.Tensor, ...]
    labels: torch.Tensor
    lengths: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        return length_mask(self.lengths, self.feats[0].shape[1])


def frames_tensor(pre, frames: np.ndarray, size: int) -> torch.Tensor:
    """BGR uint8 frames [T,H,W,3] → network input [T,3,S,S] through the runtime's Preprocessor."""
    out = np.empty((frames.shape[0], 3, size, size), np.float32)
    for k in range(frames.shape[0]):
        out[k] = pre(frames[k])[size][0]     # reused buffer: copy out
    return torch.from_numpy(out)


def prernn_preprocessor(size: int):
    """The runtime's Preprocessor for PreRNN inputs of side ``size``."""
    from ..preprocess import Preprocessor

    return Preprocessor(rules.preprocess_spec(size))


def extract_trunk_features(dataset, model: PreRNNModel, image_size: int, *, batch_size: int = 32,
                           cache_dir: Optional[PathLike] = None, progress: bool = False) -> TrunkFeatures:
    """Run the frozen trunk over every frame once (eval mode, no grad); cached under ``cache_dir`` keyed by
    data set, preprocessing, trunk weights and the converted layer."""
    check_classes(dataset, "feature")
    cache = TensorCache(cache_dir, "prernn", cache_key({
        "version": CACHE_VERSION, "dataset": dataset_fingerprint(dataset),
        "preprocess": rules.preprocess_spec(image_size).to_dict(), "info": model.info,
        "trunk": module_fingerprint(model.trunk)}), "PreRNN trunk features")
    cached = cache.load(lambda d: TrunkFeatures(tuple(d["feats"]), d["labels"], d["lengths"]))
    if cached is not None:
        return cached
    pre, per_video, labels, lengths = prernn_preprocessor(image_size), [], [], []
    with eval_mode(model.trunk), torch.no_grad():
        for i in progress_bar(range(len(dataset)), progress, "features"):
            frames, label = video_item(dataset, i)
            x = frames_tensor(pre, frames, image_size)
            outs = [model.trunk_features(x[s:s + batch_size]) for s in range(0, x.shape[0], batch_size)]
            per_video.append(tuple(torch.cat(parts) for parts in zip(*outs)))
            labels.append(label)
            lengths.append(frames.shape[0])
    steps = max(lengths)
    feats = tuple(pad_steps([v[k] for v in per_video], steps) for k in range(len(per_video[0])))
    result = TrunkFeatures(feats, torch.tensor(labels, dtype=torch.long), torch.tensor(lengths, dtype=torch.long))
    cache.save({"feats": list(feats), "labels": result.labels, "lengths": result.lengths})
    return result


def _split(batch):
    *feats, labels, mask = batch
    return tuple(feats), labels, mask


def prernn_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over every real step of every video (mask [N,T], 1 = real)."""
    n, t, c = logits.shape
    ce = F.cross_entropy(logits.reshape(n * t, c), labels.repeat_interleave(t), reduction="none").view(n, t)
    return (ce * mask).sum() / mask.sum().clamp_min(1.0)


def prernn_loss_fn(model, batch, step):
    feats, labels, mask = _split(batch)
    logits = model.forward_features(feats)["logits"]
    last = logits[torch.arange(labels.shape[0]), last_step_index(mask)]
    return prernn_loss(logits, labels, mask), {"accuracy": float((last.argmax(1) == labels).float().mean())}


def prernn_evaluate(model, batches) -> Dict[str, float]:
    """Validation: loss over every step and accuracy of the last real step, averaged over videos."""
    sums, count = {"loss": 0.0, "accuracy": 0.0}, 0
    for batch in batches:
        loss, metrics = prernn_loss_fn(model, batch, 0)
        n = batch[-2].shape[0]
        sums["loss"] += float(loss) * n
        sums["accuracy"] += metrics["accuracy"] * n
        count += n
    return {k: v / max(count, 1) for k, v in sums.items()}


@dataclass
class PreRNNTrainResult:
    """Outcome of :func:`train_prernn`: the trained model (eval mode) and its checkpoint files."""

    model: PreRNNModel
    checkpoint: Path
    best_checkpoint: Optional[Path]
    epochs: int
    global_step: int
    best_accuracy: Optional[float]
    history: List[Dict[str, Any]] = field(default_factory=list)


def train_prernn(config: PreRNNConfig, train_set, val_set=None, *, out: PathLike, epochs: int, batch_size: int,
                 lr: float = 1e-4, weight_decay: float = 0.0, grad_clip: float = 5.0,
                 weights: Optional[PathLike] = None, resume: Optional[PathLike] = None, seed: int = 0,
                 cache_dir: Optional[PathLike] = None, progress: bool = False) -> PreRNNTrainResult:
    """Convert ``config.arch`` (from local ``weights``; random otherwise) and fine-tune on a video data set.

    Trunk frozen and cached; Adam on drive + recurrence + head; :func:`prernn_loss` on every step.
    ``out`` is written after every epoch (resumable with ``resume=out``; ``<stem>.best<suffix>`` keeps the best
    validation accuracy). Checkpoints load with ``weights_only=True`` (:func:`load_prernn_checkpoint`).
    """
    classes = check_sets(train_set, val_set, num_classes=config.num_classes)
    config.labels = list(config.labels) or [str(c) for c in classes]
    ckpt = None
    if resume is not None:
        ckpt = read_checkpoint(resume)
        family_config(ckpt, resume, FAMILY, PreRNNConfig, "PreRNN", "edgevid train prernn")
        if ckpt["config"]["model"] != config.to_dict():
            raise CheckpointError("checkpoint %s was trained with another model configuration" % resume, None,
                                  "resume with the configuration it was trained with")
    seed_everything(seed)
    model = create_prernn(config, weights=weights if ckpt is None else None)
    if ckpt is not None:
        load_model_state(model, ckpt["model"], resume)   # the trunk the cached features came from
    model.trunk.requires_grad_(False)
    with torch_threads(1):   # small recurrent matrices: one thread is fastest on shared cores
        tr = extract_trunk_features(train_set, model, config.image_size, cache_dir=cache_dir, progress=progress)
        va = None if val_set is None else extract_trunk_features(val_set, model, config.image_size,
                                                                 cache_dir=cache_dir, progress=progress)
        trainable = [p for p in model.parameters() if p.requires_grad]
        trainer = Trainer(
            model, lambda m: torch.optim.Adam(trainable, lr=lr, weight_decay=weight_decay), prernn_loss_fn,
            (*tr.feats, tr.labels, tr.mask), epochs=epochs,
            val_data=None if va is None else (*va.feats, va.labels, va.mask), evaluate=prernn_evaluate,
            batch_size=batch_size, grad_clip=grad_clip, checkpoint=out, monitor="accuracy", mode="max", seed=seed,
            progress=progress, config={"model": config.to_dict(), "train": {"lr": lr, "batch_size": batch_size,
                                                                              "weight_decay": weight_decay,
                                                                              "seed": seed}},
            extra={"family": FAMILY, "labels": list(config.labels),
                   "preprocess": rules.preprocess_spec(config.image_size).to_dict(), "flow": dataset_flow(train_set)})
        fit = trainer.fit(resume=resume)
    model.eval()
    return PreRNNTrainResult(model, Path(out), fit.best_checkpoint, fit.epochs, fit.global_step, fit.best_metric,
                             fit.history)
