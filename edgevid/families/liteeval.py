"""LiteEval's rules (docs/models.md §2): four graphs, a gated recurrent chain, 224 and 112 inputs.

::

    frame ─► 224 crop ─► 112 ─► coarse_cnn ─► coarse_step (every step) ─► gate: fine?
                 └────────────────────────────────────────► fine_cnn ─► fine_step (fine steps only)
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ..errors import ManifestError
from ..spec import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec
from .base import Family, PrecisionRule, StateLink
from .common import frame_size, require_sizes, require_tensors
from .settings import Setting

COARSE_FRAME, FINE_FRAME = 112, 224
FINE, SKIP = 0, 1  # gate channels (docs/models.md §2.2): argmax == FINE runs the fine branch, ties go fine

# the tensors each graph binds, by name (docs/models.md §2.8)
ROLE_IO = {
    "coarse_cnn": (("frame",), ("feat",)),
    "coarse_step": (("feat_c", "h_c_in", "c_c_in", "h_f_in", "c_f_in"),
                    ("v_c", "h_c_out", "c_c_out", "gate_logits", "h_f_sync", "c_f_sync", "logits_sync")),
    "fine_cnn": (("frame",), ("feat",)),
    "fine_step": (("feat_f", "v_c", "h_f_in", "c_f_in"), ("h_f_out", "c_f_out", "logits")),
}
# the state carried between steps: (state name, coarse_step input) — read from the manifest for its width
STATE_INPUTS = (("h_c", "h_c_in"), ("c_c", "c_c_in"), ("h_f", "h_f_in"), ("c_f", "c_f_in"))

SETTINGS = {
    "max_steps": Setting("int", help="the training sequence length (129 for LiteEval)"),
    "max_gap_s": Setting("float"),
    "step_fps": Setting("float"),
    "fine_cap": Setting("int", allow_zero=True),
    "fine_window": Setting("int"),
    # "fine" forces every gate to the fine branch (the always-fine comparison of ``edgevid bench``); a stream
    # option only: an exported policy keeps the model's gate
    "gate": Setting("choice", default="model", choices=("model", "fine")),
}
POLICY_DEFAULTS: Dict[str, Any] = {"kind": "gated", "max_steps": 129, "max_gap_s": 2.0, "step_fps": None,
                                   "fine_cap": None, "fine_window": None}

STEP_WHY = "recurrent step: one flipped gate or a drifting state changes every later step, so never INT8"
PRECISION = {
    "coarse_cnn": PrecisionRule(("fp32", "fp16", "int8"), "fp16",
                                "stateless CNN on every frame: INT8 allowed, calibrated on stream frames at 112 x 112"),
    "fine_cnn": PrecisionRule(("fp32", "fp16", "int8"), "fp16",
                              "stateless CNN: INT8 allowed, calibrated on the frames the gate sends it, at 224 x 224"),
    "coarse_step": PrecisionRule(("fp32", "fp16"), "fp32", STEP_WHY + "; FP16 opt-in"),
    "fine_step": PrecisionRule(("fp32", "fp16"), "fp32", STEP_WHY + "; FP16 opt-in"),
}
STATE = (
    StateLink("coarse_step", "h_c_in", (("coarse_step", "h_c_out"),)),
    StateLink("coarse_step", "c_c_in", (("coarse_step", "c_c_out"),)),
    StateLink("coarse_step", "h_f_in", (("fine_step", "h_f_out"), ("coarse_step", "h_f_sync"))),
    StateLink("coarse_step", "c_f_in", (("fine_step", "c_f_out"), ("coarse_step", "c_f_sync"))),
    StateLink("fine_step", "h_f_in", (("fine_step", "h_f_out"), ("coarse_step", "h_f_sync"))),
    StateLink("fine_step", "c_f_in", (("fine_step", "c_f_out"), ("coarse_step", "c_f_sync"))),
)


def preprocess_spec() -> PreprocessSpec:
    """Short side 256, centre crop 224, the 112 coarse input made from that crop; ImageNet statistics."""
    return PreprocessSpec(resize_short=256, crop=FINE_FRAME, sizes=(FINE_FRAME, COARSE_FRAME),
                          mean=IMAGENET_MEAN, std=IMAGENET_STD)


def contract(bundle: Any) -> Dict[str, Any]:
    """The checked geometry of a LiteEval bundle: CNN input sizes and the state shapes (batch 1)."""
    require_tensors(bundle, ROLE_IO, "LiteEval graphs use the tensor names of docs/models.md §2.8")
    sizes = {"coarse": frame_size(bundle, "coarse_cnn"), "fine": frame_size(bundle, "fine_cnn")}
    require_sizes(bundle, sizes.values(), "its CNN graphs")
    specs = {t.name: t for t in bundle.graph("coarse_step").inputs}
    states: Dict[str, Tuple[int, int]] = {}
    for state, name in STATE_INPUTS:
        dims = tuple(specs[name].shape)
        if len(dims) != 2 or dims[1] <= 0:
            raise ManifestError("state %s of coarse_step has shape %s" % (name, dims), "states are [N, D]",
                                "re-export the bundle")
        states[state] = (1, int(dims[1]))  # one stream: batch 1 even where the graph allows a dynamic N
    return {"sizes": sizes, "states": states}


FAMILY = Family(
    name="liteeval", title="LiteEval", roles=("coarse_cnn", "coarse_step", "fine_cnn", "fine_step"),
    policy_kind="gated", settings=SETTINGS, stream_options=("fine_cap", "fine_window", "gate"), precision=PRECISION,
    state=STATE, gated_roles=("fine_cnn", "fine_step"), preprocess=preprocess_spec, contract=contract,
    entries={"stages": "edgevid.runtime.gated:GatedStages", "exporter": "edgevid.export.bundle:export_bundle",
             "verifier": "edgevid.verify.liteeval:verify_liteeval", "demo": "edgevid.demo.liteeval"},
)
