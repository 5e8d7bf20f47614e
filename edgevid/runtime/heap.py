"""Keep the memory that loading graphs frees from staying in the process (glibc only; elsewhere a no-op).

Opening an ONNX Runtime session parses the graph and copies its weights, and ``ORT_ENABLE_ALL`` reorders
convolution weights once more; the parse buffers are freed once the session is ready. glibc's malloc
raises its mmap threshold each time a large mmapped block is freed, so the next large buffers come from the
heap, and freed heap memory interleaved with live weights is never handed back: the FP32 LiteEval demo's four
sessions kept ~195 MB resident for ~65 MB of live data. Loading with a fixed 128 kB threshold puts every large
buffer in its own mapping, which ``free`` unmaps; ``malloc_trim`` then returns what the heap holds free.
Measured on that bundle: peak 207 -> 183 MB, resident after loading 195 -> 124 MB (benchmarks/results).
After loading the threshold is fixed at glibc's own dynamic ceiling (32 MB), so per-frame arrays of a few
hundred kB keep reusing heap memory instead of paying an mmap and page faults each frame.
``EDGEVID_KEEP_HEAP=1`` leaves malloc as it is (to compare, or where an allocator misbehaves with it).
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator, Optional

_M_MMAP_THRESHOLD = -3  # malloc.h
_LOADING_THRESHOLD = 128 * 1024  # glibc's initial default
_RUNNING_THRESHOLD = 32 * 1024 * 1024  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit glibc

_libc: Any = None


def _glibc() -> Optional[Any]:
    """The C library when it is glibc (mallopt and malloc_trim present), else None."""
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux") and os.environ.get("EDGEVID_KEEP_HEAP", "") in ("", "0"):
            import ctypes

            try:
                lib = ctypes.CDLL(None)
                if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim"):
                    _libc = lib
            except OSError:
                pass
    return _libc or None


@contextlib.contextmanager
def loading_graphs() -> Iterator[None]:
    """Around opening sessions: large buffers in their own mappings, then the heap trimmed."""
    lib = _glibc()
    if lib is not None:
        lib.mallopt(_M_MMAP_THRESHOLD, _LOADING_THRESHOLD)
    try:
        yield
    finally:
        if lib is not None:
            lib.mallopt(_M_MMAP_THRESHOLD, _RUNNING_THRESHOLD)
            lib.malloc_trim(0)
