"""Fine-tuning SlowFast (docs/models.md §3.3–3.4) on a class-folder video data set.

::

    video ─► decoded at step_fps = train_fps / frame_stride (so consecutive frames are τ/α raw frames apart)
          ─► Preprocessor.resize (the runtime's code: short side → resize_short, RGB uint8)
          ─► centre SPAN·T_fast frames cached (uint8, <cache_dir>/slowfast-<key>.pt)
    train: random window of T_fast consecutive frames, random crop S×S, random horizontal flip
    val:   centre window, centre crop (Preprocessor.centre_crop: what the device does)
          ─► Preprocessor.normalize (Kinetics mean/std) ─► clip [N,3,T_fast,S,S] ─► SlowFast ─► cross-entropy
          ─► Trainer (checkpoint every epoch, best by validation accuracy, exact resume)

Datasets are duck-typed (``classes``, ``len``, ``[i] -> (frames uint8 [T,H,W,3] BGR, label)``); use
:func:`slowfast_folder` for a folder, which decodes at the model's step rate and keeps every frame.
The checkpoint is the training loop's (``family: "slowfast"``, ``config.model`` = the SlowFastConfig)
and loads with :func:`edgevid.models.slowfast_weights.load_slowfast_checkpoint`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import CheckpointError, ConfigError
from ..log import get_logger
from ..models.slowfast import SlowFast, create_slowfast
from ..models.slowfast_config import TRAIN_FPS, SlowFastConfig
from ..models.slowfast_weights import load_slowfast_weights
from ..spec import PreprocessSpec
from .common import TensorCache, cache_key, dataset_flow, check_classes, check_sets, dataset_fingerprint, progress_bar, torch_threads, video_item
from .loop import Trainer, read_checkpoint, seed_everything

log = get_logger(__name__)

FAMILY = "slowfast"
SPAN = 2            # frames cached per video: the centre SPAN·T_fast (the range of temporal jitter)
CACHE_VERSION = 1
PathLike = Union[str, Path]


def step_fps(config: SlowFastConfig, train_fps: float = TRAIN_FPS) -> float:
    """Rate of the clip's frames: ``train_fps / frame_stride`` (τ/α raw frames apart at the training rate)."""
    if not train_fps or train_fps <= 0:
        raise ConfigError("train_fps is %r" % (train_fps,), "it is the frame rate the model's stride refers to",
                          "pass a positive rate, e.g. 30 (Kinetics)")
    return float(train_fps) / config.frame_stride


def slowfast_folder(root: PathLike, config: SlowFastConfig, train_fps: float = TRAIN_FPS, flow: Any = None):
    """A :class:`VideoFolder` of every frame decoded at the model's step rate (``flow``: a FlowSpec for flow clips)."""
    from ..data.folder import VideoFolder

    return VideoFolder(root, num_frames=None, fps=step_fps(config, train_fps), flow=flow)


def _preprocessor(spec: PreprocessSpec):
    from ..preprocess import Preprocessor

    return Preprocessor(spec)


# --------------------------------------------------------------------------------------------------
# decoded, resized clips (cached)
class ClipSet:
    """Per video: resized uint8 frames [L,H,W,3] (L ≤ SPAN·T_fast, spec colour order) and the label."""

    def __init__(self, videos: List[np.ndarray], labels: List[int]):
        self.videos, self.labels = videos, labels

    def __len__(self) -> int:
        return len(self.videos)


def window_start(length: int, frames: int, rng: Optional[np.random.Generator] = None) -> int:
    """First frame of a window of ``frames`` in ``length``: the centre one, or a random one with ``rng``."""
    free = max(0, length - frames)
    return int(rng.integers(0, free + 1)) if rng is not None else free // 2


def window(video: np.ndarray, start: int, frames: int) -> np.ndarray:
    """``frames`` consecutive frames from ``start``; a short video repeats its last frame."""
    idx = np.minimum(np.arange(start, start + frames), video.shape[0] - 1)
    return video[idx]


def prepare_clips(dataset, spec: PreprocessSpec, frames: int, *, cache_dir: Optional[PathLike] = None,
                  progress: bool = False) -> ClipSet:
    """Decode and resize every video once (the centre ``SPAN·frames`` frames), cached under ``cache_dir``."""
    check_classes(dataset, "clip")
    keep = SPAN * frames
    cache = TensorCache(cache_dir, "slowfast", cache_key({"version": CACHE_VERSION, "dataset": dataset_fingerprint(dataset),
                                                          "preprocess": spec.to_dict(), "keep": keep}), "SlowFast clips")
    loaded = cache.load(_parse_clips)
    if loaded is not None:
        return loaded
    pre = _preprocessor(spec)
    videos, labels = [], []
    for i in progress_bar(range(len(dataset)), progress, "clips"):
        frames_bgr, label = video_item(dataset, i)
        start = window_start(frames_bgr.shape[0], keep)
        videos.append(np.stack([pre.resize(f) for f in frames_bgr[start:start + keep]]))
        labels.append(label)
    clips = ClipSet(videos, labels)
    cache.save({"videos": [torch.from_numpy(v) for v in videos], "labels": torch.tensor(labels, dtype=torch.long)})
    return clips


