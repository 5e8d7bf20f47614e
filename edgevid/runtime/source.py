"""Frame sources: one URI-like spec in, an iterator of timestamped BGR frames out.

``open_source(spec)`` accepts

- a video file path (``clip.mp4``; ``file://clip.mp4``),
- a camera: an index (``0`` or ``"0"``) or a V4L2 device (``/dev/video1``),
- a Jetson CSI camera ``csi://0`` (built with :func:`csi_pipeline`),
- a network stream ``rtsp://…``, ``http(s)://…``,
- a GStreamer pipeline string (contains ``!``, ends in ``appsink``; live unless it starts with filesrc),
- ``synthetic`` or ``synthetic:seed=3,segments=20,frames=16,fps=10`` (the synthetic motion stream with
  ground truth, ``edgevid.data.synthetic``; ``clip=8``: segments made of 8-frame clips of their class).

Every source yields :class:`Frame` objects. File and synthetic sources are not live: timestamps are
``index / fps`` of the stream and nothing is ever dropped. Cameras, network streams and pipelines are
live: timestamps come from the capture clock, and a source that fails mid-stream is reopened with
exponential back-off (``retries`` times) before :class:`SourceError` is raised.

``fps`` resamples by timestamp: frames are skipped so that at most ``fps`` frames per second of
stream time come out (never more than the source delivers). OpenCV is imported only when a capture
source is opened.
"""
from __future__ import annotations

import dataclasses
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from .._optional import require
from ..errors import SourceError
from ..fsutil import probe
from ..log import get_logger

log = get_logger(__name__)

SourceSpec = Union[str, int, "os.PathLike[str]"]

# what to tell a user whose spec we cannot read
_FORMS = ("use a video file path, a camera index (0) or /dev/videoN, csi://N, rtsp:// or http(s):// URL, "
          "a GStreamer pipeline ending in appsink, or synthetic[:seed=S,segments=N,frames=F,clip=C,fps=R]")
_VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv")
_DEFAULT_FPS = 30.0


@dataclass
class Frame:
    """One decoded frame.

    ``index`` counts frames as the source delivered them (before ``fps`` resampling), ``timestamp`` is
    seconds of stream time, ``image`` is BGR uint8 H×W×3 and ``captured`` is ``time.perf_counter()``
    when it was read (the start of the capture-to-label latency).
    """

    index: int
    timestamp: float
    image: np.ndarray
    captured: float


class Source:
    """Base class: an iterator of :class:`Frame`; subclasses implement ``_read`` and ``_release``.

    ``close()`` is idempotent and may be called from another thread; ``interrupt()`` only makes the
    iteration end at the next frame (and cuts a reconnect back-off short) without releasing anything.
    """

    live = False

    def __init__(self, name: str, *, fps: Optional[float] = None, native_fps: Optional[float] = None):
        self.name = name
        self.native_fps = native_fps
        self.target_fps = _check_fps(fps)
        self.reconnects = 0
        self._closing = threading.Event()
        self._closed = False
        self._index = 0
        self._next_due: Optional[float] = None

    @property
    def fps(self) -> Optional[float]:
        """Frames per second that come out: the resampling rate, capped by the source's own rate."""
        if self.target_fps and self.native_fps:
            return min(self.target_fps, self.native_fps)
        return self.target_fps or self.native_fps

    # iteration ---------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        while True:
            if self._closing.is_set():
                raise StopIteration
            got = self._read()
            if got is None:
                raise StopIteration
            image, timestamp = got
            captured = time.perf_counter()
            index = self._index
            self._index += 1
            if self._keep(timestamp):
                return Frame(index, timestamp, image, captured)

    def _keep(self, timestamp: float) -> bool:
        """Resample by timestamp: keep a frame once its time has reached the next due time."""
        if not self.target_fps:
            return True
        period = 1.0 / self.target_fps
        if self._next_due is None or timestamp + 1e-6 >= self._next_due:
            due = (timestamp if self._next_due is None else self._next_due) + period
            # after a gap (or a slow start) re-anchor on this frame instead of bursting to catch up
            self._next_due = due if due > timestamp else timestamp + period
            return True
        return False

    # lifecycle ---------------------------------------------------------------------------------
    def interrupt(self) -> None:
        """End iteration at the next frame without releasing (safe from any thread)."""
        self._closing.set()

    def close(self) -> None:
        self._closing.set()
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return "%s(%r, live=%s, fps=%s)" % (type(self).__name__, self.name, self.live, self.fps)

    # for subclasses ----------------------------------------------------------------------------
    def _read(self) -> Optional[Tuple[np.ndarray, float]]:
        raise NotImplementedError

    def _release(self) -> None:
        pass


