"""SlowFast streaming: a timestamp-sampled ring buffer of frames, a clip every N slots, labels per frame.

Stages (pipelined: one thread each, see pipeline.py)::

    capture ─► preprocess ─► window ─► infer ─► predict ─► Prediction
               sample by     ring of    sessions   smoothing,
               timestamp     T frames   ["clip"]   "clip" | "held"

- **Sampling** (preprocess stage, :meth:`ClipPolicy.sample`): the model was trained on frames
  ``1/step_fps`` apart (training fps / frame stride, docs/models.md §3.3). A frame is kept when its
  timestamp reaches the next slot of a grid anchored at the first kept frame (``t0 + k/step_fps``,
  minus a tolerance of ``SLOT_TOLERANCE`` of a slot so jittery live clocks do not lose slots); a
  30 fps and a 60 fps camera therefore feed the same spacing. Frames between slots yield nothing
  and are not preprocessed. Without ``step_fps`` every frame is a slot.
- **Slow sources** (gaps of more than one slot): the missed slots are filled with the latest frame
  before them (a zero-order hold, what the camera showed then), the new frame takes the slot it
  reached. Repeated slots are counted in stats (``repeated_slots``) and a warning is logged once per
  stream. A gap longer than ``max_gap_s`` (default: the window's span, T/step_fps, since filling more
  would replace the whole window by one stale frame) resets the stream instead, as does a
  timestamp that goes backwards.
- **Warm-up**: after a reset nothing is predicted until the window holds T slots (those frames
  yield no Prediction), unless ``pad="repeat"``: the first frame fills the whole window and a clip
  runs on it at once.
- **Clips**: the first clip runs when the window is full, then one every ``every`` slots (default
  T/4). Every sampled frame after warm-up gets a Prediction: ``path="clip"`` where a clip ran on
  it, ``path="held"`` with the latest (smoothed) label otherwise, so labels are per frame for
  annotation and robots.
- **Smoothing** (``smooth=K``, default 1 = off): the label and score are the argmax and value of
  the mean softmax of the last K clips of this segment. ``Prediction.logits`` is then the log of
  those mean probabilities (its softmax gives the smoothed scores); without smoothing, the clip's
  own logits.

Stats (``StreamStats.to_dict``): ``clips``, ``held``, ``warmup_frames``, ``unsampled_frames``,
``repeated_slots``, ``resets``; stage ``clip`` = clip inference times (the ``infer`` stage also times
the held frames passing through); ``gmacs_per_frame`` = clip GMACs × clips / source frames.
``every`` counts slots: at the model's spacing one slot per frame, from a slow source a frame may
advance the window by several slots (and so bring the next clip sooner).

A reset travels down the stages with the first frame of the new segment (``_Work.reset``), so each
stage resets its own state in stream order: the sampler in preprocess, the ring in window, the
smoothing in predict. Each piece of state belongs to one stage thread.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any, Deque, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..bundle import Bundle
from ..preprocess import check_frame
from ..families import slowfast as rules
from ..log import get_logger
from .clip_window import ClipWindow
from .device import preprocess as device_pre
from .device import slowfast as device_clips
from .policies import Policy
from .prediction import Prediction, frame_image, predict, softmax
from .stages import Stages
from .stats import StreamStats, timed

log = get_logger(__name__)

SLOT_TOLERANCE = 0.1  # of a slot: a frame this early still takes the slot (clock jitter)


class ClipPolicy(Policy):
    """The clip schedule of one stream: sampler, window, clip timing and score smoothing.

    ``frames`` T and ``size`` S come from the graph; ``step_fps`` (None: every frame is a slot),
    ``every``, ``smooth``, ``pad`` and ``max_gap_s`` as in the module docstring. Each method belongs to
    one stage thread: ``sample`` (preprocess), ``push`` (window), ``smoothed`` (predict).
    Counters: ``steps`` (sampled frames), ``resets``, ``repeated_slots``.
    """

    def __init__(self, frames: int, size: int, *, step_fps: Optional[float] = None, every: Optional[int] = None,
                 smooth: Optional[int] = 1, pad: Optional[str] = "none", max_gap_s: Optional[float] = None,
                 settings: Optional[Mapping[str, Any]] = None):
        if settings is None:  # not validated yet (ClipStages passes what ClipStages.check validated)
            settings = rules.FAMILY.check_policy({}, {"step_fps": step_fps, "every": every, "smooth": smooth,
                                                      "pad": pad, "max_gap_s": max_gap_s})
        self.frames = int(frames)
        self.step_fps = settings["step_fps"]
        self.period = None if self.step_fps is None else 1.0 / self.step_fps
        self.every = settings["every"] or max(1, self.frames // 4)
        self.smooth = settings["smooth"]
        self.pad = settings["pad"]
        max_gap_s = settings["max_gap_s"]
        if max_gap_s is None and self.period is not None:
            max_gap_s = self.frames * self.period  # more would repeat one stale frame over the whole window
        self.window = ClipWindow(frames, size)
        self.repeated_slots = 0
        self._warned = False
        self._due: Optional[float] = None  # sampler (preprocess thread)
        self._since_clip: Optional[int] = None  # window thread; None: no clip yet in this segment
        self._probs: Deque[np.ndarray] = deque(maxlen=self.smooth)  # predict thread
        super().__init__(max_gap_s=max_gap_s)

    def _zero_state(self) -> None:
        self._due = None  # the window and smoothing reset in their own stages (see reset flags)

    # preprocess stage ---------------------------------------------------------------------------
    def sample(self, timestamp: Optional[float]) -> Tuple[int, bool]:
        """``(slots, reset)`` for a frame: slots 0 = not sampled, 1 = the next slot, n > 1 = n-1 missed
        slots to fill by repeating the previous frame; ``reset`` = this frame starts a new segment."""
        if timestamp is None or self.period is None:
            resets = self.resets
            self._begin_step(timestamp)
            return 1, self.resets != resets or self.steps == 1
        tol = SLOT_TOLERANCE * self.period
        last = self._last_ts
        if last is not None and timestamp < last - tol:  # clock went backwards: a new stream
            log.debug("clip window reset: timestamp went back from %.3fs to %.3fs", last, timestamp)
            self.reset()
            self.resets += 1
            self._last_ts = None
        jumped = self._last_ts is not None and self.max_gap_s is not None and timestamp - self._last_ts > self.max_gap_s
        if self._due is not None and not jumped and timestamp + tol < self._due:
            return 0, False  # between slots
        fresh = self._due is None
        resets = self.resets
        self._begin_step(timestamp)  # resets on a gap longer than max_gap_s (clears _due)
        if self._due is None:
            self._due = timestamp + self.period
            return 1, fresh or self.resets != resets
        slots = int(math.floor((timestamp + tol - self._due) / self.period)) + 1
        self._due += slots * self.period  # the grid stays anchored: no drift at non-integer rate ratios
        if slots > 1:
            self._note_repeats(slots - 1, timestamp)
        return slots, False

    def _note_repeats(self, n: int, timestamp: float) -> None:
        self.repeated_slots += n
        if not self._warned:
            self._warned = True
            log.warning("source is slower than the model's frame spacing (%.3g fps): repeating the latest frame "
                        "into %d missed slot(s) at %.3fs (counted in stats 'repeated_slots'); a gap over %.3gs "
                        "resets the window", self.step_fps, n, timestamp, self.max_gap_s)

    # window stage -------------------------------------------------------------------------------
    def push(self, frame: np.ndarray, slots: int, reset: bool) -> bool:
        """Put a sampled frame into the window; True when a clip is due on it."""
        window = self.window
        if reset:
            window.clear()
            self._since_clip = None
        if window.filled == 0 and self.pad == "repeat":
            window.fill(frame)
        else:
            window.repeat(slots - 1)
            window.push(frame)
        if not window.full:
            return False
        if self._since_clip is not None:
            self._since_clip += slots
        if self._since_clip is None or self._since_clip >= self.every:
            self._since_clip = 0
            return True
        return False

    # predict stage ------------------------------------------------------------------------------
    def smoothed(self, logits: np.ndarray, reset: bool) -> np.ndarray:
        """The logits to report for a new clip result: its own, or log of the mean softmax of the last K."""
        if reset:
            self._probs.clear()
        if self.smooth == 1:
            return logits
        self._probs.append(softmax(np.asarray(logits).reshape(-1)))
        mean = np.mean(np.stack(self._probs), axis=0)
        return np.log(np.maximum(mean, 1e-30)).astype(np.float32)


class _Work:
    """One sampled frame on its way through the stages."""

    __slots__ = ("frame", "input", "slots", "reset", "clip", "logits")

    def __init__(self, frame: Any, inputs: np.ndarray, slots: int, reset: bool):
        self.frame, self.input, self.slots, self.reset = frame, inputs, slots, reset
        self.clip: Optional[np.ndarray] = None
        self.logits: Optional[np.ndarray] = None


class ClipStages(Stages):
    """SlowFast's stage functions over an active ``clip`` session (see the module docstring).

    Options (override the bundle's policy): ``every`` (slots between clips), ``smooth`` (clips
    averaged), ``pad`` ("none" | "repeat").
    """

    @classmethod
    def check(cls, bundle: Bundle, options: Mapping[str, Any]) -> Dict[str, Any]:
        """The plan: ClipPolicy settings and the clip geometry (T, S); ManifestError / ConfigError, once."""
        settings = rules.FAMILY.check_policy(bundle.policy, options)
        return {"settings": {k: settings[k] for k in ("step_fps", "every", "smooth", "pad", "max_gap_s")},
                "geometry": rules.contract(bundle)}

    def __init__(self, bundle: Bundle, sessions: Dict[str, Any], stats: StreamStats, plan: Mapping[str, Any]):
        from ..preprocess import Preprocessor

        frames, self.size = plan["geometry"]
        self.labels = list(bundle.labels)
        self.pre = Preprocessor(bundle.preprocess)
        self.session = sessions["clip"]
        self.stats = stats
        self.gmacs = bundle.graph("clip").gmacs
        self.policy = ClipPolicy(frames, self.size, settings=plan["settings"])
        self._logits: Optional[np.ndarray] = None  # predict thread: the latest reported logits
        # GPU preprocessing: the window lives on the engine's GPU, written from the uploaded frame
        # (device/slowfast.py); the policy keeps deciding slots and clips, over a device window
        self.gpu_pre = device_pre.choose(plan.get("preprocess", "auto"), bundle, sessions,
                                         device_clips.clip_on_device(sessions), {"window": "clip"})
        stats.set(preprocess=self.gpu_pre.describe() if self.gpu_pre else dict(device_pre.CPU))
        self.device: Optional[device_clips.DeviceClips] = None
        if self.gpu_pre is not None:
            self.device = device_clips.DeviceClips(sessions, plan, self.gpu_pre, record=stats.add_stage)
            self.policy.window = self.device.window

    def close(self) -> None:
        if self.gpu_pre is not None:
            self.gpu_pre.deactivate()

    def as_list(self) -> List[Tuple[str, Any]]:
        # the inference stage is "infer": the pipeline times every item there (held ones too), while
        # stats "clip" holds the clip runs alone
        return [("preprocess", self.preprocess), ("window", self.window), ("infer", self.infer),
                ("predict", self.predict)]

    def preprocess(self, frame: Any) -> Optional[_Work]:
        image = frame_image(frame)
        slots, reset = self.policy.sample(frame.timestamp)
        self.stats.set(resets=self.policy.resets)
        if slots > 1:
            self.stats.count("repeated_slots", slots - 1)
        if not slots:
            self.stats.count("unsampled_frames")
            return None
        if self.device is not None:  # the decoded image goes up as it is, in the window stage
            return _Work(frame, check_frame(image), slots, reset)
        # the preprocessor reuses its output buffer: queued work must own its input
        return _Work(frame, np.array(self.pre(image)[self.size]), slots, reset)

    def window(self, work: _Work) -> Optional[_Work]:
        due = self.policy.push(work.input, work.slots, work.reset)
        if self.device is not None:
            self.device.put(work.input)
        if not self.policy.window.full:
            self.stats.count("warmup_frames")
            return None
        if due and self.device is not None:
            work.clip = self.device.assemble()  # a device clip buffer of its own
        elif due:
            # a new array: it waits in the queue while the ring moves on (the one copy the queue needs)
            work.clip = self.policy.window.assemble(np.empty_like(self.policy.window.clip))
        work.input = None  # the ring has it; do not carry it further
        return work

    def infer(self, work: _Work) -> _Work:
        if work.clip is not None:
            if self.device is not None:
                work.logits = self.device.run(work.clip)  # timed by the executor as "clip"
            else:
                out = timed(self.stats.add_stage, "clip", self.session.infer, {"clip": work.clip})
                # copy: the session may reuse its output buffers at the next infer
                work.logits = np.array(out["logits"], np.float32).reshape(-1)
            self.stats.add_gmacs(self.gmacs)
            self.stats.count("clips")
            work.clip = None
        return work

    def predict(self, work: _Work) -> Tuple[Prediction, float]:
        if work.reset:
            self._logits = None
        if work.logits is not None:
            self._logits = self.policy.smoothed(work.logits, work.reset)
            path = "clip"
        else:
            path = "held"
            self.stats.count("held")
        return predict(work.frame, self._logits, self.labels, path), work.frame.captured
