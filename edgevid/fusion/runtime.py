"""FusionRuntime: one decoded stream through every member of a fusion bundle, fused per frame.

One pipeline (runtime/pipeline.py: a thread per stage, bounded queues) carries each frame past every member's
stages; each member keeps its own family's policy, sessions and stats::

    capture ─► [flow] ─► colour member's stages ─► … ─► flow member's stages ─► [fuse] ─► FusedPrediction
                 │ once, for every flow member (the fusion's flow settings; runtime/flow.py)

The members' stages run side by side: while one member works on frame t, the next works on frame t-1. A member
that gives no prediction for a frame (a SlowFast window still filling) leaves its latest scores in place, so
members of different rates (a SlowFast clip every N frames, a PreRNN every frame) are fused with their latest
scores; before a member's first scores the fusion is over the members that have some (θ renormalised, said in
``members_ready``), and latest scores are forgotten where the members' state resets for a gap in stream time.

Scores are each member's softmax probabilities; the fused scores are Σ_m θ_m p_m (boost-u) or Σ_m Θ_{m,c} p_{m,c}
(boost-c), the label their argmax (weights.py).
"""
from __future__ import annotations

import contextlib
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ConfigError
from ..runtime.flow import FlowStage
from ..runtime.pipeline import Pipeline
from ..runtime.prediction import Prediction, softmax
from ..runtime.stats import StreamStats
from ..runtime.stream import StreamRuntime, enter_all
from .bundle import FusionBundle, load_fusion
from .weights import member_weight


@dataclass
class FusedPrediction(Prediction):
    """A fused label for one frame (``path`` "fused"). ``members``: per member its own label and score, its weight
    for the fused class, its contribution θ·p to the fused score, whether its scores are from this frame
    (``fresh``) and its path; ``member_scores`` (name → probabilities [C]) ride along like ``logits``."""

    members: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    members_ready: int = 0
    member_scores: Dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> Dict[str, Any]:
        return dict(super().to_dict(), members=self.members, members_ready=self.members_ready)


class _Item:
    """One frame on its way through the members: the colour frame, its flow frame, each member's current value."""

    __slots__ = ("frame", "flow", "values")

    def __init__(self, frame: Any, members: int):
        self.frame, self.flow = frame, None
        self.values: List[Any] = [None] * members


class _Items:
    """The source's frames as items (the pipeline's capture pulls these); interrupt and liveness pass through."""

    def __init__(self, source: Any, members: int):
        self.source, self.members = source, members
        self.live = bool(getattr(source, "live", False))

    def __iter__(self) -> Iterator[_Item]:
        return (_Item(frame, self.members) for frame in self.source)

    def interrupt(self) -> None:
        interrupt = getattr(self.source, "interrupt", None)
        if callable(interrupt):
            interrupt()


class FusionStats:
    """The fusion's stats (its pipeline's stage times, the fused labels' latency) and each member's."""

    def __init__(self, fusion: StreamStats, members: Mapping[str, StreamStats], facts: Mapping[str, Dict[str, Any]]):
        self.fusion, self.members, self.facts = fusion, dict(members), dict(facts)

    def to_dict(self) -> Dict[str, Any]:
        out = self.fusion.to_dict()
        members = {name: dict(stats.to_dict(), **self.facts[name]) for name, stats in self.members.items()}
        out["members"] = members
        # one table of what ran, as for a single bundle: "<member>/<role>"
        out["sessions"] = {"%s/%s" % (name, role): s for name, m in members.items() for role, s in m["sessions"].items()}
        per_frame = [m.get("gmacs_per_frame") for m in members.values()]
        out["gmacs_per_frame"] = sum(per_frame) if all(g is not None for g in per_frame) else None
        return out


