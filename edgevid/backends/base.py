"""The Session contract every backend follows (architecture.md §3).

- Construction is cheap and touches no device or file content.
- ``activate()`` loads and allocates; ``infer(feeds)`` runs; ``deactivate()`` frees. ``with`` does both.
- ``inputs``/``outputs`` are :class:`TensorSpec` lists, valid after activation.
- Arrays returned by ``infer`` may be views into buffers the session reuses: they are valid until
  the next ``infer`` on the same session. Copy what you keep.
- One session is used by one thread at a time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

from ..errors import ConfigError, FrameError, SessionError
from ..log import get_logger
from ..spec import TensorSpec

log = get_logger(__name__)

BACKENDS = ("auto", "ort", "trt", "torch")


class Session:
    """Base class: subclasses implement ``_activate``, ``_infer`` and ``_deactivate``."""

    backend = "base"

    def __init__(self, path: Union[str, Path], name: Optional[str] = None):
        self.path = Path(path)
        self.name = name or self.path.stem
        self.inputs: List[TensorSpec] = []
        self.outputs: List[TensorSpec] = []
        self.active = False

    # lifecycle -------------------------------------------------------------------------------
    def activate(self) -> "Session":
        if not self.active:
            if not self.path.is_file():
                raise SessionError("cannot open graph %s" % self.path, "the file does not exist",
                                   "check the bundle folder is complete")
            self._activate()
            self.active = True
        return self

    def deactivate(self) -> None:
        if self.active:
            self._deactivate()
            self.active = False

    def __enter__(self) -> "Session":
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    # inference -------------------------------------------------------------------------------
    def infer(self, feeds: Mapping[str, "np.ndarray"]) -> Dict[str, "np.ndarray"]:  # noqa: F821
        """Run once. ``feeds`` maps every input name to an array of its spec's shape and dtype."""
        if not self.active:
            raise SessionError("session %s is not active" % self.name, "infer() was called before activate()",
                               "use 'with session:' or call activate() first")
        self.check_feeds(feeds)
        return self._infer(feeds)

    def check_feeds(self, feeds: Mapping[str, "np.ndarray"]) -> None:  # noqa: F821
        """Refuse missing, unknown or wrongly shaped inputs with a message that names them."""
        names = {t.name for t in self.inputs}
        missing = names - set(feeds)
        unknown = set(feeds) - names
        if missing or unknown:
            raise SessionError("feeds for %s do not match its inputs" % self.name,
                               "missing %s, unknown %s" % (sorted(missing), sorted(unknown)),
                               "feed exactly: " + ", ".join(sorted(names)))
        for spec in self.inputs:
            array = feeds[spec.name]
            if tuple(array.shape) != tuple(spec.shape) or str(array.dtype) != spec.dtype:
                raise FrameError("input '%s' of %s has shape %s %s" % (spec.name, self.name, tuple(array.shape),
                                                                        array.dtype),
                                 "the graph expects %s %s" % (tuple(spec.shape), spec.dtype),
                                 "preprocess frames with the bundle's preprocessing spec")

    # for subclasses ---------------------------------------------------------------------------
    def _activate(self) -> None:
        raise NotImplementedError

    def _infer(self, feeds):
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError


def open_session(path: Union[str, Path], backend: str = "auto", name: Optional[str] = None, **options) -> Session:
    """A (not yet active) session for one graph. ``auto`` picks TensorRT when available, else ONNX Runtime.

    An explicitly named backend that cannot load is an error, never a silent fallback.
    """
    if backend not in BACKENDS:
        raise ConfigError("unknown backend '%s'" % backend, None, "choose one of " + ", ".join(BACKENDS))
    if backend == "auto":
        backend = _auto_backend()
    if backend == "ort":
        from .ort import OrtSession
        return OrtSession(path, name=name, **options)
    raise ConfigError("backend '%s' is not available in this edgevid yet" % backend, None,
                      "use --backend ort (ONNX Runtime)")


def _auto_backend() -> str:
    from .._optional import available
    from ..log import once
    import logging

    choice = "ort"
    once(log, logging.INFO, "backend auto: using %s" % {"ort": "ONNX Runtime (CPU)"}[choice])
    if not available("onnxruntime"):
        from .._optional import require
        require("onnxruntime", "the ONNX Runtime backend")
    return choice
