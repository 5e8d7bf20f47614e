"""Annotated output video: label, score, the path that produced the label, frame index and the stream's FPS.

Each family's paths have their own word, colour and marker (a filled dot where the expensive model ran on
this frame, a ring where a cheap path or a held label stands)::

    LiteEval   FINE   green dot     fine CNN + fine LSTM ran       coarse  grey ring    coarse path only
    SlowFast   CLIP   orange dot    a clip ran on this frame       held    orange ring  latest clip's label
    PreRNN     step   blue dot      one recurrent step per frame
    Fusion     FUSED  violet dot    the members' latest scores fused; a line per member below (label, score,
                                    weight; a dot where its scores are from this frame, a ring where they are held)

The FPS is the stream's: predictions per second of capture time (``Prediction.latency`` is capture to
delivery, so a frame's capture time is its arrival here minus its latency), over the last few seconds; the
caller may pass its own figure (``write(..., fps=...)``). It is not the rate at which frames reach the
writer: predictions that queued up arrive in bursts, and an average of 1/interval over those bursts reads
several times the stream's rate.

The video is written to a hidden temp file beside the target (same extension, so OpenCV picks the
same container) and renamed onto the target only when ``close()`` succeeds; on an error, or when no
frame was written, nothing is left behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any, Deque, Optional, Tuple, Union

import numpy as np

from .._optional import require
from ..errors import ConfigError, OutputError
from ..fsutil import public_mode
from ..log import get_logger
from ..preprocess import check_frame

log = get_logger(__name__)
ROOM_EVERY = 25  # frames between checks that the video can still grow

# container -> codec OpenCV's bundled FFmpeg can always write
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
# Prediction.path -> (word on the frame, BGR colour, filled marker)
PATH_STYLES = {
    "fine": ("FINE", (60, 200, 60), True),
    "coarse": ("coarse", (170, 170, 170), False),
    "clip": ("CLIP", (40, 160, 255), True),
    "held": ("held", (40, 160, 255), False),
    "step": ("step", (255, 180, 70), True),
    "fused": ("FUSED", (200, 90, 220), True),
}
_OTHER_BGR = (170, 170, 170)
FPS_WINDOW_S = 5.0  # the FPS shown is over this much capture time


def path_style(path: str) -> Tuple[str, Tuple[int, int, int], bool]:
    """(word, BGR colour, filled) for a Prediction.path; an unknown path shows as itself, grey ring."""
    return PATH_STYLES.get(path, (str(path) or "?", _OTHER_BGR, False))


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
        self._captured: Deque[float] = deque()
        self._closed = False

    def write(self, image: np.ndarray, prediction: Any = None, fps: Optional[float] = None) -> None:
        """Draw ``prediction`` (a Prediction, or None for a bare frame) on a copy of ``image`` and write it.

        ``fps``: the stream's rate to show (default: measured from the predictions' capture times)."""
        check_frame(image)
        if self._closed:
            raise ConfigError("video %s is already closed" % self.path, None, "open a new AnnotatedVideoWriter")
        if self._writer is None:
            self._open(image.shape[1], image.shape[0])
        frame = image if (image.shape[1], image.shape[0]) == self._size else self._cv2.resize(image, self._size)
        frame = np.array(frame, copy=True)
        if prediction is not None:
            self._tick(prediction)
            self._draw(frame, prediction, self.stream_fps if fps is None else fps)
        self._writer.write(frame)
        self.frames += 1
        if self.frames % ROOM_EVERY == 0:
            self._check_room()

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
        self._check_room()
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
    def _check_room(self) -> None:
        """OutputError (and the partial file removed) once the video cannot grow: OpenCV's writer fails silently
        on a full disk or at the file size limit, and would leave a cut video under the right name."""
        import resource

        tmp = self._tmp
        if tmp is None or not tmp.is_file():
            return
        size = tmp.stat().st_size
        per_frame = size / max(1, self.frames)
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        free = shutil.disk_usage(str(tmp.parent)).free
        why = None
        if limit != resource.RLIM_INFINITY and size + per_frame > limit:
            why = "the process's file size limit is %d bytes (ulimit -f)" % limit
        elif free < per_frame:
            why = "the disk is full (%d bytes free)" % free
        if why is not None:
            self.abort()
            raise OutputError("cannot write video %s" % self.path, why + "; the video would be cut short",
                              "free space or raise the limit, or write the video elsewhere (--out-video)")

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

    @property
    def stream_fps(self) -> Optional[float]:
        """Predictions per second of capture time over the last :data:`FPS_WINDOW_S` seconds (None: too few)."""
        times = self._captured
        if len(times) < 2 or times[-1] <= times[0]:
            return None
        return (len(times) - 1) / (times[-1] - times[0])

    def _tick(self, prediction: Any) -> None:
        """Record when ``prediction``'s frame was captured: now, less its capture-to-delivery latency."""
        latency = getattr(prediction, "latency", 0.0) or 0.0
        captured = time.perf_counter() - max(0.0, float(latency))
        times = self._captured
        if times and captured < times[-1]:
            captured = times[-1]  # clock jitter: capture times never run backwards
        times.append(captured)
        while len(times) > 2 and captured - times[0] > FPS_WINDOW_S:
            times.popleft()

    def _draw(self, frame: np.ndarray, p: Any, fps: Optional[float]) -> None:
        """Top left, on a black box: ``label  score`` and, below, the path's marker and word in its colour,
        then ``#frame  FPS``."""
        cv2 = self._cv2
        font = cv2.FONT_HERSHEY_SIMPLEX
        scale = max(0.45, frame.shape[0] / 480.0)
        thick = max(1, int(round(1.6 * scale)))
        line = int(round(28 * scale))
        pad = line // 4
        word, colour, filled = path_style(getattr(p, "path", ""))
        top = "%s  %.2f" % (getattr(p, "label", "?"), float(getattr(p, "score", 0.0)))
        rest = "  #%d  %s" % (int(getattr(p, "frame_index", self.frames)), "%.1f fps" % fps if fps else "-- fps")
        radius = max(3, line // 4)
        word_x = pad + 2 * radius + pad
        word_w = cv2.getTextSize(word, font, scale, thick)[0][0]
        width = max(cv2.getTextSize(top, font, scale, thick)[0][0] + pad,
                    word_x + word_w + cv2.getTextSize(rest, font, scale, thick)[0][0])
        members = [("%s  %s %.2f  x%.2f" % (name, m["label"], m["score"], m["weight"]), m.get("fresh", True))
                   for name, m in (getattr(p, "members", None) or {}).items()]
        width = max([width] + [word_x + cv2.getTextSize(text, font, scale, thick)[0][0] for text, _ in members])
        cv2.rectangle(frame, (0, 0), (width + pad, (2 + len(members)) * line + pad), (0, 0, 0), -1)
        base1, base2 = line - pad // 2, 2 * line - pad // 2
        cv2.putText(frame, top, (pad, base1), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
        # a filled dot where the path's expensive model ran on this frame, a ring otherwise
        cv2.circle(frame, (pad + radius, base2 - line // 3), radius, colour, -1 if filled else thick, cv2.LINE_AA)
        cv2.putText(frame, word, (word_x, base2), font, scale, colour, thick, cv2.LINE_AA)
        cv2.putText(frame, rest, (word_x + word_w, base2), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
        for k, (text, fresh) in enumerate(members, 3):  # a fusion's members, one line each
            base = k * line - pad // 2
            cv2.circle(frame, (pad + radius, base - line // 3), radius, (220, 220, 220), -1 if fresh else thick,
                       cv2.LINE_AA)
            cv2.putText(frame, text, (word_x, base), font, scale, (220, 220, 220), thick, cv2.LINE_AA)


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