def _parse_clips(d: Dict[str, Any]) -> ClipSet:
    if len(d["videos"]) != d["labels"].shape[0]:
        raise ValueError("the lengths in the file differ")
    return ClipSet([v.numpy() for v in d["videos"]], [int(x) for x in d["labels"]])


class ClipBatches:
    """(clip [N,3,T,S,S] float32, labels [N]) batches; re-iterable, order and augmentation from (seed, epoch).

    ``train=True``: shuffled, random window, random S×S crop, horizontal flip with probability 1/2
    (``flip``). ``train=False``: in order, centre window, centre crop (the device's geometry).
    """

    def __init__(self, clips: ClipSet, spec: PreprocessSpec, frames: int, batch_size: int, *, train: bool,
                 seed: int = 0, flip: bool = True, drop_last: bool = False):
        self.clips, self.frames, self.batch_size, self.train = clips, frames, batch_size, train
        self.seed, self.flip, self.drop_last = seed, flip, drop_last
        self.pre = _preprocessor(spec)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.clips)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.clips)
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, 0xC11B]) if self.train else None
        order = rng.permutation(n) if rng is not None else np.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            crops = np.stack([self._crop(self.clips.videos[i], rng) for i in idx])  # [N,T,S,S,3]
            x = self.pre.normalize(crops)                                           # [N,T,3,S,S]
            yield (torch.from_numpy(x).permute(0, 2, 1, 3, 4).contiguous(),
                   torch.tensor([self.clips.labels[i] for i in idx], dtype=torch.long))

    def _crop(self, video: np.ndarray, rng: Optional[np.random.Generator]) -> np.ndarray:
        clip = window(video, window_start(video.shape[0], self.frames, rng), self.frames)
        if rng is None:
            return np.stack([self.pre.centre_crop(f) for f in clip])
        s = self.pre.spec.crop
        top = int(rng.integers(0, clip.shape[1] - s + 1))
        left = int(rng.integers(0, clip.shape[2] - s + 1))
        clip = clip[:, top:top + s, left:left + s]
        if self.flip and rng.random() < 0.5:
            clip = clip[:, :, ::-1]
        return clip


# --------------------------------------------------------------------------------------------------
def slowfast_loss_fn(model, batch, step):
    """Cross-entropy of the clip logits; metric ``accuracy``."""
    clip, labels = batch
    logits = model(clip)
    return F.cross_entropy(logits, labels), {"accuracy": float((logits.argmax(1) == labels).float().mean())}


def slowfast_evaluate(model, batches) -> Dict[str, float]:
    """Validation ``loss`` and ``accuracy`` averaged over clips."""
    loss = hits = count = 0.0
    for clip, labels in batches:
        logits = model(clip)
        loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        hits += float((logits.argmax(1) == labels).sum())
        count += labels.shape[0]
    return {"loss": loss / max(count, 1), "accuracy": hits / max(count, 1)}


@dataclass
class SlowFastTrainResult:
    """Outcome of :func:`train_slowfast`: the trained model (eval mode, last epoch) and its files."""

    model: SlowFast
    labels: List[str]
    checkpoint: Path
    best_checkpoint: Optional[Path]
    epochs: int
    global_step: int
    best_accuracy: Optional[float]
    best_epoch: Optional[int]
    history: List[Dict[str, Any]] = field(default_factory=list)
    sampling: Dict[str, float] = field(default_factory=dict)


