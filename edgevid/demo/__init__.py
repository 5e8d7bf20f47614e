"""``edgevid demo``: a model family end to end on a CPU, from nothing to a measured report.

::

    synthetic data (train / val class folders, a held-out stream with ground truth)
      ─► train the family's small model ─► export the bundle ─► parity PyTorch vs ONNX Runtime
      ─► stream the held-out video through ONNX Runtime ─► report.json + annotated video

The steps common to every family live here; each family's module (``liteeval``, …) says how to
train, export and check its model, which policy options its stream takes, and what its report adds.
Everything is written into a temporary folder beside ``out`` that becomes ``out`` only when every
step succeeded, so a failed or interrupted demo leaves nothing half-written.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ..errors import ConfigError
from ..fsutil import atomic_dir, write_json
from ..data.scoring import score_stream
from ..log import get_logger
from .steps import QUICK_NOTE, make_data, timed

log = get_logger(__name__)


Progress = Callable[[str], None]


def family_demo(model: str) -> Any:
    """The demo module of a model family (named in the family table); ConfigError for an unknown family."""
    from .. import families

    return families.get(model, ConfigError).entry("demo")


def run_demo(out, *, model: str = "liteeval", seed: int = 0, quick: bool = False, overwrite: bool = False,
             settings: Any = None, progress: Optional[Progress] = None, show_bars: bool = False,
             precision: Optional[str] = None) -> Dict[str, Any]:
    """Run the whole demo of ``model`` into ``out``; returns the report (also ``out/report.json``).

    ``precision`` ("int8" or "fp16") also calibrates the bundle on held-out synthetic streams, quantizes it
    (edgevid.quant) and streams at that precision where the family's rules and the measurement allow."""
    if model == "fusion":  # two families' models and their fusion: its own steps (fusion.py)
        from .fusion import run

        if precision is not None:
            raise ConfigError("--precision with the fusion demo", "it streams its members at FP32",
                              "leave --precision out, or run a family's demo with it")
        return run(out, seed=seed, quick=quick, overwrite=overwrite, settings=settings, progress=progress,
                   show_bars=show_bars)
    family = family_demo(model)
    s = settings or (family.QUICK if quick else family.FULL)
    say = progress or (lambda message: log.info("%s", message))
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError("the demo output folder %s already exists" % out, None,
                          "pass --overwrite to replace it, or choose another --out")
    timings: Dict[str, float] = {}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        say("1/5 generating synthetic data")
        data = timed(timings, "data", make_data, tmp / "data", s, seed)
        say("2/5 training %s on %d videos" % (family.TITLE, data["train_videos"]))
        trained = timed(timings, "train", family.train, tmp, data, s, seed, show_bars)
        say("3/5 exporting the bundle")
        bundle = timed(timings, "export", family.export, trained, tmp / "bundle", s)
        say("4/5 checking parity PyTorch vs ONNX Runtime")
        parity = timed(timings, "verify", family.verify, trained, bundle, data["stream"], s)
        options = family.stream_options(s)
        quantized = None
        if precision is not None:
            say("   calibrating and quantizing to %s" % precision)
            quantized = timed(timings, "quantize", _quantize, bundle, precision, model, seed, quick)
            options = dict(options, precision=precision)
        say("5/5 streaming the held-out video through ONNX Runtime%s" % (" at %s" % precision if precision else ""))
        stream = timed(timings, "stream", _stream, tmp, data["stream"], options)
        report = _report(model, family, s, seed, data, trained, parity, stream, timings,
                         quick=quick or s == family.QUICK)
        if data["stress"] is not None:
            say("   streaming the stress stream (an action change every %d frames)" % s.frames)
            report["stress"] = timed(timings, "stress", _stress, tmp, data["stress"], options)
        if quantized is not None:
            report["precision"] = dict(quantized, asked=precision)
        write_json(tmp / "report.json", report)
    return report


