"""PreRNN on TensorRT with the recurrent state (and, when the backbone is an engine on the same GPU, the
backbone's output) kept on the device between steps; only the logits come back to the host.

Two CUDA streams when both roles are engines of one GPU, and events where the drive crosses between them::

    backbone stream (cnn stage thread)   frame224 ─H2D─► backbone ─► drive#k ──(drive_ready#k)──┐
    step stream     (rnn stage thread)                                                          ▼
        [reset: zero h/c #p] ─► step(drive#k, h/c #p) ─► h/c #q ─D2H─► logits ─► host
                                   │ records drive_free#k: the backbone may write slot k again

- The backbone runs ahead into a ring of ``slots`` drive buffers (``drive#k``, k = frame number mod ``slots``),
  :func:`ring_slots` of the queue size, guarded by a :class:`FeatureRing` exactly as LiteEval's coarse features.
  When the backbone is not an engine on the step's GPU (ONNX Runtime, another GPU), the drive is uploaded with
  the step from the host (the step's own page-locked input) and only the state stays on the device.
- The state (``h``, and ``c`` for LSTM) lives in ping-pong buffers: step t reads ``#p`` and writes ``#q``
  (p = t mod 2), so no run reads and writes one buffer.
- A reset (stream start, ``max_steps``, a gap, a scene cut, a request: decided by the ``RecurrentPolicy`` that
  runs a :class:`DeviceStep`) queues a :data:`ZERO` op clearing the ``#p`` state on the step stream, ahead of
  the step that reads it.

The ops are plan.py's, checked by ``hazards`` and run by executor.py's :class:`DeviceExecutor`.
"""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ...errors import SessionError
from ...families.prernn import STATES
from ..stats import Recorder
from .executor import DeviceExecutor, DeviceFeature, FeatureRing, on_device
from .plan import BACKBONE, STEP, ZERO, Op, ring_slots, state
from .preprocess import ROLE as PRE

RING = "drive#"  # the backbone outputs' ring slots: drive#0 … drive#<slots-1> (one of plan.RINGS)
ROLES = ("backbone", "step")


def plan_backbone(seq: int, slots: int, drive: str, gpu_pre: bool = False) -> List[Op]:
    """The backbone on frame number ``seq``, its output ``drive`` (v or u) into ring slot ``seq % slots``. With
    ``gpu_pre`` the decoded frame is uploaded and prepared on the backbone stream first, into ``frame_b``, which
    the next frame's preparation rewrites only after this backbone read it (the same stream)."""
    k = seq % slots
    out = {drive: RING + str(k)}
    if not gpu_pre:
        return [Op("backbone", BACKBONE, out, waits=("drive_free#%d" % k,), records=("drive_ready#%d" % k,),
                   host=("frame",), frame=seq)]
    return [Op(PRE, BACKBONE, {"backbone": "frame_b"}, host=("frame",), frame=seq),
            Op("backbone", BACKBONE, dict(out, frame="frame_b"), waits=("drive_free#%d" % k,),
               records=("drive_ready#%d" % k,), frame=seq)]


def plan_step(seq: Optional[int], parity: int, drive: str, states: Sequence[str],
              slots: Optional[int] = None) -> List[Op]:
    """The step of frame ``seq``: reads the ``parity`` state, writes the other; only ``logits`` come back.

    ``slots``: the drive is read from its ring slot (the backbone is an engine on this GPU); None: it is
    uploaded from the host with the step."""
    p, q = parity, 1 - parity
    device = {}
    for name, name_in, name_out in STATES:
        if name in states:
            device[name_in], device[name_out] = state(name, p), state(name, q)
    if slots is None:
        return [Op("step", STEP, device, host=(drive,), fetch=("logits",))]
    k = seq % slots
    device[drive] = RING + str(k)
    return [Op("step", STEP, device, waits=("drive_ready#%d" % k,), records=("drive_free#%d" % k,),
               fetch=("logits",), frame=seq)]


def plan_reset(parity: int, states: Sequence[str]) -> List[Op]:
    """Clear the ``parity`` state (the buffers the next step reads) on the step stream."""
    return [Op(ZERO, STEP, {name: state(name, parity) for name in states})]


def plan_recurrent_step(seq: Optional[int], parity: int, drive: str, states: Sequence[str],
                        slots: Optional[int] = None, reset: bool = False) -> List[Op]:
    """The step stream's ops of one step: the reset when one is due, then the step."""
    return (plan_reset(parity, states) if reset else []) + plan_step(seq, parity, drive, states, slots)


