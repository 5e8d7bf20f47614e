"""PreRNN-SIH's demo steps: pre-train a small VGG-style CNN per frame, convert its fc6 to an SIH-LSTM, fine-tune
on sequences, export ``backbone`` + ``step``.

The conversion needs a trained non-recurrent network (docs/models.md §4.2): the CNN is first trained as a frame
classifier on the training videos' frames (:func:`edgevid.train.frames.train_frame_classifier`), then fc6
becomes the recurrent layer (W_xy, b_xy reused; W_h* new) and the drive, recurrence and head are fine-tuned on
the clips with the trunk frozen (:func:`edgevid.train.prernn.train_prernn`). The policy resets the state every
clip length, so each segment of the held-out stream is classified as the model was trained.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

TITLE = "PreRNN-SIH (small VGG @112, fc6 → SIH-LSTM)"


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo run. ``FULL`` takes a few minutes on 2 cores; ``QUICK`` is a smoke test."""

    train_per_class: int = 40
    val_per_class: int = 8
    frames: int = 8              # steps per clip = training sequence length = policy max_steps
    fps: float = 10.0
    stream_segments: int = 20
    stream_frames: int = 32       # held-out segment length: several clips / reset horizons, as real actions last
    stress_segments: int = 30     # an extra held-out stream of `frames`-long segments (0: none)
    image_size: int = 112
    arch: str = "small_vgg"
    layer: str = "fc6"
    cell: str = "lstm"
    form: str = "sih"
    cnn_epochs: int = 16         # per-frame pre-training
    cnn_every: int = 2           # every 2nd frame of each training clip
    cnn_lr: float = 2e-3
    epochs: int = 60             # sequence fine-tuning
    batch_size: int = 16
    lr: float = 2e-3
    parity_frames: int = 64
    parity_steps: int = 300


FULL = DemoSettings()
QUICK = DemoSettings(train_per_class=2, val_per_class=1, stream_segments=3, cnn_epochs=1, cnn_every=4, epochs=2,
                     batch_size=8, parity_frames=8, stream_frames=8, stress_segments=0)


@dataclass
class Trained:
    """The demo's trained models: the frame classifier and the converted, fine-tuned PreRNN."""

    frames: Any        # FrameTrainResult
    prernn: Any        # PreRNNTrainResult
    config: Any        # PreRNNConfig

    @property
    def model(self):
        return self.prernn.model


def train(tmp: Path, data: Dict[str, Any], s: DemoSettings, seed: int, show_bars: bool, flow: Any = None) -> Trained:
    """Train into ``tmp`` on the demo data; ``flow`` (a FlowSpec) trains on optical-flow images instead of colour."""
    from ..data.folder import VideoFolder
    from ..models.prernn import PreRNNConfig, build_cnn
    from ..train.frames import train_frame_classifier
    from ..train.loop import seed_everything
    from ..train.prernn import train_prernn

    train_set = VideoFolder(data["root"] / "train", num_frames=s.frames, flow=flow)
    val_set = VideoFolder(data["root"] / "val", num_frames=s.frames, flow=flow)
    classes = list(train_set.classes)
    seed_everything(seed)  # the CNN's initial weights come from the seed too
    frames = train_frame_classifier(build_cnn(s.arch, len(classes)), train_set, val_set, image_size=s.image_size,
                                    weights_out=tmp / "cnn.pth", epochs=s.cnn_epochs, lr=s.cnn_lr, every=s.cnn_every,
                                    seed=seed, progress=show_bars)
    config = PreRNNConfig(num_classes=len(classes), labels=classes, arch=s.arch, layer=s.layer, cell=s.cell,
                          form=s.form, image_size=s.image_size)
    result = train_prernn(config, train_set, val_set, out=tmp / "checkpoint.pt", epochs=s.epochs,
                          batch_size=s.batch_size, lr=s.lr, weights=frames.weights, seed=seed, cache_dir=tmp / "cache",
                          progress=show_bars)
    return Trained(frames, result, config)


def export(trained: Trained, path: Path, s: DemoSettings, flow: Any = None, scene_cut: Optional[float] = None):
    from ..export.prernn import export_prernn

    # reset every clip length: the horizon the model was trained on (docs/models.md §4.10)
    policy = {"max_steps": s.frames} if scene_cut is None else {"max_steps": s.frames, "scene_cut": scene_cut}
    return export_prernn(trained.model, path, config=trained.config, policy=policy,
                         flow=None if flow is None else flow.to_dict())


def verify(trained: Trained, bundle, stream_path: Path, s: DemoSettings) -> Dict[str, Any]:
    from ..data.video import read_video
    from ..verify import verify_prernn

    frames, _ = read_video(stream_path, max_frames=s.parity_frames)
    r = verify_prernn(trained.model, bundle, frames, steps=s.parity_steps)
    stream = r["stream"]
    return {"ok": r["ok"], "steps": r["steps"], "frames": r["frames"], "top1_agreement": stream["top1_agreement"],
            "max_abs": dict({role: g["max_abs"] for role, g in r["graphs"].items()},
                            stream_logits=stream["logits"]["max_abs"], stream_state=stream["state"]["max_abs"])}


def stream_options(s: DemoSettings) -> Dict[str, Any]:
    return {}   # the bundle's policy already resets every clip length


def training_summary(trained: Trained) -> Dict[str, Any]:
    p, f = trained.prernn, trained.frames
    return {"cnn": {"frames": f.frames, "epochs": len(f.history), "val_frame_accuracy": f.val_accuracy},
            "epochs": p.epochs, "best_val_accuracy": p.best_accuracy,
            "val_accuracy_per_epoch": [h["val"].get("accuracy") for h in p.history],
            "last_epoch": p.history[-1] if p.history else {}}


def stream_summary(stats: Dict[str, Any]) -> Dict[str, Any]:
    return {"steps": stats["steps"], "resets": stats["resets"], "resets_by_cause": stats["resets_by_cause"]}


def summary_lines(report: Dict[str, Any]) -> List[str]:
    """The family's lines of the CLI summary (after accuracy, before speed)."""
    g, p, t = report["gmacs_by_graph"], report["parity"], report["training"]
    return [
        "  training        frame CNN val %.1f%% per frame; SIH-LSTM val %.1f%% per clip (best)" % (
            100 * (t["cnn"]["val_frame_accuracy"] or 0.0), 100 * (t["best_val_accuracy"] or 0.0)),
        "  GMACs per frame %.5f (backbone %.5f + step %.6f); %d resets in %d steps" % (
            report["gmacs_per_frame"] or 0.0, g.get("backbone") or 0.0, g.get("step") or 0.0, report["resets"],
            report["steps"]),
        "  parity          %s over %d steps (top-1 agreement %.3f, logits max-abs %.1e, state max-abs %.1e)" % (
            "ok" if p["ok"] else "MISMATCH", p["steps"], p["top1_agreement"], p["max_abs"]["stream_logits"],
            p["max_abs"]["stream_state"]),
    ]