def _quantize(bundle, precision: str, model: str, seed: int, quick: bool) -> Dict[str, Any]:
    """Calibrate on held-out synthetic streams (seeds the demo never trains or scores on), quantize, and keep
    the report's headline figures."""
    from ..quant import calibrate, quantize

    segments, frames = (3, 8) if quick else (20, 16)
    streams = ["synthetic:seed=%d,segments=%d,frames=%d,fps=10" % (7000 + seed + k, segments, frames) for k in (0, 1)]
    calibrate(bundle, {"name": "demo-%s" % model, "family": model, "streams": streams,
                       "min_samples": 2 if quick else 32, "max_samples": {"*": 256, "fine_cnn": 128}})
    report = quantize(bundle, precision, streams=["synthetic:seed=%d,segments=%d,frames=8,fps=10"
                                                  % (9000 + seed, 4 if quick else 30)])
    return {"kept": report["kept"], "fp32": report["fp32"],
            "plans": {name: {"roles": sorted(e["roles"]), "targets": e["targets"],
                             "top1_agreement": e["stream"]["top1_agreement"],
                             "segment_accuracy": e["stream"].get("segment_accuracy")}
                      for name, e in report["plans"].items()}}


def _stream(tmp: Path, stream_path: Path, options: Dict[str, Any]) -> Dict[str, Any]:
    from ..runtime.cli_run import run_stream

    predictions: List[Dict[str, Any]] = []
    stats = run_stream(tmp / "bundle", str(stream_path), backend="ort", out_video=tmp / "annotated.avi",
                       on_prediction=lambda p: predictions.append(p.to_dict()), **options)
    with open(str(tmp / "predictions.jsonl"), "w") as f:  # inside the demo's temporary folder
        f.writelines(json.dumps(p) + "\n" for p in predictions)
    return {"stats": stats, "predictions": predictions}


def _stress(tmp: Path, stream_path: Path, options: Dict[str, Any]) -> Dict[str, Any]:
    """The stress stream scored like the held-out one (no annotated video, no predictions file)."""
    from ..data.synthetic import read_stream_labels
    from ..runtime.cli_run import run_stream

    predictions: List[Dict[str, Any]] = []
    run_stream(tmp / "bundle", str(stream_path), backend="ort", on_prediction=lambda p: predictions.append(p.to_dict()),
               **options)
    truth = read_stream_labels(stream_path)
    return {"stream": "data/%s" % stream_path.name, "segment_frames": truth["segments"][0]["end"],
            "accuracy": score_stream(predictions, truth["segments"], truth["fps"])}


LATENCY_NOTE = ("capture-to-label latency of a file source read as fast as possible: frames wait in the queues, so "
                "it includes queueing; edgevid bench BUNDLE measures it with the source paced at its frame rate, as a "
                "camera hands frames over")


def _report(model, family, s, seed, data, trained, parity, stream, timings, quick: bool = False) -> Dict[str, Any]:
    from ..data.synthetic import read_stream_labels

    truth = read_stream_labels(data["stream"])
    stats = stream["stats"]
    report = {
        "model": model, "title": family.TITLE, "seed": seed, "quick": bool(quick), "settings": asdict(s),
        "notes": ([QUICK_NOTE] if quick else []) + [LATENCY_NOTE],
        "accuracy": score_stream(stream["predictions"], truth["segments"], truth["fps"]),
        "gmacs_per_frame": stats["gmacs_per_frame"], "gmacs_by_graph": stats["gmacs_by_graph"],
        "fps": stats["fps"], "latency_ms": stats["latency_ms"], "latency_measures": LATENCY_NOTE,
        "stages_ms": stats["stages_ms"],
        "frames": stats["frames"], "source_frames": stats["source_frames"], "dropped": stats["dropped"],
        "training": family.training_summary(trained),
        "parity": parity,
        "data": {"classes": data["classes"], "train_videos": data["train_videos"], "val_videos": data["val_videos"],
                 "stream_frames": truth["segments"][-1]["end"] if truth["segments"] else 0,
                 "stream_segment_frames": s.stream_frames},
        "files": {"bundle": "bundle", "checkpoint": "checkpoint.pt", "annotated_video": "annotated.avi",
                  "stream": "data/stream.avi", "predictions": "predictions.jsonl"},
        "timings_s": timings,
        "backend": stats["backend"], "sessions": stats["sessions"],  # what ran, per role
    }
    report.update(family.stream_summary(stats))
    return report
