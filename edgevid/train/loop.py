"""One small training loop: epochs of optimiser steps, per-epoch validation, atomic checkpoints, resume.

::

    for epoch in (saved epoch + 1) .. epochs:
        for batch in train batches:                 (tensors + batch_size: reshuffled per epoch from seed)
            loss, metrics = loss_fn(model, batch, global_step)
            backward; clip grad norm; optimiser step; global_step += 1
        val = evaluate(model, val batches)          (eval mode, no grad)
        save checkpoint (last) ; copy to best if val[monitor] improved

A checkpoint holds only tensors and plain Python values (model and optimiser state, epoch, global step,
best metric, history, config, RNG states), so it loads with ``torch.load(path, weights_only=True)``.
``fit(resume=path)`` restores all of it, including the torch/numpy/python RNG states, so a resumed run
ends with the same weights as an uninterrupted one. The loop never prints: progress goes to a tqdm bar
on stderr only when asked (``progress=True``) and to an optional ``callback``; summaries go to logging.
"""
from __future__ import annotations

import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..fsutil import atomic_path
from ..log import get_logger
from ..models.checkpoint import FORMAT, load_model_state, read_checkpoint  # noqa: F401  (part of the loop's API)

log = get_logger(__name__)

Metrics = Dict[str, float]
LossFn = Callable[[nn.Module, Any, int], Tuple[torch.Tensor, Mapping[str, float]]]


class TensorBatches:
    """Mini-batches over tensors that share their first dimension; reshuffled per epoch from ``seed``.

    The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run sees the same batches.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], batch_size: int, *, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0):
        tensors = tuple(tensors)
        if not tensors:
            raise ConfigError("no tensors to batch", None, "pass a tuple of tensors with a common first dimension")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ConfigError("tensors to batch have different lengths %s" % [t.shape[0] for t in tensors],
                              "every tensor must have one row per sample", "pass aligned tensors")
        if batch_size < 1:
            raise ConfigError("batch size %d" % batch_size, "it must be at least 1", "pass batch_size >= 1")
        self.tensors, self.batch_size, self.shuffle, self.drop_last, self.seed = tensors, batch_size, shuffle, drop_last, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = self.tensors[0].shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = self.tensors[0].shape[0]
        if self.shuffle:
            g = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(self.epoch))
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` did: the last epoch and step, the best metric, and per-epoch history."""

    epochs: int
    global_step: int
    best_metric: Optional[float]
    best_epoch: Optional[int]
    history: List[Dict[str, Any]] = field(default_factory=list)
    checkpoint: Optional[Path] = None
    best_checkpoint: Optional[Path] = None


