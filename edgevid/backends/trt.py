"""TensorRT session: one serialized engine of a bundle role, run through pycuda (cuda.py); and the TensorRT
plumbing every user of TensorRT in edgevid shares (the runtime here, ``edgevid build`` in engine_build/):

::

    tensorrt()          the module (DependencyError naming JetPack's python3-libnvinfer)
    logger(trt)         the process's one TensorRT logger: messages to edgevid's log; ``collecting()`` keeps
                        the errors logged meanwhile (for the errors a build reports)
    deserialize(...)    (runtime, engine) of serialized bytes, or EngineMismatchError with TensorRT's errors
    current_device()    the engines.Device engines are built and selected for
    TrtSession          per engine:

    activate    deserialize(file) ─► execution context
                per I/O tensor, by name: a page-locked host array + device memory, bound with set_tensor_address
    infer       host ─H2D─► inputs ─ execute_async_v3(stream) ─► outputs ─D2H─► host; synchronize
    enqueue     the same without the wait, and with any tensor bound to device memory elsewhere (another
                session's output, a recurrent state buffer): the device-resident plans of runtime/device/

Only the name-based I/O API is used (``num_io_tensors``, ``get_tensor_name/mode/shape/dtype``,
``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``): it exists from TensorRT 8.5 to 11, so one
code path serves JetPack 5 and 6. Members a version lacks are feature-detected with ``getattr``; versions are
never compared as strings. tensorrt and pycuda are imported when a session activates, never at module import;
the logger class derives from ``trt.ILogger`` and is therefore made when the logger is first asked for.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .._optional import require
from ..errors import EngineMismatchError, SessionError
from ..log import get_logger
from ..spec import TensorSpec
from . import cuda
from .base import Session
from .engines import Device

log = get_logger(__name__)
MAX_LOG_LINES = 8  # TensorRT errors quoted in an error message (the last ones: the cause is usually last)
_logger_lock = threading.Lock()
_loggers: Dict[str, Any] = {}

# TensorRT data types by name -> numpy dtype; INT64 and BF16 exist from 10.0 only, hence looked up by name
_DTYPES = {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32", "INT64": "int64",
           "BOOL": "bool", "UINT8": "uint8"}


def tensorrt(purpose: str = "the TensorRT backend") -> Any:
    """The ``tensorrt`` module (DependencyError naming JetPack's python3-libnvinfer when it is missing; it says
    that ``purpose`` needs it)."""
    return require("tensorrt", purpose)


def logger(trt: Any) -> Any:
    """The one TensorRT logger of the process (TensorRT expects the same logger for every runtime and builder).

    It passes errors and warnings to edgevid's log (the rest at debug level), and while a ``collecting()``
    block is open it also keeps the error messages, which is how a build or a load quotes TensorRT's reasons."""
    with _logger_lock:
        if "logger" not in _loggers:
            _loggers["logger"] = _logger_class(trt)()
        return _loggers["logger"]


def _logger_class(trt: Any) -> Any:
    errors = (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR)

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            super().__init__()
            self._lock = threading.Lock()
            self._collecting: Dict[int, List[str]] = {}
            self._tokens = itertools.count()

        def log(self, severity: Any, msg: str) -> None:
            if severity in errors:
                with self._lock:
                    for kept in self._collecting.values():
                        kept.append(str(msg))
                log.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.WARNING:
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

        @contextlib.contextmanager
        def collecting(self) -> Iterator[List[str]]:
            """The error messages TensorRT logs during the block (from every thread), in a list."""
            kept: List[str] = []
            with self._lock:
                token = next(self._tokens)
                self._collecting[token] = kept
            try:
                yield kept
            finally:
                with self._lock:
                    del self._collecting[token]

    return Logger


def deserialize(trt: Any, data: bytes, what: str, dla_core: Optional[int] = None) -> Tuple[Any, Any]:
    """(runtime, engine) of the serialized engine ``data`` (``what``: its file, for messages), on DLA core
    ``dla_core`` where given. Keep the runtime as long as the engine. EngineMismatchError, with the errors TensorRT
    logged, for bytes this TensorRT and GPU cannot load."""
    runtime = trt.Runtime(logger(trt))
    if dla_core is not None:
        runtime.DLA_core = int(dla_core)
    with logger(trt).collecting() as messages:
        try:
            engine = runtime.deserialize_cuda_engine(data)
        except Exception as e:  # some versions raise where others return None
            engine, error = None, e
        else:
            error = None
    if engine is None:
        raise unloadable(what, len(data), messages + ([str(error)] if error else [])) from error
    return runtime, engine


