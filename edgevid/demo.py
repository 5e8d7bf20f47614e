"""``edgevid demo``: LiteEval end to end on a CPU, from nothing to a measured report.

::

    synthetic data (train / val class folders, a held-out stream with ground truth)
      ─► train LiteEval (MobileNetV2 @112 + ResNet-18 @224, cached features, Gumbel gate)
      ─► export the bundle (four ONNX graphs) ─► parity torch vs ONNX Runtime
      ─► stream the held-out video through ONNX Runtime ─► report.json + annotated video

Everything is written into a temporary folder beside ``out`` that becomes ``out`` only when every
step succeeded, so a failed or interrupted demo leaves nothing half-written. The stream is cut into
segments of the training clip length and the policy resets its state every ``max_steps`` = clip
length steps, so each segment is classified as the model was trained: from a zero state, with the
prediction of its last step counting as the segment's label.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .errors import ConfigError
from .fsutil import atomic_dir, write_json
from .log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo run. ``FULL`` takes a few minutes on 2 cores; ``QUICK`` is a smoke test."""

    train_per_class: int = 40
    val_per_class: int = 10
    frames: int = 8              # steps per clip = training sequence length = policy max_steps
    fps: float = 10.0
    stream_segments: int = 30
    epochs: int = 60
    batch_size: int = 16
    fine_fraction: float = 0.25  # γ: target share of frames on the fine CNN
    lr: float = 1e-3
    coarse_proj: int = 128
    coarse_hidden: int = 64
    fine_hidden: int = 128
    fine_proj: int = 128
    bn_frames: int = 256
    # Re-estimating BatchNorm statistics of the random-init backbones on the data made MobileNetV2's
    # features erratic (benchmarks/synthetic_probe.py: coarse motion 0.89 -> 0.57); keep them as initialised.
    adapt_bn: bool = False
    parity_frames: int = 64
    parity_steps: int = 300


FULL = DemoSettings()
QUICK = DemoSettings(train_per_class=3, val_per_class=1, frames=8, stream_segments=4, epochs=2, batch_size=8,
                     bn_frames=32, parity_frames=8, parity_steps=32)

Progress = Callable[[str], None]


def run_demo(out, *, seed: int = 0, quick: bool = False, overwrite: bool = False,
             settings: Optional[DemoSettings] = None, progress: Optional[Progress] = None,
             show_bars: bool = False) -> Dict[str, Any]:
    """Run the whole demo into ``out`` and return the report (also written as ``out/report.json``)."""
    s = settings or (QUICK if quick else FULL)
    say = progress or (lambda message: log.info("%s", message))
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError("the demo output folder %s already exists" % out, None,
                          "pass --overwrite to replace it, or choose another --out")
    timings: Dict[str, float] = {}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        say("1/5 generating synthetic data")
        data = _timed(timings, "data", _make_data, tmp / "data", s, seed)
        say("2/5 training LiteEval (MobileNetV2 @112 + ResNet-18 @224) on %d videos" % data["train_videos"])
        trained = _timed(timings, "train", _train, tmp, data, s, seed, show_bars)
        say("3/5 exporting the bundle")
        bundle = _timed(timings, "export", _export, trained.model, tmp / "bundle", s)
        say("4/5 checking parity PyTorch vs ONNX Runtime")
        parity = _timed(timings, "verify", _verify, trained.model, bundle, data["stream"], s)
        say("5/5 streaming the held-out video through ONNX Runtime")
        stream = _timed(timings, "stream", _stream, tmp, data["stream"])
        report = _report(s, seed, data, trained, bundle, parity, stream, timings)
        write_json(tmp / "report.json", report)
    return report


