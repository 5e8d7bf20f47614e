"""Annotated output video: label, score, fine/coarse marker, frame index and running FPS on each frame.

The video is written to a hidden temp file beside the target (same extension, so OpenCV picks the
same container) and renamed onto the target only when ``close()`` succeeds; on an error, or when no
frame was written, nothing is left behind.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Tuple, Union

import numpy as np

from .._optional import require
from ..errors import ConfigError
from ..fsutil import public_mode
from ..log import get_logger
from .preprocess import check_frame

log = get_logger(__name__)

# container -> codec OpenCV's bundled FFmpeg can always write
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
_FINE_BGR, _COARSE_BGR = (60, 200, 60), (160, 160, 160)


class AnnotatedVideoWriter:
    """``write(image, prediction)`` per frame, then ``close()`` (or use ``with``)."""

    def __init__(self, path: Union[str, Path], fps: float, *, fourcc: Optional[str] = None):
        self.path = Path(path)
        self.fps = _check_fps(fps)
        suffix = self.path.suffix.lower()
        if not suffix:
            raise ConfigError("output video %s has no extension" % self.path,
                              "OpenCV picks the container from it", "name it e.g. out.mp4 or out.avi")
        self.fourcc = fourcc or _FOURCC.get(suffix, "mp4v")
        self.frames = 0
        self._cv2 = require("cv2", "writing annotated video")
        self._writer: Any = None
        self._tmp: Optional[Path] = None
        self._size: Optional[Tuple[int, int]] = None
        self._last: Optional[float] = None
        self._rate: Optional[float] = None
        self._closed = False

    def write(self, image: np.ndarray, prediction: Any = None) -> None:
        """Draw ``prediction`` (a Prediction, or None for a bare frame) on a copy of ``image`` and write it."""
        check_frame(image)
        if self._closed:
            raise ConfigError("video %s is already closed" % self.path, None, "open a new AnnotatedVideoWriter")
        if self._writer is None:
            self._open(image.shape[1], image.shape[0])
        frame = image if (image.shape[1], image.shape[0]) == self._size else self._cv2.resize(image, self._size)
        frame = np.array(frame, copy=True)
        self._tick()
        if prediction is not None:
            self._draw(frame, prediction)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it onto ``path``; with no frames written, leave nothing."""
        if self._closed:
            return
        self._closed = True
        if self._writer is None:
            log.warning("no frames were written; %s was not created", self.path)
            return
        writer, self._writer = self._writer, None
        writer.release()
        tmp, self._tmp = self._tmp, None
        if tmp is None or not tmp.is_file() or tmp.stat().st_size == 0:
            _unlink(tmp)
            raise ConfigError("could not write video %s" % self.path, "OpenCV produced an empty file",
                              "try another extension (.avi uses MJPG, .mp4 uses mp4v)")
        public_mode(tmp)  # mkstemp made it private
        os.replace(str(tmp), str(self.path))

    def abort(self) -> None:
        """Stop and delete the partial file."""
        self._closed = True
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        _unlink(self._tmp)
        self._tmp = None

    def __enter__(self) -> "AnnotatedVideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # internals -----------------------------------------------------------------------------------
    def _open(self, width: int, height: int) -> None:
        cv2 = self._cv2
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + self.path.name + ".", suffix=".tmp" + self.path.suffix,
                                   dir=str(self.path.parent))
        os.close(fd)
        self._tmp = Path(tmp)
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (width, height))
        if not writer.isOpened():
            self.abort()
            raise ConfigError("cannot write video %s" % self.path,
                              "OpenCV has no %s encoder for %s files" % (self.fourcc, self.path.suffix),
                              "use .avi (MJPG) or .mp4 (mp4v)")
        self._writer, self._size = writer, (width, height)

    def _tick(self) -> None:
        """Running FPS: an exponential average of the rate at which frames arrive here."""
        now = time.perf_counter()
        if self._last is not None and now > self._last:
            rate = 1.0 / (now - self._last)
            self._rate = rate if self._rate is None else 0.9 * self._rate + 0.1 * rate
        self._last = now

    def _draw(self, frame: np.ndarray, p: Any) -> None:
        cv2 = self._cv2
        h = frame.shape[0]
        scale = max(0.35, h / 720.0)
        thick = max(1, int(round(2 * scale)))
        line = int(30 * scale)
        fine = getattr(p, "path", "") == "fine"
        fps = "%.1f fps" % self._rate if self._rate else "-- fps"
        lines = ["%s  %.2f" % (getattr(p, "label", "?"), float(getattr(p, "score", 0.0))),
                 "%s  #%d  %s" % ("FINE" if fine else "coarse", int(getattr(p, "frame_index", self.frames)), fps)]
        width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] for t in lines)
        cv2.rectangle(frame, (0, 0), (width + line, line * len(lines) + line // 3), (0, 0, 0), -1)
        # the marker: a filled dot for a fine step, a ring for a coarse one
        radius = max(3, line // 4)
        cv2.circle(frame, (line // 2, line // 2 + line // 6), radius, _FINE_BGR if fine else _COARSE_BGR,
                   -1 if fine else thick)
        for i, text in enumerate(lines):
            cv2.putText(frame, text, (line, line * (i + 1) - line // 6), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), thick, cv2.LINE_AA)


def _check_fps(fps: Any) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value < 1000:
        raise ConfigError("bad output frame rate %r" % (fps,), "it must be between 0 and 1000",
                          "pass the source's frame rate, e.g. 30")
    return value


def _unlink(path: Optional[Path]) -> None:
    if path is not None and path.exists():
        path.unlink()
