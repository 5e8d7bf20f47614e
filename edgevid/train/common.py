"""Helpers every family's training shares: videos from a duck-typed data set, padding of sequences,
fingerprints of data sets and modules (keys of the feature and clip caches), progress bars and the torch
thread count.

A data set is anything with ``classes``, ``__len__`` and ``__getitem__(i) -> (frames uint8 [T,H,W,3] BGR,
label int)``, as :class:`edgevid.data.VideoFolder` provides.
"""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..fsutil import atomic_path
from ..log import get_logger

log = get_logger(__name__)


def video_item(dataset, i: int) -> Tuple[np.ndarray, int]:
    try:
        frames, label = dataset[i]
    except (DataError, ConfigError):
        raise
    except (OSError, ValueError, IndexError, KeyError) as e:
        raise DataError("cannot read video %d of the data set" % i, str(e), "check the file or remove it") from e
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise DataError("video %d of the data set is not frames uint8 [T,H,W,3]" % i,
                        "got %s %s" % (type(frames).__name__, getattr(frames, "shape", "")),
                        "the data set must return (BGR uint8 frames [T,H,W,3], label)")
    if frames.shape[0] < 1:
        raise DataError("video %d of the data set has no frames" % i, None, "remove the empty video")
    return frames, int(label)


def length_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """[V, steps] float mask, 1 on the first ``lengths[v]`` (real) steps of each sequence."""
    return (torch.arange(steps)[None, :] < lengths[:, None]).float()


def pad_steps(seqs: List[torch.Tensor], steps: int) -> torch.Tensor:
    """Stack [T_i, …] tensors to [V, steps, …], repeating each one's last step."""
    out = []
    for s in seqs:
        if s.shape[0] < steps:
            s = torch.cat([s, s[-1:].expand(steps - s.shape[0], *s.shape[1:])], 0)
        out.append(s)
    return torch.stack(out, 0)


def check_sets(train_set, val_set=None, *, num_classes: Optional[int] = None, batch_size: Optional[int] = None,
               epochs: Optional[int] = None) -> List[str]:
    """The training classes, after the checks every family's training makes: a batch of at least 2 (BatchNorm),
    at least one epoch, a readable non-empty training set of 2+ videos, validation classes equal to the training
    classes and, given ``num_classes``, as many classes as the model has. ConfigError / DataError otherwise."""
    if batch_size is not None and batch_size < 2:
        raise ConfigError("batch size %d" % batch_size, "BatchNorm needs at least 2 samples per batch",
                          "use batch_size >= 2")
    if epochs is not None and epochs < 1:
        raise ConfigError("epochs = %d" % epochs, "at least one epoch is needed", "pass epochs >= 1")
    classes = check_classes(train_set, "training")
    if len(train_set) < 2:
        raise DataError("the training set has 1 video", "a batch needs at least 2", "add videos")
    if val_set is not None and check_classes(val_set, "validation") != classes:
        raise DataError("the validation set's classes differ from the training set's",
                        "%s vs %s" % (list(val_set.classes)[:5], classes[:5]), "use the same class folders in both sets")
    if num_classes is not None and num_classes != len(classes):
        raise ConfigError("the model has %d classes, the training set %d" % (num_classes, len(classes)), None,
                          "set num_classes to the number of class folders")
    return classes


def check_classes(dataset, name: str) -> List[str]:
    try:
        classes = list(dataset.classes)
        n = len(dataset)
    except (AttributeError, TypeError) as e:
        raise DataError("the %s set is not a video data set" % name, str(e),
                        "pass an object with .classes, len() and [i] -> (frames, label), e.g. edgevid.data.VideoFolder") from e
    if n == 0:
        raise DataError("the %s set is empty" % name, None, "add videos to it")
    return classes


