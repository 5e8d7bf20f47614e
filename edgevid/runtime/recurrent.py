"""PreRNN's stages for the StreamRuntime: a stateless backbone ahead, one serial recurrent step.

::

    capture ─► preprocess (224 + scene-cut score) ─► cnn: backbone (frame → v | u) ─► rnn: step (serial)
                                                      (stateless: runs ahead on        v|u, h_in[, c_in]
                                                       later frames)                    → h_out[, c_out], logits

The step at frame t needs the state after frame t−1, so only the step is serial; the backbone, which
is most of the cost, overlaps with it in its own thread (models.md §4.10). :class:`RecurrentPolicy`
owns the state: zeros at stream start, then reset every ``max_steps`` steps, after a stream-time gap
longer than ``max_gap_s``, on a scene cut (``scene_cut`` threshold on :class:`SceneCut`'s score,
computed in the preprocess stage), and on an explicit :meth:`RecurrentPolicy.request_reset`.

Bundle contract (family "prernn"): graphs ``backbone`` (``frame`` [1,3,S,S] → ``v`` [1,H] (SIH / VRNN)
or ``u`` [1,G·H] (gate-dependent, G = 4 LSTM, 3 GRU)) and ``step`` (inputs ``v``|``u``, ``h_in``,
``c_in`` (LSTM only) → ``h_out``, ``c_out`` (LSTM only), ``logits`` [1,C]); policy
``{"kind": "recurrent", "cell": "lstm"|"gru"|"vrnn", "max_steps", "max_gap_s", "scene_cut", "step_fps",
"step_unit": "frame"}`` (``step_fps`` is the rate ``run_stream`` samples the source at; clip steps are
not streamed here). The state names and shapes are read from the step graph, so LSTM, GRU and VRNN
steps all run.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..bundle import Bundle
from ..errors import ConfigError, ManifestError
from .policies import Policy, positive_setting
from .prediction import Prediction, frame_image, predict
from .stages import check_known_options, frame_size
from .stats import Recorder, StreamStats, timed

DRIVES = ("v", "u")  # the backbone's output: the shared input term (SIH, VRNN) or one per gate
STATES = (("h", "h_in", "h_out"), ("c", "c_in", "c_out"))  # (state, step input, step output)
GATES = {"lstm": 4, "gru": 3, "vrnn": 1}
CAUSES = ("gap", "max_steps", "scene_cut", "request")


# contract ----------------------------------------------------------------------------------------
class StepContract:
    """What the bundle's graphs say about the step: drive name and width, state shapes, classes.

    Read from the manifest (``bundle.graph(...)`` specs), checked against models.md §4.10; every
    mismatch is a ManifestError naming the tensor. States are batch 1 (one stream).
    """

    def __init__(self, bundle: Bundle):
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
                            "re-export the bundle with the PreRNN graph contract (models.md §4.10)")


def recurrent_settings(policy: Mapping[str, Any], **overrides: Any) -> Dict[str, Any]:
    """``max_steps``, ``max_gap_s`` and ``scene_cut`` of a bundle policy (options win where not None), validated.

    ConfigError for a bad number or a policy of another kind. ``scene_cut`` is a score in (0, 1].
    """
    kind = policy.get("kind", "recurrent")
    if kind != "recurrent":
        raise ConfigError("bundle policy kind is '%s'" % kind, "PreRNN streams run the 'recurrent' policy",
                          "re-export the bundle as a PreRNN bundle")
    merged = dict(policy)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    scene_cut = positive_setting(merged.get("scene_cut"), "scene_cut", float)
    if scene_cut is not None and scene_cut > 1.0:
        raise ConfigError("bad policy setting scene_cut=%r" % (merged.get("scene_cut"),),
                          "the scene-cut score is a mean absolute difference in [0, 1]",
                          "use a threshold such as 0.3 (higher: fewer resets)")
    return {"max_steps": positive_setting(merged.get("max_steps"), "max_steps", int),
            "max_gap_s": positive_setting(merged.get("max_gap_s"), "max_gap_s", float), "scene_cut": scene_cut}


# scene cuts --------------------------------------------------------------------------------------
class SceneCut:
    """Cheap cut score between consecutive frames: mean |Δ| of 16×16 grey thumbnails, in [0, 1].

    ::

        frame ─► every k-th pixel (≈64 px short side) ─► grey ─► 16×16 block means ─┐
                                                         previous thumbnail ────────┴─► mean |a − b| / 255

    Numpy only (runs beside the preprocessing, one thread). Small motion moves few block means a
    little; a cut replaces the whole picture, so most blocks jump. The first frame scores 0.
    """

    SIDE = 16

    def __init__(self):
        self._prev: Optional[np.ndarray] = None

    def __call__(self, image: np.ndarray) -> float:
        thumb = thumbnail(image, self.SIDE)
        prev, self._prev = self._prev, thumb
        if prev is None:
            return 0.0
        return float(np.abs(thumb - prev).mean() / 255.0)


def thumbnail(image: np.ndarray, side: int = 16) -> np.ndarray:
    """A side×side float32 grey thumbnail of a BGR uint8 image (block means of a subsampled copy)."""
    h, w = image.shape[:2]
    # subsample first so the cost does not grow with the camera resolution
    stride = max(1, min(h, w) // (4 * side))
    small = image[::stride, ::stride].astype(np.float32)
    grey = small @ np.array([0.114, 0.587, 0.299], np.float32)  # BGR weights (ITU-R BT.601)
    bh, bw = grey.shape[0] // side, grey.shape[1] // side
    if bh == 0 or bw == 0:  # tiny frames: use them as they are
        return np.resize(grey, (side, side))
    return grey[:bh * side, :bw * side].reshape(side, bh, side, bw).mean(axis=(1, 3))


# policy ------------------------------------------------------------------------------------------
class RecurrentPolicy(Policy):
    """Owns one stream's PreRNN state and runs the step graph on it.

    ::

        drive (v|u) ─┐
        h, c  ───────┴─► step ─► h_out, c_out (copied: kept as the next h, c) ─► logits

    ``step(drive, timestamp, scene_cut=False)`` returns the logits ([1, C] copy). State resets (counted
    in ``resets`` and ``reset_causes``): every ``max_steps`` steps, after a stream-time gap >
    ``max_gap_s``, on a step flagged ``scene_cut``, and at the next step after :meth:`request_reset`
    (safe from any thread). ``record(name, seconds)`` receives the step graph's inference time.
    """

    def __init__(self, bundle: Bundle, session: Any, *, max_steps: Optional[int] = None,
                 max_gap_s: Optional[float] = None, record: Optional[Recorder] = None):
        self.contract = StepContract(bundle)
        settings = recurrent_settings(bundle.policy, max_steps=max_steps, max_gap_s=max_gap_s)
        self.session = session
        self.record = record
        self._lock = threading.Lock()  # request_reset may come from any thread
        self._requested = False
        super().__init__(max_steps=settings["max_steps"], max_gap_s=settings["max_gap_s"])

    def _zero_state(self) -> None:
        self.state = {name: np.zeros(shape, np.float32) for name, shape in self.contract.states.items()}

    def request_reset(self) -> None:
        """Zero the state before the next step (e.g. the robot turned to another task)."""
        with self._lock:
            self._requested = True

    def step(self, drive: np.ndarray, timestamp: Optional[float] = None, scene_cut: bool = False) -> np.ndarray:
        """One serial recurrent step from the backbone output ``drive``; returns the logits."""
        with self._lock:  # take the request and clear it in one go, so none that arrives meanwhile is lost
            requested, self._requested = self._requested, False
        cause = "request" if requested else "scene_cut" if scene_cut else None
        self._begin_step(timestamp, cause)
        feeds = {self.contract.drive: drive}
        for state, name_in, _ in STATES:
            if state in self.state:
                feeds[name_in] = self.state[state]
        out = timed(self.record, "step", self.session.infer, feeds)
        # copy: the outputs may be views into buffers the next infer overwrites
        for state, _, name_out in STATES:
            if state in self.state:
                self.state[state] = np.array(out[name_out], np.float32)
        return np.array(out["logits"])


# stages ------------------------------------------------------------------------------------------
class _Work:
    """One frame on its way through the stages."""

    __slots__ = ("frame", "x", "cut", "drive")

    def __init__(self, frame: Any, x: np.ndarray, cut: float):
        self.frame = frame
        self.x = x
        self.cut = cut
        self.drive: Optional[np.ndarray] = None


class RecurrentStages:
    """PreRNN stage functions over active sessions (stages.py contract); one thread each at a time.

    Stages ``preprocess`` → ``cnn`` (backbone, ahead) → ``rnn`` (step, serial); graph times are
    recorded as ``backbone`` and ``step``. Options (override the bundle's policy): ``max_steps``,
    ``max_gap_s``, ``scene_cut``.
    """

    ROLES = ("backbone", "step")
    OPTIONS = ("max_steps", "max_gap_s", "scene_cut")

    @classmethod
    def check(cls, bundle: Bundle, options: Mapping[str, Any]) -> Dict[str, Any]:
        """Validated options; ManifestError for graphs off the contract, ConfigError for a bad option."""
        check_known_options(cls, options)
        StepContract(bundle)
        recurrent_settings(bundle.policy, **options)
        return dict(options)

    def __init__(self, bundle: Bundle, sessions: Dict[str, Any], stats: StreamStats, *,
                 max_steps: Optional[int] = None, max_gap_s: Optional[float] = None,
                 scene_cut: Optional[float] = None):
        from .preprocess import Preprocessor

        self.labels = list(bundle.labels)
        self.size = frame_size(bundle, "backbone")
        if self.size not in bundle.preprocess.sizes:
            raise ManifestError("bundle %s preprocesses to sizes %s" % (bundle.root, list(bundle.preprocess.sizes)),
                                "its backbone needs %d" % self.size, "re-export the bundle")
        self.pre = Preprocessor(bundle.preprocess)
        self.backbone_session = sessions["backbone"]
        self.stats = stats
        costs = [bundle.graph(role).gmacs for role in self.ROLES]
        self.gmacs = None if None in costs else sum(costs)  # both graphs run on every frame
        self.threshold = recurrent_settings(bundle.policy, scene_cut=scene_cut)["scene_cut"]
        self.scene = SceneCut()
        self.policy = RecurrentPolicy(bundle, sessions["step"], max_steps=max_steps, max_gap_s=max_gap_s,
                                      record=stats.add_stage)

    def as_list(self) -> List[Tuple[str, Any]]:
        return [("preprocess", self.preprocess), ("cnn", self.cnn), ("rnn", self.rnn)]

    def request_reset(self) -> None:
        """Zero the state before the next frame reaches the step."""
        self.policy.request_reset()

    def preprocess(self, frame: Any) -> _Work:
        image = frame_image(frame)
        # the preprocessor reuses its output buffers: queued work must own its input
        x = np.array(self.pre(image)[self.size])
        cut = self.scene(image) if self.threshold is not None else 0.0
        return _Work(frame, x, cut)

    def cnn(self, work: _Work) -> _Work:
        out = timed(self.stats.add_stage, "backbone", self.backbone_session.infer, {"frame": work.x})
        work.drive = np.array(out[self.policy.contract.drive])
        work.x = None  # the 224 input is not needed any more; free it while the item waits
        return work

    def rnn(self, work: _Work) -> Tuple[Prediction, float]:
        frame = work.frame
        cut = self.threshold is not None and work.cut > self.threshold
        policy = self.policy
        logits = policy.step(work.drive, frame.timestamp, scene_cut=cut)
        self.stats.add_gmacs(self.gmacs)
        self.stats.set(steps=policy.steps)
        if policy.resets != self.stats.resets:  # the per-cause copy only when a reset happened
            self.stats.set(resets=policy.resets, resets_by_cause=dict(policy.reset_causes))
        return predict(frame, logits, self.labels, "step"), frame.captured
