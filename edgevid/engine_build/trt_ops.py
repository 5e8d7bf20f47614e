"""The TensorRT calls of ``edgevid build`` that only a build makes: parse, configure, build, inspect, time.
Everything deciding *what* to build lives in plan.py and is tested without TensorRT; this module runs only on a
device (tests marked ``trt``). What a build shares with running engines is the backend's, never copied here
(backends/trt.py, backends/cuda.py): the tensorrt module, the process's one logger (with the errors it
collects for the build's reports), deserializing an engine, the CUDA context, device buffers, and the
TrtSession an engine is timed through.

One code path serves TensorRT 8.5 to 11: members that some versions lack are reached with getattr/hasattr,
never by comparing version strings (tensorrt-facts.md §5): ``EXPLICIT_BATCH`` where the network needs it
(8.x), ``STRONGLY_TYPED`` where a plan asks for it (10 on), ``BuilderFlag.FP16/INT8`` and
``int8_calibrator`` only where they exist (gone in 11), ``progress_monitor`` where it exists (10 on).
Classes deriving from TensorRT's (calibrator, progress monitor) are made by factory functions at call time,
so this module imports without TensorRT.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..backends import cuda
from ..backends.trt import TrtSession, deserialize, logger
from ..errors import BuildError
from ..spec import TensorSpec
from .failures import build_failure, parse_failure
from .plan import Caps, RolePlan


def caps_of(trt: Any) -> Caps:
    """What this TensorRT offers, read from its bindings."""
    kinds = trt.NetworkDefinitionCreationFlag
    typed = hasattr(kinds, "STRONGLY_TYPED")
    return Caps(precision_flags=hasattr(trt.BuilderFlag, "FP16"),
                calibrators=hasattr(trt, "IInt8EntropyCalibrator2") and hasattr(trt.IBuilderConfig, "int8_calibrator"),
                strongly_typed=typed,
                explicit_batch=hasattr(kinds, "EXPLICIT_BATCH") and not typed)  # 10 on: always explicit batch


@dataclass
class Built:
    engine: bytes
    timing_cache: bytes
    layer_info: Optional[str]  # the engine inspector's JSON (None where there is no inspector)
    seconds: float
    log_messages: List[str]


# ---------------------------------------------------------------------------------------- helper classes

def make_progress_monitor(trt: Any, report: Callable[[str], None]) -> Optional[Any]:
    """An IProgressMonitor reporting each build phase (TensorRT 10 on), or None where there is none."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class Monitor(base):
        def __init__(self) -> None:
            super().__init__()
            self.depth: Dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: Optional[str], num_steps: int) -> None:
            depth = self.depth.get(parent_phase, -1) + 1 if parent_phase else 0
            self.depth[phase_name] = depth
            if depth <= 1:  # deeper phases are per tactic: too many lines to be progress
                report("%s%s (%d steps)" % ("  " * (depth + 1), phase_name, num_steps))

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            self.depth.pop(phase_name, None)

    return Monitor()


def make_calibrator(trt: Any, algorithm: str, cache: Optional[bytes], feeds: Optional[Mapping[str, Any]]) -> Any:
    """An implicit-INT8 calibrator (TensorRT 8.x/10.x): from a stored cache (``cache``; get_batch gives nothing,
    so TensorRT must use the cache) or from stored feeds (``feeds`` {input: [N, …]}, copied to the GPU one
    sample at a time through page-locked buffers, backends/cuda.py; the build must then run with the CUDA
    context current, ``cuda.pushed``, and call ``release()`` before leaving it). ``algorithm`` is the cache's
    calibrator tag: the class must match it or TensorRT discards the cache (tensorrt-facts.md §2)."""
    name = "IInt8MinMaxCalibrator" if algorithm == "MinMaxCalibration" else "IInt8EntropyCalibrator2"
    base = getattr(trt, name, None)
    if base is None:
        raise BuildError("this TensorRT has no %s" % name, "implicit INT8 calibration was removed in TensorRT 11",
                         "build INT8 from the Q/DQ graph: --calibration qdq")

    class Calibrator(base):
        def __init__(self) -> None:
            super().__init__()
            self.index = 0
            self.count = 0 if feeds is None else min(len(v) for v in feeds.values())
            self.buffers: Dict[str, cuda.Pinned] = {}
            self.stream: Any = None
            self.written: Optional[bytes] = None

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: Sequence[str]) -> Optional[List[int]]:
            if feeds is None or self.index >= self.count:
                return None
            self.stream = self.stream or cuda.new_stream()
            for n in names:
                sample = feeds[n][self.index:self.index + 1]  # one sample
                if n not in self.buffers:
                    self.buffers[n] = cuda.Pinned(sample.shape, sample.dtype)
                self.buffers[n].host[...] = sample
                self.buffers[n].to_device(self.stream)
            self.stream.synchronize()  # TensorRT reads the buffers once get_batch returns
            self.index += 1
            return [self.buffers[n].ptr for n in names]

        def read_calibration_cache(self) -> Optional[bytes]:
            return cache

        def write_calibration_cache(self, data: Any) -> None:
            self.written = bytes(data)

        def release(self) -> None:
            """Free the GPU buffers while the context that made them is still current."""
            for buffer in self.buffers.values():
                buffer.free()
            self.buffers.clear()
            self.stream = None

    return Calibrator()


# ------------------------------------------------------------------------------------------------ build

