"""Optical flow as a second modality (seed 000 [0027], docs/models.md §5.1): the motion between consecutive frames
as a three-channel image, so every backbone pretrained on images, and every family, can take it as input.

The flow is OpenCV's: DIS (``"dis"``, fast: the default) or Farnebäck (``"farneback"``). Its image is
``[horizontal, vertical, magnitude]`` in pixels per frame, each clipped to ``bound`` and scaled to 0..255, in the
channel order of a BGR frame so that the preprocessing of colour frames applies unchanged:

    u, v -> 128 + 127 · clip(u / bound, -1, 1)        (no motion is mid-grey)
    |f|  -> 255 · clip(|f| / (bound · sqrt 2), 0, 1)

The seed says only that flow "is represented by three color channels"; the channels and the scaling are
edgevid's (stated here and in models.md). Flow is computed at the frame's own size, so compute it on frames
already resized (its cost grows with the pixels: ``benchmarks/flow_bench.py``). OpenCV is imported when a flow is
first computed; numpy only otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

import numpy as np

from .._optional import require
from ..errors import ConfigError, FrameError

METHODS = ("dis", "farneback")


@dataclass(frozen=True)
class FlowSpec:
    """How flow images are made: ``method`` (dis | farneback), ``bound`` (pixels per frame mapped to the ends of
    the 0..255 range) and ``size`` (frames are resized so their short side is ``size`` before the flow: motion in
    pixels per frame depends on the resolution, so a camera of another resolution than the training videos still
    gives the images the model learned; None: flow at the decoded size). Recorded with a flow model (its bundle's
    ``preprocess.flow``), so training and streaming make the same images."""

    method: str = "dis"
    bound: float = 16.0
    size: Optional[int] = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError("flow method %r" % (self.method,), "OpenCV's DIS and Farneback flows are supported",
                              "use method %s" % " or ".join(repr(m) for m in METHODS))
        if not isinstance(self.bound, (int, float)) or isinstance(self.bound, bool) or not self.bound > 0:
            raise ConfigError("flow bound %r" % (self.bound,), "it is the motion in pixels per frame that maps to "
                              "the ends of the image range", "use a positive number, e.g. 16")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 8):
            raise ConfigError("flow size %r" % (self.size,), "it is the short side, in pixels, frames are resized "
                              "to before the flow", "use a whole number of at least 8 (e.g. 112), or None")

    def to_dict(self) -> Dict[str, Any]:
        return {"method": self.method, "bound": float(self.bound), "size": self.size}

    @classmethod
    def from_dict(cls, d: Any) -> "FlowSpec":
        """The spec a bundle recorded (``to_dict``); ConfigError for anything else."""
        if not isinstance(d, dict) or set(d) - {"method", "bound", "size"}:
            raise ConfigError("flow settings %r" % (d,), "they are method, bound and size",
                              "re-export the bundle, or pass settings like {'method': 'dis', 'bound': 16}")
        return cls(**d)


def flow_image(flow: np.ndarray, bound: float) -> np.ndarray:
    """An H×W×2 flow (pixels per frame) as an H×W×3 uint8 image [u, v, magnitude] (the module's mapping)."""
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise FrameError("a flow field has shape %s" % (flow.shape,), "flow is H×W×2 (horizontal, vertical)",
                         "pass what compute_flow returns")
    out = np.empty(flow.shape[:2] + (3,), np.uint8)
    uv = 128.0 + 127.0 * np.clip(flow / bound, -1.0, 1.0)
    out[..., :2] = np.rint(uv).astype(np.uint8)
    magnitude = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2)
    out[..., 2] = np.rint(255.0 * np.clip(magnitude / (bound * np.sqrt(2.0)), 0.0, 1.0)).astype(np.uint8)
    return out


class FlowStream:
    """Flow images of one stream of frames, each against the frame before: ``stream(frame_bgr) -> image``.

    The first frame (and the first after :meth:`reset`, e.g. at a scene cut or an outage) has no frame before it:
    its image is "no motion" (mid-grey u, v and zero magnitude). Frames must keep one size."""

    def __init__(self, spec: FlowSpec = FlowSpec()):
        self.spec = spec
        self._cv2: Any = None
        self._dis: Any = None
        self._previous: Optional[np.ndarray] = None

    def reset(self) -> None:
        self._previous = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        grey = self.grey(frame)
        previous, self._previous = self._previous, grey
        if previous is None:
            return flow_image(np.zeros(grey.shape + (2,), np.float32), self.spec.bound)
        if previous.shape != grey.shape:
            raise FrameError("a frame of %dx%d follows one of %dx%d" % (grey.shape[1], grey.shape[0],
                                                                        previous.shape[1], previous.shape[0]),
                             "flow compares consecutive frames of one size", "resize frames before the flow")
        return flow_image(self.flow(previous, grey), self.spec.bound)

    def flow(self, previous: np.ndarray, grey: np.ndarray) -> np.ndarray:
        """The H×W×2 flow from ``previous`` to ``grey`` (uint8 grey images), in pixels per frame."""
        cv2 = self._opencv()
        if self.spec.method == "dis":
            if self._dis is None:
                self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
            return self._dis.calc(previous, grey, None)
        return cv2.calcOpticalFlowFarneback(previous, grey, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def grey(self, frame: np.ndarray) -> np.ndarray:
        """A checked BGR frame as the uint8 grey image :meth:`flow` compares."""
        from ..preprocess import check_frame

        check_frame(frame)
        cv2 = self._opencv()
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        size = self.spec.size
        if size is None or min(grey.shape) == size:
            return grey
        h, w = grey.shape
        scale = size / float(min(h, w))
        shape = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
        # INTER_AREA: an average over the pixels each output pixel covers, as for any downscale before analysis
        return cv2.resize(grey, shape, interpolation=cv2.INTER_AREA)

    def _opencv(self) -> Any:
        if self._cv2 is None:
            self._cv2 = require("cv2", "optical flow")
        return self._cv2


def flow_frames(frames: np.ndarray, indices: Sequence[int], spec: FlowSpec = FlowSpec()) -> np.ndarray:
    """The flow images at ``indices`` of a decoded video ``frames`` [T, H, W, 3]: each against the frame decoded
    just before it, as a stream's FlowStream sees it (index 0 has none: no motion). For training clips."""
    stream = FlowStream(spec)
    grey = [None] * len(frames)

    def grey_of(i: int) -> np.ndarray:
        if grey[i] is None:
            grey[i] = stream.grey(frames[i])
        return grey[i]

    neutral = flow_image(np.zeros(grey_of(0).shape + (2,), np.float32), spec.bound)
    return np.stack([neutral if i == 0 else flow_image(stream.flow(grey_of(i - 1), grey_of(i)), spec.bound)
                     for i in indices])
