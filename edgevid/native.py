"""libedgevid_preproc through ctypes (native/preproc/include/edgevid_preproc.h): found, loaded, checked, called.

The library is built with CMake (cmake/README.md), never by pip: ``cmake -S cmake -B build/native && cmake
--build build/native && cmake --install build/native`` puts it in ``edgevid/_native/``; ``jetson/install.sh``
does that on a Jetson. ``EDGEVID_PREPROC_LIB`` names another file. Without it, GPU preprocessing is unavailable
and frames are prepared on the CPU (edgevid/preprocess.py), which is also the reference the library is held to.

Only ctypes and numpy here, imported by the runtime on any device. The ``host_*`` functions run the library's
arithmetic on host arrays (what the tests compare with OpenCV); :class:`Library` also exposes the CUDA entry
points on raw device pointers, which runtime/device/preprocess.py drives.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .errors import BuildError, ConfigError, DependencyError, FrameError, SessionError

ABI_VERSION = 1
LIB_NAME = "libedgevid_preproc.so"
ENV = "EDGEVID_PREPROC_LIB"
BUILD = ("build it with CMake: cmake -S cmake -B build/native && cmake --build build/native && cmake --install "
         "build/native (cmake/README.md; on a Jetson jetson/install.sh does it), or set %s to the built file" % ENV)

FORMATS = {"bgr": 0, "rgb": 1, "nv12": 2}
DTYPES = {"float32": 0, "float16": 1}
OK, ERR_ARGUMENT, ERR_FRAME, ERR_CUDA, ERR_NO_KERNEL, ERR_CONTEXT = range(6)


class Frame(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
                ("data", ctypes.c_void_p), ("pitch", ctypes.c_int), ("uv", ctypes.c_void_p),
                ("uv_pitch", ctypes.c_int)]


class Geometry(ctypes.Structure):
    _fields_ = [("resize_short", ctypes.c_int), ("crop", ctypes.c_int), ("to_rgb", ctypes.c_int)]


_FLOAT3 = ctypes.c_float * 3
_SIGNATURES = {  # name: (result, argument types), as in the header
    "evp_abi_version": (ctypes.c_int, []),
    "evp_status_string": (ctypes.c_char_p, [ctypes.c_int]),
    "evp_last_error": (ctypes.c_char_p, []),
    "evp_built_archs": (ctypes.c_char_p, []),
    "evp_geometry_of": (ctypes.c_int, [ctypes.c_int, ctypes.c_int, ctypes.POINTER(Geometry)]
                        + [ctypes.POINTER(ctypes.c_int)] * 4),
    "evp_check_device": (ctypes.c_int, [ctypes.POINTER(ctypes.c_int)]),
    "evp_crop": (ctypes.c_int, [ctypes.POINTER(Frame), ctypes.POINTER(Geometry), ctypes.c_void_p, ctypes.c_void_p]),
    "evp_tensor": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, _FLOAT3, _FLOAT3, ctypes.c_int,
                                  ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]),
    "evp_host_crop": (ctypes.c_int, [ctypes.POINTER(Frame), ctypes.POINTER(Geometry), ctypes.c_void_p]),
    "evp_host_tensor": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, _FLOAT3, _FLOAT3, ctypes.c_int,
                                       ctypes.c_void_p, ctypes.c_int64]),
}


def candidates() -> List[Path]:
    """Where the library is looked for, in order: $EDGEVID_PREPROC_LIB, then edgevid/_native/."""
    found = [Path(os.environ[ENV])] if os.environ.get(ENV) else []
    return found + [Path(__file__).resolve().parent / "_native" / LIB_NAME]


def find() -> Optional[Path]:
    """The first existing candidate, or None."""
    return next((p for p in candidates() if p.is_file()), None)


_loaded: dict = {}


def load(path: Optional[Any] = None) -> "Library":
    """The library at ``path`` (default: :func:`find`), loaded once per file; DependencyError saying how to build
    it when there is none, and when its ABI is not this edgevid's."""
    where = Path(path) if path is not None else find()
    if where is None or not where.is_file():
        looked = [str(path)] if path is not None else [str(p) for p in candidates()]
        raise DependencyError("GPU preprocessing needs %s, which is not built" % LIB_NAME,
                              "looked for %s" % ", ".join(looked), BUILD)
    key = str(where.resolve())
    if key not in _loaded:
        _loaded[key] = Library(where)
    return _loaded[key]


