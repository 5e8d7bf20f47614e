"""The Session contract every backend follows (docs/architecture.md §3).

- Construction is cheap and touches no device or file content.
- ``activate()`` loads and allocates; ``infer(feeds)`` runs; ``deactivate()`` frees. ``with`` does both.
- ``inputs``/``outputs`` are :class:`TensorSpec` lists, valid after activation.
- Arrays returned by ``infer`` may be views into buffers the session reuses: they are valid until
  the next ``infer`` on the same session. Copy what you keep.
- One session is used by one thread at a time; ``thread_context()`` is entered around that thread's work.
- Sessions are opened for a role of a bundle through the registry (registry.py), which picks the
  artifact; the I/O the manifest declares (``expected``) is checked against the graph's own at activation.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, ContextManager, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import FrameError, ManifestError, SessionError
from ..spec import TensorSpec


class Session:
    """Base class: subclasses implement ``_activate``, ``_infer`` and ``_deactivate``."""

    backend = "base"
    ARTIFACT_KIND = "onnx"  # the bundle artifact kind this backend runs (the registry picks it)
    # which form of a reduced-precision graph suits this backend (artifact info "target"): ONNX Runtime's
    # CPU kernels are fast on u8/s8 graphs, TensorRT wants symmetric s8 Q/DQ
    ARTIFACT_TARGET = "cpu"

    def __init__(self, path: Union[str, Path], name: Optional[str] = None, *, precision: str = "fp32",
                 expected: Optional[Tuple[Sequence[TensorSpec], Sequence[TensorSpec]]] = None):
        self.path = Path(path)
        self.name = name or self.path.stem
        self.precision = precision
        self.expected = expected  # (inputs, outputs) the bundle's manifest declares: checked at activation
        self.inputs: List[TensorSpec] = []
        self.outputs: List[TensorSpec] = []
        self.active = False

    def describe(self) -> Dict[str, Any]:
        """What actually backs this session: backend, precision and file (for stats and reports)."""
        return {"backend": self.backend, "precision": self.precision, "artifact": self.path.name}

    def thread_context(self) -> ContextManager[Any]:
        """Entered by each pipeline worker thread around its work with this session (a backend that needs a
        per-thread device context pushes it here, e.g. CUDA); ONNX Runtime needs none."""
        return contextlib.nullcontext()

    # lifecycle -------------------------------------------------------------------------------
    def activate(self) -> "Session":
        if not self.active:
            if not self.path.is_file():
                raise SessionError("cannot open graph %s" % self.path, "the file does not exist",
                                   "check the bundle folder is complete")
            self._activate()
            self.active = True
            if self.expected is not None:
                try:
                    self._check_declared(*self.expected)
                except BaseException:
                    self.deactivate()
                    raise
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
        self.check_active("infer")
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
            self.check_input(spec, feeds[spec.name])

    def check_active(self, call: str) -> None:
        """SessionError when ``call`` (infer, enqueue, …) comes before :meth:`activate`."""
        if not self.active:
            raise SessionError("session %s is not active" % self.name, "%s() was called before activate()" % call,
                               "use 'with session:' or call activate() first")

    def check_input(self, spec: TensorSpec, array: "np.ndarray") -> None:  # noqa: F821
        """FrameError when ``array`` has not the shape and dtype of the input ``spec``."""
        if tuple(array.shape) != tuple(spec.shape) or str(array.dtype) != spec.dtype:
            raise FrameError("input '%s' of %s has shape %s %s" % (spec.name, self.name, tuple(array.shape),
                                                                    array.dtype),
                             "the graph expects %s %s" % (tuple(spec.shape), spec.dtype),
                             "preprocess frames with the bundle's preprocessing spec")

    def _check_declared(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> None:
        """Refuse a graph whose own I/O differs from what bundle.json declares (sha256 protects the graph file,
        not the manifest; buffers are sized from the declared specs). A dynamic graph dimension (-1) matches
        any declared size; the declared static specs then become the session's."""
        for kind, declared, actual in (("input", inputs, self.inputs), ("output", outputs, self.outputs)):
            have = {t.name: t for t in actual}
            if sorted(t.name for t in declared) != sorted(have):
                raise ManifestError("bundle.json declares %ss %s for %s, the graph has %s"
                                    % (kind, sorted(t.name for t in declared), self.name, sorted(have)),
                                    "the manifest and the graph file disagree", "re-export the bundle")
            for spec in declared:
                got = have[spec.name]
                same_shape = len(got.shape) == len(spec.shape) and all(
                    g in (-1, d) for g, d in zip(got.shape, spec.shape))
                if not same_shape or got.dtype != spec.dtype:
                    raise ManifestError("bundle.json declares %s '%s' of %s as %s %s, the graph has %s %s"
                                        % (kind, spec.name, self.name, list(spec.shape), spec.dtype,
                                           list(got.shape), got.dtype),
                                        "the manifest and the graph file disagree", "re-export the bundle")
        order_in = [t.name for t in self.inputs]
        order_out = [t.name for t in self.outputs]
        by_in, by_out = {t.name: t for t in inputs}, {t.name: t for t in outputs}
        self.inputs = [by_in[n] for n in order_in]
        self.outputs = [by_out[n] for n in order_out]

    # for subclasses ---------------------------------------------------------------------------
    def _activate(self) -> None:
        raise NotImplementedError

    def _infer(self, feeds):
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError


