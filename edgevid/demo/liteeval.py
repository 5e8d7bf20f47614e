"""LiteEval's demo steps: MobileNetV2 @112 + ResNet-18 @224, cached features, Gumbel gate.

The stream is cut into segments of the training clip length and the policy resets its state every
``max_steps`` = clip length steps, so each segment is classified as the model was trained: from a
zero state, with the prediction of its last step counting as the segment's label.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

TITLE = "LiteEval (MobileNetV2 @112 coarse + ResNet-18 @224 fine)"


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo run. ``FULL`` takes a few minutes on 2 cores; ``QUICK`` is a smoke test."""

    train_per_class: int = 40
    val_per_class: int = 10
    frames: int = 8              # steps per clip = training sequence length = policy max_steps
    fps: float = 10.0
    stream_segments: int = 20
    stream_frames: int = 32       # held-out segment length: several clips / reset horizons, as real actions last
    stress_segments: int = 30     # an extra held-out stream of `frames`-long segments (0: none)
    epochs: int = 60
    batch_size: int = 16
    fine_fraction: float = 0.35  # γ: target share of frames on the fine CNN (benchmarks: 0.35 keeps accuracy)
    lr: float = 1e-3
    tau_rate: float = 1e-3       # Gumbel temperature reaches its floor about half way through 60 epochs
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
                     bn_frames=32, parity_frames=8, parity_steps=32, stream_frames=8, stress_segments=0)


def train(tmp: Path, data: Dict[str, Any], s: DemoSettings, seed: int, show_bars: bool):
    from ..data.folder import VideoFolder
    from ..models.liteeval import LiteEvalConfig
    from ..train.liteeval import train_liteeval

    train_set = VideoFolder(data["root"] / "train", num_frames=s.frames)
    val_set = VideoFolder(data["root"] / "val", num_frames=s.frames)
    config = LiteEvalConfig(num_classes=len(train_set.classes), labels=list(train_set.classes), fine_arch="resnet18",
                            coarse_proj=s.coarse_proj, coarse_hidden=s.coarse_hidden, fine_hidden=s.fine_hidden,
                            fine_proj=s.fine_proj)
    return train_liteeval(config, train_set, val_set, out=tmp / "checkpoint.pt", epochs=s.epochs,
                          batch_size=s.batch_size, lr=s.lr, fine_fraction_target=s.fine_fraction, tau_rate=s.tau_rate,
                          seed=seed,
                          adapt_bn=s.adapt_bn, bn_frames=s.bn_frames, cache_dir=tmp / "cache", progress=show_bars)


def export(trained, path: Path, s: DemoSettings):
    from ..export import export_bundle

    # reset every clip length: the horizon the model was trained on (docs/models.md §2.8)
    return export_bundle(trained.model, path, labels=None, policy={"max_steps": s.frames})


def verify(trained, bundle, stream_path: Path, s: DemoSettings) -> Dict[str, Any]:
    from ..data.video import read_video
    from ..verify import verify_liteeval

    frames, _ = read_video(stream_path, max_frames=s.parity_frames)
    result = verify_liteeval(trained.model, bundle, frames, steps=s.parity_steps)
    return {"ok": result["ok"], "gate_agreement": result["stream"]["gate_agreement"],
            "max_abs": {role: g["max_abs"] for role, g in result["graphs"].items()}}


def stream_options(s: DemoSettings) -> Dict[str, Any]:
    return {}


def training_summary(trained) -> Dict[str, Any]:
    last = trained.history[-1] if trained.history else {}
    return {"epochs": trained.epochs, "best_val_accuracy": trained.best_accuracy, "best_epoch": trained.best_epoch,
            "last_epoch": last}


def stream_summary(stats: Dict[str, Any]) -> Dict[str, Any]:
    return {"fine_rate": stats["fine_rate"], "gmacs_always_fine": stats["gmacs_always_fine"],
            "gmacs_saved": stats["gmacs_saved"]}


def summary_lines(report: Dict[str, Any]) -> List[str]:
    """The family's lines of the CLI summary (after accuracy, before speed)."""
    return [
        "  fine model on   %.1f%% of frames" % (100 * report["fine_rate"]),
        "  GMACs per frame %.3f vs %.3f always-fine: %.1f%% saved" % (
            report["gmacs_per_frame"], report["gmacs_always_fine"], 100 * report["gmacs_saved"]),
        "  parity          %s (gate agreement %.3f)" % ("ok" if report["parity"]["ok"] else "MISMATCH",
                                                       report["parity"]["gate_agreement"]),
    ]
