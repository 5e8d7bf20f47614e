"""CUDA plumbing for the GPU backends, through pycuda: the device's primary context, page-locked host buffers,
device buffers, streams and events. No TensorRT here.

::

    primary_context(n)      retained once per process (TensorRT works in the primary context; never
                            pycuda.autoinit, which would create a context of its own at import)
    pushed(n)               with-block: that context is current in this thread, popped on leaving
    Pinned(shape, dtype)    a page-locked host array and a device allocation of the same size, with async copies
    DeviceBuffer(nbytes)    device memory only (a tensor that never comes back to the host)
    pinned_zeros(nbytes)    page-locked zeros, uploaded to clear a device buffer (recurrent state at a reset)
    new_stream(), new_event(), record(event, stream), wait(stream, event)

pycuda is imported inside the functions, so this module imports anywhere; without pycuda they raise
DependencyError naming the extra (``pip install "edgevid[jetson]"``). Every call that touches the device
must run with the context current (inside ``pushed``).
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Dict, Iterator, Sequence

from .._optional import require

_lock = threading.Lock()
_contexts: Dict[int, Any] = {}  # device ordinal -> its retained primary context, for the life of the process


def driver() -> Any:
    """The ``pycuda.driver`` module (DependencyError naming the ``jetson`` extra when pycuda is missing)."""
    return require("pycuda.driver", "the TensorRT backend (CUDA through pycuda)")


def primary_context(device: int = 0) -> Any:
    """The primary context of GPU ``device``, retained the first time it is asked for in this process.

    Retained once and kept: releasing it while an engine still lives would tear down the engine's memory."""
    with _lock:
        if device not in _contexts:
            cuda = driver()
            cuda.init()
            _contexts[device] = cuda.Device(device).retain_primary_context()
        return _contexts[device]


@contextlib.contextmanager
def pushed(device: int = 0) -> Iterator[Any]:
    """Make the primary context of ``device`` current in this thread for the block (push on entry, pop on exit).

    Pushes nest: a thread that already has it current pushes it again, which is a cheap stack operation."""
    context = primary_context(device)
    context.push()
    try:
        yield context
    finally:
        driver().Context.pop()


def compute_capability(device: int = 0) -> str:
    """The GPU's SM as digits ("72" for Xavier, "87" for Orin)."""
    major, minor = driver().Device(device).compute_capability()
    return "%d%d" % (major, minor)


def device_name(device: int = 0) -> str:
    return str(driver().Device(device).name())


def pinned_zeros(nbytes: int) -> Any:
    """``nbytes`` page-locked zero bytes (uint8)."""
    import numpy as np

    zeros = driver().pagelocked_empty((max(1, int(nbytes)),), np.uint8)
    zeros[...] = 0
    return zeros


def new_stream() -> Any:
    return driver().Stream()


def new_event() -> Any:
    return driver().Event()


def record(event: Any, stream: Any) -> Any:
    """Record ``event`` on ``stream``: it completes when the work queued there before it has completed."""
    event.record(stream)
    return event


def wait(stream: Any, event: Any) -> None:
    """Work queued on ``stream`` from now on starts only after ``event`` completed (no host wait)."""
    stream.wait_for_event(event)


def copy_dtod(dest: int, src: int, nbytes: int, stream: Any) -> None:
    """Copy ``nbytes`` from device address ``src`` to ``dest``, queued on ``stream``."""
    driver().memcpy_dtod_async(int(dest), int(src), int(nbytes), stream)


class DeviceBuffer:
    """``nbytes`` of device memory, freed by :meth:`free` (or when collected). ``ptr`` is its address."""

    def __init__(self, nbytes: int):
        self.nbytes = int(nbytes)
        self.device = driver().mem_alloc(max(1, self.nbytes))  # a zero-byte allocation is an error in CUDA

    @property
    def ptr(self) -> int:
        return int(self.device)

    def upload(self, host: Any, stream: Any) -> None:
        """Copy the page-locked array ``host`` (``nbytes`` long) into this buffer, queued on ``stream``."""
        driver().memcpy_htod_async(self.device, host, stream)

    def free(self) -> None:
        if self.device is not None:
            self.device.free()
            self.device = None


class Pinned(DeviceBuffer):
    """A tensor with a page-locked host array (``host``) and device memory of the same size.

    Page-locked memory is what lets ``memcpy_*_async`` overlap with kernels; an ordinary numpy array would make
    the copy synchronous. The host array is reused: read it only after the copy's stream was synchronized."""

    def __init__(self, shape: Sequence[int], dtype: Any):
        import numpy as np

        self.host = driver().pagelocked_empty(tuple(int(d) for d in shape), np.dtype(dtype))
        super().__init__(self.host.nbytes)

    def to_device(self, stream: Any) -> None:
        driver().memcpy_htod_async(self.device, self.host, stream)

    def to_host(self, stream: Any) -> None:
        driver().memcpy_dtoh_async(self.host, self.device, stream)

    def free(self) -> None:
        super().free()
        self.host = None
