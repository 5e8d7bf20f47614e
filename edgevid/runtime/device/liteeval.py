"""LiteEval on TensorRT engines with the features and the recurrent state kept on the GPU.

Three CUDA streams, and events where a tensor crosses from one to another::

    coarse stream  (coarse stage thread)   frame112 ─H2D─► coarse_cnn ─► feat_c#k ──(feat_c_ready#k)──┐
    chain stream   (chain stage thread)                                                               ▼
        coarse_step(feat_c#k, h_c/c_c/h_f/c_f #p) ─► #q state, v_c ─D2H─► gate_logits, logits_sync ─► host
           │ records feat_c_free#k: coarse_cnn may write slot k again                  gate says fine?
    fine stream    (chain stage thread)    frame224 ─H2D─► fine_cnn ─► feat_f ──(feat_f_ready)──┐
    chain stream                           fine_step(feat_f, v_c, h_f/c_f #p) ─► h_f/c_f #q ─D2H─► logits

- The coarse CNN runs ahead on later frames into a ring of ``slots`` feature buffers (``feat_c#k``, k = frame
  number mod ``slots``); a slot is written again only after coarse_step read it (event ``feat_c_free#k``). With
  bounded queues of ``queue_size`` between the stages at most ``queue_size + 2`` frames are between the two
  (one being made, ``queue_size`` queued, one in the chain), so that many slots (:func:`ring_slots`) never wrap
  onto a frame still waiting; :class:`FeatureRing` makes sure of it on the host (the coarse stage waits rather
  than overwrite), and :func:`hazards` shows the clash a ring without that would have.
- The state lives in ping-pong buffers: step t reads ``#p`` and writes ``#q`` (p = t mod 2), on the skip path
  coarse_step's sync outputs and on the fine path fine_step's outputs, so either way the next step reads ``#q``;
  a state is never read and written by the same run.
- Only the gate decision and the logits come back to the host; a reset clears the ``#p`` state on the device.

The plan (which op on which stream, which events it waits for and records, which tensors stay in which device
buffer) is plain data made by the ``plan_*`` functions, checked without CUDA by :func:`hazards`, and executed
by :class:`DeviceExecutor` over ``TrtSession.enqueue`` (plan.py, executor.py: shared with PreRNN's plan).
"""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence

import numpy as np

from ...errors import SessionError
from ...families.liteeval import ROLE_IO
from ..policies import ArrayOrThunk, GatedPolicy
from ..stats import Recorder
from . import executor as _executor
from . import preprocess
from .executor import DeviceExecutor, DeviceFeature, FeatureRing  # noqa: F401 (the LiteEval plan's names)
from .plan import CHAIN, COARSE, FINE, THREAD, Op, hazards, ring_slots, state  # noqa: F401

STATES = ("h_c", "c_c", "h_f", "c_f")
RING = "feat_c#"  # the coarse features' ring slots: feat_c#0 … feat_c#<slots-1> (one of plan.RINGS)
FINE_RING = "frame_f#"  # with GPU preprocessing, each frame's fine input, slot for slot with RING
PRE = preprocess.ROLE


def plan_coarse(seq: int, slots: int, gpu_pre: bool = False) -> List[Op]:
    """The coarse CNN on frame number ``seq``, into ring slot ``seq % slots``. With ``gpu_pre`` the frame is
    uploaded as decoded and preprocessed on the coarse stream first: the 112 input into ``frame_c``, the 224 one
    into the fine-input ring slot ``frame_f#k`` (written again only after the fine CNN of the frame before read
    it: ``frame_f_free#k``), which ``feat_c_ready#k`` then covers too."""
    k = seq % slots
    feat = {"feat": RING + str(k)}
    if not gpu_pre:
        return [Op("coarse_cnn", COARSE, feat, waits=("feat_c_free#%d" % k,), records=("feat_c_ready#%d" % k,),
                   host=("frame",), frame=seq)]
    return [Op(PRE, COARSE, {"coarse": "frame_c", "fine": FINE_RING + str(k)},
               waits=("feat_c_free#%d" % k, "frame_f_free#%d" % k), host=("frame",), frame=seq),
            Op("coarse_cnn", COARSE, dict(feat, frame="frame_c"), records=("feat_c_ready#%d" % k,), frame=seq)]


