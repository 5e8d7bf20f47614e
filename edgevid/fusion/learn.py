"""``learn_fusion``: fusion weights for member bundles from their scores on held-out videos, saved as a fusion bundle.

::

    held-out videos (root/<class>/<video>) ─► one stream, a gap in stream time between videos (every member starts
        afresh) ─► FusionRuntime (the members as they stream) ─► each member's mean probabilities per video [N, C]
        ─► weights.learn (boost-u LP, or boost-c) ─► fusion.json beside the members

Scoring through the runtime means the weights are learned on exactly the scores the stream fuses: the same flow
stage, frame rate and policies. A video's score is the mean of the member's latest probabilities over its frames
(the seed's video-level classification); a member that gave no scores for a video (shorter than a SlowFast clip
window) scores it uniformly, counted in ``held_out.unscored``.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..bundle import load_bundle
from ..errors import ConfigError, DataError
from ..fsutil import atomic_dir, write_json
from ..log import get_logger
from .bundle import MANIFEST, FusionBundle, Member, check_members, member_path, step_fps
from .runtime import FusionRuntime
from .weights import Weights, learn

log = get_logger(__name__)

PathLike = Union[str, Path]
GAP_S = 1.0e6  # stream time between two held-out videos: longer than any member's max_gap_s
Progress = Callable[[int, int], None]


def learn_fusion(members: Sequence[Tuple[str, PathLike]], data: PathLike, out: PathLike, *, method: str = "boost-u",
                 nu: float = 0.5, fallback: str = "equal", flow: Optional[Mapping[str, Any]] = None,
                 backend: str = "auto", overwrite: bool = False, progress: Optional[Progress] = None) -> FusionBundle:
    """Learn fusion weights of ``members`` ((name, bundle folder), two or more) on the held-out videos under
    ``data`` and write the fusion bundle ``out``; returns it. ``flow``: the flow settings the fusion must use (None:
    the flow members' own; a mismatch is a ConfigError). ``progress(done, total)`` after each video."""
    out = Path(out)
    loaded = [Member(str(name), load_bundle(path), member_path(out, Path(path))) for name, path in members]
    flow = check_members(loaded, dict(flow) if flow is not None else None, error=ConfigError)
    for m in loaded:
        if _inside(Path(m.bundle.root), out):
            raise ConfigError("member '%s' (%s) is inside the fusion folder %s" % (m.name, m.bundle.root, out),
                              "writing the fusion replaces that folder", "write the fusion to another --out")
    labels = list(loaded[0].bundle.labels)
    videos, truth = held_out_videos(data, labels)
    equal = Weights(np.full(len(loaded), 1.0 / len(loaded)), "boost-u", None, "equal (for scoring)")
    scores, unscored = member_scores(FusionBundle(loaded, equal, labels, flow), videos, backend, progress)
    weights = learn(scores, truth, method=method, nu=nu, fallback=fallback)
    other = "boost-c" if method == "boost-u" else "boost-u"
    compared = learn(scores, truth, method=other, nu=nu, fallback="equal")
    held_out = {"data": str(data), "videos": len(videos), "unscored": unscored, "step_fps": step_fps(loaded),
                "accuracy": dict({m.name: _accuracy(s, truth) for m, s in zip(loaded, scores)},
                                 fused=_accuracy(weights.fuse(scores), truth)),
                "compare": {other: {"accuracy": _accuracy(compared.fuse(scores), truth),
                                    "theta": np.asarray(compared.theta).round(6).tolist(),
                                    "fallback": compared.fallback}},
                "note": "accuracy on the videos the weights were learned on: the fused figure is optimistic; measure "
                        "it on other videos ('edgevid demo --model fusion' does)"}
    fusion = FusionBundle(loaded, weights, labels, flow, meta={"held_out": held_out,
                                                               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / MANIFEST, fusion.to_dict())
    fusion.root = out
    return fusion


def held_out_videos(data: PathLike, labels: Sequence[str]) -> Tuple[List[Path], np.ndarray]:
    """The videos of a class-folder set and their indices in the members' ``labels`` (DataError for a class the
    members do not know)."""
    from ..data.folder import VideoFolder

    folder = VideoFolder(data, num_frames=1)  # lists the files; nothing is decoded here
    unknown = [c for c in folder.classes if c not in labels]
    if unknown:
        raise DataError("held-out classes %s are not among the members' labels" % unknown,
                        "the members know %s" % ", ".join(labels),
                        "hold out videos of the classes the members were trained on")
    return [p for p, _ in folder.samples], np.array([labels.index(folder.classes[y]) for _, y in folder.samples])


def member_scores(fusion: FusionBundle, videos: Sequence[Path], backend: str = "auto",
                  progress: Optional[Progress] = None) -> Tuple[List[np.ndarray], Dict[str, int]]:
    """Each member's mean probabilities per video ([N, C] per member) as the fused stream sees them, and per member
    the number of videos it gave no scores for (uniform scores stand in)."""
    rate = step_fps(fusion.members)
    names, c = [m.name for m in fusion.members], len(fusion.labels)
    sums = np.zeros((len(names), len(videos), c))
    counts = np.zeros((len(names), len(videos)))
    source = _Concatenated(videos, rate, progress)
    # every member starts afresh at each video: its policy resets after a gap, even one exported without max_gap_s
    runtime = FusionRuntime(fusion, backend=backend, max_gap_s=GAP_S / 2)
    for pred in runtime.run(source):
        v = source.video_of(pred.frame_index)
        for j, name in enumerate(names):
            p = pred.member_scores.get(name)
            if p is not None:
                sums[j, v] += p
                counts[j, v] += 1
    missing = counts == 0
    sums[missing] = 1.0 / c
    counts[missing] = 1
    unscored = {name: int(missing[j].sum()) for j, name in enumerate(names)}
    if any(unscored.values()):
        log.warning("videos without scores (shorter than a member's window), scored uniformly: %s", unscored)
    return [sums[j] / counts[j][:, None] for j in range(len(names))], unscored


class _Concatenated:
    """The held-out videos as one stream at ``fps``: frames renumbered, each video GAP_S after the one before."""

    live = False

    def __init__(self, videos: Sequence[Path], fps: Optional[float], progress: Optional[Progress]):
        self.videos, self.fps, self.progress = list(videos), fps, progress
        self._starts: List[int] = []

    def __iter__(self) -> Iterator[Any]:
        from ..runtime.source import open_source

        index, offset = 0, 0.0
        for v, path in enumerate(self.videos):
            self._starts.append(index)
            last = 0.0
            with open_source(str(path), fps=self.fps) as src:
                for frame in src:
                    last = float(frame.timestamp)
                    yield dataclasses.replace(frame, index=index, timestamp=offset + last, captured=time.perf_counter())
                    index += 1
            offset += last + GAP_S
            if self.progress is not None:
                self.progress(v + 1, len(self.videos))

    def video_of(self, frame_index: int) -> int:
        return int(np.searchsorted(self._starts, frame_index, side="right")) - 1


def _accuracy(scores: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == truth))


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


__all__ = ["learn_fusion", "held_out_videos", "member_scores"]