class FusionRuntime:
    """Stream a fusion bundle: ``run(source)`` yields a :class:`FusedPrediction` per frame once a member has scores.

    Each member runs on a :class:`StreamRuntime` of its own, made by ``make_member(bundle, **options)`` (default:
    StreamRuntime itself; ``edgevid run`` passes ``make_runtime`` with its backend and precision, planned per role).
    ``runtime_options`` are StreamRuntime's (``backend``, ``threads``, ``preprocess``, ``on_bad_frame``, …) and the
    families' policy options; a policy option goes to every member whose family takes it, and one that no member
    takes is a ConfigError.
    """

    def __init__(self, fusion: Union[FusionBundle, str, Path], *, make_member: Optional[Callable[..., StreamRuntime]] = None,
                 queue_size: int = 4, pipelined: bool = True, **runtime_options: Any):
        self.fusion = fusion if isinstance(fusion, FusionBundle) else load_fusion(fusion)
        policy_keys = {k for k, v in runtime_options.items() if v is not None and k not in _RUNTIME_KEYS}
        taken = {k for m in self.fusion.members for k in m.bundle.rules.stream_options}
        if policy_keys - taken:
            raise ConfigError("option %s applies to no member of the fusion" % ", ".join(sorted(policy_keys - taken)),
                              "its members are %s" % ", ".join("%s (%s)" % (m.name, m.bundle.family)
                                                              for m in self.fusion.members), "leave it out")
        make = make_member or StreamRuntime
        self.pipelined, self.queue_size = bool(pipelined), queue_size
        self.runtimes = [make(m.bundle, pipelined=pipelined, queue_size=queue_size,
                              **_member_options(runtime_options, m.bundle.rules.stream_options))
                         for m in self.fusion.members]
        self.stats = self._new_stats()
        self._runs: "weakref.WeakSet[Any]" = weakref.WeakSet()

    @property
    def names(self) -> List[str]:
        return [m.name for m in self.fusion.members]

    def run(self, source: Any) -> Iterator[FusedPrediction]:
        """Fused predictions for ``source`` (a Source, an iterable of Frame, or a spec for ``open_source``)."""
        gen = self._run(source)
        self._runs.add(gen)
        return gen

    def close(self) -> None:
        for gen in list(self._runs):
            gen.close()

    def __enter__(self) -> "FusionRuntime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # internals -----------------------------------------------------------------------------------
    def _new_stats(self) -> FusionStats:
        facts = {m.name: {"bundle": str(m.bundle.root), "family": m.bundle.family, "modality": m.modality,
                          "weight": member_weight(self.fusion.weights.theta, i)}
                 for i, m in enumerate(self.fusion.members)}
        return FusionStats(StreamStats(), {m.name: rt.new_stats() for m, rt in zip(self.fusion.members, self.runtimes)},
                           facts)

    def _run(self, source: Any) -> Iterator[FusedPrediction]:
        stats = self.stats = self._new_stats()
        with contextlib.ExitStack() as stack:
            if isinstance(source, (str, int, Path)):
                from ..runtime.source import open_source
                source = stack.enter_context(open_source(source))
            stages, sessions = self._stages(stack, stats)
            live = bool(getattr(source, "live", False))
            member_stats = list(stats.members.values())

            def on_frame(_: Any) -> None:
                reconnects = getattr(source, "reconnects", 0)
                for s in [stats.fusion] + member_stats:
                    s.add_source_frame(reconnects)

            pipeline = Pipeline(stages, stats.fusion, queue_size=self.queue_size,
                                skip_bad_frames=any(rt.skips(live) for rt in self.runtimes), on_source_item=on_frame,
                                thread_context=lambda: enter_all(s.thread_context() for s in sessions))
            stack.callback(lambda: stats.fusion.set(reconnects=getattr(source, "reconnects", 0)))
            for s in [stats.fusion] + member_stats:
                s.start()
            items = _Items(source, len(self.runtimes))
            results = pipeline.run_pipelined(items, live=live) if self.pipelined else pipeline.run_sequential(items)
            stack.callback(results.close)
            for pred, captured in results:
                pred.latency = time.perf_counter() - captured
                stats.fusion.add_prediction(pred.latency)
                yield pred

    def _stages(self, stack: contextlib.ExitStack, stats: FusionStats) -> Tuple[List[Tuple[str, Any]], List[Any]]:
        stages: List[Tuple[str, Any]] = []
        sessions: List[Any] = []
        flow = None
        if self.fusion.flow is not None and any(m.modality == "flow" for m in self.fusion.members):
            flow = FlowStage(self.fusion.flow, self._max_gap(), self._scene_cut())
            stages.append(("flow", _flow_fn(flow)))
        for j, (member, runtime) in enumerate(zip(self.fusion.members, self.runtimes)):
            own, member_sessions = runtime.open_stages(stack, stats.members[member.name], flow=False)
            sessions.extend(member_sessions.values())
            for k, (name, fn) in enumerate(own):
                stages.append(("%s.%s" % (member.name, name), _member_fn(j, fn, k == 0, member.modality == "flow")))
        stages.append(("fuse", _Fuser(self.fusion, list(stats.members.values()), self._max_gap())))
        return stages, sessions

    def _scene_cut(self) -> Optional[float]:
        """The flow restarts at the cuts where a flow member's state resets (the lowest of their thresholds)."""
        cuts = [rt.plan.get("settings", {}).get("scene_cut") for m, rt in zip(self.fusion.members, self.runtimes)
                if m.modality == "flow"]
        cuts = [c for c in cuts if c is not None]
        return min(cuts) if cuts else None

    def _max_gap(self) -> Optional[float]:
        """The shortest gap in stream time after which a member starts afresh (its policy's max_gap_s)."""
        gaps = [rt.plan.get("settings", {}).get("max_gap_s") for rt in self.runtimes]
        gaps = [g for g in gaps if g is not None]
        return min(gaps) if gaps else None


_RUNTIME_KEYS = {"backend", "precision", "threads", "preprocess", "on_bad_frame", "sessions"}


def _member_options(options: Mapping[str, Any], takes: Sequence[str]) -> Dict[str, Any]:
    return {k: v for k, v in options.items() if k in _RUNTIME_KEYS or k in takes}


def _flow_fn(flow: FlowStage) -> Callable[[_Item], _Item]:
    def stage(item: _Item) -> _Item:
        item.flow = flow(item.frame)
        return item
    return stage


