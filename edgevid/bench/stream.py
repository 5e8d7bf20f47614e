"""End-to-end stream measurements of ``edgevid bench``: throughput, paced capture-to-label latency, stages,
fine-model rate, GMACs, accuracy against ground truth, gated vs always-fine and the compute-bound limit.

Runs (each a fresh StreamRuntime over a freshly opened source, the code path of ``edgevid run``)::

    throughput  pipelined and sequential, the source read as fast as it delivers
    paced       pipelined, frames released on their timestamps (runtime.source.PacedSource), as a camera
    always-fine LiteEval only: pipelined, every gate forced to the fine branch (policy setting gate="fine")

The first ``warmup`` predictions of each run are left out of its FPS and latency (sessions warming up);
stage timings are the run's whole series. Anything that cannot be measured is ``{"not_measured": why}``.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

from ..bundle import Bundle, load_bundle
from ..data.scoring import score_stream
from ..errors import ConfigError, SourceError
from ..metrics import latency_summary
from ..runtime.cli_run import make_runtime
from ..runtime.source import PacedSource, open_source

Progress = Optional[Callable[[str], None]]
WARMUP = 8  # predictions left out of a run's FPS and latency
FINE_WINDOW = 16  # predictions per point of the fine-rate series


def not_measured(why: str) -> Dict[str, str]:
    """The one form of a figure that could not be measured."""
    return {"not_measured": why}


def measure_streams(bundle: Any, source: Any, *, backend: str = "auto", precision: Optional[str] = None,
                    frames: Optional[int] = None, progress: Progress = None, warmup: int = WARMUP) -> Dict[str, Any]:
    """The ``streams`` section of bench.json for ``bundle`` over the source spec ``source`` (JSON-ready).

    ``frames`` caps every run at that many source frames (None: the whole source; a live source needs it,
    and is never paced again: a camera hands frames over at its own rate). SourceError when the source ends
    before ``warmup`` predictions and one more."""
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    say = progress or (lambda message: None)
    opts = dict(backend=backend, precision=precision, frames=frames, warmup=warmup)
    pipelined, sequential = _throughput_runs(b, source, opts, say)
    say("stream: paced at the source's frame rate")
    paced = run_once(b, source, pipelined=True, paced=True, **opts)
    always = _always_fine(b, source, opts, say)
    truth = _segments(source, pipelined["segments"])
    report = {
        "source": str(source), "family": b.family, "warmup_predictions": warmup, "frames_limit": frames,
        "backend": pipelined["backend"], "segments": truth if truth is not None else not_measured(
            "the source has no ground truth (a synthetic stream or a video with a .labels.json sidecar has)"),
        "throughput": throughput_summary(pipelined, sequential),
        "paced": paced_summary(paced, sequential),
        "stages": {"pipelined": stage_summaries(pipelined), "sequential": stage_summaries(sequential)},
        "fine_rate": fine_rate_series(pipelined),
        "gmacs_per_frame": _or_why(pipelined["stats"]["gmacs_per_frame"], "the bundle records no GMACs per graph"),
        "accuracy": accuracy(pipelined, truth, pipelined["source_fps"]),
        "compute_bound": compute_bound(sequential, pipelined["fps"]),
        "always_fine": always if "not_measured" in always else summary(always),
    }
    report["gated_vs_always_fine"] = gated_vs_always_fine(report, always, truth)
    return report


def throughput(bundle: Any, source: Any, *, backend: str = "auto", precision: Optional[str] = None,
               frames: Optional[int] = None, progress: Progress = None, warmup: int = WARMUP) -> Dict[str, Any]:
    """The ``throughput`` part alone: pipelined and sequential over the source read as fast as it delivers."""
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    opts = dict(backend=backend, precision=precision, frames=frames, warmup=warmup)
    return throughput_summary(*_throughput_runs(b, source, opts, progress or (lambda message: None)))


def throughput_summary(pipelined: Dict[str, Any], sequential: Dict[str, Any]) -> Dict[str, Any]:
    return {"pipelined": summary(pipelined), "sequential": summary(sequential),
            "pipelined_over_sequential": _ratio(pipelined["fps"], sequential["fps"])}


def _throughput_runs(bundle: Bundle, source: Any, opts: Dict[str, Any], say: Callable[[str], None]):
    say("stream: pipelined, as fast as the source delivers")
    pipelined = run_once(bundle, source, pipelined=True, **opts)
    say("stream: sequential")
    return pipelined, run_once(bundle, source, pipelined=False, **opts)


# one run ---------------------------------------------------------------------------------------------
def run_once(bundle: Bundle, source: Any, *, pipelined: bool, paced: bool = False, backend: str = "auto",
             precision: Optional[str] = None, frames: Optional[int] = None, warmup: int = WARMUP,
             **options: Any) -> Dict[str, Any]:
    """Stream ``source`` once; returns the predictions (dicts with ``arrived``, perf_counter seconds), the
    stats object's dict and stage series, FPS after warm-up and the backend that ran."""
    runtime = make_runtime(bundle, backend=backend, precision=precision, pipelined=pipelined, **options)
    predictions: List[Dict[str, Any]] = []
    with open_source(source, fps=bundle.policy.get("step_fps")) as src:
        if src.live and frames is None:
            raise ConfigError("a live source (%s) never ends by itself" % src.name, None,
                              "give the benchmark a number of frames")
        source_fps, segments = src.fps, getattr(src, "segments", None)
        # a live source hands frames over at its own pace already
        stream = PacedSource(_Take(src, frames)) if paced and not src.live else _Take(src, frames)
        gen = runtime.run(stream)
        try:
            for pred in gen:
                predictions.append(dict(pred.to_dict(), arrived=time.perf_counter()))
        finally:
            gen.close()
    if len(predictions) <= warmup:
        raise SourceError("source %s ended after %d predictions" % (source, len(predictions)),
                          "the benchmark leaves the first %d out as warm-up and needs more to measure" % warmup,
                          "use a longer source (synthetic:segments=…) or more --frames")
    stats = runtime.stats.to_dict()
    return {"predictions": predictions, "stats": stats, "series": runtime.stats.stage_series(), "warmup": warmup,
            "fps": _fps(predictions[warmup:]), "backend": _backend(stats["sessions"]), "pipelined": pipelined,
            "source_fps": source_fps, "segments": segments, "family": bundle.rules.title}