class Trainer:
    """Train ``model`` with ``loss_fn(model, batch, global_step) -> (loss, metrics)``.

    ``train_data``/``val_data``: a re-iterable of batches (its ``set_epoch(epoch)`` is called when it
    has one), or, with ``batch_size``, a tuple of tensors batched by :class:`TensorBatches` (train data
    shuffled per epoch, validation data in order). ``evaluate(model, val_batches) -> metrics`` runs in
    eval mode without gradients; by default it averages ``loss_fn``'s loss and metrics over the batches.
    ``monitor`` names the validation metric that selects the best checkpoint (``mode`` "max" or "min";
    default "min" for names ending in "loss", else "max").

    ``checkpoint``: path written atomically after every epoch; ``best_checkpoint`` (default
    ``<stem>.best<suffix>`` beside it) whenever the monitored metric improves. ``extra`` (a dict, or a
    callable returning one, called at each save) adds plain entries to every checkpoint.
    """

    def __init__(self, model: nn.Module, optimizer_factory: Callable[[nn.Module], torch.optim.Optimizer],
                 loss_fn: LossFn, train_data, *, epochs: int, val_data=None,
                 evaluate: Optional[Callable[[nn.Module, Iterable], Metrics]] = None,
                 batch_size: Optional[int] = None, drop_last: bool = False, grad_clip: Optional[float] = 5.0,
                 checkpoint: Optional[Union[str, Path]] = None, best_checkpoint: Optional[Union[str, Path]] = None,
                 monitor: str = "loss", mode: Optional[str] = None, config: Optional[Dict[str, Any]] = None,
                 extra: Union[None, Dict[str, Any], Callable[[], Dict[str, Any]]] = None, seed: int = 0,
                 progress: bool = False, callback: Optional[Callable[[Dict[str, Any]], None]] = None,
                 device: Union[None, str, torch.device] = None):
        if epochs < 1:
            raise ConfigError("epochs = %d" % epochs, "at least one epoch is needed", "pass epochs >= 1")
        mode = mode or ("min" if monitor.endswith("loss") else "max")
        if mode not in ("min", "max"):
            raise ConfigError("monitor mode '%s'" % mode, "it must be 'min' or 'max'", None)
        self.model, self.loss_fn, self.epochs = model, loss_fn, int(epochs)
        self.optimizer = optimizer_factory(model)
        self.train_data = self._batches(train_data, batch_size, shuffle=True, drop_last=drop_last, seed=seed)
        self.val_data = None if val_data is None else self._batches(val_data, batch_size, shuffle=False,
                                                                    drop_last=False, seed=seed)
        self.evaluate = evaluate or self._mean_loss
        self.grad_clip = grad_clip
        self.checkpoint = Path(checkpoint) if checkpoint else None
        if best_checkpoint is None and self.checkpoint is not None:
            best_checkpoint = self.checkpoint.with_name(self.checkpoint.stem + ".best" + self.checkpoint.suffix)
        self.best_checkpoint = Path(best_checkpoint) if best_checkpoint else None
        self.monitor, self.mode = monitor, mode
        self.config = dict(config or {})
        self.extra = extra
        self.progress, self.callback = progress, callback
        self.device = None if device is None else torch.device(device)
        # state that a checkpoint carries
        self.epoch = 0
        self.global_step = 0
        self.best_metric: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.history: List[Dict[str, Any]] = []

    # ------------------------------------------------------------------------------------------
    def fit(self, resume: Optional[Union[str, Path]] = None) -> FitResult:
        """Train up to ``epochs`` (continuing after the saved epoch when ``resume`` names a checkpoint)."""
        if resume is None and self.best_checkpoint is not None and self.best_checkpoint.exists():
            log.info("removing %s of an earlier run: this run keeps its own best", self.best_checkpoint)
            self.best_checkpoint.unlink()
        if resume is not None:
            self.load(resume)
            if self.epoch >= self.epochs:
                log.info("checkpoint %s already has %d of %d epochs; nothing to train", resume, self.epoch, self.epochs)
        for epoch in range(self.epoch + 1, self.epochs + 1):
            t0 = time.perf_counter()
            train_metrics = self._train_epoch(epoch)
            val_metrics = self._validate() if self.val_data is not None else {}
            record = {"epoch": epoch, "global_step": self.global_step, "seconds": round(time.perf_counter() - t0, 3),
                      "train": train_metrics, "val": val_metrics}
            improved = self._update_best(epoch, val_metrics)
            self.epoch = epoch
            self.history.append(record)
            if self.checkpoint is not None:
                self.save(self.checkpoint)
                if improved and self.best_checkpoint is not None:
                    with atomic_path(self.best_checkpoint) as tmp:
                        shutil.copyfile(str(self.checkpoint), str(tmp))
            log.info("epoch %d/%d: %s%s", epoch, self.epochs, format_metrics(train_metrics),
                     ("; val " + format_metrics(val_metrics)) if val_metrics else "")
            if self.callback is not None:
                self.callback({"event": "epoch", **record})
        return FitResult(self.epoch, self.global_step, self.best_metric, self.best_epoch, list(self.history),
                         self.checkpoint, self.best_checkpoint if self.best_epoch is not None else None)

    def _train_epoch(self, epoch: int) -> Metrics:
        self.model.train()
        if hasattr(self.train_data, "set_epoch"):
            self.train_data.set_epoch(epoch)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        sums: Dict[str, float] = {}
        batches = 0
        bar = self._bar(self.train_data, "epoch %d/%d" % (epoch, self.epochs))
        try:
            for batch in bar if bar is not None else self.train_data:
                batch = to_device(batch, self.device)
                loss, metrics = self.loss_fn(self.model, batch, self.global_step)
                if not torch.isfinite(loss.detach()).all():
                    raise ConfigError("the training loss is %s at step %d" % (loss.item(), self.global_step),
                                      "the learning rate may be too high or the inputs hold NaN/inf",
                                      "lower the learning rate or check the data")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = None
                if self.grad_clip is not None:
                    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.grad_clip))
                self.optimizer.step()
                self.global_step += 1
                batches += 1
                metrics = {"loss": float(loss.detach()), **{k: _num(v) for k, v in metrics.items()}}
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                if bar is not None:
                    bar.set_postfix({k: format_metric(k, v) for k, v in metrics.items()}, refresh=False)
                if self.callback is not None:
                    self.callback({"event": "step", "epoch": epoch, "global_step": self.global_step,
                                   "grad_norm": grad_norm, **metrics})
        finally:
            if bar is not None:
                bar.close()
        if batches == 0:
            raise ConfigError("epoch %d had no training batches" % epoch, "the training data is empty or every "
                              "batch was dropped", "give more training samples or a smaller batch size")
        return {k: v / batches for k, v in sums.items()}

    def _validate(self) -> Metrics:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                batches = self.val_data if self.device is None else _Moved(self.val_data, self.device)
                return {k: float(v) for k, v in self.evaluate(self.model, batches).items()}
        finally:
            self.model.train(was_training)

    def _mean_loss(self, model: nn.Module, batches: Iterable) -> Metrics:
        sums: Dict[str, float] = {}
        n = 0
        for batch in batches:
            loss, metrics = self.loss_fn(model, batch, self.global_step)
            for k, v in {"loss": _num(loss), **{k: _num(v) for k, v in metrics.items()}}.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
        return {k: v / max(n, 1) for k, v in sums.items()}

    def _update_best(self, epoch: int, val: Metrics) -> bool:
        if self.monitor not in val:
            if val:
                log.warning("validation metrics %s lack '%s'; no best checkpoint is kept", sorted(val), self.monitor)
            return False
        value = val[self.monitor]
        if math.isnan(value):
            return False
        better = self.best_metric is None or (value > self.best_metric if self.mode == "max" else value < self.best_metric)
        if better:
            self.best_metric, self.best_epoch = float(value), epoch
        return better

    def _bar(self, data, desc: str):
        if not self.progress:
            return None
        from .._optional import require

        tqdm = require("tqdm", "the training progress bar").tqdm
        try:
            total = len(data)
        except TypeError:
            total = None
        return tqdm(data, total=total, desc=desc, leave=False, dynamic_ncols=True)  # tqdm writes to stderr

    @staticmethod
    def _batches(data, batch_size, *, shuffle, drop_last, seed):
        if batch_size is None:
            return data
        if isinstance(data, torch.Tensor):
            data = (data,)
        return TensorBatches(data, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)

    # checkpoints ---------------------------------------------------------------------------------
    def state(self) -> Dict[str, Any]:
        """Everything a checkpoint holds (tensors and plain Python values only)."""
        state = {
            "format": FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "monitor": self.monitor,
            "mode": self.mode,
            "history": self.history,
            "config": self.config,
            "rng": rng_state(),
        }
        extra = self.extra() if callable(self.extra) else (self.extra or {})
        clash = set(extra) & set(state)
        if clash:
            raise ConfigError("checkpoint extras %s clash with the loop's own entries" % sorted(clash), None,
                              "rename the extra entries")
        state.update(extra)
        return state

    def save(self, path: Union[str, Path]) -> Path:
        """Write the checkpoint atomically (temp file + rename)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save(self.state(), str(tmp))
        return path

    def load(self, path: Union[str, Path]) -> Dict[str, Any]:
        """Restore model, optimiser, counters, history and RNG states from a checkpoint of this loop."""
        ckpt = read_checkpoint(path)
        missing = [k for k in ("model", "optimizer", "epoch", "global_step") if k not in ckpt]
        if ckpt.get("format") != FORMAT or missing:
            raise CheckpointError("%s is not a training checkpoint of edgevid" % path,
                                  "format %r, missing entries %s" % (ckpt.get("format"), missing),
                                  "resume from a file written by this training loop")
        load_model_state(self.model, ckpt["model"], path)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError("the optimiser state in %s does not fit this model" % path, str(e),
                                  "resume with the same model and optimiser settings") from e
        self.epoch, self.global_step = int(ckpt["epoch"]), int(ckpt["global_step"])
        self.best_metric, self.best_epoch = ckpt.get("best_metric"), ckpt.get("best_epoch")
        if ckpt.get("monitor", self.monitor) != self.monitor:
            log.warning("checkpoint %s monitored '%s', now '%s': the best metric restarts", path,
                        ckpt.get("monitor"), self.monitor)
            self.best_metric = self.best_epoch = None
        self.history = list(ckpt.get("history", []))
        saved = ckpt.get("config") or {}
        changed = sorted(k for k in set(saved) | set(self.config) if saved.get(k) != self.config.get(k))
        if changed:
            log.warning("resuming %s with changed settings: %s", path, ", ".join(changed))
        if "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        log.info("resumed %s at epoch %d, step %d", path, self.epoch, self.global_step)
        return ckpt


def to_device(batch, device: Optional[torch.device]):
    """Move the tensors of a batch (a tensor, or a tuple/list/dict of them) to ``device``; None = leave."""
    if device is None:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


class _Moved:
    def __init__(self, batches, device):
        self.batches, self.device = batches, device

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return (to_device(b, self.device) for b in self.batches)


# RNG states as tensors and plain values (weights_only-safe) --------------------------------------
def rng_state() -> Dict[str, Any]:
    """torch (CPU and CUDA), numpy and python RNG states as tensors / plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": [int(x) for x in py_state], "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python RNGs."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _num(v) -> float:
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)


def is_share(name: str) -> bool:
    """Metrics that are shares of a whole (accuracy, fine_rate): shown as percentages."""
    return "accuracy" in name or name.endswith("_rate")


def format_metric(name: str, value: Any) -> str:
    """One metric for people: shares as a percentage with one decimal (``10.0%``), everything else (losses,
    temperatures) with 4 significant digits (``2.411``); None as ``n/a``."""
    if value is None:
        return "n/a"
    value = _num(value)
    return "%.1f%%" % (100.0 * value) if is_share(name) else "%.4g" % value


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """``loss 2.411, accuracy 10.0%, fine_rate 42.7%`` (see :func:`format_metric`)."""
    return ", ".join("%s %s" % (k, format_metric(k, v)) for k, v in metrics.items())