def _member_fn(j: int, fn: Callable[[Any], Any], first: bool, takes_flow: bool) -> Callable[[_Item], _Item]:
    """Member ``j``'s stage ``fn`` on an item: its first stage takes the colour or flow frame, later ones what the
    stage before gave; None (nothing for this frame) stays None through the member's later stages."""
    def stage(item: _Item) -> _Item:
        value = (item.flow if takes_flow else item.frame) if first else item.values[j]
        if value is not None:
            item.values[j] = fn(value)
        return item
    return stage


class _Fuser:
    """The last stage: each member's latest probabilities, fused with the weights. One thread, frame order."""

    def __init__(self, fusion: FusionBundle, member_stats: Sequence[StreamStats], max_gap_s: Optional[float]):
        self.names = [m.name for m in fusion.members]
        self.theta = np.asarray(fusion.weights.theta, np.float64)
        self.labels = list(fusion.labels)
        self.member_stats = list(member_stats)
        self.max_gap_s = max_gap_s
        self.latest: List[Optional[Tuple[np.ndarray, Prediction]]] = [None] * len(self.names)
        self._last_ts: Optional[float] = None

    def __call__(self, item: _Item) -> Optional[Tuple[FusedPrediction, float]]:
        frame = item.frame
        self._forget_after_gap(float(frame.timestamp))
        now = time.perf_counter()
        fresh = [False] * len(self.names)
        for j, out in enumerate(item.values):
            if out is not None:
                pred, captured = out
                self.member_stats[j].add_prediction(now - captured)
                self.latest[j] = (softmax(np.asarray(pred.logits).reshape(-1)), pred)
                fresh[j] = True
        ready = [j for j, latest in enumerate(self.latest) if latest is not None]
        if not ready:
            return None
        return self._fused(frame, ready, fresh), frame.captured

    def _forget_after_gap(self, timestamp: float) -> None:
        last, self._last_ts = self._last_ts, timestamp
        if last is not None and (timestamp < last or (self.max_gap_s is not None and timestamp - last > self.max_gap_s)):
            self.latest = [None] * len(self.names)  # the members start afresh: their old scores are not this scene's

    def _fused(self, frame: Any, ready: List[int], fresh: List[bool]) -> FusedPrediction:
        theta = self.theta[ready]
        theta = theta / np.maximum(theta.sum(axis=0, keepdims=True), 1e-12)
        probs = np.stack([self.latest[j][0] for j in ready])  # [R, C]
        weighted = theta[:, None] * probs if theta.ndim == 1 else theta * probs
        scores = weighted.sum(axis=0)
        index = int(np.argmax(scores))
        members = {}
        for r, j in enumerate(ready):
            p, pred = self.latest[j]
            weight = float(theta[r]) if theta.ndim == 1 else float(theta[r, index])
            members[self.names[j]] = {"label": pred.label, "score": float(p[pred.class_index]), "weight": weight,
                                      "contribution": float(weighted[r, index]), "fresh": fresh[j], "path": pred.path}
        label = self.labels[index] if index < len(self.labels) else str(index)
        return FusedPrediction(frame.index, float(frame.timestamp), label, index, float(scores[index]), "fused",
                               image=frame.image, logits=scores, members=members, members_ready=len(ready),
                               member_scores={self.names[j]: self.latest[j][0] for j in ready})


def run_fusion_stream(fusion_path: Union[str, Path], source: Any, *, backend: str = "auto",
                      precision: Optional[str] = None, fps: Optional[float] = None, pipelined: bool = True,
                      queue_size: int = 4, json_lines: bool = False, out_video: Optional[Union[str, Path]] = None,
                      max_frames: Optional[int] = None, loop: bool = False, live: Optional[bool] = None,
                      retries: int = 5, emit: Optional[Callable[[str], None]] = None,
                      on_prediction: Optional[Callable[[Prediction], None]] = None,
                      **runtime_options: Any) -> Dict[str, Any]:
    """``edgevid run FUSION_BUNDLE``: as :func:`edgevid.runtime.cli_run.run_stream` for one bundle (the same
    arguments; ``precision`` planned per member and role), with the stats of the fusion, ``members`` (each member's
    own stats, bundle, family, modality and weight) and ``fusion`` (method, weights, flow settings)."""
    from ..runtime.cli_run import drive, make_runtime

    fusion = load_fusion(fusion_path)
    runtime = FusionRuntime(fusion, make_member=lambda bundle, **o: make_runtime(bundle, backend=backend,
                                                                                    precision=precision, **o),
                            pipelined=pipelined, queue_size=queue_size, **runtime_options)
    w = fusion.weights
    facts = {"bundle": str(fusion.root), "family": "fusion",
             "fusion": {"method": w.method, "theta": np.asarray(w.theta).tolist(), "fallback": w.fallback,
                        "flow": fusion.flow, "members": runtime.names}}
    return drive(runtime, source, facts, step_fps=fps if fps is not None else fusion.step_fps, json_lines=json_lines,
                 out_video=out_video, max_frames=max_frames, loop=loop, live=live, retries=retries, emit=emit,
                 on_prediction=on_prediction)