def quoted(messages: Sequence[str]) -> str:
    """The last :data:`MAX_LOG_LINES` of TensorRT's logged ``messages`` on one line ("" for none)."""
    return " | ".join(list(messages)[-MAX_LOG_LINES:])


def unloadable(what: str, nbytes: int, messages: Sequence[str]) -> EngineMismatchError:
    """The error for an engine TensorRT cannot deserialize, quoting the last of TensorRT's ``messages``."""
    shown = quoted(messages)
    return EngineMismatchError(
        "TensorRT cannot load the engine %s (%d bytes)" % (what, nbytes),
        "it is truncated or corrupt, or was built by another TensorRT version or for another GPU"
        + (" (TensorRT: %s)" % shown if shown else ""),
        "rebuild it on this device: edgevid build BUNDLE --force")


@functools.lru_cache(maxsize=None)
def current_device(device: int = 0) -> Device:
    """What engines on this machine are tied to: TensorRT's version, the GPU's SM and DLA cores, its name."""
    trt = tensorrt()
    with cuda.pushed(device):
        sm, name = cuda.compute_capability(device), cuda.device_name(device)
        # the runtime's count, not the builder's: a Builder reserves builder resources a run never needs
        cores = trt.Runtime(logger(trt)).num_DLA_cores
    return Device(str(trt.__version__), sm, int(cores), name)


def numpy_dtype(trt: Any, data_type: Any) -> str:
    """The numpy dtype name of a ``trt.DataType`` member (SessionError for a type numpy has no array of)."""
    for member, dtype in _DTYPES.items():
        if getattr(trt.DataType, member, None) == data_type:
            return dtype
    raise SessionError("an engine tensor has TensorRT type %s" % (data_type,),
                       "the runtime exchanges float32/float16/int8/int32/int64/bool/uint8 tensors",
                       "rebuild the engine from the bundle's ONNX with edgevid build")


