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
by :class:`DeviceExecutor` over ``TrtSession.enqueue``.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import SessionError
from ..families.liteeval import ROLE_IO
from .policies import ArrayOrThunk, GatedPolicy
from .stats import Recorder, timed

COARSE, FINE, CHAIN = "coarse", "fine", "chain"  # the streams
# which stage thread enqueues work on each stream (what a host synchronization orders)
THREAD = {COARSE: "coarse", FINE: "chain", CHAIN: "chain"}
STATES = ("h_c", "c_c", "h_f", "c_f")
RING = "feat_c#"  # the coarse features' ring slots: feat_c#0 … feat_c#<slots-1>
_POLL_S = 0.0002  # the chain reads a slot within one coarse_step: poll finely, for a short while


@dataclass(frozen=True)
class Op:
    """One engine run: ``role`` on ``stream``, after the events in ``waits``, recording ``records`` after it.

    ``device`` binds tensors (inputs it reads, outputs it writes) to named device buffers; ``host`` inputs are
    copied up from the host; ``fetch`` outputs are copied back, and the host waits for them. Events and
    buffers are names: the executor holds the CUDA objects."""

    role: str
    stream: str
    device: Mapping[str, str]
    waits: Tuple[str, ...] = ()
    records: Tuple[str, ...] = ()
    host: Tuple[str, ...] = ()
    fetch: Tuple[str, ...] = ()
    frame: Optional[int] = None  # the frame whose coarse feature (ring slot) it makes or reads, for hazards
    reads: Tuple[str, ...] = field(init=False)
    writes: Tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        inputs, outputs = ROLE_IO[self.role]
        object.__setattr__(self, "reads", tuple(b for t, b in self.device.items() if t in inputs))
        object.__setattr__(self, "writes", tuple(b for t, b in self.device.items() if t in outputs))


def ring_slots(queue_size: int) -> int:
    """Feature slots for coarse features in flight: one being made, ``queue_size`` queued, one in the chain."""
    return int(queue_size) + 2


def state(name: str, parity: int) -> str:
    return "%s#%d" % (name, parity)


def plan_coarse(seq: int, slots: int) -> List[Op]:
    """The coarse CNN on frame number ``seq``, into ring slot ``seq % slots``."""
    k = seq % slots
    return [Op("coarse_cnn", COARSE, {"feat": RING + str(k)}, waits=("feat_c_free#%d" % k,),
               records=("feat_c_ready#%d" % k,), host=("frame",), frame=seq)]


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


def plan_fine(parity: int) -> List[Op]:
    """The fine branch after a coarse_step at ``parity``: fine_cnn on the fine stream, fine_step in the chain.

    fine_cnn needs no event before it overwrites ``feat_f``: the chain thread enqueues it only after it waited
    for this step's gate, which the chain stream computed after the last fine_step had read ``feat_f``."""
    p, q = parity, 1 - parity
    return [Op("fine_cnn", FINE, {"feat": "feat_f"}, records=("feat_f_ready",), host=("frame",)),
            Op("fine_step", CHAIN, {"feat_f": "feat_f", "v_c": "v_c", "h_f_in": state("h_f", p),
                                    "c_f_in": state("c_f", p), "h_f_out": state("h_f", q), "c_f_out": state("c_f", q)},
               waits=("feat_f_ready",), fetch=("logits",))]


def plan_liteeval_step(seq: int, slots: int, parity: int, fine: bool) -> List[Op]:
    """The chain's ops of one step (coarse_step, then the fine branch when the gate chose it)."""
    return plan_coarse_step(seq, slots, parity) + (plan_fine(parity) if fine else [])


def all_ops(slots: int) -> List[Op]:
    """Every op shape the plan makes: what the executor allocates buffers and events for up front."""
    ops: List[Op] = []
    for k in range(slots):
        ops += plan_coarse(k, slots) + plan_coarse_step(k, slots, 0) + plan_coarse_step(k, slots, 1)
    return ops + plan_fine(0) + plan_fine(1)


