"""Deterministic synthetic motion videos with ground truth: clips, class-folder data sets, long streams.

Why synthetic: the demo and the tests need action data with known labels, no download, and a real
reason for LiteEval's gate to exist. Seven classes differ only in motion (a coarse 112 px view
suffices), three only in fine texture (a 2 px period that the 112 px view averages away in most
clips, an 8 px one that it keeps in the rest); see :mod:`edgevid.data.scene` for the design and
``benchmarks/synthetic_probe.py`` for the measurement behind it.

Every clip is a pure function of (class, seed, num_frames, size); a stream is a pure function of its
arguments. Nothing here imports torch: :class:`SyntheticStream` is also a frame source on the device.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from ..errors import DataError
from ..fsutil import atomic_dir, write_json
from ..log import get_logger
from . import scene as _scene
from .video import DEFAULT_EXTENSION, write_video

log = get_logger(__name__)

# sorted, so that label indices agree with VideoFolder (which sorts class folder names)
CLASSES: List[str] = sorted(_scene.KINDS)
MOTION_CLASSES: List[str] = [c for c in CLASSES if _scene.KINDS[c] == _scene.MOTION]
FINE_CLASSES: List[str] = [c for c in CLASSES if _scene.KINDS[c] == _scene.FINE]

LABELS_SUFFIX = ".labels.json"


def _rng(class_name: str, seed: int) -> np.random.Generator:
    # crc32 rather than hash(): Python salts str hashes per process
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(class_name.encode("utf-8"))])


def _check_class(class_name: str) -> None:
    if class_name not in _scene.KINDS:
        raise DataError("unknown synthetic class '%s'" % class_name,
                        "the classes are: " + ", ".join(CLASSES), "use one of those names")


def _check_positive(name: str, value: int, minimum: int = 1) -> int:
    try:
        whole = int(value) == value
    except (TypeError, ValueError):
        whole = False
    if not whole or value < minimum:
        raise DataError("%s is %r" % (name, value), "it must be a whole number >= %d" % minimum,
                        "pass a larger %s" % name)
    return int(value)


def make_scene(class_name: str, seed: int, num_frames: int = 16, size: int = 256) -> _scene.Scene:
    """The drawn scene of one clip (frames rendered lazily with ``scene.frame(t)`` in order)."""
    _check_class(class_name)
    num_frames = _check_positive("num_frames", num_frames)
    size = _check_positive("size", size, 32)
    return _scene.build_scene(class_name, _rng(class_name, seed), num_frames, size)


def make_video(class_name: str, seed: int, num_frames: int = 16, size: int = 256, flow: Any = None) -> np.ndarray:
    """One clip of ``class_name``: uint8 BGR frames [num_frames, size, size, 3], same args → same pixels.
    ``flow`` (a FlowSpec): the clip's optical-flow images instead (data/flow.py), each frame against the one before,
    as a flow model trains on them (the first has no motion)."""
    frames = _scene.render(make_scene(class_name, seed, num_frames, size))
    if flow is None:
        return frames
    from .flow import flow_frames

    return flow_frames(frames, range(len(frames)), flow)


def video_params(class_name: str, seed: int, num_frames: int = 16, size: int = 256) -> Dict[str, Any]:
    """What was drawn for one clip: family, object size, texture period and contrast, amount of motion,
    tile count, camera shake, noise amplitude (whichever apply to its class)."""
    return dict(make_scene(class_name, seed, num_frames, size).params)


def _video_seed(seed: int, class_index: int, i: int) -> int:
    # one independent seed per (data set seed, class, clip) so adding clips never changes old ones
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, class_index, i]).generate_state(1)[0])


def generate_dataset(root: Union[str, Path], videos_per_class: int, num_frames: int = 16, fps: float = 10.0,
                     size: int = 256, seed: int = 0, progress: Optional[Callable[[int, int], None]] = None,
                     classes: Optional[Sequence[str]] = None, overwrite: bool = False) -> Path:
    """Write ``root/<class>/<class>_<i>.avi`` for every class; the whole tree appears at once or not at all.

    ``progress(done, total)`` is called after each clip. ``classes`` picks a subset (default all).
    Returns ``root``. An existing ``root`` is an error unless ``overwrite``.
    """
    videos_per_class = _check_positive("videos_per_class", videos_per_class)
    classes = list(CLASSES if classes is None else classes)
    for c in classes:
        _check_class(c)
    root = Path(root)
    if root.exists() and not overwrite:
        raise DataError("'%s' already exists" % root, "generate_dataset writes a new folder",
                        "remove it, choose another folder, or pass overwrite=True")
    total, done = len(classes) * videos_per_class, 0
    with atomic_dir(root, overwrite=overwrite) as tmp:
        for c in classes:
            index = CLASSES.index(c)
            for i in range(videos_per_class):
                frames = make_video(c, _video_seed(seed, index, i), num_frames, size)
                write_video(tmp / c / ("%s_%d%s" % (c, i, DEFAULT_EXTENSION)), frames, fps)
                done += 1
                if progress is not None:
                    progress(done, total)
    log.info("wrote %d synthetic clips of %d classes to %s", total, len(classes), root)
    return root


class SyntheticStream:
    """An endless-looking camera made of ``num_segments`` consecutive clips of random classes, in memory.

    Iterating yields uint8 BGR frames one at a time (nothing is pre-rendered). ``segments`` holds
    the ground truth: dicts {start, end (exclusive), label, class}. Iterating again replays the same
    frames.

    A clip's motion spans the clip (a ``grow`` goes from small to large over its frames), so a long clip moves
    slower per frame than the short clips a model was trained on. ``clip_frames`` keeps that speed in long
    segments: each segment is then consecutive ``clip_frames``-frame clips of its class (the last one cut to
    fit), an action that lasts several clips, as real actions do. None: one clip per segment.
    """

    def __init__(self, num_segments: int, segment_frames: int, fps: float = 10.0, seed: int = 0,
                 size: int = 256, classes: Optional[Sequence[str]] = None, clip_frames: Optional[int] = None):
        self.num_segments = _check_positive("num_segments", num_segments)
        self.segment_frames = _check_positive("segment_frames", segment_frames)
        self.clip_frames = None if clip_frames is None else _check_positive("clip_frames", clip_frames)
        if not fps or fps <= 0:
            raise DataError("fps is %r" % (fps,), "a stream needs a positive frame rate", "pass e.g. fps=10")
        self.fps, self.seed, self.size = float(fps), int(seed), _check_positive("size", size, 32)
        self.classes = list(CLASSES if classes is None else classes)
        for c in self.classes:
            _check_class(c)
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 0x57AE])
        picks = rng.integers(0, len(self.classes), self.num_segments)
        self._seeds = [int(s) for s in rng.integers(0, 2 ** 31 - 1, self.num_segments)]
        self.segments: List[Dict[str, Any]] = [
            {"start": k * self.segment_frames, "end": (k + 1) * self.segment_frames,
             "label": int(p), "class": self.classes[int(p)]}
            for k, p in enumerate(picks)]

    def __len__(self) -> int:
        return self.num_segments * self.segment_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        clip = self.clip_frames or self.segment_frames
        for seg, seed in zip(self.segments, self._seeds):
            for k, start in enumerate(range(0, self.segment_frames, clip)):
                # k = 0 renders with the segment's seed: a one-clip segment is what it always was
                scene = make_scene(seg["class"], seed + k, clip, self.size)
                for t in range(min(clip, self.segment_frames - start)):
                    yield scene.frame(t)

    def labels(self) -> Dict[str, Any]:
        """The ground truth as written to the sidecar file."""
        out = {"fps": self.fps, "classes": list(self.classes), "num_frames": len(self),
               "segments": [dict(s) for s in self.segments]}
        if self.clip_frames is not None:
            out["clip_frames"] = self.clip_frames
        return out


def labels_path(video_path: Union[str, Path]) -> Path:
    """Sidecar ground-truth path of a stream video: ``<video>.labels.json``."""
    return Path(str(video_path) + LABELS_SUFFIX)


def generate_stream(path: Union[str, Path], num_segments: int, segment_frames: int, fps: float = 10.0,
                    seed: int = 0, size: int = 256, classes: Optional[Sequence[str]] = None,
                    clip_frames: Optional[int] = None) -> Path:
    """Write one long video of consecutive random-class segments plus ``<path>.labels.json``.

    Both files are written atomically; the video goes first so a sidecar never describes a video
    that is not there. Returns the video path.
    """
    stream = SyntheticStream(num_segments, segment_frames, fps, seed, size, classes, clip_frames)
    path = Path(path)
    write_video(path, iter(stream), stream.fps, (size, size))
    write_json(labels_path(path), stream.labels())
    log.info("wrote a %d-frame synthetic stream (%d segments) to %s", len(stream), num_segments, path)
    return path


def read_stream_labels(path: Union[str, Path]) -> Dict[str, Any]:
    """Read and check the ground truth of a stream; ``path`` is the video or its ``.labels.json``."""
    path = Path(path)
    side = path if str(path).endswith(LABELS_SUFFIX) else labels_path(path)
    if not side.is_file():
        raise DataError("no ground truth for '%s'" % path, "'%s' does not exist" % side,
                        "write streams with generate_stream, which adds the sidecar file")
    try:
        data = json.loads(side.read_text())
        segments = [{"start": int(s["start"]), "end": int(s["end"]), "label": int(s["label"]),
                     **({"class": str(s["class"])} if "class" in s else {})} for s in data["segments"]]
        out = {"fps": float(data["fps"]), "classes": [str(c) for c in data["classes"]], "segments": segments,
               "num_frames": int(data.get("num_frames", segments[-1]["end"] if segments else 0))}
    except (ValueError, KeyError, TypeError) as e:
        raise DataError("the ground-truth file '%s' is malformed" % side, str(e),
                        "regenerate the stream with generate_stream") from e
    _check_segments(out["segments"], len(out["classes"]), side)
    return out


def _check_segments(segments: List[Dict[str, Any]], num_classes: int, where: Any) -> None:
    expected = 0
    for s in segments:
        if s["start"] != expected or s["end"] <= s["start"] or not 0 <= s["label"] < num_classes:
            raise DataError("the ground truth in '%s' is inconsistent at segment %r" % (where, s),
                            "segments must be consecutive, non-empty and have a label index below %d"
                            % num_classes, "regenerate the stream with generate_stream")
        expected = s["end"]


def frame_labels(segments: Sequence[Dict[str, Any]], n: int) -> List[Optional[int]]:
    """Label index of each of the first ``n`` frames; frames no segment covers get ``None``."""
    out: List[Optional[int]] = [None] * int(n)
    for s in segments:
        for i in range(max(0, int(s["start"])), min(int(n), int(s["end"]))):
            out[i] = int(s["label"])
    return out