class Library:
    """One loaded libedgevid_preproc: its facts (``abi``, ``archs``, ``has_cuda``) and checked calls."""

    def __init__(self, path: Path):
        try:
            self._lib = ctypes.CDLL(str(path))
        except OSError as e:
            raise DependencyError("cannot load %s" % path, str(e), BUILD) from e
        missing = [name for name in _SIGNATURES if not hasattr(self._lib, name)]
        if missing:
            raise DependencyError("%s lacks %s" % (path, ", ".join(missing)), "it is not this edgevid's library",
                                  "rebuild it from this checkout: " + BUILD)
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(self._lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        self.path = path
        self.abi = int(self._lib.evp_abi_version())
        if self.abi != ABI_VERSION:
            raise DependencyError("%s has ABI version %d; this edgevid needs %d" % (path, self.abi, ABI_VERSION),
                                  "it was built from another edgevid", "rebuild it from this checkout: " + BUILD)
        self.archs = self._lib.evp_built_archs().decode()
        self.has_cuda = self.archs != "host"

    def describe(self) -> str:
        return "%s (ABI %d, %s)" % (self.path.name, self.abi, "SM " + self.archs if self.has_cuda else "host only")

    def check(self, status: int, what: str) -> None:
        """Raise the EdgevidError for a non-zero status of the call ``what``."""
        if status == OK:
            return
        detail = self._lib.evp_last_error().decode() or self._lib.evp_status_string(status).decode()
        if status == ERR_FRAME:
            raise FrameError("%s refused the frame" % what, detail, "pass H×W×3 uint8 BGR/RGB frames, or NV12 "
                             "with an even width and height, of at least 16×16 pixels")
        if status == ERR_NO_KERNEL:
            raise BuildError("%s has no kernels for this GPU" % self.path.name, detail,
                             "rebuild it for this GPU's SM: cmake -S cmake -B build/native "
                             "-DCMAKE_CUDA_ARCHITECTURES=<sm, e.g. 72 or 87> (cmake/README.md)")
        if status == ERR_CONTEXT:
            raise SessionError("%s was given memory or a stream of another CUDA context" % what, detail,
                               "run GPU preprocessing in the context of the engines it feeds (a pushed context)")
        if status == ERR_CUDA:
            raise SessionError("%s failed in CUDA" % what, detail,
                               "check the device with jetson/check-device.sh; " + BUILD if not self.has_cuda else
                               "check the device with jetson/check-device.sh")
        raise ConfigError("%s was called wrongly" % what, detail, "a bug in edgevid's caller: report it")

    # geometry and the host reference --------------------------------------------------------------------
    def geometry(self, width: int, height: int, spec: Any) -> Tuple[int, int, int, int]:
        """(resized width, resized height, top, left) of a width×height frame under ``spec``."""
        out = [ctypes.c_int() for _ in range(4)]
        self.check(self._lib.evp_geometry_of(width, height, ctypes.byref(geometry(spec)),
                                              *[ctypes.byref(o) for o in out]), "evp_geometry_of")
        return tuple(o.value for o in out)  # type: ignore[return-value]

    def host_crop(self, image: np.ndarray, spec: Any, fmt: str = "bgr") -> np.ndarray:
        """The crop×crop×3 uint8 crop of a host frame (``fmt`` bgr, rgb, or nv12: an (H·3/2)×W array)."""
        described, keep = frame_struct(image, fmt)
        crop = np.empty((spec.crop, spec.crop, 3), np.uint8)
        self.check(self._lib.evp_host_crop(ctypes.byref(described), ctypes.byref(geometry(spec)),
                                           crop.ctypes.data), "evp_host_crop")
        del keep
        return crop

    def host_tensor(self, crop: np.ndarray, size: int, spec: Any, dtype: str = "float32") -> np.ndarray:
        """The [1, 3, size, size] input of ``size`` from a :meth:`host_crop`."""
        crop = np.ascontiguousarray(crop, np.uint8)
        out = np.empty((1, 3, size, size), np.dtype(dtype))
        mul, add = affine(spec)
        self.check(self._lib.evp_host_tensor(crop.ctypes.data, crop.shape[0], size, _FLOAT3(*mul), _FLOAT3(*add),
                                             dtype_code(dtype), out.ctypes.data, size * size), "evp_host_tensor")
        return out

    # CUDA entry points on device pointers (runtime/device/preprocess.py) -----------------------------------
    def check_device(self) -> int:
        """The current device's SM (e.g. 72), once a kernel image for it is known to exist."""
        sm = ctypes.c_int(0)
        self.check(self._lib.evp_check_device(ctypes.byref(sm)), "evp_check_device")
        return sm.value

    def crop(self, frame: Frame, spec: Any, crop_ptr: int, stream: int) -> None:
        self.check(self._lib.evp_crop(ctypes.byref(frame), ctypes.byref(geometry(spec)), crop_ptr, stream or None),
                   "evp_crop")

    def tensor(self, crop_ptr: int, spec: Any, size: int, dtype: str, out_ptr: int, channel_stride: int,
               stream: int) -> None:
        mul, add = affine(spec)
        self.check(self._lib.evp_tensor(crop_ptr, spec.crop, size, _FLOAT3(*mul), _FLOAT3(*add), dtype_code(dtype),
                                        out_ptr, channel_stride, stream or None), "evp_tensor")


def affine(spec: Any) -> Tuple[Sequence[float], Sequence[float]]:
    """(mul, add) per channel: ``x · scale/std − mean/std`` as one multiply-add (the CPU path's own rule)."""
    from .preprocess import affine as cpu_affine

    mul, add = cpu_affine(spec)
    return [float(v) for v in mul], [float(v) for v in add]


def geometry(spec: Any) -> Geometry:
    if spec.color not in ("RGB", "BGR"):
        raise ConfigError("preprocessing colour %r" % spec.color, "frames become RGB or BGR crops",
                          "re-export the bundle with color RGB or BGR")
    return Geometry(int(spec.resize_short), int(spec.crop), 1 if spec.color == "RGB" else 0)


def dtype_code(dtype: str) -> int:
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise ConfigError("GPU preprocessing into %s" % name, "engine inputs are float32 or float16",
                          "re-export the bundle with float inputs")
    return DTYPES[name]


def frame_struct(image: np.ndarray, fmt: str, data_ptr: Optional[int] = None) -> Tuple[Frame, Any]:
    """(the evp_frame of a host image, what must stay alive while it is used). ``data_ptr`` puts the same
    layout at another address (the image's copy on the device)."""
    if fmt not in FORMATS:
        raise ConfigError("frame format %r" % fmt, "the library reads BGR, RGB and NV12 frames",
                          "use one of %s" % ", ".join(FORMATS))
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise FrameError("a frame must be a uint8 numpy array", "got %s" % getattr(image, "dtype", type(image)),
                         "pass decoded frames")
    image = np.ascontiguousarray(image)
    base = data_ptr if data_ptr is not None else image.ctypes.data
    if fmt == "nv12":
        if image.ndim != 2 or image.shape[0] % 3:
            raise FrameError("an NV12 frame has shape %s" % (image.shape,), "NV12 is (H·3/2)×W: Y rows, then UV rows",
                             "pass the decoder's NV12 buffer as one 2-D uint8 array")
        height, width = image.shape[0] * 2 // 3, image.shape[1]
        return Frame(FORMATS[fmt], width, height, base, width, base + width * height, width), image
    if image.ndim != 3 or image.shape[2] != 3:
        raise FrameError("a frame has shape %s" % (image.shape,), "frames must be H×W×3",
                         "convert grey or BGRA images with cv2.cvtColor")
    height, width = image.shape[:2]
    return Frame(FORMATS[fmt], width, height, base, width * 3, None, 0), image