def _timed(timings: Dict[str, float], name: str, fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    timings[name] = round(time.perf_counter() - start, 2)
    return result


def _make_data(root: Path, s: DemoSettings, seed: int) -> Dict[str, Any]:
    from .data.synthetic import CLASSES, generate_dataset, generate_stream

    generate_dataset(root / "train", s.train_per_class, num_frames=s.frames, fps=s.fps, seed=seed)
    generate_dataset(root / "val", s.val_per_class, num_frames=s.frames, fps=s.fps, seed=seed + 1000)
    stream = generate_stream(root / "stream.avi", s.stream_segments, s.frames, fps=s.fps, seed=seed + 2000)
    return {"root": root, "stream": stream, "classes": list(CLASSES),
            "train_videos": s.train_per_class * len(CLASSES), "val_videos": s.val_per_class * len(CLASSES)}


def _train(tmp: Path, data: Dict[str, Any], s: DemoSettings, seed: int, show_bars: bool):
    from .data.folder import VideoFolder
    from .models.liteeval import LiteEvalConfig
    from .train.liteeval import train_liteeval

    train_set = VideoFolder(data["root"] / "train", num_frames=s.frames)
    val_set = VideoFolder(data["root"] / "val", num_frames=s.frames)
    config = LiteEvalConfig(num_classes=len(train_set.classes), labels=list(train_set.classes), fine_arch="resnet18",
                            coarse_proj=s.coarse_proj, coarse_hidden=s.coarse_hidden, fine_hidden=s.fine_hidden,
                            fine_proj=s.fine_proj)
    return train_liteeval(config, train_set, val_set, out=tmp / "checkpoint.pt", epochs=s.epochs,
                          batch_size=s.batch_size, lr=s.lr, fine_fraction_target=s.fine_fraction, seed=seed,
                          adapt_bn=s.adapt_bn, bn_frames=s.bn_frames, cache_dir=tmp / "cache", progress=show_bars)


def _export(model, path: Path, s: DemoSettings):
    from .export import export_bundle

    # reset every clip length: the horizon the model was trained on (models.md §2.8)
    return export_bundle(model, path, labels=None, policy={"max_steps": s.frames})


def _verify(model, bundle, stream_path: Path, s: DemoSettings) -> Dict[str, Any]:
    from .data.video import read_video
    from .verify import verify_liteeval

    frames, _ = read_video(stream_path, max_frames=s.parity_frames)
    return verify_liteeval(model, bundle, frames, steps=s.parity_steps)


def _stream(tmp: Path, stream_path: Path) -> Dict[str, Any]:
    from .runtime.cli_run import run_stream

    predictions: List[Dict[str, Any]] = []
    stats = run_stream(tmp / "bundle", str(stream_path), backend="ort", out_video=tmp / "annotated.avi",
                       on_prediction=lambda p: predictions.append(p.to_dict()))
    with open(str(tmp / "predictions.jsonl"), "w") as f:  # inside the demo's temporary folder
        f.writelines(json.dumps(p) + "\n" for p in predictions)
    return {"stats": stats, "predictions": predictions}


def score_stream(predictions: List[Dict[str, Any]], segments: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Accuracy against ground truth: per segment (prediction at its last frame) and per frame.

    Compared by class name: the bundle's label order (sorted class folders) need not be the
    generator's class order.
    """
    by_frame = {p["frame_index"]: p["label"] for p in predictions}
    frame_hits = frame_total = seg_hits = 0
    per_class: Dict[str, List[int]] = {}
    for seg in segments:
        for i in range(seg["start"], seg["end"]):
            if i in by_frame:
                frame_total += 1
                frame_hits += by_frame[i] == seg["class"]
        hit = int(by_frame.get(seg["end"] - 1) == seg["class"])
        seg_hits += hit
        per_class.setdefault(seg["class"], []).append(hit)
    return {
        "segment_accuracy": seg_hits / len(segments) if segments else None,
        "frame_accuracy": frame_hits / frame_total if frame_total else None,
        "segments": len(segments), "frames_scored": frame_total,
        "per_class_segment_accuracy": {c: sum(h) / len(h) for c, h in sorted(per_class.items())},
    }


def _report(s, seed, data, trained, bundle, parity, stream, timings) -> Dict[str, Any]:
    from .data.synthetic import read_stream_labels

    truth = read_stream_labels(data["stream"])
    stats = stream["stats"]
    accuracy = score_stream(stream["predictions"], truth["segments"])
    last = trained.history[-1] if trained.history else {}
    return {
        "model": "liteeval", "seed": seed, "settings": asdict(s),
        "accuracy": accuracy,
        "fine_rate": stats["fine_rate"],
        "gmacs_per_frame": stats["gmacs_per_frame"], "gmacs_always_fine": stats["gmacs_always_fine"],
        "gmacs_saved": stats["gmacs_saved"], "gmacs_by_graph": stats["gmacs_by_graph"],
        "fps": stats["fps"], "latency_ms": stats["latency_ms"], "stages_ms": stats["stages_ms"],
        "frames": stats["frames"], "dropped": stats["dropped"],
        "training": {"epochs": trained.epochs, "best_val_accuracy": trained.best_accuracy,
                     "best_epoch": trained.best_epoch, "last_epoch": last},
        "parity": {"ok": parity["ok"], "gate_agreement": parity["stream"]["gate_agreement"],
                   "max_abs": {role: g["max_abs"] for role, g in parity["graphs"].items()}},
        "data": {"classes": data["classes"], "train_videos": data["train_videos"], "val_videos": data["val_videos"],
                 "stream_frames": truth["segments"][-1]["end"] if truth["segments"] else 0},
        "files": {"bundle": "bundle", "checkpoint": "checkpoint.pt", "annotated_video": "annotated.avi",
                  "stream": "data/stream.avi", "predictions": "predictions.jsonl"},
        "timings_s": timings,
        "backend": "ort (ONNX Runtime, CPU)",
    }
