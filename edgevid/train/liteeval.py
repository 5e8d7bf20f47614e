"""Training LiteEval (docs/models.md §2.3–2.5): per-frame features from frozen backbones, cached on disk,
then the head (projections, LSTMs, gate, classifier) trained with the Gumbel-softmax gate.

::

    dataset ─► Preprocessor (224 + 112, the runtime's code) ─► [recalibrate BN] ─► coarse / fine CNN
            ─► features [V,T,1280], [V,T,F] (+ labels, lengths) ── cached as <cache_dir>/liteeval-<key>.pt
            ─► Trainer: head(feat_c, feat_f, mask, τ = gumbel_temperature(step)) ─► liteeval_loss
            ─► checkpoint: config, labels, backbone archs, full LiteEval state (backbones included)

``end_to_end=True`` skips the cache and trains backbones and head together on preprocessed frames
(slow; for completeness). Datasets are duck-typed: ``classes``, ``__len__`` and ``__getitem__(i) ->
(frames uint8 [T,H,W,3] BGR, label int)``, as :class:`edgevid.data.VideoFolder` provides.
Videos of different lengths are padded at the end by repeating their last step and masked.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, DataError
from ..log import get_logger
from ..models.liteeval import LiteEval, LiteEvalConfig, LiteEvalHead, create_liteeval, gumbel_temperature
from ..models.checkpoint import family_config, load_liteeval_checkpoint  # noqa: F401  (re-exported)
from ..models.modes import eval_mode
from ..families import liteeval as rules
from .common import (TensorCache, cache_key, dataset_flow, check_classes, check_sets, dataset_fingerprint, length_mask,
                     module_fingerprint, pad_steps, progress_bar, torch_threads, video_item)
from .losses import last_step_index, liteeval_loss
from .loop import Trainer, load_model_state, read_checkpoint, seed_everything

log = get_logger(__name__)

FAMILY = "liteeval"
COARSE_SIZE, FINE_SIZE = rules.COARSE_FRAME, rules.FINE_FRAME
CACHE_VERSION = 1
PathLike = Union[str, Path]


class FeatureSet(NamedTuple):
    """Per-frame features of a data set: ``feat_c`` [V,T,1280], ``feat_f`` [V,T,F], ``labels`` [V] (int64),
    ``lengths`` [V] (real steps per video; steps past a video's length repeat its last step)."""

    feat_c: torch.Tensor
    feat_f: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """[V,T] float mask, 1 on real steps."""
        return length_mask(self.lengths, self.feat_c.shape[1])


# --------------------------------------------------------------------------------------------------
# frames
def _preprocess(pre, frames: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
    """Frames [T,H,W,3] BGR uint8 → (coarse [T,3,112,112], fine [T,3,224,224]) float32, via the runtime's code."""
    t = frames.shape[0]
    out_c = np.empty((t, 3, COARSE_SIZE, COARSE_SIZE), np.float32)
    out_f = np.empty((t, 3, FINE_SIZE, FINE_SIZE), np.float32)
    for k in range(t):
        res = pre(frames[k])          # reused buffers: copy out
        out_c[k] = res[COARSE_SIZE][0]
        out_f[k] = res[FINE_SIZE][0]
    return torch.from_numpy(out_c), torch.from_numpy(out_f)


def _preprocessor():
    from ..preprocess import Preprocessor

    return Preprocessor(rules.preprocess_spec())


def feature_cache_key(dataset, coarse_cnn: nn.Module, fine_cnn: nn.Module) -> str:
    """Key of cached features: data set identity, preprocessing, backbone archs and weights."""
    return cache_key({"version": CACHE_VERSION, "dataset": dataset_fingerprint(dataset),
                      "preprocess": rules.preprocess_spec().to_dict(),
                      "coarse": [getattr(coarse_cnn, "arch", type(coarse_cnn).__name__), module_fingerprint(coarse_cnn)],
                      "fine": [getattr(fine_cnn, "arch", type(fine_cnn).__name__), module_fingerprint(fine_cnn)]})


# --------------------------------------------------------------------------------------------------
# feature extraction
def extract_features(dataset, coarse_cnn: nn.Module, fine_cnn: nn.Module, *, batch_size: int = 32,
                     progress: bool = False, cache_dir: Optional[PathLike] = None,
                     device: Union[str, torch.device] = "cpu") -> FeatureSet:
    """Per-frame features of every video: coarse CNN on the 112 input, fine CNN on the 224 input.

    Each BGR frame goes through :class:`edgevid.preprocess.Preprocessor` (the runtime's code).
    CNNs run in eval mode without gradients, ``batch_size`` frames at a time (across videos). With
    ``cache_dir`` the result is stored (atomically) as ``liteeval-<key>.pt``, ``key`` =
    :func:`feature_cache_key`, and a later call with the same data, preprocessing and weights loads it.
    Returns a :class:`FeatureSet` (``feat_c, feat_f, labels, lengths``).
    """
    if batch_size < 1:
        raise ConfigError("feature batch size %d" % batch_size, "it must be at least 1", None)
    check_classes(dataset, "feature")
    cache = TensorCache(cache_dir, "liteeval", feature_cache_key(dataset, coarse_cnn, fine_cnn), "LiteEval features")
    feats = cache.load(_parse_features)
    if feats is None:
        feats = _extract(dataset, coarse_cnn, fine_cnn, batch_size, progress, torch.device(device))
        cache.save(feats._asdict())
    return feats


def _parse_features(d: Dict[str, Any]) -> FeatureSet:
    fs = FeatureSet(d["feat_c"], d["feat_f"], d["labels"], d["lengths"])
    v, t = fs.feat_c.shape[:2]
    if fs.feat_f.shape[:2] != (v, t) or fs.labels.shape != (v,) or fs.lengths.shape != (v,):
        raise ValueError("inconsistent shapes")
    return fs


def _extract(dataset, coarse_cnn, fine_cnn, batch_size, progress, device) -> FeatureSet:
    pre = _preprocessor()
    n = len(dataset)
    feats_c: List[List[torch.Tensor]] = [[] for _ in range(n)]
    feats_f: List[List[torch.Tensor]] = [[] for _ in range(n)]
    labels, lengths = [], []
    pending: List[Tuple[int, torch.Tensor, torch.Tensor]] = []  # (video, coarse frames, fine frames)

    def flush():
        if not pending:
            return
        xc = torch.cat([p[1] for p in pending]).to(device)
        xf = torch.cat([p[2] for p in pending]).to(device)
        fc, ff = coarse_cnn(xc).float().cpu(), fine_cnn(xf).float().cpu()
        k = 0
        for vid, c, _ in pending:
            m = c.shape[0]
            feats_c[vid].append(fc[k:k + m])
            feats_f[vid].append(ff[k:k + m])
            k += m
        pending.clear()

    with eval_mode(coarse_cnn), eval_mode(fine_cnn), torch.no_grad():
        for i in progress_bar(range(n), progress, "features"):
            frames, label = video_item(dataset, i)
            labels.append(label)
            lengths.append(frames.shape[0])
            xc, xf = _preprocess(pre, frames)
            start, steps = 0, xc.shape[0]
            while start < steps:
                filled = sum(p[1].shape[0] for p in pending)
                take = min(batch_size - filled, steps - start)
                pending.append((i, xc[start:start + take], xf[start:start + take]))
                start += take
                if filled + take >= batch_size:
                    flush()
        flush()
    steps = max(lengths)
    return FeatureSet(pad_steps([torch.cat(x) for x in feats_c], steps), pad_steps([torch.cat(x) for x in feats_f], steps),
                      torch.tensor(labels, dtype=torch.long), torch.tensor(lengths, dtype=torch.long))


# --------------------------------------------------------------------------------------------------
# BatchNorm recalibration
@contextmanager
def bn_recalibration(cnn: nn.Module):
    """Inside the block, forward passes of ``cnn`` re-estimate its BatchNorm running statistics from
    scratch (cumulative average over batches, no gradient); only BN layers are in training mode.
    Yields a counter dict; if no batch was seen, the old statistics are put back and DataError raised."""
    bns = [m for m in cnn.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = {id(m): (m.momentum, {k: b.clone() for k, b in m.named_buffers(recurse=False)}) for m in bns}
    modes = {id(m): m.training for m in cnn.modules()}
    seen = {"batches": 0, "frames": 0}
    cnn.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None   # cumulative moving average: every batch weighs the same
        m.train()
    ok = False
    try:
        with torch.no_grad():
            yield seen
        ok = seen["batches"] > 0
    finally:
        for m in bns:
            m.momentum = saved[id(m)][0]
            if not ok:
                for k, b in m.named_buffers(recurse=False):
                    b.copy_(saved[id(m)][1][k])
        for m in cnn.modules():
            m.train(modes[id(m)])
    if not ok:
        raise DataError("no frames to recalibrate BatchNorm statistics with", None, "give a non-empty training set")


def recalibrate_bn(cnn: nn.Module, frames_iter: Iterable[torch.Tensor], *, max_batches: Optional[int] = None) -> int:
    """Re-estimate the BatchNorm running statistics of ``cnn`` on batches of preprocessed frames
    [B,3,H,W] (no gradient; parameters untouched). Returns the number of frames used.

    For backbones without pretrained weights: random-init running statistics (mean 0, var 1) make
    eval-mode features degenerate; statistics of the training frames make them usable.
    """
    with bn_recalibration(cnn) as seen:
        for frames in frames_iter:
            if max_batches is not None and seen["batches"] >= max_batches:
                break
            cnn(frames)
            seen["batches"] += 1
            seen["frames"] += int(frames.shape[0])
    return seen["frames"]


def _bn_batches(dataset, batch_size: int, max_frames: int, seed: int, per_video: int = 4) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """Batches of (coarse, fine) frames drawn from videos in a seeded random order, at most
    ``per_video`` frames from each so a batch spans several videos."""
    pre = _preprocessor()
    rng = np.random.default_rng(seed)
    buf_c, buf_f, used = [], [], 0
    for i in rng.permutation(len(dataset)):
        frames, _ = video_item(dataset, int(i))
        pick = np.sort(rng.choice(frames.shape[0], size=min(per_video, frames.shape[0]), replace=False))
        xc, xf = _preprocess(pre, frames[pick])
        buf_c.append(xc)
        buf_f.append(xf)
        used += len(pick)
        if sum(x.shape[0] for x in buf_c) >= batch_size or used >= max_frames:
            yield torch.cat(buf_c), torch.cat(buf_f)
            buf_c, buf_f = [], []
        if used >= max_frames:
            return
    if buf_c:
        yield torch.cat(buf_c), torch.cat(buf_f)


def _recalibrate_backbones(model: LiteEval, which: Tuple[bool, bool], dataset, batch_size, max_frames, seed,
                           device) -> None:
    cnns = [c for c, on in zip((model.coarse_cnn, model.fine_cnn), which) if on]
    with ExitStack() as stack:
        seen = [stack.enter_context(bn_recalibration(c)) for c in cnns]
        for xc, xf in _bn_batches(dataset, max(batch_size, 2), max_frames, seed):
            for cnn, s in zip(cnns, seen):
                cnn((xc if cnn is model.coarse_cnn else xf).to(device))
                s["batches"] += 1
                s["frames"] += int(xc.shape[0])
    log.info("BatchNorm statistics of %s recalibrated on %d training frames",
             " and ".join(getattr(c, "arch", "backbone") for c in cnns), seen[0]["frames"])


# --------------------------------------------------------------------------------------------------
# loss and evaluation shared by cached and end-to-end training
def _forward(model: nn.Module, batch, tau: float):
    """batch = (coarse, fine, labels, mask); coarse/fine are features [N,T,D] or frames [N,T,3,S,S]."""
    xc, xf, labels, mask = batch
    head = model.head if isinstance(model, LiteEval) else model
    if xc.dim() == 5:
        xc, xf = model.features(xc, xf)
    return head(xc, xf, mask=mask, tau=tau), labels, mask


def liteeval_loss_fn(fine_fraction_target: float = 0.1, lam: float = 2.0, tau_rate: float = 1e-4):
    """``loss_fn(model, batch, step)`` for :class:`Trainer`: τ = gumbel_temperature(step, tau_rate), then
    :func:`liteeval_loss`."""

    def loss_fn(model, batch, step):
        tau = gumbel_temperature(step, tau_rate)
        out, labels, mask = _forward(model, batch, tau)
        loss, parts = liteeval_loss(out, labels, mask, fine_fraction_target, lam)
        parts["tau"] = tau
        return loss, parts

    return loss_fn


def liteeval_evaluate(fine_fraction_target: float = 0.1, lam: float = 2.0):
    """``evaluate(model, batches)`` for :class:`Trainer` (called in eval mode: argmax gate, no noise):
    ``accuracy`` of the last real step, per-video ``fine_rate`` and the objective (``loss``, ``ce``),
    averaged over videos."""

    def evaluate(model, batches):
        sums = {"accuracy": 0.0, "fine_rate": 0.0, "loss": 0.0, "ce": 0.0}
        count = 0
        for batch in batches:
            out, labels, mask = _forward(model, batch, 1.0)
            loss, parts = liteeval_loss(out, labels, mask, fine_fraction_target, lam)
            last = last_step_index(mask)
            pred = out["logits"][torch.arange(labels.shape[0], device=labels.device), last].argmax(dim=1)
            n = labels.shape[0]
            sums["accuracy"] += float((pred == labels).float().sum())
            sums["fine_rate"] += parts["fine_rate"] * n
            sums["loss"] += float(loss.detach()) * n
            sums["ce"] += parts["ce"] * n
            count += n
        return {k: v / max(count, 1) for k, v in sums.items()}

    return evaluate


class _FrameBatches:
    """Batches of preprocessed frames for end-to-end training: (coarse [N,T,3,112,112], fine
    [N,T,3,224,224], labels [N], mask [N,T]); order reshuffled per epoch from ``seed``."""

    def __init__(self, dataset, batch_size: int, *, shuffle: bool, drop_last: bool, seed: int):
        self.dataset, self.batch_size, self.shuffle, self.drop_last, self.seed = dataset, batch_size, shuffle, drop_last, seed
        self.epoch = 0
        self._pre = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        if self._pre is None:
            self._pre = _preprocessor()
        n = len(self.dataset)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch))
        else:
            order = torch.arange(n)
        for b in range(len(self)):
            cs, fs, labels, lengths = [], [], [], []
            for i in order[b * self.batch_size:(b + 1) * self.batch_size].tolist():
                frames, label = video_item(self.dataset, i)
                xc, xf = _preprocess(self._pre, frames)
                cs.append(xc)
                fs.append(xf)
                labels.append(label)
                lengths.append(frames.shape[0])
            steps = max(lengths)
            lengths_t = torch.tensor(lengths)
            mask = length_mask(lengths_t, steps)
            yield pad_steps(cs, steps), pad_steps(fs, steps), torch.tensor(labels, dtype=torch.long), mask


# --------------------------------------------------------------------------------------------------
@dataclass
class LiteEvalTrainResult:
    """Outcome of :func:`train_liteeval`: the trained model (eval mode, last epoch's weights) and its files."""

    model: LiteEval
    checkpoint: Path
    best_checkpoint: Optional[Path]
    epochs: int
    global_step: int
    best_accuracy: Optional[float]
    best_epoch: Optional[int]
    history: List[Dict[str, Any]] = field(default_factory=list)


def train_liteeval(config: LiteEvalConfig, train_set, val_set=None, *, out: PathLike, epochs: int, batch_size: int,
                   lr: float = 1e-4, weight_decay: float = 1e-4, grad_clip: float = 5.0,
                   fine_fraction_target: float = 0.1, lam: float = 2.0, tau_rate: float = 1e-4,
                   end_to_end: bool = False,
                   coarse_weights: Optional[PathLike] = None, fine_weights: Optional[PathLike] = None,
                   adapt_bn: Optional[bool] = None, bn_frames: int = 1024, resume: Optional[PathLike] = None,
                   seed: int = 0, backbone_seed: Optional[int] = None, progress: bool = False,
                   cache_dir: Optional[PathLike] = None,
                   feature_batch_size: int = 32, device: Union[str, torch.device] = "cpu") -> LiteEvalTrainResult:
    """Train LiteEval on a video data set and write a checkpoint that export can rebuild the model from.

    Default: backbones frozen; per-frame features extracted once (cached under ``cache_dir``) and the
    head trained on them. ``end_to_end=True``: backbones train too, on frames (slow). Objective
    :func:`liteeval_loss` with γ = ``fine_fraction_target`` and λ = ``lam``; Adam (``lr``,
    ``weight_decay``), gradient-norm clip ``grad_clip``; τ = ``gumbel_temperature(global step, tau_rate)``:
    the reference's rate 1e-4 anneals over tens of thousands of steps; a short schedule needs a faster one
    (the demo's 1,500 steps use 1e-3, which reaches the floor τ = 0.5 about half way; with 1e-4, τ ends at
    0.86 and the noisy training gate differs from the argmax gate at inference: measured 1-2 points lower).

    ``adapt_bn`` (default: for each backbone, True when no weights file is given for it) re-estimates
    BatchNorm statistics on up to ``bn_frames`` training frames before feature extraction.

    ``out``: checkpoint after every epoch (resumable with ``resume=out``); ``<stem>.best<suffix>``:
    the epoch with the best validation accuracy. Both load with :func:`load_liteeval_checkpoint`.
    Validation: eval mode (argmax gate), accuracy of the last step's prediction and fine rate.
    ``seed`` seeds the global torch/numpy/python RNGs (model init, Gumbel noise); shuffling and the
    BN-recalibration sample derive from it too, so equal arguments give equal weights. ``backbone_seed``
    (default: ``seed``) initialises backbones without a weights file on their own, so heads trained with
    several seeds can share one set of backbones and cached features.

    Checkpoint layout (plain tensors and values; ``torch.load(path, weights_only=True)``):
    ``family`` "liteeval"; ``labels``; ``coarse_arch``/``fine_arch``; ``config`` = {``model``:
    LiteEvalConfig dict, ``train``: hyper-parameters, ``preprocess``: PreprocessSpec dict}; ``model`` =
    the full LiteEval state dict (``head.*``, ``coarse_cnn.trunk.*``, ``fine_cnn.trunk.*``); plus the
    loop's ``optimizer``, ``epoch``, ``global_step``, ``best_metric``, ``history``, ``rng``.
    """
    classes = check_sets(train_set, val_set, num_classes=config.num_classes, batch_size=batch_size, epochs=epochs)
    if not config.labels:
        config = replace(config, labels=[str(c) for c in classes])
    elif list(config.labels) != [str(c) for c in classes]:
        raise ConfigError("the config's labels differ from the training set's classes",
                          "%s vs %s" % (list(config.labels)[:5], classes[:5]), "leave labels empty or list the classes in order")
    if not (tau_rate > 0.0):
        raise ConfigError("tau_rate = %r" % (tau_rate,), "the Gumbel temperature must anneal",
                          "pass a positive rate, e.g. 1e-4 (reference) or 1e-3 for a schedule of a few thousand steps")
    if not (0.0 <= fine_fraction_target <= 1.0):
        raise ConfigError("fine_fraction_target = %g" % fine_fraction_target, "it is a fraction of steps",
                          "choose a value in [0, 1], e.g. 0.1")
    device = torch.device(device)
    out = Path(out)

    ckpt = None
    if resume is not None:
        ckpt = read_checkpoint(resume)
        family_config(ckpt, resume, FAMILY, LiteEvalConfig, "LiteEval", "edgevid train liteeval")
        saved, now = ckpt["config"]["model"], config.to_dict()
        if saved != now:
            diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
            raise CheckpointError("checkpoint %s was trained with another model configuration" % resume,
                                  "differing keys: %s" % ", ".join(diff), "resume with the configuration it was trained with")

    seed_everything(seed if backbone_seed is None else backbone_seed)
    model = create_liteeval(config, coarse_weights=coarse_weights, fine_weights=fine_weights)
    if backbone_seed is not None:
        seed_everything(seed)
        model.head = LiteEvalHead(config)  # the head from the training seed, the backbones from backbone_seed
    if ckpt is not None:
        load_model_state(model, ckpt["model"], resume)   # the backbones the cached features came from
        ckpt = None
    model.to(device)
    if resume is None:
        which = (coarse_weights is None, fine_weights is None) if adapt_bn is None else (bool(adapt_bn),) * 2
        if any(which):
            _recalibrate_backbones(model, which, train_set, feature_batch_size, bn_frames, seed, device)

    drop_last = len(train_set) % batch_size == 1  # a last batch of 1 video breaks BatchNorm in training mode
    if end_to_end:
        train_data = _FrameBatches(train_set, batch_size, shuffle=True, drop_last=drop_last, seed=seed)
        val_data = None if val_set is None else _FrameBatches(val_set, batch_size, shuffle=False, drop_last=False, seed=seed)
        trainer_batch = None
        params = lambda m: m.parameters()  # noqa: E731
    else:
        for cnn in (model.coarse_cnn, model.fine_cnn):
            cnn.requires_grad_(False)
        tr = extract_features(train_set, model.coarse_cnn, model.fine_cnn, batch_size=feature_batch_size,
                              progress=progress, cache_dir=cache_dir, device=device)
        train_data = (tr.feat_c, tr.feat_f, tr.labels, tr.mask)
        val_data = None
        if val_set is not None:
            va = extract_features(val_set, model.coarse_cnn, model.fine_cnn, batch_size=feature_batch_size,
                                  progress=progress, cache_dir=cache_dir, device=device)
            val_data = (va.feat_c, va.feat_f, va.labels, va.mask)
        trainer_batch = batch_size
        params = lambda m: m.head.parameters()  # noqa: E731

    train_cfg = {"lr": lr, "weight_decay": weight_decay, "grad_clip": grad_clip, "batch_size": batch_size,
                 "fine_fraction_target": fine_fraction_target, "lam": lam, "tau_rate": tau_rate, "end_to_end": bool(end_to_end),
                 "seed": seed, "coarse_weights": None if coarse_weights is None else str(coarse_weights),
                 "fine_weights": None if fine_weights is None else str(fine_weights)}
    trainer = Trainer(
        model, lambda m: torch.optim.Adam(params(m), lr=lr, weight_decay=weight_decay),
        liteeval_loss_fn(fine_fraction_target, lam, tau_rate), train_data, epochs=epochs, val_data=val_data,
        evaluate=liteeval_evaluate(fine_fraction_target, lam), batch_size=trainer_batch, drop_last=drop_last,
        grad_clip=grad_clip, checkpoint=out, monitor="accuracy", mode="max", seed=seed, progress=progress,
        config={"model": config.to_dict(), "train": train_cfg, "preprocess": rules.preprocess_spec().to_dict()},
        extra={"family": FAMILY, "labels": list(config.labels), "coarse_arch": config.coarse_arch,
               "fine_arch": config.fine_arch, "flow": dataset_flow(train_set)},
        device=device)
    # the head's matrices are tiny: one thread is fastest, and several OpenMP threads collapse (measured
    # 50 ms vs 2.4 s per step on 2 cores) whenever another process holds a core
    with torch_threads(1 if not end_to_end else torch.get_num_threads()):
        fit = trainer.fit(resume=resume)
    model.requires_grad_(True)
    model.eval()
    return LiteEvalTrainResult(model, out, fit.best_checkpoint, fit.epochs, fit.global_step, fit.best_metric,
                               fit.best_epoch, fit.history)
