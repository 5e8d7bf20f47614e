"""PreRNN-SIH's rules (docs/models.md §4): a stateless backbone ahead of a recurrent step with explicit state.

::

    frame ─► backbone ─► drive (v | u) ─┐
                   h_in, c_in (carried) ─┴─► step ─► h_out, c_out (next step's h_in, c_in) ─► logits
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from ..spec import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec
from ..errors import ManifestError
from .base import Family, PrecisionRule, StateLink
from .common import frame_size, require_sizes
from .settings import Setting

SETTINGS = {
    "max_steps": Setting("int"),
    "max_gap_s": Setting("float"),
    "scene_cut": Setting("float", maximum=1.0,
                         help="the scene-cut score is a mean absolute difference in [0, 1]: use a threshold such as "
                              "0.3 (higher: fewer resets)"),
    "step_fps": Setting("float"),
}
POLICY_DEFAULTS: Dict[str, Any] = {"max_steps": None, "max_gap_s": 2.0, "scene_cut": None, "step_fps": None}

PRECISION = {
    "backbone": PrecisionRule(("fp32", "fp16", "int8"), "fp16",
                              "stateless: INT8 allowed, calibrated on frames of whole sequences"),
    "step": PrecisionRule(("fp32", "fp16"), "fp32",
                          "the recurrent cell carries state: forget gates near 1 round to 1.0 in FP16 and quantisation "
                          "error accumulates over steps, so never INT8; FP16 opt-in after a carried-state check "
                          "(docs/models.md §4.10)"),
}
STATE = (StateLink("step", "h_in", (("step", "h_out"),)), StateLink("step", "c_in", (("step", "c_out"),)))


def preprocess_spec(image_size: int = 224) -> PreprocessSpec:
    """Short side S·256/224, centre crop S, ImageNet statistics (the CNN's own training recipe)."""
    return PreprocessSpec(resize_short=int(round(image_size * 256 / 224)), crop=image_size, sizes=(image_size,),
                          mean=IMAGENET_MEAN, std=IMAGENET_STD)


DRIVES = ("v", "u")  # the backbone's output: the shared input term (SIH, VRNN) or one per gate
STATES = (("h", "h_in", "h_out"), ("c", "c_in", "c_out"))  # (state, step input, step output)
GATES = {"lstm": 4, "gru": 3, "vrnn": 1}


# contract ----------------------------------------------------------------------------------------
class StepContract:
    """What the bundle's graphs say about the step: drive name and width, state shapes, classes.

    Read from the manifest (``bundle.graph(...)`` specs), checked against docs/models.md §4.10; every
    mismatch is a ManifestError naming the tensor. States are batch 1 (one stream).
    """

    def __init__(self, bundle: Any):
        self.root = bundle.root
        backbone, step = bundle.graph("backbone"), bundle.graph("step")
        self.drive, width = self._drive(backbone)
        inputs = {t.name: tuple(t.shape) for t in step.inputs}
        outputs = {t.name: tuple(t.shape) for t in step.outputs}
        if self.drive not in inputs:
            self._fail("step lacks input '%s'" % self.drive, "the backbone outputs '%s' and the step must take it"
                       % self.drive)
        if inputs[self.drive][1:] != (width,):
            self._fail("step input '%s' has shape %s" % (self.drive, list(inputs[self.drive])),
                       "the backbone outputs [N, %d]" % width)
        self.states = self._states(inputs, outputs)
        extra = sorted(set(inputs) - {self.drive, "h_in", "c_in"})
        if extra:
            self._fail("step has inputs %s the runtime cannot feed" % ", ".join(extra),
                       "the step takes '%s', 'h_in' and (LSTM) 'c_in' only" % self.drive)
        self.classes = self._classes(outputs, len(bundle.labels))
        self.cell = self._cell(bundle.policy.get("cell"), width)
        unit = bundle.policy.get("step_unit", "frame")
        if unit not in (None, "frame"):
            # a clip step (3D backbone on NCTHW) needs a clip window before the backbone: not built here
            self._fail("policy step_unit is %r" % (unit,), "these stages step once per frame")

    def _drive(self, backbone: Any) -> Tuple[str, int]:
        found = [t for t in backbone.outputs if t.name in DRIVES]
        if len(found) != 1 or len(found[0].shape) != 2 or found[0].shape[1] <= 0:
            self._fail("backbone outputs %s" % [t.name for t in backbone.outputs],
                       "it must output exactly one of 'v' [N, H] or 'u' [N, G*H]")
        return found[0].name, int(found[0].shape[1])

    def _states(self, inputs: Dict[str, tuple], outputs: Dict[str, tuple]) -> Dict[str, Tuple[int, int]]:
        if "h_in" not in inputs:
            self._fail("step lacks input 'h_in'", "the recurrent state is explicit graph I/O (h_in → h_out)")
        states = {}
        for state, name_in, name_out in STATES:
            if name_in not in inputs:
                continue  # c only for LSTM
            shape = inputs[name_in]
            if len(shape) != 2 or shape[1] <= 0:
                self._fail("state input '%s' of step has shape %s" % (name_in, list(shape)), "states are [N, H]")
            if name_out not in outputs:
                self._fail("step lacks output '%s'" % name_out, "'%s' goes in, so '%s' must come out"
                           % (name_in, name_out))
            if outputs[name_out][1:] != shape[1:]:
                self._fail("step output '%s' has shape %s" % (name_out, list(outputs[name_out])),
                           "it must match '%s' %s" % (name_in, list(shape)))
            states[state] = (1, int(shape[1]))  # one stream: batch 1 even where the graph allows a dynamic N
        if "c" in states and states["c"] != states["h"]:
            self._fail("state input 'c_in' has width %d" % states["c"][1], "'h_in' has %d" % states["h"][1])
        if "c" not in states and "c_out" in outputs:
            self._fail("step outputs 'c_out' but takes no 'c_in'", "LSTM steps take both")
        return states

    def _classes(self, outputs: Dict[str, tuple], labels: int) -> int:
        shape = outputs.get("logits")
        if shape is None or len(shape) != 2:
            self._fail("step has no 'logits' [N, C] output", "the step ends in the classifier")
        if labels and shape[1] != labels:
            self._fail("step output 'logits' has %d classes" % shape[1], "the bundle lists %d labels" % labels)
        return int(shape[1])

    def _cell(self, declared: Optional[str], width: int) -> str:
        lstm = "c" in self.states
        cell = declared if declared is not None else ("lstm" if lstm else "gru")
        if cell not in GATES:
            self._fail("policy cell is %r" % (cell,), "cells are %s" % ", ".join(sorted(GATES)))
        if (cell == "lstm") != lstm:
            self._fail("policy cell is '%s' but the step %s 'c_in'" % (cell, "takes" if lstm else "lacks"),
                       "LSTM steps carry (h, c), GRU and VRNN steps h only")
        hidden = self.states["h"][1]
        if self.drive == "u" and width != GATES[cell] * hidden:
            self._fail("backbone output 'u' has width %d" % width,
                       "the gate-dependent %s input is G*H = %d*%d" % (cell, GATES[cell], hidden))
        return cell

    def _fail(self, what: str, why: str) -> None:
        raise ManifestError("%s (bundle %s)" % (what, self.root), why,
                            "re-export the bundle with the PreRNN graph contract (docs/models.md §4.10)")




def contract(bundle: Any) -> "StepContract":
    """The checked step contract of a PreRNN bundle (its backbone input size in ``size``)."""
    step = StepContract(bundle)
    step.size = frame_size(bundle, "backbone")
    require_sizes(bundle, (step.size,), "its backbone")
    return step


FAMILY = Family(
    name="prernn", title="PreRNN", roles=("backbone", "step"), policy_kind="recurrent", settings=SETTINGS,
    stream_options=("max_steps", "max_gap_s", "scene_cut"), precision=PRECISION, state=STATE,
    preprocess=preprocess_spec, contract=contract,
    entries={"stages": "edgevid.runtime.recurrent:RecurrentStages", "exporter": "edgevid.export.prernn:export_prernn",
             "verifier": "edgevid.verify.prernn:verify_prernn", "demo": "edgevid.demo.prernn"},
)