class TrtSession(Session):
    """One TensorRT engine on GPU ``device``, with its own CUDA stream.

    ``threads`` and ``spin`` are the CPU thread-pool settings the runtime gives every session (threads.py); an
    engine runs on the GPU and has no such pool, so they are accepted and have no effect. ``dla_core``: the DLA
    core an engine built for the DLA runs on (None: a GPU engine).
    Returned arrays are the session's page-locked host buffers: valid until the next run, copy what you keep.
    """

    backend = "trt"
    ARTIFACT_KIND = "engine"
    ARTIFACT_TARGET = "trt"

    def __init__(self, path: Union[str, Path], name: Optional[str] = None, *, device: int = 0,
                 dla_core: Optional[int] = None, threads: Optional[int] = None, spin: Optional[str] = None,
                 **contract: Any):
        super().__init__(path, name, **contract)
        self.device = int(device)
        self.dla_core = dla_core
        self.stream: Any = None
        self.buffers: Dict[str, cuda.Pinned] = {}
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._copied: Any = None  # recorded after the last run's host-to-device copies

    def thread_context(self):
        return cuda.pushed(self.device)

    # lifecycle ---------------------------------------------------------------------------------
    def _activate(self) -> None:
        trt = tensorrt()
        with cuda.pushed(self.device):
            try:
                self._load(trt)
            except BaseException:
                self._release()
                raise

    def _load(self, trt: Any) -> None:
        self._runtime, self._engine = deserialize(trt, self.path.read_bytes(), str(self.path), self.dla_core)
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise SessionError("TensorRT cannot create an execution context for %s" % self.path,
                               "the GPU is out of memory for the engine's activations",
                               "close other GPU programs, or rebuild with a smaller workspace")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_input = {n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        for n in names:
            shape = tuple(self._engine.get_tensor_shape(n))
            if is_input[n] and -1 in shape:  # dynamic: run at the size the bundle declares
                self._context.set_input_shape(n, self._declared_shape(n))
        specs = {}
        for n in names:  # output shapes are known once every input shape is set
            specs[n] = TensorSpec(n, tuple(int(d) for d in self._context.get_tensor_shape(n)),
                                  numpy_dtype(trt, self._engine.get_tensor_dtype(n)))
            self.buffers[n] = cuda.Pinned(specs[n].shape, specs[n].dtype)
        self.inputs = [specs[n] for n in names if is_input[n]]
        self.outputs = [specs[n] for n in names if not is_input[n]]
        self.stream = cuda.new_stream()
        self._copied = cuda.new_event()

    def _declared_shape(self, name: str) -> Sequence[int]:
        declared = {t.name: t for t in (self.expected[0] if self.expected else ())}
        if name not in declared or -1 in tuple(declared[name].shape):
            raise SessionError("input %s of engine %s has a dynamic shape" % (name, self.path),
                               "the bundle declares no static size for it", "re-export the bundle with static shapes")
        return tuple(declared[name].shape)

    def _deactivate(self) -> None:
        with cuda.pushed(self.device):
            self._release()

    def _release(self) -> None:
        for buffer in self.buffers.values():
            buffer.free()
        self.buffers = {}
        # the context before the engine that made it, the engine before its runtime (TensorRT's order)
        self._context = None
        self._engine = None
        self._runtime = None
        self.stream = self._copied = None

    # inference ---------------------------------------------------------------------------------
    def _infer(self, feeds):
        # pushed here as well, so callers outside a pipeline worker (verify, tools) need no setup
        with cuda.pushed(self.device):
            out = self.enqueue(host=feeds, fetch=[t.name for t in self.outputs])
            self.stream.synchronize()
        return out

    def device_ptr(self, name: str) -> int:
        """The device address of this session's own buffer for tensor ``name`` (to bind into another session)."""
        if name not in self.buffers:
            raise SessionError("%s has no tensor %s" % (self.name, name), None,
                               "use one of " + ", ".join(sorted(self.buffers)))
        return self.buffers[name].ptr

    def enqueue(self, stream: Any = None, *, host: Mapping[str, Any] = None, device: Mapping[str, int] = None,
                fetch: Sequence[str] = ()) -> Dict[str, Any]:
        """Queue one run on ``stream`` (default: the session's own) and return without waiting.

        ``host`` inputs are copied into the page-locked buffers and on to the device; ``device`` maps input or
        output names to device addresses elsewhere (another session's output, a state buffer) that the run reads
        or writes instead of this session's own buffers; ``fetch`` outputs are copied back. Returns the host
        arrays of ``fetch``: valid once ``stream`` is synchronized, until the next run. Needs the context current.
        """
        host, device = dict(host or {}), dict(device or {})
        self._check_enqueue(host, device, fetch)
        stream = stream or self.stream
        if host:
            # the page-locked inputs are reused: the last run's copies out of them must be done before they change
            self._copied.synchronize()
            for name, array in host.items():
                buffer = self.buffers[name]
                buffer.host[...] = array
                buffer.to_device(stream)
            cuda.record(self._copied, stream)
        for name, buffer in self.buffers.items():
            # bound on every run: the previous one may have pointed a tensor elsewhere
            if not self._context.set_tensor_address(name, int(device.get(name, buffer.ptr))):
                raise SessionError("TensorRT refused the address of %s.%s" % (self.name, name),
                                   "set_tensor_address returned false", "see TensorRT's log above")
        if not self._context.execute_async_v3(stream.handle):
            raise SessionError("TensorRT could not enqueue %s" % self.name, "execute_async_v3 returned false",
                               "see TensorRT's log above")
        for name in fetch:
            self.buffers[name].to_host(stream)
        return {name: self.buffers[name].host for name in fetch}

    def _check_enqueue(self, host: Mapping[str, Any], device: Mapping[str, int], fetch: Sequence[str]) -> None:
        self.check_active("enqueue")
        inputs = {t.name: t for t in self.inputs}
        outputs = {t.name for t in self.outputs}
        unfed = sorted(set(inputs) - set(host) - set(device))
        unknown = sorted((set(host) - set(inputs)) | (set(device) - set(self.buffers)) | (set(fetch) - outputs))
        if unfed or unknown or set(host) & set(device):
            raise SessionError("a run of %s is not wired right" % self.name,
                               "inputs not fed %s, unknown names %s, fed twice %s"
                               % (unfed, unknown, sorted(set(host) & set(device))),
                               "feed each input once, from the host or a device address: " + ", ".join(inputs))
        for name, array in host.items():
            self.check_input(inputs[name], array)
