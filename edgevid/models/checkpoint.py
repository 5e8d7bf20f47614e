"""Reading edgevid checkpoints: the file format, which family a checkpoint is for, strict state loading, and
rebuilding a trained LiteEval or PreRNN model from its checkpoint (SlowFast's own loader, which also reads
foreign weight files, is in slowfast_weights.py). Training writes these files (train/loop.py); export, verify
and the CLI read them through here, so reading a model never needs the training code.
"""
from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from .backbones import few_keys
from .liteeval import LiteEval, LiteEvalConfig, create_liteeval
from .prernn import PreRNNConfig, PreRNNModel, create_prernn

FORMAT = "edgevid.train/1"
PathLike = Union[str, Path]


class Checkpoint(dict):
    """A checkpoint's contents, read once, with the file it came from and the sha256 of its bytes.

    Loaders take it wherever they take a path, so a verb that needs the contents, the hash and a model
    reads the file one time. ``str()`` is the path (for messages)."""

    def __init__(self, data: Mapping[str, Any], path: PathLike, sha256: str):
        super().__init__(data)
        self.path = Path(path)
        self.sha256 = sha256

    def __str__(self) -> str:
        return str(self.path)

    __repr__ = __str__


def open_checkpoint(path: PathLike) -> Checkpoint:
    """Read ``path`` once: its sha256 and ``torch.load(..., weights_only=True)`` of the same bytes.

    CheckpointError for a missing, unreadable or non-dict file."""
    if isinstance(path, Checkpoint):
        return path
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint %s does not exist" % path, None, "check the path")
    try:
        raw = path.read_bytes()
        ckpt = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises pickle, zip, EOF and runtime errors for bad files
        raise CheckpointError("cannot read checkpoint %s" % path, (str(e).splitlines() or [repr(e)])[0],
                              "the file is damaged or not a torch checkpoint; use another one") from e
    if not isinstance(ckpt, dict):
        raise CheckpointError("checkpoint %s holds a %s, not a dict" % (path, type(ckpt).__name__), None,
                              "use a checkpoint written by edgevid")
    return Checkpoint(ckpt, path, hashlib.sha256(raw).hexdigest())


def read_checkpoint(source: Union[PathLike, Checkpoint]) -> Dict[str, Any]:
    """The contents of a checkpoint file (or of one already read: returned as it is)."""
    return open_checkpoint(source)


def checkpoint_family(ckpt: Mapping[str, Any]) -> Optional[str]:
    """The model family an edgevid checkpoint is for (its ``family`` field, or the family its ``format``
    names, e.g. ``edgevid.slowfast/1``); None for files edgevid did not write (PyTorchVideo, state dicts)."""
    fmt = ckpt.get("format")
    if fmt == FORMAT or (fmt is None and isinstance(ckpt.get("family"), str)):
        family = ckpt.get("family")
        return str(family) if family else None
    match = re.match(r"^edgevid\.([a-z][a-z0-9_]*)/\d+$", fmt) if isinstance(fmt, str) else None
    return match.group(1) if match and match.group(1) != "train" else None


def load_model_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: Union[str, Path]) -> None:
    """Strict ``load_state_dict`` that lists missing, unexpected and mis-shaped keys in a CheckpointError."""
    if not isinstance(state, Mapping):
        raise CheckpointError("checkpoint %s holds no model state" % source, None, "use a checkpoint of this model")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted("%s %s vs %s" % (k, tuple(state[k].shape), tuple(own[k].shape)) for k in set(own) & set(state)
                    if hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        why = "; ".join("%s %s" % (what, few_keys(keys)) for what, keys in (
            ("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)) if keys)
        raise CheckpointError("checkpoint %s is for another model" % source, why,
                              "use a checkpoint of the same model and configuration")
    model.load_state_dict(state, strict=True)


def family_config(ckpt: dict, path: Any, family: str, config_cls: Any, title: str, command: str) -> Any:
    """The model configuration (``config_cls``) of a training checkpoint of ``family``; CheckpointError for a
    checkpoint of another family or with an unusable configuration."""
    found = checkpoint_family(ckpt)
    if found is not None and found != family:
        raise CheckpointError("%s is an edgevid %s checkpoint, not a %s one" % (path, found, title),
                              "its family field says %s" % found,
                              "pass a checkpoint written by '%s' (or use the %s commands for this file)"
                              % (command, found))
    saved = (ckpt.get("config") or {}).get("model") if isinstance(ckpt.get("config"), dict) else None
    if found is None or "model" not in ckpt or not isinstance(saved, dict):
        if found is not None:
            why = "it lacks the model weights or their configuration"
        elif ckpt.get("format") == FORMAT:
            why = "it names no model family"
        else:
            why = "it has no edgevid format field (format %r)" % (ckpt.get("format"),)
        raise CheckpointError("%s is not an edgevid %s checkpoint" % (path, title), why,
                              "pass a checkpoint written by '%s'" % command)
    try:
        return config_cls(**saved)
    except (TypeError, ConfigError) as e:
        raise CheckpointError("the model configuration in %s is unusable" % path, str(e),
                              "re-train with this version of edgevid") from e


def load_liteeval_checkpoint(path: PathLike) -> LiteEval:
    """Rebuild the trained :class:`LiteEval` (backbones included) from a checkpoint of :func:`train_liteeval`,
    read with ``weights_only=True``. Returns the model in eval mode on the CPU."""
    ckpt = read_checkpoint(path)
    model = create_liteeval(_checkpoint_config(ckpt, path))
    load_model_state(model, ckpt["model"], path)
    return model.eval()


def _checkpoint_config(ckpt: Dict[str, Any], path) -> LiteEvalConfig:
    return family_config(ckpt, path, "liteeval", LiteEvalConfig, "LiteEval", "edgevid train liteeval")


def load_prernn_checkpoint(path: PathLike) -> Tuple[PreRNNModel, PreRNNConfig]:
    """Rebuild the trained model (eval mode, CPU) and its config from a :func:`train_prernn` checkpoint."""
    ckpt = read_checkpoint(path)
    config = family_config(ckpt, path, "prernn", PreRNNConfig, "PreRNN", "edgevid train prernn")
    model = create_prernn(config)
    load_model_state(model, ckpt["model"], path)
    return model.eval(), config