# --------------------------------------------------------------------------------------------------
# fingerprints for the feature cache
def module_fingerprint(module: nn.Module) -> str:
    """sha256 of a module's state dict (names, dtypes, shapes and bytes of every parameter and buffer)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(("%s|%s|%s\n" % (name, t.dtype, tuple(t.shape))).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _file_list(dataset) -> Optional[List[Tuple[str, Any]]]:
    for attr in ("samples", "files", "paths", "videos"):
        items = getattr(dataset, attr, None)
        if items is None or callable(items):
            continue
        try:
            items = list(items)
        except TypeError:
            continue
        out = []
        for it in items:
            if isinstance(it, (str, os.PathLike)):
                out.append((str(it), None))
            elif isinstance(it, (tuple, list)) and it and isinstance(it[0], (str, os.PathLike)):
                out.append((str(it[0]), it[1] if len(it) > 1 else None))
            else:
                return None
        if len(out) == len(dataset):
            return out
    return None


def dataset_flow(dataset) -> Optional[Dict[str, Any]]:
    """The flow settings of a data set of optical-flow images (VideoFolder(flow=…), a Subset of one), else None:
    recorded in the checkpoint so that export gives the bundle the same flow (``preprocess.flow``)."""
    flow = getattr(dataset, "flow", None)
    return None if flow is None else flow.to_dict()


def dataset_fingerprint(dataset) -> str:
    """Identity of a data set for the feature cache.

    ``dataset.fingerprint()`` when it has one; else the file list (``samples``/``files``/``paths``/
    ``videos``: paths or (path, label)) with each file's size and modification time, plus classes,
    length, ``num_frames`` and ``fps``; else (no file list) the sha256 of every video's frames and label.
    """
    fn = getattr(dataset, "fingerprint", None)
    if callable(fn):
        return "fingerprint:%s" % (fn(),)
    h = hashlib.sha256()
    h.update(json.dumps({"type": type(dataset).__name__, "classes": list(dataset.classes), "len": len(dataset),
                         "num_frames": getattr(dataset, "num_frames", None), "fps": getattr(dataset, "fps", None),
                         "flow": dataset_flow(dataset)},
                        default=str, sort_keys=True).encode())
    files = _file_list(dataset)
    if files is not None:
        try:
            for path, label in files:
                st = os.stat(path)
                h.update(("%s|%d|%d|%s\n" % (path, st.st_size, st.st_mtime_ns, label)).encode())
            return "files:" + h.hexdigest()
        except OSError:
            log.debug("a listed file cannot be read; fingerprinting the data set by content")
    log.info("the data set lists no files; fingerprinting its %d videos by content", len(dataset))
    for i in range(len(dataset)):
        frames, label = video_item(dataset, i)
        h.update(("%s|%d\n" % (frames.shape, label)).encode())
        h.update(np.ascontiguousarray(frames).tobytes())
    return "content:" + h.hexdigest()


def progress_bar(it, enabled: bool, desc: str):
    if not enabled:
        return it
    from .._optional import require

    return require("tqdm", "progress bars").tqdm(it, desc=desc, leave=False, dynamic_ncols=True)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cache_key(fields: Dict[str, Any]) -> str:
    """sha256 of JSON ``fields`` (what a cached result depends on: data set, preprocessing, weights …)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


class TensorCache:
    """One ``<cache_dir>/<prefix>-<key>.pt`` file of tensors (``cache_dir=None``: no caching).

    ``load(parse)`` returns ``parse(saved dict)``, or None when the file is absent, has another key or is damaged
    (``parse`` may raise on inconsistent contents): a cache is recomputed, never trusted. ``save(payload)`` writes
    atomically, with the key. Files load with ``weights_only=True``.
    """

    def __init__(self, cache_dir: Any, prefix: str, key: str, what: str):
        self.key, self.what = key, what
        self.path = None if cache_dir is None else Path(cache_dir) / ("%s-%s.pt" % (prefix, key[:32]))

    def load(self, parse: Callable[[Dict[str, Any]], Any]) -> Any:
        if self.path is None or not self.path.is_file():
            return None
        try:
            saved = torch.load(str(self.path), map_location="cpu", weights_only=True)
            if saved.get("key") != self.key:
                raise ValueError("the key in the file differs")
            result = parse(saved)
        except Exception as e:  # any damage at all: recompute
            log.warning("ignoring %s cache %s (%s); recomputing", self.what, self.path,
                        (str(e).splitlines() or [repr(e)])[0])
            return None
        log.info("%s loaded from %s", self.what, self.path)
        return result

    def save(self, payload: Dict[str, Any]) -> None:
        if self.path is None:
            return
        with atomic_path(self.path) as tmp:
            torch.save(dict(payload, key=self.key), str(tmp))
        log.info("%s cached in %s", self.what, self.path)
