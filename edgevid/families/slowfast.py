"""SlowFast's rules (docs/models.md §3): one ``clip`` graph over a window of T frames sampled at the model's spacing.

::

    frames ─► sampled every 1/step_fps s ─► ring of T ─► clip [1,3,T,S,S] every ``every`` slots ─► logits
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ..errors import ConfigError, ManifestError
from ..spec import KINETICS_MEAN, KINETICS_STD, PreprocessSpec
from .base import Family, PrecisionRule
from .common import frame_size
from .settings import Setting

PADS = ("none", "repeat")
TRAIN_FPS = 30.0  # Kinetics clips are sampled at 30 fps (docs/models.md §3.1)
SETTINGS = {
    "frames": Setting("int"),
    "frame_stride": Setting("int"),
    "train_fps": Setting("float"),
    "step_fps": Setting("float"),
    "every": Setting("int"),
    "smooth": Setting("int", default=1),
    "pad": Setting("choice", default="none", choices=PADS,
                   help="use pad='none' (wait for a full window) or 'repeat' (start with the first frame)"),
    "max_gap_s": Setting("float"),
}
STREAM_SETTINGS = ("every", "smooth", "pad", "max_gap_s")  # the ones a user sets at export or run time

PRECISION = {
    "clip": PrecisionRule(("fp32", "fp16", "int8"), "fp16",
                          "FP16 by default; INT8 opt-in (quantize --role clip), GPU only (no 3D convolution on DLA): "
                          "TensorRT gains little on 3D convolutions at INT8; keep the fusion conv and concat FP16 if "
                          "INT8 accuracy drops (docs/models.md §3.9)", opt_in=("int8",)),
}


def preprocess_spec(size: int = 224, resize_short: int = 256) -> PreprocessSpec:
    """Short side → ``resize_short``, centre crop ``size``, Kinetics mean/std (docs/models.md §3.4)."""
    if resize_short < size:
        raise ConfigError("resize_short=%d is smaller than the crop %d" % (resize_short, size), None,
                          "resize the short side to at least the crop size")
    return PreprocessSpec(resize_short=resize_short, crop=size, sizes=(size,), mean=KINETICS_MEAN, std=KINETICS_STD)


def cross_check(settings: Dict[str, Any]) -> None:
    """A gap threshold shorter than one slot would reset the window on every frame at the model's spacing."""
    step_fps, gap = settings["step_fps"], settings["max_gap_s"]
    if step_fps is not None and gap is not None and gap < 1.0 / step_fps:
        raise ConfigError("max_gap_s=%g is shorter than one slot (%g s at step_fps %g)" % (gap, 1.0 / step_fps, step_fps),
                          "every frame at the model's spacing would reset the window",
                          "set max_gap_s to at least 1/step_fps in the bundle's policy")


def contract(bundle: Any) -> Tuple[int, int]:
    """(T, S) of the bundle's ``clip`` graph, checked against its policy, preprocessing and labels."""
    graph = bundle.graph("clip")
    size = frame_size(bundle, "clip", "clip")
    shape = tuple(next(t for t in graph.inputs if t.name == "clip").shape)
    if len(shape) != 5 or shape[1] != 3:
        raise ManifestError("graph clip of bundle %s takes 'clip' %s" % (bundle.root, list(shape)),
                            "clip inputs are [N,3,T,S,S] (docs/models.md §3.5)", "re-export the bundle")
    frames = int(shape[2])
    logits = next((t for t in graph.outputs if t.name == "logits"), None)
    if logits is None or len(logits.shape) != 2:
        raise ManifestError("graph clip of bundle %s has no 'logits' [N,C] output" % bundle.root,
                            "the clip graph contract is clip → logits (docs/models.md §3.5)", "re-export the bundle")
    if logits.shape[1] != len(bundle.labels):
        raise ManifestError("graph clip of bundle %s has %d classes and %d labels"
                            % (bundle.root, logits.shape[1], len(bundle.labels)),
                            "each logit needs its label", "re-export the bundle")
    policy = bundle.policy or {}
    if policy.get("frames") is not None and policy.get("frames") != frames:
        raise ManifestError("bundle %s: the clip graph takes %d frames, its policy says frames=%r"
                            % (bundle.root, frames, policy.get("frames")),
                            "the window length must be the graph's clip length", "re-export the bundle")
    if size not in bundle.preprocess.sizes:
        raise ManifestError("bundle %s preprocesses to sizes %s" % (bundle.root, list(bundle.preprocess.sizes)),
                            "its clip graph needs %d" % size, "re-export the bundle")
    return frames, size


FAMILY = Family(
    name="slowfast", title="SlowFast", roles=("clip",), policy_kind="clip", settings=SETTINGS,
    stream_options=("every", "smooth", "pad"), precision=PRECISION, preprocess=preprocess_spec, contract=contract,
    cross_check=cross_check,
    entries={"stages": "edgevid.runtime.clip:ClipStages", "exporter": "edgevid.export.slowfast:export_slowfast",
             "verifier": "edgevid.verify.slowfast:verify_slowfast", "demo": "edgevid.demo.slowfast"},
)
