"""ONNX Runtime session: the embedded default backend, CPU unless told otherwise."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from .._optional import require
from ..errors import ConfigError, SessionError
from ..spec import TensorSpec
from .base import Session

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
              "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool"}

# onnxruntime session config entries (onnxruntime_session_options_config_keys.h) for each ``spin``
_SPIN = {None: {}, "always": {"session.intra_op.allow_spinning": "1"},
         "run": {"session.intra_op.allow_spinning": "1", "session.force_spinning_stop": "1"},
         "never": {"session.intra_op.allow_spinning": "0"}}


# "basic" keeps Q/DQ pairs as they are: a TensorRT-form graph then computes what TensorRT computes, where the
# fused int8 kernels of "all" round differently (on tiny activation scales badly: cosine 0.82 against 0.998)
_OPTIMIZE = {"all": "ORT_ENABLE_ALL", "basic": "ORT_ENABLE_BASIC"}


class OrtSession(Session):
    """One ONNX graph on onnxruntime. ``threads`` bounds intra-op threads (0 = onnxruntime decides).

    ``spin`` is when idle intra-op threads busy-wait for work instead of sleeping: "always"
    (onnxruntime's default, also None), "run" (only while a run is in progress: its operators hand work
    to threads that are awake, and the threads stop when it returns) or "never". Where several sessions
    or stages share the cores, a session's threads spinning after its run slow down everything else
    (the fine CNN 3x on 2 cores, benchmarks/cpu_runtime_bench.py). ``run`` releases the GIL, so sessions
    in different pipeline stages overlap for real.
    """

    backend = "ort"

    def __init__(self, path: Union[str, Path], name: Optional[str] = None, *,
                 providers: Sequence[str] = ("CPUExecutionProvider",), threads: int = 0,
                 spin: Optional[str] = None, optimize: str = "all", **contract):
        super().__init__(path, name, **contract)
        if optimize not in _OPTIMIZE:
            raise ConfigError("optimize is %r" % (optimize,), "onnxruntime optimizes a graph fully or only basically",
                              "use optimize='all' (the default) or 'basic'")
        self.optimize = optimize
        if spin not in _SPIN:
            raise ConfigError("spin is %r" % (spin,), "onnxruntime threads spin always, during a run, or never",
                              "use spin=%s" % " | ".join(repr(k) for k in _SPIN))
        self.providers = list(providers)
        self.threads = threads
        self.spin = spin
        self._session = None
        self._output_names: list = []

    def _activate(self) -> None:
        ort = require("onnxruntime", "the ONNX Runtime backend")
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _OPTIMIZE[self.optimize])
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        for key, value in _SPIN[self.spin].items():
            options.add_session_config_entry(key, value)
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=options, providers=self.providers)
        except Exception as e:  # onnxruntime raises its own exception types for corrupt files and bad providers
            raise SessionError("ONNX Runtime cannot load %s" % self.path, str(e).splitlines()[0] if str(e) else repr(e),
                               "re-export the bundle, or check the providers %s exist" % self.providers) from e
        self.inputs = [_spec(a) for a in self._session.get_inputs()]
        self.outputs = [_spec(a) for a in self._session.get_outputs()]
        self._output_names = [t.name for t in self.outputs]

    def _infer(self, feeds):
        outputs = self._session.run(self._output_names, dict(feeds))
        return dict(zip(self._output_names, outputs))

    def _deactivate(self) -> None:
        self._session = None


def _spec(arg) -> TensorSpec:
    shape = tuple(int(d) if isinstance(d, int) else -1 for d in arg.shape)
    return TensorSpec(arg.name, shape, _ORT_TYPES.get(arg.type, arg.type))