class CaptureSource(Source):
    """A ``cv2.VideoCapture`` made by ``opener()``; the first frame is read at open to catch dead sources.

    ``opener`` returns a capture-like object (``isOpened``, ``read``, ``get``, ``release``); tests pass
    fakes. A live capture that stops delivering is reopened with back-off ``backoff_s * 2**k``.
    """

    def __init__(self, opener: Callable[[], Any], name: str, *, live: bool, fps: Optional[float] = None,
                 loop: bool = False, retries: int = 5, backoff_s: float = 0.5,
                 not_opened: Optional[Tuple[str, str]] = None, no_frame: Optional[Tuple[str, str]] = None):
        self._opener = opener
        self.live = live
        self.loop = loop and not live
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self._lock = threading.Lock()  # OpenCV captures are not safe to release while another thread reads
        self._t0 = time.perf_counter()
        self._offset = 0.0  # stream-time offset added after each loop of a file
        self._file_index = 0
        cap = opener()
        if cap is None or not cap.isOpened():
            why, fix = not_opened or ("OpenCV could not open it", _FORMS)
            _release_quietly(cap)
            raise SourceError("cannot open source %s" % name, why, fix)
        self._cap = cap
        self.ended_early: Optional[str] = None  # a file that ended before the frames its container declares
        super().__init__(name, fps=fps, native_fps=None if live else _native_fps(cap, name))
        if live:
            self.native_fps = _native_fps(cap, name, quiet=True)
        ok, image = cap.read()
        if not ok or image is None:
            why, fix = no_frame or ("it opened but delivered no frame", "check the source works, e.g. with ffplay")
            self._release()
            raise SourceError("source %s has no frames" % name, why, fix)
        self._pending: Optional[np.ndarray] = image

    def _stamp(self) -> float:
        if self.live:
            return time.perf_counter() - self._t0
        stamp = self._offset + self._file_index / (self.native_fps or _DEFAULT_FPS)
        self._file_index += 1
        return stamp

    def _read(self) -> Optional[Tuple[np.ndarray, float]]:
        if self._pending is not None:
            image, self._pending = self._pending, None
            return image, self._stamp()
        image = self._next_image()
        return None if image is None else (image, self._stamp())

    def _grab(self) -> Optional[np.ndarray]:
        with self._lock:
            if self._cap is None:
                return None
            ok, image = self._cap.read()
        return image if ok and image is not None else None

    def _next_image(self) -> Optional[np.ndarray]:
        failures = 0
        while not self._closing.is_set():
            image = self._grab()
            if image is not None:
                return image
            if not self.live:
                self._check_complete()
                return self._restart() if self.loop else None
            if failures >= self.retries:
                raise SourceError("live source %s stopped delivering frames" % self.name,
                                  "it failed %d reconnect attempts" % failures,
                                  "check the camera or network, or raise retries")
            delay = self.backoff_s * (2 ** failures)
            failures += 1
            log.warning("source %s delivered no frame; reopening in %.2fs (attempt %d of %d)",
                        self.name, delay, failures, self.retries)
            if self._closing.wait(delay):
                return None
            self._reopen()
        return None

    def _reopen(self) -> None:
        """Replace the capture; a failed open is left to the next read to count as another failure."""
        self.reconnects += 1
        with self._lock:
            _release_quietly(self._cap)
            try:
                self._cap = self._opener()
            except Exception as e:  # cv2 raises cv2.error for some backends; the next read counts the failure
                log.warning("reopening %s failed: %s", self.name, e)
                self._cap = None

    def _check_complete(self) -> None:
        """At a file's end: a file cut short while it was read (or damaged) ends before the frames its container
        declares; said once, and kept in ``ended_early`` (the run's stats ``source_ended_early``)."""
        with self._lock:
            declared = _declared_frames(self._cap)
        if declared and self._file_index < declared and self.ended_early is None:
            self.ended_early = "%s ended after %d of the %d frames it declares (cut short or damaged)" % (
                self.name, self._file_index, declared)
            log.warning("%s: the run has the frames before the cut", self.ended_early)

    def _restart(self) -> Optional[np.ndarray]:
        """Loop a file: reopen it and continue stream time after its last frame."""
        self._offset += self._file_index / (self.native_fps or _DEFAULT_FPS)
        self._file_index = 0
        with self._lock:
            _release_quietly(self._cap)
            self._cap = self._opener()
        return self._grab()

    def _release(self) -> None:
        with self._lock:
            _release_quietly(self._cap)
            self._cap = None