# checking a schedule without CUDA ---------------------------------------------------------------------
def hazards(schedule: Iterable[Op]) -> List[str]:
    """The device-buffer races in ``schedule`` (ops in the order the host enqueues them), empty when none.

    Models CUDA's ordering with vector clocks: an op happens after the earlier ops of its stream, after what
    an event it waits for covered when that event was last recorded (an event never recorded orders nothing,
    as in CUDA), and after what its host thread synchronized on before enqueueing it (a fetch). A read must
    happen after the buffer's last write; a write after its last write and every read since; and an op of a
    frame must read the coarse feature of that frame (not one a later frame wrote over it in the ring)."""
    clocks: Dict[str, Dict[str, int]] = {}
    events: Dict[str, Dict[str, int]] = {}
    host: Dict[str, Dict[str, int]] = {}
    last_write: Dict[str, Tuple[str, Dict[str, int]]] = {}
    written_for: Dict[str, Optional[int]] = {}  # buffer -> the frame its content belongs to
    reads: Dict[str, List[Tuple[str, Dict[str, int]]]] = {}
    found = []
    for n, op in enumerate(schedule):
        clock = _join(clocks.get(op.stream, {}), host.get(THREAD[op.stream], {}))
        for event in op.waits:
            clock = _join(clock, events.get(event, {}))
        clock[op.stream] = clock.get(op.stream, 0) + 1
        clocks[op.stream] = clock
        me = "op %d (%s on %s)" % (n, op.role, op.stream)
        for buffer in op.reads:
            if buffer in last_write and not _before(last_write[buffer][1], clock):
                found.append("%s reads %s before %s wrote it" % (me, buffer, last_write[buffer][0]))
            if buffer.startswith(RING) and written_for.get(buffer, op.frame) != op.frame:
                found.append("%s of frame %d reads %s holding frame %d" % (me, op.frame, buffer, written_for[buffer]))
        for buffer in op.writes:
            earlier = ([last_write[buffer]] if buffer in last_write else []) + reads.get(buffer, [])
            found += ["%s writes %s while %s may still use it" % (me, buffer, who)
                      for who, stamp in earlier if not _before(stamp, clock)]
        stamp = dict(clock)
        for buffer in op.reads:
            reads.setdefault(buffer, []).append((me, stamp))
        for buffer in op.writes:
            last_write[buffer], reads[buffer] = (me, stamp), []
            if buffer.startswith(RING):
                written_for[buffer] = op.frame
        for event in op.records:
            events[event] = stamp
        if op.fetch:
            thread = THREAD[op.stream]
            host[thread] = _join(host.get(thread, {}), stamp)
    return found


def _join(a: Mapping[str, int], b: Mapping[str, int]) -> Dict[str, int]:
    return {s: max(a.get(s, 0), b.get(s, 0)) for s in set(a) | set(b)}


def _before(stamp: Mapping[str, int], clock: Mapping[str, int]) -> bool:
    return all(clock.get(s, 0) >= t for s, t in stamp.items())