def _network_flags(trt: Any, item: RolePlan) -> int:
    kinds = trt.NetworkDefinitionCreationFlag
    if item.strongly_typed:
        typed = getattr(kinds, "STRONGLY_TYPED", None)  # absent before 10; plan.py asks only where caps_of found it
        if typed is None:
            raise BuildError("this TensorRT cannot make a strongly typed network", "the build plan was made for "
                             "another TensorRT", "report this: plan.py chooses it from caps_of(tensorrt)")
        return 1 << int(typed)
    explicit = getattr(kinds, "EXPLICIT_BATCH", None)
    if explicit is not None and not hasattr(kinds, "STRONGLY_TYPED"):
        return 1 << int(explicit)  # 8.x: the ONNX parser needs an explicit-batch network
    return 0


def _parser_errors(parser: Any) -> List[Dict[str, Any]]:
    found = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)
        entry = {"node": error.node(), "desc": error.desc(), "code": str(error.code())}
        for key, member in (("node_name", "node_name"), ("operator", "node_operator")):  # 10 on
            read = getattr(error, member, None)
            if read is not None:
                entry[key] = read()
        found.append(entry)
    return found


def _flag(trt: Any, name: str) -> Any:
    flag = getattr(trt.BuilderFlag, name, None)
    if flag is None:
        raise BuildError("this TensorRT has no builder flag %s" % name, "the build plan was made for another "
                         "TensorRT", "report this: plan.py chooses flags from caps_of(tensorrt)")
    return flag


def _configure(trt: Any, config: Any, item: RolePlan, timing_cache: bytes, calibrator: Any,
               monitor: Any) -> None:
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(item.workspace_mib) << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # the inspector then lists each layer's types
    for name in item.flags:
        config.set_flag(_flag(trt, name))
    tf32 = getattr(trt.BuilderFlag, "TF32", None)
    if item.precision == "fp32" and tf32 is not None:
        config.clear_flag(tf32)  # on by default on Ampere+ (Orin): an FP32 engine computes in FP32
    if item.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(item.dla_core)
    config.set_timing_cache(config.create_timing_cache(timing_cache or b""), False)
    if calibrator is not None:
        # by name: absent in 11, where plan.py refuses implicit calibration before anything is built
        setattr(config, "int8_calibrator", calibrator)  # noqa: B010
    if monitor is not None and hasattr(config, "progress_monitor"):
        setattr(config, "progress_monitor", monitor)  # noqa: B010  (by name: absent before 10)


def make_engine(trt: Any, item: RolePlan, onnx_bytes: bytes, *, timing_cache: bytes = b"", calibrator: Any = None,
                 progress: Optional[Callable[[str], None]] = None) -> Built:
    """Parse ``onnx_bytes``, build ``item``'s engine, read its layers back. BuildError with the parser's errors
    (each with its node) or the errors TensorRT logged meanwhile (the backend's logger collects them)."""
    with logger(trt).collecting() as errors:
        builder = trt.Builder(logger(trt))
        network = builder.create_network(_network_flags(trt, item))
        parser = trt.OnnxParser(network, logger(trt))
        if not parser.parse(onnx_bytes):
            raise parse_failure(item.role, item.source, _parser_errors(parser))
        config = builder.create_builder_config()
        monitor = make_progress_monitor(trt, progress) if progress else None
        _configure(trt, config, item, timing_cache, calibrator, monitor)
        started = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        seconds = time.perf_counter() - started
        if serialized is None:
            raise build_failure(item.role, item.precision, errors)
        engine = bytes(serialized)
        cache = bytes(config.get_timing_cache().serialize())
    runtime, deserialized = deserialize(trt, engine, item.engine, item.dla_core)
    info = layer_information(trt, deserialized)
    del deserialized, runtime  # the engine before its runtime
    return Built(engine, cache, info, seconds, list(errors))


def layer_information(trt: Any, engine: Any) -> Optional[str]:
    """The engine inspector's JSON of every layer (None where this TensorRT has no inspector)."""
    create = getattr(engine, "create_engine_inspector", None)
    if create is None:
        return None
    return create().get_engine_information(trt.LayerInformationFormat.JSON)


# ----------------------------------------------------------------------------------------------- timing

def time_engine(path: Union[str, Path], name: str, expected: Tuple[Sequence[TensorSpec], Sequence[TensorSpec]], *,
                dla_core: Optional[int] = None, runs: int = 50, warmup: int = 10) -> float:
    """Median milliseconds of one inference of the engine file ``path``, run as the runtime runs it: a TrtSession
    with the I/O the bundle declares (``expected``: dynamic sizes come from it, and an engine whose I/O differs
    is refused as at a run). The inputs are zeros (these graphs' cost does not depend on values), copied once;
    each timed run is one ``enqueue`` on those device buffers and a stream sync."""
    import numpy as np

    session = TrtSession(path, name, dla_core=dla_core, expected=expected)
    with session, session.thread_context():
        session.infer({t.name: np.zeros(t.shape, t.dtype) for t in session.inputs})
        resident = {t.name: session.device_ptr(t.name) for t in session.inputs}  # the zeros, already there
        times = []
        for i in range(warmup + runs):
            started = time.perf_counter()
            session.enqueue(device=resident)
            session.stream.synchronize()
            if i >= warmup:
                times.append((time.perf_counter() - started) * 1000.0)
    return float(statistics.median(times))