def plan_coarse_step(seq: int, slots: int, parity: int) -> List[Op]:
    """coarse_step of frame ``seq``: reads its slot and the ``parity`` state, writes the other one."""
    k, p, q = seq % slots, parity, 1 - parity
    device = {"feat_c": RING + str(k), "v_c": "v_c",
              "h_c_in": state("h_c", p), "c_c_in": state("c_c", p), "h_f_in": state("h_f", p), "c_f_in": state("c_f", p),
              "h_c_out": state("h_c", q), "c_c_out": state("c_c", q),
              "h_f_sync": state("h_f", q), "c_f_sync": state("c_f", q)}
    # logits_sync comes back with the gate: one wait for both, and the skip path needs nothing more
    return [Op("coarse_step", CHAIN, device, waits=("feat_c_ready#%d" % k,), records=("feat_c_free#%d" % k,),
               fetch=("gate_logits", "logits_sync"), frame=seq)]


def plan_fine(parity: int, seq: Optional[int] = None, slots: Optional[int] = None) -> List[Op]:
    """The fine branch after a coarse_step at ``parity``: fine_cnn on the fine stream, fine_step in the chain.

    fine_cnn needs no event before it overwrites ``feat_f``: the chain thread enqueues it only after it waited
    for this step's gate, which the chain stream computed after the last fine_step had read ``feat_f``. Given
    frame ``seq`` of a ``slots`` ring, its input is that frame's GPU-preprocessed ``frame_f#k``, freed with
    ``frame_f_free#k``; it needs no wait either: that wait for the gate came after coarse_step, which waited for
    ``feat_c_ready#k``, recorded after ``frame_f#k`` was written. Otherwise the input is uploaded from the host."""
    p, q = parity, 1 - parity
    if seq is None:
        fine = Op("fine_cnn", FINE, {"feat": "feat_f"}, records=("feat_f_ready",), host=("frame",))
    else:
        k = seq % slots
        fine = Op("fine_cnn", FINE, {"frame": FINE_RING + str(k), "feat": "feat_f"},
                  records=("feat_f_ready", "frame_f_free#%d" % k), frame=seq)
    return [fine, Op("fine_step", CHAIN, {"feat_f": "feat_f", "v_c": "v_c", "h_f_in": state("h_f", p),
                                          "c_f_in": state("c_f", p), "h_f_out": state("h_f", q),
                                          "c_f_out": state("c_f", q)},
                     waits=("feat_f_ready",), fetch=("logits",))]


def plan_liteeval_step(seq: int, slots: int, parity: int, fine: bool, gpu_pre: bool = False) -> List[Op]:
    """The chain's ops of one step (coarse_step, then the fine branch when the gate chose it)."""
    fine_ops = plan_fine(parity, seq, slots) if gpu_pre else plan_fine(parity)
    return plan_coarse_step(seq, slots, parity) + (fine_ops if fine else [])


def all_ops(slots: int, gpu_pre: bool = False) -> List[Op]:
    """Every op shape the plan makes: what the executor allocates buffers and events for up front."""
    ops: List[Op] = []
    for k in range(slots):
        ops += plan_coarse(k, slots, gpu_pre) + plan_coarse_step(k, slots, 0) + plan_coarse_step(k, slots, 1)
        if gpu_pre:
            ops += plan_fine(0, k, slots) + plan_fine(1, k, slots)
    return ops + ([] if gpu_pre else plan_fine(0) + plan_fine(1))


