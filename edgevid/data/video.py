"""Reading, writing and probing video files with OpenCV (frames are uint8 BGR H×W×3).

Codec choice (measured on this project's OpenCV 5.0 with its FFmpeg backend): the synthetic fine
classes live in 1-2 px colour textures, so files must not lose them. FFV1 in ``.avi`` (or ``.mkv``)
round-trips exactly (identical pixels back). MJPG smears 2 px colour stripes (mean error ≈ 60
grey levels: 4:2:0 chroma subsampling; this backend refuses the quality setting), and mp4v/XVID
also lose them; those are used only when asked for with ``fourcc=``. HuffYUV and PNG-in-AVI also
round-trip exactly here and are the fallbacks if FFV1 cannot be opened. Not yet checked: whether
JetPack's OpenCV build writes FFV1 (write_video raises a DataError naming the codecs if none opens).

Frame-rate resampling picks, for each output time k / fps, the last decoded frame whose timestamp
(index / file fps) is not after it, so 30 → 10 fps keeps every third frame and 5 → 10 fps repeats
each frame twice. Timestamps come from frame indices, not from the container's clock, which OpenCV
reports inconsistently across backends.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Optional, Tuple, Union

import numpy as np

from .._optional import require
from ..errors import DataError
from ..fsutil import atomic_path
from ..log import get_logger, once

log = get_logger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
DEFAULT_EXTENSION = ".avi"
VIDEO_EXTENSIONS = (".avi", ".mkv", ".mp4", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")

# extension -> fourcc codes to try in order (see module doc)
_WRITE_CODECS = {
    ".avi": ("FFV1", "HFYU", "png "),
    ".mkv": ("FFV1", "HFYU"),
    ".mp4": ("mp4v",),
}
_LOSSY = {"mp4v", "MJPG", "XVID", "DIVX", "avc1", "H264"}


def _cv2():
    return require("cv2", "video decoding and encoding")


def _check_file(path: PathLike) -> Path:
    """Refuse missing paths, folders and empty files before OpenCV turns them into vague failures."""
    p = Path(path)
    if not p.exists():
        raise DataError("video '%s' does not exist" % p, None, "check the path")
    if p.is_dir():
        raise DataError("'%s' is a folder, not a video file" % p, None,
                        "pass a video file (a class-folder data set is read with VideoFolder)")
    if p.stat().st_size == 0:
        raise DataError("video '%s' is empty (0 bytes)" % p, "it was probably cut off while being written",
                        "delete it and write or copy it again")
    return p


def _open(p: Path):
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise DataError("video '%s' cannot be opened" % p,
                        "OpenCV found no decodable stream in it (corrupt file or unsupported codec)",
                        "check that it plays (e.g. with ffplay) or re-encode it, e.g. to FFV1 in .avi")
    return cap


def _file_fps(cap, p: Path) -> float:
    fps = float(cap.get(_cv2().CAP_PROP_FPS) or 0.0)
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        once(log, logging.WARNING, "video %s reports no usable frame rate (%r); assuming 30 fps", str(p), fps)
        return 30.0
    return fps


def read_video(path: PathLike, fps: Optional[float] = None,
               max_frames: Optional[int] = None) -> Tuple[np.ndarray, float]:
    """Decode a whole video: (frames [T, H, W, 3] uint8 BGR, frame rate).

    ``fps`` resamples by timestamp to that rate (see module doc) and is the rate returned;
    otherwise the file's rate is returned. ``max_frames`` stops after that many output frames.
    """
    p, cap, src_fps = _start(path, fps, max_frames)
    frames = list(_frames(cap, p, src_fps, fps, max_frames))
    return np.stack(frames), float(fps or src_fps)


def iter_video(path: PathLike, fps: Optional[float] = None,
               max_frames: Optional[int] = None) -> Iterator[np.ndarray]:
    """Decode frames one at a time (for videos too long to hold in memory); same rules as read_video.

    The file is checked and opened by this call, so a bad path fails here rather than at the
    first ``next()``. The file is closed when the iterator is exhausted or garbage-collected.
    """
    p, cap, src_fps = _start(path, fps, max_frames)
    return _frames(cap, p, src_fps, fps, max_frames)


def _start(path: PathLike, fps: Optional[float], max_frames: Optional[int]):
    if fps is not None and not fps > 0:
        raise DataError("fps is %r" % (fps,), "a frame rate must be positive", "pass e.g. fps=10 or None")
    if max_frames is not None and max_frames < 1:
        raise DataError("max_frames is %r" % (max_frames,), "at least one frame must be read",
                        "pass a positive number or None")
    p = _check_file(path)
    cap = _open(p)
    return p, cap, _file_fps(cap, p)


def _frames(cap, p: Path, src_fps: float, fps: Optional[float], max_frames: Optional[int]) -> Iterator[np.ndarray]:
    limit = max_frames or float("inf")
    emitted = index = 0
    try:
        while emitted < limit:
            ok, frame = cap.read()
            if not ok:
                break
            img = _as_bgr(frame)
            # without resampling each frame is emitted once; with it, once per output time k / fps
            # inside the span [index, index + 1) / src_fps during which this frame is on screen
            t_next = (index + 1) / src_fps
            while emitted < limit and (emitted == index if fps is None else emitted / fps < t_next - 1e-9):
                emitted += 1
                yield img
            index += 1
    finally:
        cap.release()
    if emitted == 0:
        raise DataError("video '%s' has no decodable frames" % p,
                        "the container opened but its stream is empty or corrupt",
                        "re-encode or regenerate the file")


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    # some backends hand grey or BGRA frames back for some codecs
    cv2 = _cv2()
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def probe_video(path: PathLike) -> Dict[str, Any]:
    """Frame count, frame rate and size of a video without keeping its frames."""
    p = _check_file(path)
    cv2 = _cv2()
    cap = _open(p)
    try:
        fps = _file_fps(cap, p)
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count <= 0:
            # some containers carry no count: grab (decode without converting) to the end
            while cap.grab():
                count += 1
    finally:
        cap.release()
    if count <= 0 or width <= 0 or height <= 0:
        raise DataError("video '%s' has no decodable frames" % p, "the container opened but reports no frames",
                        "re-encode or regenerate the file")
    return {"frames": count, "fps": fps, "width": width, "height": height}


def write_video(path: PathLike, frames: Iterable[np.ndarray], fps: float,
                size: Optional[Tuple[int, int]] = None, fourcc: Optional[str] = None) -> Path:
    """Write uint8 BGR frames to ``path`` atomically; returns the path.

    ``size`` is (width, height); by default the first frame's. Every frame must have that size
    (nothing is resized silently). The codec follows the extension (lossless FFV1 for .avi/.mkv,
    see module doc) unless ``fourcc`` names one. Nothing is left at ``path`` if anything fails.
    """
    p = Path(path)
    if not fps or not fps > 0:
        raise DataError("fps is %r" % (fps,), "a video needs a positive frame rate", "pass e.g. fps=10")
    codecs = (fourcc,) if fourcc else _WRITE_CODECS.get(p.suffix.lower())
    if not codecs:
        raise DataError("cannot choose a codec for '%s'" % p,
                        "known extensions are " + ", ".join(sorted(_WRITE_CODECS)),
                        "use .avi (lossless FFV1) or pass fourcc=")
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise DataError("no frames to write to '%s'" % p, "the frame sequence is empty", "pass at least one frame")
    if size is None:
        size = (int(first.shape[1]), int(first.shape[0]))
    with atomic_path(p) as tmp:
        writer, used = _open_writer(tmp, codecs, fps, size, p)
        try:
            count = _write_all(writer, first, it, size, p)
        finally:
            writer.release()
        if tmp.stat().st_size == 0:
            raise DataError("OpenCV wrote nothing to '%s'" % p, "the %s encoder produced no data" % used,
                            "try another extension or fourcc")
    log.debug("wrote %d frames to %s (%s, %.3g fps)", count, p, used, fps)
    return p


def _open_writer(tmp: Path, codecs, fps: float, size: Tuple[int, int], target: Path):
    cv2 = _cv2()
    for code in codecs:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*code), float(fps), tuple(int(s) for s in size))
        if writer.isOpened():
            if code != codecs[0]:
                once(log, logging.WARNING, "codec %s is unavailable in this OpenCV; writing %s instead", codecs[0], code)
            if code in _LOSSY:
                once(log, logging.INFO, "writing %s with lossy %s: 1-2 px textures will be blurred", target.suffix, code)
            return writer, code
        writer.release()
    raise DataError("cannot open a video writer for '%s'" % target,
                    "this OpenCV build supports none of the codecs %s for %s" % (", ".join(codecs), target.suffix),
                    "install an OpenCV built with FFmpeg (pip install opencv-python-headless) or pass fourcc=")


def _write_all(writer, first: np.ndarray, rest: Iterable[np.ndarray], size: Tuple[int, int], target: Path) -> int:
    count = 0
    for frame in _chain(first, rest):
        if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3
                and frame.shape[2] == 3 and (frame.shape[1], frame.shape[0]) == tuple(size)):
            raise DataError("frame %d for '%s' is %s" % (count, target, _describe(frame)),
                            "every frame must be uint8 BGR of %d×%d (width×height)" % tuple(size),
                            "convert or resize frames before writing")
        writer.write(np.ascontiguousarray(frame))
        count += 1
    return count


def _chain(first, rest):
    yield first
    for x in rest:
        yield x


def _describe(frame: Any) -> str:
    if isinstance(frame, np.ndarray):
        return "an array of shape %s and dtype %s" % (frame.shape, frame.dtype)
    return "a %s" % type(frame).__name__
