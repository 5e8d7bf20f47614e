"""A numpy-only Session (the contract of edgevid/backends/base.py) for tests where the graph maths is not
what is tested: policies, stages, the runtime's session lifecycle.

``NumpySession(fn, inputs, outputs)``: construction is cheap, ``activate`` publishes the TensorSpecs,
``infer`` checks the feeds as every backend does (base class) and returns ``fn(feeds)``, checked against the
output specs, so a helper function that returns the wrong names or shapes fails like a broken graph would.
Counters ``activations``, ``deactivations`` and ``calls`` let a test check the lifecycle.

``numpy_sessions(bundle, fns)`` builds one per role from the bundle's graph specs (not yet active);
``numpy_factory(fns)`` is the same as a ``factory(bundle, role)``. ``StreamRuntime(bundle, sessions=...)``
and the verify functions take either.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from edgevid.backends.base import Session
from edgevid.spec import TensorSpec

from . import tiny_liteeval as tiny

Feeds = Mapping[str, np.ndarray]
GraphFn = Callable[[Feeds], Dict[str, np.ndarray]]


class NumpySession(Session):
    backend = "numpy"

    def __init__(self, fn: GraphFn, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                 name: str = "numpy", path: Optional[Union[str, Path]] = None):
        super().__init__(path if path is not None else "<numpy:%s>" % name, name)
        self.fn = fn
        self.graph_file = path is not None
        self._specs = (list(inputs), list(outputs))
        self.activations = self.deactivations = self.calls = 0

    def activate(self) -> "NumpySession":
        if self.graph_file:  # stands in for a real graph: the file must exist, as for any backend
            return super().activate()
        if not self.active:
            self._activate()
            self.active = True
        return self

    def _activate(self) -> None:
        self.inputs, self.outputs = list(self._specs[0]), list(self._specs[1])
        self.activations += 1

    def _infer(self, feeds: Feeds) -> Dict[str, np.ndarray]:
        self.calls += 1
        out = self.fn(feeds)
        want = {t.name: t for t in self.outputs}
        if set(out) != set(want):
            raise AssertionError("%s returned %s, its outputs are %s" % (self.name, sorted(out), sorted(want)))
        for name, array in out.items():
            spec = want[name]
            if tuple(np.shape(array)) != tuple(spec.shape) or str(np.asarray(array).dtype) != spec.dtype:
                raise AssertionError("%s output %s is %s %s, the spec says %s %s" % (
                    self.name, name, np.shape(array), np.asarray(array).dtype, spec.shape, spec.dtype))
        return dict(out)

    def _deactivate(self) -> None:
        self.deactivations += 1


def session_for(bundle, role: str, fn: GraphFn) -> NumpySession:
    """A NumpySession with the specs (and graph file) of ``role`` in ``bundle``."""
    graph = bundle.graph(role)
    return NumpySession(fn, graph.inputs, graph.outputs, name=role, path=bundle.graph_path(role))


def numpy_sessions(bundle, fns: Mapping[str, GraphFn]) -> Dict[str, NumpySession]:
    """role -> NumpySession (inactive) for every role in ``fns``."""
    return {role: session_for(bundle, role, fn) for role, fn in fns.items()}


def numpy_factory(fns: Mapping[str, GraphFn], made: Optional[list] = None):
    """``factory(bundle, role) -> NumpySession``; every session it makes is appended to ``made``."""
    def factory(bundle, role):
        session = session_for(bundle, role, fns[role])
        if made is not None:
            made.append(session)
        return session

    return factory


def zeros_like_outputs(outputs: Sequence[TensorSpec]) -> Dict[str, np.ndarray]:
    return {t.name: np.zeros(t.shape, t.dtype) for t in outputs}


# --- counting graphs for LiteEval: the state says how many steps ran since the last reset -----------------
class CountingLiteEval:
    """Numpy stand-ins for the four graphs of a tiny_liteeval bundle whose outputs make the policy's decisions visible.

    - ``coarse_step``: h_c_out = h_c_in + 1 (so h_c counts the steps since the last reset), gate_logits from
      ``wants_fine(call)`` (True: [1, 0], fine; False: [0, 1]; or the two logits themselves),
      logits_sync = [steps since reset, 0, fine steps since reset].
    - ``fine_step``: h_f_out = h_f_in + 1 (counts fine steps since reset); logits = [steps since reset, 1, fine
      steps since reset]. The synced h_f/c_f leave the fine state as it was.
    - ``fine_cnn`` counts its calls in ``fine_cnn_calls``: it must run on fine steps only.
    """

    def __init__(self, wants_fine: Callable[[int], Any] = lambda call: True):
        self.wants_fine = wants_fine
        self.coarse_calls = 0
        self.fine_cnn_calls = 0

    def _logits(self, steps, path, fine):
        return np.array([[steps, path, fine]], np.float32)  # tiny.C == 3 classes

    def coarse_cnn(self, feeds):
        return {"feat": np.zeros((1, tiny.COARSE_FEAT), np.float32)}

    def fine_cnn(self, feeds):
        self.fine_cnn_calls += 1
        return {"feat": np.zeros((1, tiny.F), np.float32)}

    def coarse_step(self, feeds):
        call, self.coarse_calls = self.coarse_calls, self.coarse_calls + 1
        h_c = feeds["h_c_in"] + 1.0
        choice = self.wants_fine(call)
        pair = choice if isinstance(choice, tuple) else (1.0, 0.0) if choice else (0.0, 1.0)
        gate = np.array([pair], np.float32)
        steps, fine = float(h_c[0, 0]), float(feeds["h_f_in"][0, 0])
        return {"v_c": np.zeros((1, tiny.PC), np.float32), "h_c_out": h_c, "c_c_out": feeds["c_c_in"].copy(),
                "gate_logits": gate, "h_f_sync": feeds["h_f_in"].copy(), "c_f_sync": feeds["c_f_in"].copy(),
                "logits_sync": self._logits(steps, 0, fine)}

    def fine_step(self, feeds):
        h_f = feeds["h_f_in"] + 1.0
        return {"h_f_out": h_f, "c_f_out": feeds["c_f_in"].copy(), "logits": self._logits(-1, 1, float(h_f[0, 0]))}

    def fns(self) -> Dict[str, GraphFn]:
        return {"coarse_cnn": self.coarse_cnn, "fine_cnn": self.fine_cnn, "coarse_step": self.coarse_step,
                "fine_step": self.fine_step}


# --- a counting PreRNN step: h_out = h_in + 1, so the state says how many steps ran since the last reset -------
def counting_step(feeds):
    """The step graph of a tiny_prernn bundle (any cell) as a counter: logits = [steps since reset, drive[0], 0]."""
    h = feeds["h_in"] + 1.0
    drive = feeds["v"] if "v" in feeds else feeds["u"]
    out = {"h_out": h, "logits": np.array([[h[0, 0], drive[0, 0], 0.0]], np.float32)}
    if "c_in" in feeds:
        out["c_out"] = feeds["c_in"].copy()
    return out