class SyntheticSource(Source):
    """Adapter around ``edgevid.data.synthetic.SyntheticStream`` (frames with ground-truth ``segments``).

    ``stream`` is iterated first; with ``loop`` each further pass iterates a fresh ``factory()`` stream.
    """

    def __init__(self, stream: Any, factory: Callable[[], Any], name: str, *, stream_fps: float,
                 fps: Optional[float] = None, loop: bool = False):
        super().__init__(name, fps=fps, native_fps=stream_fps)
        self._factory = factory
        self.stream = stream
        self.segments = getattr(stream, "segments", None)
        self.loop = loop
        self._it = iter(stream)
        self._count = 0

    def _read(self) -> Optional[Tuple[np.ndarray, float]]:
        image = next(self._it, None)
        if image is None and self.loop and self._count:
            self._it = iter(self._factory())
            image = next(self._it, None)
        if image is None:
            return None
        stamp = self._count / self.native_fps
        self._count += 1
        # the generator may reuse its buffer; a frame travels through queues, so it must own its pixels
        return np.array(image, dtype=np.uint8, copy=True), stamp


class PacedSource:
    """``source`` handed over at its own pace, as a camera does: frame k is released no earlier than
    ``start + (timestamp_k - timestamp_0)`` of wall time, and its ``captured`` is the release time, so the
    capture-to-label latency does not count waiting for the frame's time to come. Live: a pipeline that lags
    drops the oldest queued frames instead of falling behind. Frames the source delivers late go out at once."""

    live = True

    def __init__(self, source: Any, clock: Callable[[], float] = time.perf_counter):
        self.source = source
        self.name = "paced " + str(getattr(source, "name", source))
        self.fps = getattr(source, "fps", None)
        self.segments = getattr(source, "segments", None)
        self._clock = clock
        self._stop = threading.Event()

    @property
    def reconnects(self) -> int:
        return getattr(self.source, "reconnects", 0)

    def __iter__(self) -> Iterator[Frame]:
        start = first = None
        for frame in self.source:
            if start is None:
                start, first = self._clock(), frame.timestamp
            wait = start + (frame.timestamp - first) - self._clock()
            if (wait > 0 and self._stop.wait(wait)) or self._stop.is_set():
                return
            yield dataclasses.replace(frame, captured=self._clock())

    def interrupt(self) -> None:
        self._stop.set()
        _interrupt_source(self.source)

    def close(self) -> None:
        self._stop.set()
        close = getattr(self.source, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> "PacedSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _interrupt_source(source: Any) -> None:
    interrupt = getattr(source, "interrupt", None)
    if callable(interrupt):
        interrupt()


# opening ---------------------------------------------------------------------------------------
def open_source(spec: SourceSpec, *, fps: Optional[float] = None, loop: bool = False, retries: int = 5,
                backoff_s: float = 0.5, live: Optional[bool] = None) -> Source:
    """Open ``spec`` (see module doc). Raises SourceError saying what, why and what to do.

    ``live``: None guesses from the spec (cameras, RTSP, UDP and most URLs are live; files, URLs of video files
    and GStreamer pipelines reading files are not); True makes any source but the synthetic one live, so it is
    reconnected with back-off when it stops (an HTTP MPEG-TS stream ending in ``.ts``, a FIFO a recorder
    writes); False reads it as a file, which ends at its first stop."""
    _check_fps(fps)  # before anything is opened
    kind, value = parse_spec(spec)
    if kind == "synthetic":
        if live:
            raise SourceError("a synthetic source cannot be live", "it is generated, never reconnected",
                              "drop live, or pace it with PacedSource")
        return _open_synthetic(value, fps=fps, loop=loop)
    guessed = kind != "file" and not ((kind == "url" and not _looks_live_url(value))
                                      or (kind == "gstreamer" and _reads_files(value)))
    options = dict(live=guessed if live is None else bool(live), fps=fps, loop=loop, retries=retries,
                   backoff_s=backoff_s)
    if kind == "file":
        return _open_file(value, **options)
    if kind == "camera":
        return _open_camera(value, **options)
    return _open_stream(kind, value, **options)


def parse_spec(spec: SourceSpec) -> Tuple[str, Any]:
    """Classify a spec: ('file', Path) ('camera', int|str) ('url', str) ('gstreamer', str) ('synthetic', dict)."""
    if isinstance(spec, bool) or not isinstance(spec, (str, int, os.PathLike)):
        raise SourceError("unknown source %r" % (spec,), "a source is a string, a path or a camera index", _FORMS)
    if isinstance(spec, int):
        return "camera", _camera_index(spec)
    text = os.fspath(spec).strip()
    if not text:
        raise SourceError("the source is empty", None, _FORMS)
    if text == "synthetic" or text.startswith("synthetic:"):
        return "synthetic", _synthetic_params(text)
    if "!" in text:
        return "gstreamer", _check_pipeline(text)
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$", text)
    if scheme:
        return _classify_url(text, scheme.group(1).lower(), scheme.group(2))
    if re.fullmatch(r"-?\d+", text):
        return "camera", _camera_index(int(text))
    if re.fullmatch(r"/dev/video\d+", text):
        return "camera", text
    path = _user_path(text)
    if probe(path) or path.suffix.lower() in _VIDEO_EXTS or os.sep in text:
        return "file", path
    raise SourceError("unknown source '%s'" % text, "it is no existing file and no known source form", _FORMS)


def _user_path(text: str) -> Path:
    """``text`` as a path with ``~`` expanded; SourceError for a ``~user`` that does not exist."""
    try:
        return Path(text).expanduser()
    except (RuntimeError, ValueError):  # no such user; a NUL byte in the name
        raise SourceError("unknown source '%s'" % text, "it starts with ~ but names no user of this machine",
                          "write the path out, or use ~/ for your own home folder") from None


def _classify_url(text: str, scheme: str, rest: str) -> Tuple[str, Any]:
    if scheme == "file":
        return "file", _user_path(rest)
    if scheme == "csi":
        if not rest.isdigit():
            raise SourceError("bad CSI camera '%s'" % text, "csi:// needs a sensor number", "use csi://0")
        return "gstreamer", csi_pipeline(sensor_id=int(rest))
    if scheme in ("rtsp", "rtsps", "rtmp", "http", "https", "udp"):
        return "url", text
    raise SourceError("unknown source scheme '%s://'" % scheme, "edgevid cannot open it", _FORMS)


def _camera_index(index: int) -> int:
    if index < 0:
        raise SourceError("camera index %d is negative" % index, None, "use 0 for the first camera")
    return index


def _check_pipeline(text: str) -> str:
    last = text.rsplit("!", 1)[-1].split()
    if not last or last[0] != "appsink":
        raise SourceError("the GStreamer pipeline does not end in appsink", "OpenCV reads frames from an appsink",
                          "end the pipeline with '! videoconvert ! video/x-raw, format=BGR ! appsink drop=1'")
    return text


def _synthetic_params(text: str) -> Dict[str, Any]:
    """'synthetic:seed=3,segments=20' -> {'seed': 3, 'segments': 20}."""
    params: Dict[str, Any] = {}
    body = text.partition(":")[2]
    casts = {"seed": int, "segments": int, "frames": int, "clip": int, "fps": float}
    for item in filter(None, (p.strip() for p in body.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in casts:
            raise SourceError("bad synthetic source option '%s'" % item,
                              "known options are " + ", ".join("%s=…" % k for k in casts),
                              "write e.g. synthetic:seed=3,segments=20,frames=16,fps=10")
        try:
            params[key] = casts[key](value.strip())
        except ValueError:
            raise SourceError("bad value in synthetic option '%s'" % item, "%s must be a number" % key,
                              "write e.g. synthetic:seed=3,segments=20,frames=16,fps=10") from None
    return params


def _looks_live_url(url: str) -> bool:
    """An http(s) URL to a video file is a file on a server; everything else on the network is live."""
    if not url.lower().startswith("http"):
        return True
    path = url.split("?", 1)[0].lower()
    return not path.endswith(_VIDEO_EXTS)


def _reads_files(pipeline: str) -> bool:
    """A pipeline that starts from files (filesrc, multifilesrc) is a recording, not a live feed."""
    first = pipeline.split("!", 1)[0].split()
    return bool(first) and first[0] in ("filesrc", "multifilesrc")


# the openers -----------------------------------------------------------------------------------
def _open_file(path: Path, **options) -> Source:
    if not probe(path):
        raise SourceError("video file %s does not exist" % path, None,
                          "check the path (relative paths are from the current folder)")
    if path.is_dir():
        raise SourceError("%s is a folder, not a video file" % path, None, "pass one video file")
    fifo = stat.S_ISFIFO(path.stat().st_mode)  # a named pipe a recorder or camera bridge writes: no size
    if path.stat().st_size == 0 and not fifo:
        raise SourceError("video file %s is empty" % path, "it has 0 bytes (an interrupted copy or recording?)",
                          "copy or record it again")
    cv2 = require("cv2", "reading video files")
    not_opened = (("no writer is feeding the FIFO", "start what writes into it first; with --live the run waits "
                   "for it to come back when it stops") if fifo else
                  ("OpenCV cannot read it as video (corrupt file or unsupported container/codec)",
                   "check it plays (ffprobe %s), or re-encode it to H.264 MP4" % path))
    return CaptureSource(
        _fifo_opener(path, cv2) if fifo else lambda: cv2.VideoCapture(str(path)), str(path), **options,
        not_opened=not_opened,
        no_frame=("OpenCV opened it but could not decode a single frame (corrupt or truncated)",
                  "check it plays (ffprobe %s), or re-encode it" % path))


FIFO_WAIT_S = 0.5  # how long a (re)open of a FIFO waits for its writer's first bytes


def _fifo_opener(path: Path, cv2: Any) -> Callable[[], Any]:
    """Open a FIFO (a recorder or a camera bridge writing into it) only once its writer has written: a plain
    OpenCV open would block until a writer comes, unstoppable, and block for good when the writer already wrote
    everything and left. So our own read end is opened without blocking, polled for data, and handed to FFmpeg
    as ``pipe:<fd>``; the capture closes it. No data: None, which the source counts as a failed (re)open."""
    import fcntl
    import select

    def opener() -> Any:
        fd = os.open(str(path), os.O_RDONLY | os.O_NONBLOCK)
        try:
            poll = select.poll()
            poll.register(fd, select.POLLIN)
            # a writer blocked in its open goes on once our read end exists: give it a moment to write
            if not any(events & select.POLLIN for _, events in poll.poll(int(FIFO_WAIT_S * 1000))):
                os.close(fd)
                return None
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)  # FFmpeg reads blocking
            return _FdCapture(cv2.VideoCapture("pipe:%d" % fd), fd)
        except BaseException:
            _close_quietly(fd)
            raise

    return opener


class _FdCapture:
    """A capture reading a file descriptor of ours, closed with it."""

    def __init__(self, cap: Any, fd: int):
        self._cap, self._fd = cap, fd

    def __getattr__(self, name: str) -> Any:  # isOpened, read, get: the capture's own
        return getattr(self._cap, name)

    def release(self) -> None:
        try:
            self._cap.release()
        finally:
            _close_quietly(self._fd)
            self._fd = -1


def _close_quietly(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def _open_camera(device: Union[int, str], **options) -> Source:
    node = device if isinstance(device, str) else "/dev/video%d" % device
    if os.name == "posix" and Path("/dev").is_dir() and not Path(node).exists():
        raise SourceError("camera %s not found" % device, "%s does not exist" % node,
                          "list cameras with 'ls /dev/video*' (v4l2-ctl --list-devices), or use csi://0 "
                          "for a Jetson CSI camera")
    cv2 = require("cv2", "camera capture")
    return CaptureSource(
        lambda: cv2.VideoCapture(device), "camera %s" % device, **options,
        not_opened=("OpenCV could not open %s (missing, busy or no permission)" % node,
                    "check no other program uses it and that you are in the 'video' group"),
        no_frame=("it opened but delivered no frame", "check the camera with v4l2-ctl or guvcview"))


def _open_stream(kind: str, spec: str, **options) -> Source:
    cv2 = require("cv2", "network and GStreamer capture")
    if kind == "gstreamer":
        why = "GStreamer could not start the pipeline"
        if not _has_gstreamer(cv2):
            why = "this OpenCV was built without GStreamer"
        return CaptureSource(
            lambda: cv2.VideoCapture(spec, cv2.CAP_GSTREAMER), "GStreamer pipeline", **options,
            not_opened=(why, "on a Jetson use JetPack's OpenCV (python3-opencv); test the pipeline with "
                             "gst-launch-1.0 (replace appsink by fakesink)"))
    return CaptureSource(
        lambda: cv2.VideoCapture(spec), _redact(spec), **options,
        not_opened=("OpenCV could not connect", "check the URL, credentials and network (try it in ffplay)"))


# plain 'synthetic': 20 segments of 16 frames at 10 fps (32 s of stream), seed 0
SYNTHETIC_DEFAULTS = {"seed": 0, "num_segments": 20, "segment_frames": 16, "fps": 10.0}


def _open_synthetic(params: Dict[str, Any], *, fps: Optional[float], loop: bool) -> Source:
    try:
        from ..data.synthetic import SyntheticStream
    except ImportError as e:
        raise SourceError("the synthetic source is not available", "edgevid.data.synthetic cannot be imported (%s)" % e,
                          "use a video file or camera, or update edgevid") from e
    kwargs = {"seed": "seed", "segments": "num_segments", "frames": "segment_frames", "clip": "clip_frames",
              "fps": "fps"}
    args = dict(SYNTHETIC_DEFAULTS)
    args.update({kwargs[k]: v for k, v in params.items()})

    def factory():
        return SyntheticStream(**args)

    try:
        stream = factory()
    except (TypeError, ValueError) as e:
        raise SourceError("cannot make the synthetic stream %r" % params, str(e),
                          "write e.g. synthetic:seed=3,segments=20,frames=16,fps=10") from e
    stream_fps = float(params.get("fps") or getattr(stream, "fps", None) or 10.0)
    name = "synthetic" + ("" if not params else ":" + ",".join("%s=%s" % kv for kv in sorted(params.items())))
    return SyntheticSource(stream, factory, name, stream_fps=stream_fps, fps=fps, loop=loop)


# helpers ---------------------------------------------------------------------------------------
def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: float = 30, flip: int = 0) -> str:
    """GStreamer pipeline for a Jetson CSI camera (nvarguscamerasrc), ending in a BGR appsink.

    ``appsink drop=1 max-buffers=1`` keeps only the newest frame, so a slow reader never sees stale frames.
    """
    rate = Fraction(fps).limit_denominator(1001)
    return ("nvarguscamerasrc sensor-id=%d ! "
            "video/x-raw(memory:NVMM), width=(int)%d, height=(int)%d, framerate=(fraction)%d/%d, format=(string)NV12 ! "
            "nvvidconv flip-method=%d ! video/x-raw, width=(int)%d, height=(int)%d, format=(string)BGRx ! "
            "videoconvert ! video/x-raw, format=(string)BGR ! appsink drop=1 max-buffers=1"
            % (sensor_id, width, height, rate.numerator, rate.denominator, flip, width, height))


def _check_fps(fps: Optional[float]) -> Optional[float]:
    if fps is None:
        return None
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0:
        raise SourceError("bad frame rate %r" % (fps,), "fps must be a positive number of frames per second",
                          "pass e.g. fps=1 for one step per second, or leave it unset to keep every frame")
    return value


def _declared_frames(cap: Any) -> int:
    """The frame count a file's container declares (cv2.CAP_PROP_FRAME_COUNT), 0 when it declares none."""
    try:
        value = float(cap.get(7)) if cap is not None else 0.0  # CAP_PROP_FRAME_COUNT == 7
    except (TypeError, ValueError):
        return 0
    return int(value) if 0 < value < 1e9 else 0


def _native_fps(cap: Any, name: str, quiet: bool = False) -> Optional[float]:
    """The capture's frame rate, or None (live) / 30 (files) when OpenCV reports nonsense."""
    try:
        value = float(cap.get(5))  # cv2.CAP_PROP_FPS == 5; cv2 is not imported for fakes
    except (TypeError, ValueError):
        value = 0.0
    if 0 < value < 1000:
        return value
    if quiet:
        return None
    log.warning("%s reports no frame rate; assuming %g fps for timestamps", name, _DEFAULT_FPS)
    return _DEFAULT_FPS


def _has_gstreamer(cv2: Any) -> bool:
    info = cv2.getBuildInformation()
    line = next((ln for ln in info.splitlines() if "GStreamer" in ln), "")
    return "YES" in line


def _redact(url: str) -> str:
    """Hide credentials in rtsp://user:pass@host URLs before they reach logs and messages."""
    return re.sub(r"://[^/@]*@", "://***@", url)


def _release_quietly(cap: Any) -> None:
    if cap is not None:
        try:
            cap.release()
        except Exception as e:  # releasing a broken capture must not hide the error being reported
            log.debug("release failed: %s", e)
