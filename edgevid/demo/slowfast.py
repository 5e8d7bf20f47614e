"""SlowFast's demo steps: a narrow R50-layout SlowFast (T_fast 8, α 4, crop 128 from short side 144; export needs a multiple of 32).

The clips are ``frames`` = T_fast frames at ``fps`` with a frame stride of 1 (τ = α), so the model
sees its training spacing when the stream is sampled at ``fps``. The held-out stream's segments are
``stream_frames`` = 32 frames long (four clip windows, as real actions outlast a clip) and the clip policy
runs a clip every T slots without padding: the first clip on frame T-1, then every T frames, so the
last frame of every segment gets a clip over the segment's last T frames. Scoring
(:func:`edgevid.data.scoring.score_stream`): per segment, the clip at its last frame; per frame, the label
each frame shows, which the first frames after a change hold from the clip before it (a causal clip model
cannot know a new action before it has seen it): the change delay says how long. The stress stream's
segments are T frames long, one clip each, so every frame but a segment's last carries the previous
segment's label.

Training uses no horizontal flips here: the synthetic classes include clockwise and
anticlockwise rotation, which a mirror image swaps (with flips the model plateaued near 75%).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

TITLE = "SlowFast (R50 layout, 2 blocks per stage, width 8; T_fast 8, α 4, 128²)"


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo run. ``FULL`` takes a few minutes on 2 cores; ``QUICK`` is a smoke test."""

    train_per_class: int = 40
    val_per_class: int = 10
    frames: int = 8              # T_fast = clip length = stream segment length = clip period
    fps: float = 10.0
    stream_segments: int = 20
    stream_frames: int = 32       # held-out segment length: several clips / reset horizons, as real actions last
    stress_segments: int = 30     # an extra held-out stream of `frames`-long segments (0: none)
    epochs: int = 10
    batch_size: int = 8
    lr: float = 2e-3
    alpha: int = 4
    stem_channels: int = 8
    width: int = 8
    dropout: float = 0.2
    size: int = 128
    resize_short: int = 144
    flip: bool = False           # see the module docstring
    threads: int = 1             # measured 5-10x faster per step than 2 threads on the shared 2-core machine
    parity_frames: int = 64


FULL = DemoSettings()
QUICK = DemoSettings(train_per_class=2, val_per_class=1, stream_segments=3, epochs=1, batch_size=4,
                     parity_frames=16, stream_frames=8, stress_segments=0)


def config(s: DemoSettings, labels: List[str]):
    from ..models.slowfast_config import preset_config

    return preset_config("small", num_classes=len(labels), labels=list(labels), alpha=s.alpha, tau=s.alpha,
                         slow_frames=s.frames // s.alpha, stem_channels=s.stem_channels, width=s.width,
                         dropout=s.dropout)


def train(tmp: Path, data: Dict[str, Any], s: DemoSettings, seed: int, show_bars: bool):
    from ..data.folder import VideoFolder
    from ..train.slowfast import train_slowfast

    # clips are exactly T frames at the model's spacing (frame stride 1 at train_fps = fps)
    train_set = VideoFolder(data["root"] / "train", num_frames=None)
    val_set = VideoFolder(data["root"] / "val", num_frames=None)
    return train_slowfast(config(s, train_set.classes), train_set, val_set, out=tmp / "checkpoint.pt",
                          epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, size=s.size,
                          resize_short=s.resize_short, train_fps=s.fps, flip=s.flip, seed=seed,
                          cache_dir=tmp / "cache", progress=show_bars, threads=s.threads)


def export(trained, path: Path, s: DemoSettings):
    from ..export.slowfast import export_slowfast

    # a clip every T slots, no padding: each clip covers one whole segment (module docstring)
    policy = dict(trained.sampling, every=s.frames, pad="none", smooth=1)
    policy.pop("frame_stride", None)
    return export_slowfast(trained.model, path, size=s.size, resize_short=s.resize_short, labels=trained.labels,
                           policy=policy)


def verify(trained, bundle, stream_path: Path, s: DemoSettings) -> Dict[str, Any]:
    from ..data.video import read_video
    from ..verify import verify_slowfast

    frames, _ = read_video(stream_path, max_frames=s.parity_frames)
    result = verify_slowfast(trained.model, bundle, frames, clips=None)
    return {k: result[k] for k in ("ok", "clips", "max_abs", "min_cosine", "top1_agreement")}


def stream_options(s: DemoSettings) -> Dict[str, Any]:
    return {}  # the bundle's policy already says every=T, pad=none (so 'edgevid run' reproduces the demo)


def training_summary(trained) -> Dict[str, Any]:
    from ..models.slowfast import count_parameters

    last = trained.history[-1] if trained.history else {}
    return {"epochs": trained.epochs, "best_val_accuracy": trained.best_accuracy, "best_epoch": trained.best_epoch,
            "seconds": round(sum(h["seconds"] for h in trained.history), 2), "params": count_parameters(trained.model),
            "last_epoch": last}


def stream_summary(stats: Dict[str, Any]) -> Dict[str, Any]:
    return {"clips": stats.get("clips", 0), "held": stats.get("held", 0), "warmup_frames": stats.get("warmup_frames", 0),
            "gmacs_per_clip": (stats.get("gmacs_by_graph") or {}).get("clip")}


def summary_lines(report: Dict[str, Any]) -> List[str]:
    """The family's lines of the CLI summary (after accuracy, before speed)."""
    parity = report["parity"]
    return [
        "  clips           %d run, %d frames held the latest label, %d warm-up" % (
            report["clips"], report["held"], report["warmup_frames"]),
        "  GMACs           %.3f per clip, %.3f per frame" % (report["gmacs_per_clip"] or 0.0,
                                                            report["gmacs_per_frame"] or 0.0),
        "  parity          %s (%d clips, logits max-abs %.2e, top-1 agreement %.3f)" % (
            "ok" if parity["ok"] else "MISMATCH", parity["clips"], parity["max_abs"], parity["top1_agreement"]),
    ]
