"""Streaming statistics: stage latencies, capture-to-label latency, FPS, drops, fine-model rate, GMACs.

Stage threads record concurrently, so every method takes one lock. Percentiles are over the most
recent ``window`` samples of each series (a stream may run for days); counts and totals are exact.

GMACs (docs/models.md §2.7). A family with gated roles (LiteEval: fine_cnn, fine_step, from the
family table) reports per step of its chain::

    gmacs_per_frame   = Σ always-run roles + fine_rate · Σ gated roles
    gmacs_always_fine = Σ gated roles
    gmacs_saved       = 1 − gmacs_per_frame / gmacs_always_fine

Other families report what their stages spent (``add_gmacs`` per graph run)::

    gmacs_per_frame   = gmacs spent / source frames      (SlowFast: clip GMACs × clips / frames)

``sessions`` records, per role, the backend, precision and file that actually ran it.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence


from ..metrics import latency_summary

Recorder = Callable[[str, float], None]  # (stage or graph name, seconds): StreamStats.add_stage

# what prepares frames unless the stages say otherwise (runtime/device/preprocess.py: the GPU path)
CPU_PREPROCESS = {"where": "cpu", "by": "OpenCV (edgevid/preprocess.py)"}


class StreamStats:
    """Thread-safe counters and latency series for one run. ``to_dict()`` is JSON-able."""

    def __init__(self, gmacs: Optional[Mapping[str, Optional[float]]] = None, window: int = 10000, *,
                 gated_roles: Sequence[str] = ()):
        self.gmacs = dict(gmacs or {})
        self.gated_roles = tuple(gated_roles)
        self.sessions: Dict[str, Dict[str, Any]] = {}
        self.preprocess: Dict[str, Any] = dict(CPU_PREPROCESS)  # where frames were prepared (stages set it)
        self.notes: Dict[str, str] = {}
        self.window = int(window)
        self._lock = threading.Lock()
        self._stages: Dict[str, Deque[float]] = {}
        self._stage_counts: Dict[str, int] = {}
        self._latency: Deque[float] = deque(maxlen=self.window)
        self.frames = 0  # predictions delivered
        self.source_frames = 0  # frames the source delivered (after fps resampling)
        self.dropped: Dict[str, int] = {}  # per queue, live sources only
        self.reconnects = 0
        self.steps = 0
        self.fine_steps = 0
        self.fine_capped = 0
        self.resets = 0
        self.resets_by_cause: Dict[str, int] = {}  # policies that know why they reset (recurrent.py)
        self.gmacs_spent = 0.0  # families without the LiteEval formula report runs here
        self.counts: Dict[str, int] = {}  # a family's own counters (SlowFast: clips, held, …), top level in to_dict
        self.started: Optional[float] = None
        self._first: Optional[float] = None
        self._last: Optional[float] = None

    # recording (any thread) ----------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            self.started = time.perf_counter()

    def add_stage(self, name: str, seconds: float) -> None:
        with self._lock:
            series = self._stages.get(name)
            if series is None:
                series = self._stages[name] = deque(maxlen=self.window)
            series.append(seconds)
            self._stage_counts[name] = self._stage_counts.get(name, 0) + 1

    def add_source_frame(self, reconnects: int = 0) -> None:
        with self._lock:
            self.source_frames += 1
            self.reconnects = reconnects

    def add_drop(self, where: str) -> None:
        with self._lock:
            self.dropped[where] = self.dropped.get(where, 0) + 1

    def add_step(self, path: str, capped: bool = False) -> None:
        with self._lock:
            self.steps += 1
            self.fine_steps += path == "fine"
            self.fine_capped += bool(capped)

    def add_gmacs(self, gmacs: Optional[float]) -> None:
        """A graph run of ``gmacs`` (None: unknown, not counted)."""
        if gmacs is not None:
            with self._lock:
                self.gmacs_spent += float(gmacs)

    def note(self, name: str, text: str) -> None:
        """A fact about the run said in words (``source_ended_early``), reported at the top level of ``to_dict``."""
        with self._lock:
            self.notes[name] = str(text)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to a family's counter ``name`` (reported at the top level of ``to_dict``)."""
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + int(n)

    def add_prediction(self, latency: float) -> None:
        now = time.perf_counter()
        with self._lock:
            self.frames += 1
            self._latency.append(latency)
            if self._first is None:
                self._first = now
            self._last = now

    def set(self, **values: int) -> None:
        """Counters owned elsewhere (reconnects from the source, resets from the policy)."""
        with self._lock:
            for name, value in values.items():
                setattr(self, name, value)

    # reading -------------------------------------------------------------------------------------
    @property
    def fine_rate(self) -> Optional[float]:
        """Share of steps on the gated (fine) roles; None for families without gated roles."""
        return self.fine_steps / self.steps if self.steps and self.gated_roles else None

    def stage_series(self) -> Dict[str, List[float]]:
        """The recent seconds of every stage and graph (the last ``window`` of each), copies."""
        with self._lock:
            return {name: list(series) for name, series in self._stages.items()}

    def to_dict(self) -> Dict[str, Any]:
        with self._lock:
            wall = (self._last - self.started) if self.started is not None and self._last is not None else 0.0
            stages = {name: dict(_percentiles_ms(series), count=self._stage_counts[name])
                      for name, series in self._stages.items()}
            out = {
                "frames": self.frames, "source_frames": self.source_frames,
                "dropped": sum(self.dropped.values()), "dropped_by_queue": dict(self.dropped),
                "reconnects": self.reconnects, "wall_s": wall, "fps": self.frames / wall if wall > 0 else None,
                "latency_ms": _percentiles_ms(self._latency), "stages_ms": stages,
                "steps": self.steps, "fine_steps": self.fine_steps, "fine_rate": self.fine_rate,
                "fine_capped": self.fine_capped, "resets": self.resets,
                "resets_by_cause": dict(self.resets_by_cause), "sessions": {r: dict(s) for r, s in self.sessions.items()},
                "preprocess": dict(self.preprocess),
            }
            out.update(self._gmacs())
            for name, value in list(self.counts.items()) + list(self.notes.items()):
                out.setdefault(name, value)  # never shadows a common key
        return out

    def _gmacs(self) -> Dict[str, Any]:
        result: Dict[str, Any] = {"gmacs_by_graph": dict(self.gmacs), "gmacs_per_frame": None,
                                  "gmacs_always_fine": None, "gmacs_saved": None}
        if not self.gated_roles:
            if self.source_frames and self.gmacs_spent:
                result["gmacs_per_frame"] = self.gmacs_spent / self.source_frames
            return result
        if any(self.gmacs.get(r) is None for r in self.gmacs):
            return result
        gated = sum(float(self.gmacs[r]) for r in self.gated_roles)
        always = sum(float(g) for r, g in self.gmacs.items() if r not in self.gated_roles)
        result["gmacs_always_fine"] = gated
        if self.steps:
            per_frame = always + self.fine_steps / self.steps * gated
            result["gmacs_per_frame"] = per_frame
            result["gmacs_saved"] = 1.0 - per_frame / gated if gated > 0 else None
        return result


def timed(record: Optional[Recorder], name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, its wall time passed to ``record(name, seconds)``: the one timer of every stage and
    graph (``record`` None: just the call). A call that raises records nothing."""
    if record is None:
        return fn(*args)
    start = time.perf_counter()
    out = fn(*args)
    record(name, time.perf_counter() - start)
    return out


def _percentiles_ms(series) -> Dict[str, Optional[float]]:
    summary = latency_summary(list(series))
    return {key: summary[key] for key in ("p50", "p90", "p99", "mean")}
