"""Class-folder video data sets: ``root/<class>/<video>``, one fixed-length clip per video.

The layout is the one torchvision's ImageFolder uses for images; labels are the indices of the
sorted class folder names. Hidden entries (names starting with ".") are skipped, which also skips
the temporary files and folders that atomic writers leave while they work.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import DataError
from ..fsutil import probe
from .video import VIDEO_EXTENSIONS, read_video


def frame_indices(length: int, num_frames: int) -> List[int]:
    """``num_frames`` indices spread uniformly over ``length`` frames (centres of equal parts).

    A video shorter than ``num_frames`` gives all its frames followed by repeats of the last one.
    """
    if length < 1 or num_frames < 1:
        raise DataError("cannot pick %d frames from %d" % (num_frames, length),
                        "both counts must be positive", "check the video and num_frames")
    if length < num_frames:
        return list(range(length)) + [length - 1] * (num_frames - length)
    return [int((k + 0.5) * length / num_frames) for k in range(num_frames)]


class VideoFolder:
    """Videos under ``root/<class>/``: ``ds[i] -> (frames [num_frames, H, W, 3] uint8 BGR, label)``.

    ``fps`` decodes every video at that frame rate first (see :func:`read_video`), so clips of
    different source rates cover comparable time; ``None`` keeps each file's own rate.
    ``num_frames=None`` returns every decoded frame (lengths then differ between videos), for
    trainers that cut their own windows of consecutive frames (SlowFast). ``flow`` (a :class:`FlowSpec`) gives
    optical-flow images instead of colour (data/flow.py): each picked frame against the one decoded before it.
    """

    def __init__(self, root: Union[str, Path], num_frames: Optional[int], fps: Optional[float] = None,
                 extensions: Sequence[str] = VIDEO_EXTENSIONS, flow: Optional[Any] = None):
        if num_frames is not None and (int(num_frames) != num_frames or num_frames < 1):
            raise DataError("num_frames is %r" % (num_frames,), "a clip needs at least one frame",
                            "pass a positive whole number")
        self.root, self.fps, self.flow = Path(root), fps, flow
        self.num_frames = None if num_frames is None else int(num_frames)
        self.extensions = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
        self.classes = self._find_classes()
        self.samples: List[Tuple[Path, int]] = []
        for label, name in enumerate(self.classes):
            self.samples.extend((p, label) for p in self._find_videos(name))

    def _find_classes(self) -> List[str]:
        if not probe(self.root):
            raise DataError("data set folder '%s' does not exist" % self.root, None, "check the path")
        if not probe(self.root, "dir"):
            raise DataError("'%s' is not a folder" % self.root, "a data set is a folder of class folders",
                            "pass the folder that holds <class>/<video> files")
        classes = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            raise DataError("data set folder '%s' has no class folders" % self.root,
                            "the layout is root/<class>/<video>", "put each class's videos in its own sub-folder")
        return classes

    def _find_videos(self, name: str) -> List[Path]:
        folder = self.root / name
        videos = sorted(p for p in folder.iterdir()
                        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in self.extensions)
        if not videos:
            raise DataError("class folder '%s' has no videos" % folder,
                            "no file in it ends with one of %s" % ", ".join(self.extensions),
                            "add videos to it or remove the folder")
        return videos

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Tuple[np.ndarray, int]:
        path, label = self.samples[i]  # IndexError past the end, as sequences do
        frames, _ = read_video(path, fps=self.fps)
        picked = list(range(len(frames))) if self.num_frames is None else frame_indices(len(frames), self.num_frames)
        if self.flow is not None:  # the motion at each picked frame, as the stream's flow stage would see it
            from .flow import flow_frames

            return flow_frames(frames, picked, self.flow), label
        return frames if self.num_frames is None else frames[picked], label

    def __repr__(self) -> str:
        return "VideoFolder(%r, %d videos, %d classes, num_frames=%r, fps=%r)" % (
            str(self.root), len(self), len(self.classes), self.num_frames, self.fps)


class Subset:
    """A view of some videos of a data set that keeps its ``classes`` (for train/validation splits)."""

    def __init__(self, dataset, indices: List[int]):
        self.dataset, self.indices = dataset, list(indices)
        self.classes = dataset.classes
        self.flow = getattr(dataset, "flow", None)
        self.samples = [dataset.samples[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Tuple[np.ndarray, int]:
        return self.dataset[self.indices[i]]


def split_dataset(dataset, val_fraction: float, seed: int = 0) -> Tuple[Subset, Subset]:
    """Stratified split: ``val_fraction`` of each class's videos (at least one) go to validation."""
    if not 0.0 < val_fraction < 1.0:
        raise DataError("validation share %r" % (val_fraction,), "it must lie strictly between 0 and 1",
                        "pass e.g. --val-split 0.2, or give --val DIR")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(len(dataset.classes)):
        idx = [i for i, (_, y) in enumerate(dataset.samples) if y == label]
        if len(idx) < 2:
            raise DataError("class '%s' has %d video(s)" % (dataset.classes[label], len(idx)),
                            "a split needs at least one video for training and one for validation",
                            "add videos or pass a separate --val folder")
        rng.shuffle(idx)
        n_val = max(1, int(round(len(idx) * val_fraction)))
        val += idx[:n_val]
        train += idx[n_val:]
    return Subset(dataset, sorted(train)), Subset(dataset, sorted(val))
