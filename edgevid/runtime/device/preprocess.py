"""Preprocessing on the GPU in a device plan: each frame is uploaded once, then libedgevid_preproc crops it and
writes every engine input the plan binds, on the plan's stream (edgevid/native.py; the arithmetic is the CPU
path's, edgevid/preprocess.py).

:class:`DevicePreprocess` takes the role :data:`ROLE` in a plan: ``outputs`` are the engine inputs it writes
(named as the plan binds them, with those inputs' shapes and dtypes, so the executor sizes their buffers),
``enqueue(stream, host={"frame": image}, device={output: address})`` queues the upload and the kernels and
returns at once. The frame goes through one page-locked staging buffer: before it is rewritten, the previous
upload must be done (an event, as TrtSession does with its inputs).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from ...errors import BuildError, ConfigError, DependencyError
from ...spec import TensorSpec
from ..stats import CPU_PREPROCESS

ROLE = "gpu_preprocess"


class DevicePreprocess:
    """GPU preprocessing of one frame into the engine inputs ``outputs`` (name -> that input's TensorSpec)."""

    backend = "cuda"

    def __init__(self, spec: Any, outputs: Mapping[str, TensorSpec], library: Any, device: int = 0,
                 fmt: str = "bgr"):
        for name, t in outputs.items():
            if len(t.shape) not in (4, 5) or t.shape[1] != 3 or t.shape[-1] != t.shape[-2]:
                raise ConfigError("GPU preprocessing into %s %s" % (name, list(t.shape)),
                                  "it writes [1, 3, S, S] inputs and [1, 3, T, S, S] clip windows",
                                  "run this bundle with preprocess='cpu'")
        self.spec, self.library, self.device, self.fmt = spec, library, device, fmt
        self.inputs: list = []  # the frame is uploaded, never bound: its size is the source's
        self.outputs = [TensorSpec(name, tuple(t.shape), t.dtype) for name, t in outputs.items()]
        self.sm: Optional[int] = None
        self._staging: Any = None
        self._frame: Any = None
        self._crop: Any = None
        self._uploaded: Any = None

    def activate(self) -> "DevicePreprocess":
        """Check the library has kernels for this GPU (BuildError naming its SM otherwise); allocate the crop."""
        from ...backends import cuda

        with cuda.pushed(self.device):
            self.sm = self.library.check_device()
            self._crop = cuda.DeviceBuffer(self.spec.crop * self.spec.crop * 3)
            self._uploaded = cuda.new_event()
        return self

    def describe(self) -> Dict[str, Any]:
        return {"backend": "gpu", "library": self.library.describe(), "sm": self.sm, "format": self.fmt}

    def enqueue(self, stream: Any, *, host: Mapping[str, Any], device: Mapping[str, int],
                fetch: Sequence[str] = ()) -> Dict[str, Any]:
        """Queue the frame's upload, crop and every bound output. A clip window ([1,3,T,S,S]) is written at the
        frame slots in ``host["slots"]``, after the previous frame's crop went into ``host["repeat"]``."""
        from ... import native

        image = np.ascontiguousarray(host["frame"])
        self._write(device, host.get("repeat", ()), stream)  # the previous frame: still the crop
        self._upload(image, stream)
        frame, _ = native.frame_struct(image, self.fmt, data_ptr=self._frame.ptr)
        self.library.crop(frame, self.spec, self._crop.ptr, stream.handle)
        self._write(device, host.get("slots", ()), stream, inputs=True)
        return {}

    def _write(self, device: Mapping[str, int], slots: Sequence[int], stream: Any, inputs: bool = False) -> None:
        """The crop into each bound output: an input whole (when ``inputs``), a clip window at ``slots``."""
        for t in self.outputs:
            if t.name not in device:
                continue
            size = int(t.shape[-1])
            plane = size * size
            if len(t.shape) == 4:
                if inputs:
                    self.library.tensor(self._crop.ptr, self.spec, size, t.dtype, device[t.name], plane, stream.handle)
                continue
            frames, itemsize = int(t.shape[2]), np.dtype(t.dtype).itemsize
            for slot in slots:  # frame slot t of the window: plane t of each channel, channels T planes apart
                self.library.tensor(self._crop.ptr, self.spec, size, t.dtype, device[t.name] + slot * plane * itemsize,
                                    frames * plane, stream.handle)

    def _upload(self, image: np.ndarray, stream: Any) -> None:
        from ...backends import cuda

        self._uploaded.synchronize()  # the previous frame's copy out of the staging buffer is done
        if self._frame is None or self._frame.nbytes < image.nbytes:
            stream.synchronize()  # the last crop kernel may still read the smaller buffer
            self._free_frame()
            self._staging = cuda.pinned_zeros(image.nbytes)
            self._frame = cuda.DeviceBuffer(image.nbytes)
        staged = self._staging[:image.nbytes]
        staged[...] = image.reshape(-1)
        self._frame.upload(staged, stream)
        cuda.record(self._uploaded, stream)

    def _free_frame(self) -> None:
        if self._frame is not None:
            self._frame.free()
        self._frame = self._staging = None

    def deactivate(self) -> None:
        self._free_frame()
        if self._crop is not None:
            self._crop.free()
            self._crop = None


MODES = ("auto", "cpu", "gpu")
CPU = CPU_PREPROCESS


def check_mode(mode: str, backend: str) -> None:
    """ConfigError for a mode that is not one of MODES, or GPU preprocessing asked of a CPU-only backend."""
    if mode not in MODES:
        raise ConfigError("preprocess is %r" % (mode,), "frames are prepared on the CPU, the GPU, or where the "
                          "engines run (auto)", "use preprocess=%s" % " | ".join(MODES))
    if mode == "gpu" and backend not in ("auto", "trt"):
        raise ConfigError("GPU preprocessing asked with the %s backend" % backend, "it feeds TensorRT engines from "
                          "device memory", "use backend='trt', or preprocess='cpu'")


def choose(mode: str, bundle: Any, sessions: Mapping[str, Any], on_device: bool,
           feeds: Mapping[str, str]) -> Optional[DevicePreprocess]:
    """The active DevicePreprocess to use, or None for the CPU path, with the one rule: ``gpu`` when asked and
    possible (an error saying why otherwise), ``auto`` when the engines are on the GPU and the library is built
    with CUDA, ``cpu`` never. ``feeds``: output name -> the role whose (image) input it writes."""
    import logging

    from ... import native
    from ...log import get_logger, once

    if mode == "cpu":
        return None
    if not on_device:
        if mode == "gpu":
            raise ConfigError("GPU preprocessing needs every CNN on a TensorRT engine of one GPU",
                              "these sessions run on %s" % sorted({s.backend for s in sessions.values()}),
                              "run with backend='trt' after edgevid build, or preprocess='cpu'")
        return None
    if native.find() is None and mode == "auto":
        once(get_logger(__name__), logging.INFO, "frames are prepared on the CPU: %s is not built (%s)", native.LIB_NAME,
             native.BUILD)
        return None
    library = native.load()  # mode gpu without the library: DependencyError saying how to build it
    if not library.has_cuda:
        if mode == "auto":
            once(get_logger(__name__), logging.INFO, "frames are prepared on the CPU: %s is a host-only build", library.path)
            return None
        raise DependencyError("%s was built without CUDA" % library.path, "no nvcc was found when it was "
                                     "built", "rebuild it with CUDA: " + native.BUILD)
    outputs = {name: sessions[role].inputs[0] for name, role in feeds.items()}
    device = sessions[next(iter(feeds.values()))].device
    try:
        return DevicePreprocess(bundle.preprocess, outputs, library, device).activate()
    except BuildError as e:  # built for other GPUs: auto keeps streaming, on the CPU, and says how to fix it
        if mode == "gpu":
            raise
        get_logger(__name__).warning("frames are prepared on the CPU: %s", e)
        return None