def train_slowfast(config: SlowFastConfig, train_set, val_set=None, *, out: PathLike, epochs: int,
                   batch_size: int = 8, lr: float = 1e-3, weight_decay: float = 1e-4, grad_clip: float = 5.0,
                   size: int = 224, resize_short: int = 256, train_fps: float = TRAIN_FPS, flip: bool = True,
                   weights: Optional[PathLike] = None, resume: Optional[PathLike] = None, seed: int = 0,
                   cache_dir: Optional[PathLike] = None, progress: bool = False, threads: Optional[int] = None,
                   device: Union[str, torch.device] = "cpu") -> SlowFastTrainResult:
    """Train (or fine-tune) a SlowFast on clips of ``config.fast_frames`` consecutive frames.

    The data sets must be decoded at ``step_fps(config, train_fps)`` (:func:`slowfast_folder` does);
    ``size``/``resize_short`` are the crop and short side of the bundle's preprocessing. ``weights``:
    PyTorchVideo, PySlowFast or edgevid weights to start from (the classifier is replaced when the
    class count differs; any other mismatch is a CheckpointError). AdamW (``lr``, ``weight_decay``),
    gradient-norm clip. ``out`` is written after every epoch (``resume=out`` continues exactly);
    ``<stem>.best<suffix>`` keeps the epoch with the best validation accuracy. The checkpoint also
    records ``sampling`` (train_fps, step_fps, frame_stride) for the export's clip policy.
    ``threads``: torch threads while training (None: leave as is; on a shared 2-core machine one
    thread was 5-10× faster per step than two for the demo-size model, measured).
    """
    from ..families.slowfast import preprocess_spec

    classes = check_sets(train_set, val_set, num_classes=config.num_classes, batch_size=batch_size, epochs=epochs)
    if not config.labels:
        config = replace(config, labels=[str(c) for c in classes])
    spec = preprocess_spec(size, resize_short)
    sampling = {"train_fps": float(train_fps), "step_fps": step_fps(config, train_fps),
                "frame_stride": config.frame_stride}
    for name, ds in (("training", train_set), ("validation", val_set)):
        rate = getattr(ds, "fps", None)
        if ds is not None and rate is not None and abs(float(rate) - sampling["step_fps"]) > 1e-6:
            log.warning("the %s set is decoded at %g fps, the model's frames are %g fps apart (train_fps %g / "
                        "stride %d): use slowfast_folder()", name, rate, sampling["step_fps"], train_fps,
                        config.frame_stride)
    if resume is not None:
        _check_resume(read_checkpoint(resume), resume, config)

    seed_everything(seed)
    model = create_slowfast(config=config)
    if weights is not None and resume is None:
        load_slowfast_weights(model, weights, replace_head=True)
    model.to(torch.device(device))

    frames = config.fast_frames
    tr = prepare_clips(train_set, spec, frames, cache_dir=cache_dir, progress=progress)
    drop_last = len(tr) % batch_size == 1  # a last batch of 1 clip breaks BatchNorm in training mode
    train_data = ClipBatches(tr, spec, frames, batch_size, train=True, seed=seed, flip=flip, drop_last=drop_last)
    val_data = None
    if val_set is not None:
        va = prepare_clips(val_set, spec, frames, cache_dir=cache_dir, progress=progress)
        val_data = ClipBatches(va, spec, frames, batch_size, train=False, seed=seed)
    train_cfg = {"lr": lr, "weight_decay": weight_decay, "grad_clip": grad_clip, "batch_size": batch_size,
                 "flip": bool(flip), "seed": seed, "weights": None if weights is None else str(weights)}
    trainer = Trainer(
        model, lambda m: torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=weight_decay),
        slowfast_loss_fn, train_data, epochs=epochs, val_data=val_data, evaluate=slowfast_evaluate,
        grad_clip=grad_clip, checkpoint=out, monitor="accuracy", mode="max", seed=seed, progress=progress,
        config={"model": config.to_dict(), "train": train_cfg, "preprocess": spec.to_dict()},
        extra={"family": FAMILY, "labels": list(config.labels), "sampling": sampling, "flow": dataset_flow(train_set)},
        device=device)
    with torch_threads(threads or torch.get_num_threads()):
        fit = trainer.fit(resume=resume)
    model.eval()
    return SlowFastTrainResult(model, list(config.labels), Path(out), fit.best_checkpoint, fit.epochs,
                               fit.global_step, fit.best_metric, fit.best_epoch, fit.history, sampling)


def _check_resume(ckpt: Dict[str, Any], path, config: SlowFastConfig) -> None:
    saved = (ckpt.get("config") or {}).get("model")
    if ckpt.get("family") != FAMILY or not isinstance(saved, dict):
        raise CheckpointError("%s is not a SlowFast training checkpoint" % path, "family %r" % (ckpt.get("family"),),
                              "resume from a file written by 'edgevid train slowfast'")
    now = config.to_dict()
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if diff:
        raise CheckpointError("checkpoint %s was trained with another SlowFast configuration" % path,
                              "differing settings: %s" % ", ".join("%s %r vs %r" % (k, saved.get(k), now.get(k))
                                                                   for k in diff),
                              "resume with the preset, class folders and settings it was trained with")


def export_settings(path: PathLike) -> Dict[str, Any]:
    """What export needs from a training checkpoint: ``policy`` (train_fps, step_fps), ``size`` and
    ``resize_short`` it was trained at; {} for other files (foreign weights, saved checkpoints)."""
    ckpt = read_checkpoint(path)
    if ckpt.get("family") != FAMILY:
        return {}
    out: Dict[str, Any] = {}
    sampling, pre = ckpt.get("sampling"), (ckpt.get("config") or {}).get("preprocess")
    if isinstance(sampling, dict):
        out["policy"] = {k: sampling[k] for k in ("train_fps", "step_fps") if k in sampling}
    if isinstance(pre, dict):
        out.update(size=pre.get("crop"), resize_short=pre.get("resize_short"))
    return out