class DeviceGatedPolicy(GatedPolicy):
    """:class:`GatedPolicy` (resets, the gate rule, the fine cap) with its three graph steps run by a
    :class:`DeviceExecutor` on the plan above: ``step`` takes a :class:`DeviceFeature` for ``feat_c``."""

    def __init__(self, bundle: Any, sessions: Mapping[str, Any], executor: DeviceExecutor, slots: int,
                 gpu_pre: bool = False, **options):
        self.executor, self.slots, self.gpu_pre = executor, slots, gpu_pre
        self.parity = 0  # the state buffers the next step reads
        self._step_parity = 0  # those the current step read
        self._zero_pending = True
        self._feature: Optional[DeviceFeature] = None  # the step's frame, while its fine input may still be read
        super().__init__(bundle, sessions, **options)

    def _zero_state(self) -> None:
        self._zero_pending = True  # cleared on the device, in stream order, by the next step
        if self.fine_window is None:
            self._fine_at.clear()  # as GatedPolicy: without a window the cap counts per reset segment

    def _coarse_step(self, feat_c: DeviceFeature) -> np.ndarray:
        if self._zero_pending:
            self.executor.zero([state(s, self.parity) for s in STATES], CHAIN)
            self._zero_pending = False
        out = self.executor.run(plan_coarse_step(feat_c.seq, self.slots, self.parity))
        # with GPU preprocessing the slot also holds the frame's fine input: free once the branch is queued
        self._feature = feat_c
        feat_c.read = not self.gpu_pre
        self._logits_sync = np.array(out["coarse_step.logits_sync"])
        # both paths leave the state in the other buffers, which the next step reads
        self._step_parity, self.parity = self.parity, 1 - self.parity
        return np.asarray(out["coarse_step.gate_logits"]).reshape(-1)

    def _fine_step(self, frame_fine: Optional[ArrayOrThunk], feat_f: Optional[ArrayOrThunk]) -> np.ndarray:
        if feat_f is not None:
            raise SessionError("the GPU chain runs the fine CNN itself", "a fine feature was given",
                               "use GatedPolicy to step on recorded features")
        if self.gpu_pre:
            out = self.executor.run(plan_fine(self._step_parity, self._feature.seq, self.slots))
        else:
            frame = frame_fine() if callable(frame_fine) else frame_fine
            out = self.executor.run(plan_fine(self._step_parity), {"fine_cnn": {"frame": frame}})
        self._feature.read = True
        return np.array(out["fine_step.logits"])

    def _skip_step(self) -> np.ndarray:
        self._feature.read = True
        return self._logits_sync  # the sync state was written on the device by coarse_step already


class DeviceChain:
    """What GatedStages needs to run LiteEval on the GPU: ``coarse(frame)`` for the coarse stage thread and
    ``policy`` (a DeviceGatedPolicy) for the chain thread, over one executor and one :class:`FeatureRing`."""

    def __init__(self, bundle: Any, sessions: Mapping[str, Any], plan: Mapping[str, Any],
                 record: Optional[Recorder] = None, gpu_pre: Optional[Any] = None):
        self.ring = FeatureRing(ring_slots(plan.get("queue_size", 1)))
        self.gpu_pre = gpu_pre is not None  # gpu_pre: a DevicePreprocess, active, writing "coarse" and "fine"
        if self.gpu_pre:
            sessions = dict(sessions, **{PRE: gpu_pre})
        device = sessions["coarse_cnn"].device
        self.executor = DeviceExecutor(sessions, device, record).prepare(all_ops(self.ring.slots, self.gpu_pre))
        self.policy = DeviceGatedPolicy(bundle, sessions, self.executor, self.ring.slots, gpu_pre=self.gpu_pre,
                                        record=record, plan=plan)

    def coarse(self, frame: np.ndarray) -> DeviceFeature:
        """The coarse CNN of a frame: its preprocessed 112 input, or with GPU preprocessing the decoded image."""
        feature = self.ring.claim()
        role = PRE if self.gpu_pre else "coarse_cnn"
        self.executor.run(plan_coarse(feature.seq, self.ring.slots, self.gpu_pre), {role: {"frame": frame}})
        return feature


def on_device(sessions: Mapping[str, Any], roles: Sequence[str] = tuple(ROLE_IO)) -> bool:
    """True when every LiteEval role runs on a TensorRT engine on one GPU: then the chain can stay there."""
    return _executor.on_device(sessions, roles)