def all_ops(drive: str, states: Sequence[str], slots: Optional[int] = None, gpu_pre: bool = False) -> List[Op]:
    """Every op shape the plan makes: what the executor allocates buffers and events for up front."""
    ops: List[Op] = plan_reset(0, states) + plan_reset(1, states)
    for k in range(slots or 1):
        if slots is not None:
            ops += plan_backbone(k, slots, drive, gpu_pre)
        ops += plan_step(k, 0, drive, states, slots) + plan_step(k, 1, drive, states, slots)
    return ops


def state_names(contract: Any) -> Tuple[str, ...]:
    """The states a step contract carries, in STATES order: ("h", "c") for LSTM, ("h",) otherwise."""
    return tuple(name for name, _, _ in STATES if name in contract.states)


class DeviceStep:
    """The step run by a :class:`DeviceExecutor` on the plan above, its state never leaving the device: what a
    ``RecurrentPolicy(device=…)`` runs instead of its host step (the policy keeps deciding the resets).

    :meth:`run` takes a :class:`DeviceFeature` for the drive when ``slots`` is given (the backbone's output is
    in the ring), a host array otherwise, and returns the logits; :meth:`reset` clears the state before the
    next run, on the device."""

    def __init__(self, executor: Any, drive: str, states: Sequence[str], slots: Optional[int] = None):
        self.executor, self.drive, self.states, self.slots = executor, drive, tuple(states), slots
        self.parity = 0  # the state buffers the next step reads
        self._zero_pending = True

    def reset(self) -> None:
        self._zero_pending = True  # cleared on the device, in stream order, by the next run

    def run(self, drive: Any) -> np.ndarray:
        on_ring = self.slots is not None
        if on_ring != isinstance(drive, DeviceFeature):
            raise SessionError("the PreRNN device step got a %s drive" % type(drive).__name__,
                               "its backbone output is %s" % ("in the GPU ring" if on_ring else "fed from the host"),
                               "feed what DeviceRecurrent.backbone returns" if on_ring else "feed a host array")
        ops = plan_recurrent_step(drive.seq if on_ring else None, self.parity, self.drive, self.states, self.slots,
                                  reset=self._zero_pending)
        self._zero_pending = False
        out = self.executor.run(ops, None if on_ring else {"step": {self.drive: drive}})
        if on_ring:
            drive.read = True  # its ring slot may be written again (after drive_free)
        self.parity = 1 - self.parity  # the next step reads what this one wrote
        return np.array(out["step.logits"])


class DeviceRecurrent:
    """What RecurrentStages needs to keep PreRNN's state on the GPU: ``step`` (a :class:`DeviceStep`) for its
    policy in the rnn thread and, when the backbone is an engine on the step's GPU (``ring`` is then not None),
    ``backbone(frame)`` for the cnn thread, over one executor."""

    def __init__(self, sessions: Mapping[str, Any], plan: Mapping[str, Any], record: Optional[Recorder] = None,
                 gpu_pre: Optional[Any] = None):
        contract = plan["contract"]
        self.drive, states = contract.drive, state_names(contract)
        self.ring: Optional[FeatureRing] = None
        roles = {"step": sessions["step"]}
        if on_device(sessions, ROLES):
            self.ring = FeatureRing(ring_slots(plan.get("queue_size", 1)), reader="the PreRNN step",
                                    what="backbone output", stages="RecurrentStages")
            roles["backbone"] = sessions["backbone"]
        # gpu_pre: an active DevicePreprocess writing "backbone"; only with the backbone an engine here
        self.gpu_pre = gpu_pre is not None and self.ring is not None
        if self.gpu_pre:
            roles[PRE] = gpu_pre
        slots = self.ring.slots if self.ring is not None else None
        self.executor = DeviceExecutor(roles, sessions["step"].device, record).prepare(
            all_ops(self.drive, states, slots, self.gpu_pre))
        self.step = DeviceStep(self.executor, self.drive, states, slots)

    def backbone(self, frame: np.ndarray) -> DeviceFeature:
        """Queue the backbone on ``frame`` (its input, or with GPU preprocessing the decoded image); its output
        stays in the ring slot of the returned feature."""
        if self.ring is None:
            raise SessionError("the PreRNN backbone is not an engine on the step's GPU", None,
                               "run it on the host and feed its output to the policy's step")
        feature = self.ring.claim()
        role = PRE if self.gpu_pre else "backbone"
        self.executor.run(plan_backbone(feature.seq, self.ring.slots, self.drive, self.gpu_pre),
                          {role: {"frame": frame}})
        return feature


def step_on_device(sessions: Mapping[str, Any]) -> bool:
    """True when the step runs on a TensorRT engine: then its state can stay on that GPU."""
    return on_device(sessions, ("step",))