class _Take:
    """At most ``limit`` frames of ``source`` (None: all); passes ``live``, ``interrupt`` and ``reconnects``."""

    def __init__(self, source: Any, limit: Optional[int]):
        self.source, self.limit = source, limit
        self.live = getattr(source, "live", False)
        self.name = getattr(source, "name", str(source))
        self.fps = getattr(source, "fps", None)

    @property
    def reconnects(self) -> int:
        return getattr(self.source, "reconnects", 0)

    def __iter__(self):
        for count, frame in enumerate(self.source):
            if self.limit is not None and count >= self.limit:
                return
            yield frame

    def interrupt(self) -> None:
        self.source.interrupt()


def _fps(predictions: List[Dict[str, Any]]) -> Optional[float]:
    wall = predictions[-1]["arrived"] - predictions[0]["arrived"] if len(predictions) > 1 else 0.0
    return (len(predictions) - 1) / wall if wall > 0 else None


def _backend(sessions: Dict[str, Dict[str, Any]]) -> str:
    from ..backends.registry import backend_names
    return backend_names(sessions)


# summaries ---------------------------------------------------------------------------------------------
def summary(run: Dict[str, Any]) -> Dict[str, Any]:
    """FPS, capture-to-label latency (after warm-up), frames, drops, fine rate and GMACs of one run."""
    stats = run["stats"]
    return {"fps": run["fps"], "predictions": len(run["predictions"]), "source_frames": stats["source_frames"],
            "latency_ms": latency_summary([p["latency"] for p in run["predictions"][run["warmup"]:]]),
            "dropped": stats["dropped"], "fine_rate": stats["fine_rate"], "gmacs_per_frame": stats["gmacs_per_frame"],
            "sessions": stats["sessions"], "preprocess": stats.get("preprocess")}


def paced_summary(run: Dict[str, Any], sequential: Dict[str, Any]) -> Dict[str, Any]:
    """The paced run: its summary, the source's frame rate, and its p99 capture-to-label latency over the
    per-frame compute: the sequential run's capture-to-label latency (one frame at a time, no queueing), its
    mean and its p99 (the frames on the costliest path, e.g. LiteEval's fine steps)."""
    out = summary(run)
    compute = summary(sequential)["latency_ms"]
    out["per_frame_compute_ms"] = {"mean": compute["mean"], "p99": compute["p99"]}
    out["p99_over_per_frame_compute"] = _ratio(out["latency_ms"]["p99"], compute["mean"])
    out["p99_over_per_frame_compute_p99"] = _ratio(out["latency_ms"]["p99"], compute["p99"])
    out["source_fps"] = _or_why(run["source_fps"], "the source has no frame rate")
    out["dropped_by_queue"] = run["stats"]["dropped_by_queue"]
    out["latency_samples_ms"] = [1000.0 * p["latency"] for p in run["predictions"][run["warmup"]:]]
    return out


def stage_summaries(run: Dict[str, Any]) -> Dict[str, Any]:
    """``latency_summary`` of every stage and graph series, with its runs per source frame and the samples
    (ms) the plots draw."""
    frames = run["stats"]["source_frames"] or None
    return {name: dict(latency_summary(series), per_frame=len(series) / frames if frames else None,
                       samples_ms=[1000.0 * s for s in series])
            for name, series in run["series"].items()}


