"""Calibration feeds: the inputs each role of a bundle really sees in service, recorded through the runtime.

::

    recipe streams ─► open_source ─► StreamRuntime(bundle, sessions=recording) ─► the family's own policy
                                         │ every graph call: a copy of its feeds
                                         ▼
    bundle/calibration/<role>.npz   (artifact "calibration": recipe, data sha256, graph sha256, samples)

The FP32 graphs run in stream order with the runtime's policy, so the recurrent step graphs see the
state carried from zero to steady state, LiteEval's fine graphs see only the frames the gate sends
them, and SlowFast sees real clips. Each stream starts from zero state, as a new camera would. There is
no random or constant calibration data anywhere: a role that the recipe's frames do not reach often
enough is an error that says how to get more.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Union

import numpy as np

from .._version import __version__
from ..backends import Session, open_role
from ..bundle import Bundle, NewArtifact, load_bundle
from ..errors import CalibrationError
from ..log import get_logger
from .recipe import Recipe, load_recipe

log = get_logger(__name__)

KIND = "calibration"
STREAM_KEY = "_stream"  # per sample: which recipe stream it came from (graph inputs never start with "_")


def feeds_file(role: str) -> str:
    return "calibration/%s.npz" % role


class RecordingSession(Session):
    """Runs ``inner`` and keeps a copy of every feed, and with ``outputs=True`` of every output too (copies:
    outputs may be reused buffers, feeds are the caller's)."""

    def __init__(self, inner: Session, outputs: bool = False):
        super().__init__(inner.path, inner.name, precision=inner.precision)
        self.inner = inner
        self.backend = inner.backend
        self.stream = 0
        self.keep_outputs = outputs
        self.feeds: List[Dict[str, np.ndarray]] = []
        self.outputs_seen: List[Dict[str, np.ndarray]] = []
        self.streams: List[int] = []

    def _activate(self) -> None:
        self.inner.activate()
        self.inputs, self.outputs = self.inner.inputs, self.inner.outputs

    def _infer(self, feeds):
        self.feeds.append({k: np.array(v, copy=True) for k, v in feeds.items()})
        self.streams.append(self.stream)
        out = self.inner.infer(feeds)
        if self.keep_outputs:
            self.outputs_seen.append({k: np.array(v, copy=True) for k, v in out.items()})
        return out

    def _deactivate(self) -> None:
        self.inner.deactivate()

    def thread_context(self):
        return self.inner.thread_context()

    def stacked(self, keep: int) -> Dict[str, np.ndarray]:
        """At most ``keep`` recorded calls, evenly spaced over the stream, each input stacked along the batch
        axis ([N, …]), plus the stream each came from."""
        picked = np.unique(np.linspace(0, len(self.feeds) - 1, min(keep, len(self.feeds))).round().astype(int))
        out = {name: np.concatenate([self.feeds[i][name] for i in picked]) for name in self.feeds[0]}
        out[STREAM_KEY] = np.asarray(self.streams, np.int32)[picked]
        return out


@dataclass
class Calibration:
    """What one calibration recorded: samples per role, frames streamed, and the artifacts added."""

    bundle: Bundle
    recipe: Recipe
    frames: int
    streams: int
    samples: Dict[str, int]
    data_sha256: str
    artifacts: List[Any]

    def to_dict(self) -> Dict[str, Any]:
        return {"bundle": str(self.bundle.root), "family": self.bundle.family, "recipe": self.recipe.to_dict(),
                "frames": self.frames, "streams": self.streams, "samples": dict(self.samples),
                "data_sha256": self.data_sha256, "files": [a.file for a in self.artifacts]}


def calibrate(bundle: Union[Bundle, str, Path], recipe: Union[Recipe, str, Path, Mapping[str, Any]], *,
              backend: str = "ort", progress: Optional[Callable[[int], None]] = None) -> Calibration:
    """Record every role's feeds over the recipe's frames and store them in the bundle (one artifact per role).

    ``progress(frames)`` is called as frames are streamed. CalibrationError for a recipe of another family,
    frames that do not reach a role ``recipe.min_samples`` times, or a source that fails; the bundle is only
    changed when every role has its feeds."""
    from ..runtime.source import open_source
    from ..runtime.stream import StreamRuntime

    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    if recipe.family is not None and recipe.family != bundle.family:
        raise CalibrationError("recipe %s is for %s bundles; %s is a %s bundle" % (recipe.name, recipe.family,
                                                                               bundle.root, bundle.family),
                               None, "use the recipe of the bundle's family (calibration/%s*.json)" % bundle.family)
    fps = recipe.fps if recipe.fps is not None else bundle.policy.get("step_fps")
    sessions = {role: RecordingSession(open_role(bundle, role, backend)) for role in bundle.rules.roles}
    digest, counted = hashlib.sha256(), [0]
    streams = 0
    try:
        for session in sessions.values():
            session.activate()
        for index, spec in enumerate(recipe.streams):
            if recipe.max_frames is not None and counted[0] >= recipe.max_frames:
                break
            for session in sessions.values():
                session.stream = index
            with open_source(spec, fps=fps) as source:
                runtime = StreamRuntime(bundle, sessions=sessions, pipelined=False)
                for _ in runtime.run(_frames(source, recipe.max_frames, counted, digest, progress)):
                    pass
            streams += 1
        samples = {role: len(s.feeds) for role, s in sessions.items()}
        _check_enough(bundle, recipe, samples, counted[0])
        data_sha256 = digest.hexdigest()
        new = [NewArtifact(role, KIND, feeds_file(role), _npz_writer(s.stacked(recipe.maximum(role))),
                           info=_info(bundle, role, recipe, data_sha256, min(samples[role], recipe.maximum(role)),
                                      samples[role], counted[0], s))
               for role, s in sessions.items()]
    finally:
        for session in sessions.values():
            session.deactivate()
    artifacts = bundle.add_artifacts(new)
    log.info("calibration %s: %d frames from %d streams; samples %s", recipe.name, counted[0], streams, samples)
    return Calibration(bundle, recipe, counted[0], streams, samples, data_sha256, artifacts)


def _frames(source, limit: Optional[int], counted: List[int], digest, progress) -> Iterator[Any]:
    """The source's frames up to the recipe's total, each hashed (the data hash of the feeds) and counted."""
    for frame in source:
        if limit is not None and counted[0] >= limit:
            return
        digest.update(np.ascontiguousarray(frame.image).tobytes())
        counted[0] += 1
        if progress is not None:
            progress(counted[0])
        yield frame


def _check_enough(bundle: Bundle, recipe: Recipe, samples: Mapping[str, int], frames: int) -> None:
    short = {role: n for role, n in samples.items() if n < recipe.minimum(role)}
    if short:
        detail = ", ".join("%s %d of %d" % (role, n, recipe.minimum(role)) for role, n in sorted(short.items()))
        gated = [r for r in short if r in bundle.rules.gated_roles]
        hint = " (the gate sent the fine graphs only %d frames)" % min(samples[r] for r in gated) if gated else ""
        raise CalibrationError("%d frames of recipe %s give too few calibration samples: %s%s"
                               % (frames, recipe.name, detail, hint),
                               "statistics from a few samples do not describe the stream",
                               "stream more frames (max_frames, more streams or videos), or lower min_samples in "
                               "the recipe if you know these suffice")


def _npz_writer(arrays: Dict[str, np.ndarray]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path.write_bytes(buffer.getvalue())
    return write


def _info(bundle: Bundle, role: str, recipe: Recipe, data_sha256: str, samples: int, calls: int, frames: int,
          session: RecordingSession) -> Dict[str, Any]:
    return {"recipe": recipe.name, "recipe_sha256": recipe.sha256, "streams": list(recipe.streams),
            "data_sha256": data_sha256,
            "source_sha256": bundle.graph(role).sha256, "samples": samples, "calls": calls, "frames": frames,
            "inputs": {t.name: list(t.shape) for t in bundle.graph(role).inputs},
            "recorded_with": session.describe(), "edgevid": __version__}


def load_feeds(bundle: Bundle, role: str) -> Dict[str, np.ndarray]:
    """The recorded feeds of ``role`` ({input: [N, …]} and ``_stream``), checked against the graph they were
    recorded for; CalibrationError when there are none or they are stale (the graph was re-exported since)."""
    found = bundle.graph(role).find(KIND)
    if not found:
        raise CalibrationError("bundle %s has no calibration feeds for role %s" % (bundle.root, role),
                               "INT8 scales come from the inputs the role really sees, never from random data",
                               "record them first: edgevid calibrate %s --recipe calibration/%s.json"
                               % (bundle.root, bundle.family))
    artifact = found[-1]
    if artifact.info.get("source_sha256") != bundle.graph(role).sha256:
        raise CalibrationError("the calibration feeds of role %s are stale" % role,
                               "they were recorded for another version of %s" % bundle.graph(role).file,
                               "record them again: edgevid calibrate %s --recipe …" % bundle.root)
    with np.load(str(bundle.path(artifact))) as data:
        feeds = {k: data[k] for k in data.files}
    expected = {t.name: tuple(t.shape[1:]) for t in bundle.graph(role).inputs}
    got = {k: tuple(v.shape[1:]) for k, v in feeds.items() if k != STREAM_KEY}
    if got != expected:
        raise CalibrationError("the calibration feeds of role %s do not match its inputs" % role,
                               "feeds %s, graph inputs %s" % (got, expected), "record them again with edgevid calibrate")
    return feeds
