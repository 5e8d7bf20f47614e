"""PreRNN's stages for the StreamRuntime: a stateless backbone ahead, one serial recurrent step.

::

    capture ─► preprocess (224 + scene-cut score) ─► cnn: backbone (frame → v | u) ─► rnn: step (serial)
                                                      (stateless: runs ahead on        v|u, h_in[, c_in]
                                                       later frames)                    → h_out[, c_out], logits

The step at frame t needs the state after frame t−1, so only the step is serial; the backbone, which
is most of the cost, overlaps with it in its own thread (docs/models.md §4.10). :class:`RecurrentPolicy`
owns the state: zeros at stream start, then reset every ``max_steps`` steps, after a stream-time gap
longer than ``max_gap_s``, on a scene cut (``scene_cut`` threshold on :class:`SceneCut`'s score,
computed in the preprocess stage), and on an explicit :meth:`RecurrentPolicy.request_reset`.

When the step runs on a TensorRT engine, the stages run device/prernn.py's plan instead: the state stays on
the GPU in ping-pong buffers (zeroed there on a reset), the backbone's output too when the backbone is an
engine on the same GPU (a ring slot, as LiteEval's coarse features), and only the logits come back.

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
from ..preprocess import check_frame
from ..families import prernn as rules
from ..families.prernn import STATES
from .device import preprocess as device_pre
from .device import prernn as device_plan
from .device.prernn import DeviceStep
from .policies import Policy
from .prediction import Prediction, camera_image, frame_image, predict
from .stages import Stages
from .stats import Recorder, StreamStats, timed

CAUSES = ("gap", "max_steps", "scene_cut", "request")


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
    ``device``: a device.prernn.DeviceStep that runs the step with h and c kept on the GPU (``state`` is then
    empty; this policy still decides every reset, the device step clears the state there).
    """

    def __init__(self, bundle: Bundle, session: Any, *, max_steps: Optional[int] = None,
                 max_gap_s: Optional[float] = None, record: Optional[Recorder] = None,
                 plan: Optional[Mapping[str, Any]] = None, device: Optional[DeviceStep] = None):
        if plan is None:
            plan = RecurrentStages.check(bundle, {"max_steps": max_steps, "max_gap_s": max_gap_s})
        self.contract = plan["contract"]
        settings = plan["settings"]
        self.session = session
        self.record = record
        self._lock = threading.Lock()  # request_reset may come from any thread
        self._requested = False
        self.device = device  # set before the base class zeroes the state
        super().__init__(max_steps=settings["max_steps"], max_gap_s=settings["max_gap_s"])

    def _zero_state(self) -> None:
        if self.device is not None:
            self.state = {}  # h and c stay on the GPU: the device step clears them there before its next run
            self.device.reset()
            return
        self.state = {name: np.zeros(shape, np.float32) for name, shape in self.contract.states.items()}

    def request_reset(self) -> None:
        """Zero the state before the next step (e.g. the robot turned to another task)."""
        with self._lock:
            self._requested = True

    def step(self, drive: Any, timestamp: Optional[float] = None, scene_cut: bool = False) -> np.ndarray:
        """One serial recurrent step from the backbone output ``drive`` (a host array; with a device step whose
        backbone is on the GPU, a DeviceFeature); returns the logits."""
        with self._lock:  # take the request and clear it in one go, so none that arrives meanwhile is lost
            requested, self._requested = self._requested, False
        cause = "request" if requested else "scene_cut" if scene_cut else None
        self._begin_step(timestamp, cause)
        return self._run_step(drive)

    def _run_step(self, drive: np.ndarray) -> np.ndarray:
        """The step graph on the host state, or on the GPU's by the device step."""
        if self.device is not None:
            return self.device.run(drive)
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
        self.drive: Any = None  # a host array, or a device.executor.DeviceFeature (the output stays on the GPU)


class RecurrentStages(Stages):
    """PreRNN stage functions over active sessions (stages.py contract); one thread each at a time.

    Stages ``preprocess`` → ``cnn`` (backbone, ahead) → ``rnn`` (step, serial); graph times are
    recorded as ``backbone`` and ``step``. Options (override the bundle's policy): ``max_steps``,
    ``max_gap_s``, ``scene_cut``.
    """

    @classmethod
    def check(cls, bundle: Bundle, options: Mapping[str, Any]) -> Dict[str, Any]:
        """The plan: settings and the step contract; ManifestError for graphs off it, ConfigError for a bad option."""
        return {"settings": rules.FAMILY.check_policy(bundle.policy, options), "contract": rules.contract(bundle)}

    def __init__(self, bundle: Bundle, sessions: Dict[str, Any], stats: StreamStats, plan: Mapping[str, Any]):
        from ..preprocess import Preprocessor

        self.labels = list(bundle.labels)
        self.size = plan["contract"].size
        self.pre = Preprocessor(bundle.preprocess)
        self.backbone_session = sessions["backbone"]
        self.stats = stats
        costs = [bundle.graph(role).gmacs for role in rules.FAMILY.roles]
        self.gmacs = None if None in costs else sum(costs)  # both graphs run on every frame
        self.threshold = plan["settings"]["scene_cut"]
        self.scene = SceneCut()
        self.device: Optional[device_plan.DeviceRecurrent] = None
        # GPU preprocessing writes the backbone's input from the uploaded frame (device/preprocess.py)
        self.gpu_pre = device_pre.choose(plan.get("preprocess", "auto"), bundle, sessions,
                                         device_plan.on_device(sessions, device_plan.ROLES),
                                         {"backbone": "backbone"})
        stats.set(preprocess=self.gpu_pre.describe() if self.gpu_pre else dict(device_pre.CPU))
        if device_plan.step_on_device(sessions):
            # the state stays on the step's GPU; the backbone's output too when the backbone is an engine there
            self.device = device_plan.DeviceRecurrent(sessions, plan, record=stats.add_stage, gpu_pre=self.gpu_pre)
        self.policy = RecurrentPolicy(bundle, sessions["step"], record=stats.add_stage, plan=plan,
                                      device=self.device.step if self.device is not None else None)

    def as_list(self) -> List[Tuple[str, Any]]:
        return [("preprocess", self.preprocess), ("cnn", self.cnn), ("rnn", self.rnn)]

    def request_reset(self) -> None:
        """Zero the state before the next frame reaches the step."""
        self.policy.request_reset()

    def preprocess(self, frame: Any) -> _Work:
        image = frame_image(frame)
        # the preprocessor reuses its output buffers: queued work must own its input; on the GPU path the decoded
        # image goes up as it is and the backbone's plan prepares it
        x = check_frame(image) if self.gpu_pre is not None else np.array(self.pre(image)[self.size])
        cut = self.scene(camera_image(frame)) if self.threshold is not None else 0.0  # a flow frame: its camera picture
        return _Work(frame, x, cut)

    def close(self) -> None:
        if self.gpu_pre is not None:
            self.gpu_pre.deactivate()

    def cnn(self, work: _Work) -> _Work:
        if self.device is not None and self.device.ring is not None:
            work.drive = self.device.backbone(work.x)  # stays on the GPU
            work.x = None
            return work
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