# executing it on CUDA ---------------------------------------------------------------------------------
class DeviceExecutor:
    """Runs plan ops on active TrtSessions (``enqueue``), one CUDA stream per plan stream, with the plan's
    events and device buffers, all made up front by :meth:`prepare` (threads then share them read-only)."""

    def __init__(self, sessions: Mapping[str, Any], device: int = 0, record: Optional[Recorder] = None):
        self.sessions = dict(sessions)
        self.device = device
        self.record = record
        self.streams: Dict[str, Any] = {}
        self.events: Dict[str, Any] = {}
        self.buffers: Dict[str, Any] = {}
        self._zeros: Any = None

    def prepare(self, ops: Iterable[Op]) -> "DeviceExecutor":
        from ..backends import cuda

        ops = list(ops)
        sizes = self._sizes(ops)
        with cuda.pushed(self.device):
            self.streams = {name: cuda.new_stream() for name in sorted({op.stream for op in ops})}
            self.events = {e: cuda.new_event() for op in ops for e in op.waits + op.records}
            self.buffers = {name: cuda.DeviceBuffer(nbytes) for name, nbytes in sizes.items()}
            self._zeros = cuda.pinned_zeros(max(sizes.values(), default=1))
        return self

    def _sizes(self, ops: Sequence[Op]) -> Dict[str, int]:
        """Bytes per device buffer, from the specs of the tensors bound to it (which must agree)."""
        sizes: Dict[str, Tuple[int, str]] = {}
        for op in ops:
            specs = {t.name: t for t in list(self.sessions[op.role].inputs) + list(self.sessions[op.role].outputs)}
            for tensor, buffer in op.device.items():
                spec = specs[tensor]
                nbytes = int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize
                if buffer in sizes and sizes[buffer][0] != nbytes:
                    raise SessionError("device buffer %s is bound to %s and %s.%s of another size"
                                       % (buffer, sizes[buffer][1], op.role, tensor),
                                       "%d against %d bytes" % (sizes[buffer][0], nbytes),
                                       "re-export the bundle: its graphs disagree on this tensor")
                sizes.setdefault(buffer, (nbytes, "%s.%s" % (op.role, tensor)))
        return {name: nbytes for name, (nbytes, _) in sizes.items()}

    def run(self, ops: Iterable[Op], host: Optional[Mapping[str, Mapping[str, np.ndarray]]] = None
            ) -> Dict[str, np.ndarray]:
        """Run ``ops``; ``host[role]`` are the host inputs of each. Returns ``{"role.tensor": array}`` for the
        fetched outputs (the sessions' page-locked buffers: valid until that session runs again)."""
        out: Dict[str, np.ndarray] = {}
        for op in ops:
            out.update(timed(self.record, op.role, self._run_op, op, (host or {}).get(op.role, {})))
        return out

    def _run_op(self, op: Op, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        from ..backends import cuda

        stream = self.streams[op.stream]
        for event in op.waits:
            cuda.wait(stream, self.events[event])
        device = {tensor: self.buffers[buffer].ptr for tensor, buffer in op.device.items()}
        fetched = self.sessions[op.role].enqueue(stream, host=feeds, device=device, fetch=op.fetch)
        for event in op.records:
            cuda.record(self.events[event], stream)
        if op.fetch:
            stream.synchronize()  # releases the GIL: the other stage threads go on meanwhile
        return {"%s.%s" % (op.role, name): array for name, array in fetched.items()}

    def zero(self, buffers: Iterable[str], stream: str) -> None:
        """Clear device ``buffers``, queued on ``stream`` (before the ops that read them)."""
        for name in buffers:
            buffer = self.buffers[name]
            buffer.upload(self._zeros[:buffer.nbytes], self.streams[stream])


class DeviceFeature:
    """A coarse feature that stays on the GPU: frame number ``seq``, in ring slot ``seq % slots``; ``read`` once
    the chain's coarse_step was queued after it (its slot may then be written again, after ``feat_c_free``)."""

    __slots__ = ("seq", "read", "__weakref__")

    def __init__(self, seq: int):
        self.seq = seq
        self.read = False


class DeviceGatedPolicy(GatedPolicy):
    """:class:`GatedPolicy` (resets, the gate rule, the fine cap) with its three graph steps run by a
    :class:`DeviceExecutor` on the plan above: ``step`` takes a :class:`DeviceFeature` for ``feat_c``."""

    def __init__(self, bundle: Any, sessions: Mapping[str, Any], executor: DeviceExecutor, slots: int, **options):
        self.executor, self.slots = executor, slots
        self.parity = 0  # the state buffers the next step reads
        self._step_parity = 0  # those the current step read
        self._zero_pending = True
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
        feat_c.read = True
        self._logits_sync = np.array(out["coarse_step.logits_sync"])
        # both paths leave the state in the other buffers, which the next step reads
        self._step_parity, self.parity = self.parity, 1 - self.parity
        return np.asarray(out["coarse_step.gate_logits"]).reshape(-1)

    def _fine_step(self, frame_fine: Optional[ArrayOrThunk], feat_f: Optional[ArrayOrThunk]) -> np.ndarray:
        if feat_f is not None:
            raise SessionError("the GPU chain runs the fine CNN itself", "a fine feature was given",
                               "use GatedPolicy to step on recorded features")
        frame = frame_fine() if callable(frame_fine) else frame_fine
        out = self.executor.run(plan_fine(self._step_parity), {"fine_cnn": {"frame": frame}})
        return np.array(out["fine_step.logits"])

    def _skip_step(self) -> np.ndarray:
        return self._logits_sync  # the sync state was written on the device by coarse_step already


class FeatureRing:
    """Which ring slot each frame's coarse feature goes to, and when a slot may be written again: once the
    feature it held was read by the chain or is gone (a live queue dropped its frame). With :func:`ring_slots`
    of the queue size that is always so, except for the moment the chain holds that very frame, when
    :meth:`claim` waits for it (at most ``wait_s``; then SessionError: the ring is too small for the queues)."""

    def __init__(self, slots: int, wait_s: float = 2.0):
        self.slots, self.wait_s = int(slots), float(wait_s)
        self._next = 0  # frame number of the next claim (one thread claims)
        self._held: Dict[int, "weakref.ref[DeviceFeature]"] = {}  # slot -> the feature written into it last

    def claim(self) -> DeviceFeature:
        """The next frame's feature handle, once its slot is free to be written."""
        feature = DeviceFeature(self._next)
        slot = feature.seq % self.slots
        deadline = time.monotonic() + self.wait_s
        while not self._free(slot):
            if time.monotonic() > deadline:
                raise SessionError("the LiteEval chain has not read frame %d's coarse feature for %.1f s"
                                   % (self._held[slot]().seq, self.wait_s),
                                   "frame %d needs its slot of the GPU feature ring (%d slots)"
                                   % (feature.seq, self.slots),
                                   "give GatedStages the queue_size of its pipeline (plan['queue_size'])")
            time.sleep(_POLL_S)
        self._held[slot] = weakref.ref(feature)
        self._next += 1
        return feature

    def _free(self, slot: int) -> bool:
        held = self._held.get(slot)
        feature = held() if held is not None else None
        return feature is None or feature.read


class DeviceChain:
    """What GatedStages needs to run LiteEval on the GPU: ``coarse(frame)`` for the coarse stage thread and
    ``policy`` (a DeviceGatedPolicy) for the chain thread, over one executor and one :class:`FeatureRing`."""

    def __init__(self, bundle: Any, sessions: Mapping[str, Any], plan: Mapping[str, Any],
                 record: Optional[Recorder] = None):
        self.ring = FeatureRing(ring_slots(plan.get("queue_size", 1)))
        device = sessions["coarse_cnn"].device
        self.executor = DeviceExecutor(sessions, device, record).prepare(all_ops(self.ring.slots))
        self.policy = DeviceGatedPolicy(bundle, sessions, self.executor, self.ring.slots, record=record, plan=plan)

    def coarse(self, frame: np.ndarray) -> DeviceFeature:
        feature = self.ring.claim()
        self.executor.run(plan_coarse(feature.seq, self.ring.slots), {"coarse_cnn": {"frame": frame}})
        return feature


def on_device(sessions: Mapping[str, Any], roles: Sequence[str] = tuple(ROLE_IO)) -> bool:
    """True when every LiteEval role runs on a TensorRT engine on one GPU: then the chain can stay there."""
    from ..backends.trt import TrtSession

    chosen = [sessions.get(role) for role in roles]
    return all(isinstance(s, TrtSession) for s in chosen) and len({s.device for s in chosen}) == 1