def fine_rate_series(run: Dict[str, Any], window: int = FINE_WINDOW) -> Dict[str, Any]:
    """The share of fine steps per ``window`` predictions, by first frame index (gated families only)."""
    preds = run["predictions"]
    if run["stats"]["fine_rate"] is None:
        return not_measured("a %s stream has no gated roles" % run["family"])
    starts, rates = [], []
    for k in range(0, len(preds), window):
        chunk = preds[k:k + window]
        starts.append(chunk[0]["frame_index"])
        rates.append(sum(p["path"] == "fine" for p in chunk) / len(chunk))
    return {"overall": run["stats"]["fine_rate"], "window_predictions": window, "start_frame": starts, "rate": rates}


def accuracy(run: Dict[str, Any], truth: Optional[List[Dict[str, Any]]], fps: Optional[float]) -> Dict[str, Any]:
    if truth is None:
        return not_measured("the source has no ground truth")
    return score_stream(run["predictions"], reached(truth, run["predictions"]), fps)


def reached(truth: List[Dict[str, Any]], predictions: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The segments the run streamed to their end: a --frames cap stops inside the source, and a segment never
    reached is not a wrong one."""
    last = max((p["frame_index"] for p in predictions), default=-1)
    return [seg for seg in truth if seg["end"] - 1 <= last]


def compute_bound(sequential: Dict[str, Any], stream_fps: Optional[float]) -> Dict[str, Any]:
    """The compute-bound limit: 1 / Σ over graphs of (mean time × runs per source frame), graph times from the
    sequential run (one graph at a time, each on every core), runs per frame as measured (the fine rate)."""
    roles = list(sequential["stats"]["gmacs_by_graph"])
    series, frames = sequential["series"], sequential["stats"]["source_frames"]
    missing = [r for r in roles if not series.get(r)]
    if missing or not frames:
        return not_measured("no timings of %s in the stream's stats" % ", ".join(missing or roles))
    per_graph = {r: 1000.0 * sum(series[r]) / len(series[r]) for r in roles}
    per_frame = {r: len(series[r]) / frames for r in roles}
    ms = sum(per_graph[r] * per_frame[r] for r in roles)
    limit = 1000.0 / ms if ms > 0 else None
    return {"graph_ms": per_graph, "runs_per_frame": per_frame, "compute_ms_per_frame": ms, "limit_fps": limit,
            "pipelined_over_limit": _ratio(stream_fps, limit),
            "measured_from": "graph timings of the sequential run (stats stages named by role)"}


def gated_vs_always_fine(report: Dict[str, Any], always: Dict[str, Any],
                         truth: Optional[List[Dict[str, Any]]]) -> Dict[str, Any]:
    """Gated over always-fine: time per frame, GMACs per frame; accuracy difference in points."""
    if "not_measured" in always:
        return always
    gated = report["throughput"]["pipelined"]
    out: Dict[str, Any] = {
        "time_per_frame": _ratio(_inverse(gated["fps"]), _inverse(always["fps"])),
        "gmacs_per_frame": _ratio(gated["gmacs_per_frame"], always["stats"]["gmacs_per_frame"]),
        "always_fine_means": "the same bundle with every gate forced to fine (not a separately trained head)"}
    if truth is None:
        out["accuracy_points"] = not_measured("the source has no ground truth")
        return out
    fine = score_stream(always["predictions"], reached(truth, always["predictions"]))
    out["always_fine_accuracy"] = {k: fine[k] for k in ("segment_accuracy", "frame_accuracy")}
    gated_acc = report["accuracy"]
    out["accuracy_points"] = {k: _points(gated_acc[k], fine[k]) for k in ("segment_accuracy", "frame_accuracy")}
    return out


def _always_fine(bundle: Bundle, source: Any, opts: Dict[str, Any], say: Callable[[str], None]) -> Dict[str, Any]:
    if "gate" not in bundle.rules.stream_options:
        return not_measured("a %s stream has no gate to force" % bundle.rules.title)
    say("stream: always-fine (every gate forced to fine)")
    return run_once(bundle, source, pipelined=True, gate="fine", **opts)


def _segments(source: Any, segments: Optional[List[Dict[str, Any]]]) -> Optional[List[Dict[str, Any]]]:
    """The ground-truth segments: the source's own (a synthetic stream's), or a video's .labels.json sidecar."""
    if segments is not None:
        return [dict(s) for s in segments]
    from ..data.synthetic import labels_path, read_stream_labels
    if isinstance(source, str) and labels_path(source).is_file():
        return read_stream_labels(source)["segments"]
    return None


def _or_why(value: Any, why: str) -> Any:
    return not_measured(why) if value is None else value


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def _inverse(x: Optional[float]) -> Optional[float]:
    return 1.0 / x if x else None


def _points(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return 100.0 * (a - b) if a is not None and b is not None else None
