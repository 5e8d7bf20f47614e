"""One decoded frame (OpenCV BGR uint8, H×W×3) → normalised NCHW float32 inputs at each size.

Geometry follows the bundle's :class:`PreprocessSpec` (docs/models.md §1.3): short side to
``resize_short``, centre crop ``crop``, then each requested square size from that crop
(``cv2.INTER_AREA`` when shrinking, which is OpenCV's antialiased resize). Output arrays are
reused between calls: a :class:`Preprocessor` belongs to one thread, and its results are valid until
its next call (copy what you keep). Training uses the same code, so the model sees on the device
exactly what it saw in training.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ._optional import require
from .errors import FrameError
from .spec import PreprocessSpec


class Preprocessor:
    """Callable: ``pre(frame_bgr) -> {size: array[1, 3, size, size]}`` in reused buffers."""

    def __init__(self, spec: PreprocessSpec):
        self.spec = spec
        self._cv2 = require("cv2", "frame preprocessing")
        self._mul, self._add = affine(spec)
        self._out = {s: np.empty((1, 3, s, s), np.float32) for s in spec.sizes}

    def resize(self, frame: np.ndarray) -> np.ndarray:
        """Resize the short side to ``resize_short`` (never below ``crop``): returns the frame in the
        spec's colour order, uint8. Training takes its random crops from this (same code as the device)."""
        check_frame(frame)
        cv2, spec = self._cv2, self.spec
        h, w = frame.shape[:2]
        scale = spec.resize_short / float(min(h, w))
        nh, nw = max(spec.crop, int(round(h * scale))), max(spec.crop, int(round(w * scale)))
        if (nh, nw) != (h, w):
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            frame = cv2.resize(frame, (nw, nh), interpolation=interp)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if spec.color == "RGB" else np.ascontiguousarray(frame)

    def centre_crop(self, resized: np.ndarray) -> np.ndarray:
        """The centre ``crop``×``crop`` of a frame from :meth:`resize` (a view of its rows and columns)."""
        c = self.spec.crop
        top, left = (resized.shape[0] - c) // 2, (resized.shape[1] - c) // 2
        return resized[top:top + c, left:left + c]

    def crop(self, frame: np.ndarray) -> np.ndarray:
        """Resize the short side and centre-crop: returns a crop×crop×3 uint8 array (RGB by default)."""
        return np.ascontiguousarray(self.centre_crop(self.resize(frame)))

    def normalize(self, images: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """uint8 images [..., H, W, 3] → float32 [..., 3, H, W]: ``x · scale/std − mean/std`` per channel."""
        if out is None:
            out = np.empty(images.shape[:-3] + (3,) + images.shape[-3:-1], np.float32)
        np.multiply(np.moveaxis(images, -1, -3), self._mul[:, None, None], out=out, casting="unsafe")
        out += self._add[:, None, None]
        return out

    def input(self, crop: np.ndarray, size: int) -> np.ndarray:
        """The [1, 3, size, size] input of one of the spec's sizes from a :meth:`crop` (a reused buffer)."""
        img = crop if size == self.spec.crop else self._cv2.resize(
            crop, (size, size), interpolation=self._cv2.INTER_AREA if size < self.spec.crop else self._cv2.INTER_LINEAR)
        out = self._out[size]
        self.normalize(img, out=out[0])  # written into the reused buffer
        return out

    def __call__(self, frame: np.ndarray) -> Dict[int, np.ndarray]:
        crop = self.crop(frame)
        for size in self._out:
            self.input(crop, size)
        return self._out


def affine(spec: PreprocessSpec):
    """(mul, add), float32 per channel: scale, mean and std folded into one multiply-add, ``x · mul + add``
    (the one rule of the CPU path and the GPU library)."""
    std = np.asarray(spec.std, np.float32)
    return (spec.scale / std).astype(np.float32), (-np.asarray(spec.mean, np.float32) / std).astype(np.float32)


def check_frame(frame: np.ndarray) -> np.ndarray:
    """Refuse anything but an H×W×3 uint8 image with a message that says what arrived; the frame when it is one."""
    if not isinstance(frame, np.ndarray):
        raise FrameError("a frame must be a numpy array", "got %s" % type(frame).__name__,
                         "pass decoded images (OpenCV BGR, H×W×3 uint8)")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameError("a frame has shape %s" % (frame.shape,), "frames must be H×W×3 (3 colour channels, BGR)",
                         "convert grey or BGRA images with cv2.cvtColor before streaming")
    if frame.dtype != np.uint8:
        raise FrameError("a frame has dtype %s" % frame.dtype, "frames must be uint8 (0..255)",
                         "convert with frame.astype(np.uint8) after scaling to 0..255")
    if frame.shape[0] < 16 or frame.shape[1] < 16:
        raise FrameError("a frame is only %d×%d pixels" % frame.shape[:2], "that is too small to crop from",
                         "use a source of at least 16×16 pixels")
    return frame
