"""The device plan as plain data: :class:`Op` (one engine run, or a state reset, on a named stream) and
:func:`hazards`, which checks an enqueue order for device-buffer races without CUDA.

Every family's device plan (liteeval.py, prernn.py) is made of these ops; the executor (executor.py) runs them.
Streams, events and buffers are names here: ``state("h", 1)`` is the buffer ``h#1``, a ring slot is a name
starting with one of :data:`RINGS` (``feat_c#3``, ``drive#0``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from ...families import liteeval, prernn

# the streams, and which stage thread enqueues work on each (what a host synchronization orders)
COARSE, FINE, CHAIN = "coarse", "fine", "chain"  # LiteEval
BACKBONE, STEP = "backbone", "step"  # PreRNN
WINDOW, INFER = "window", "infer"  # SlowFast
THREAD = {COARSE: "coarse", FINE: "chain", CHAIN: "chain", BACKBONE: "cnn", STEP: "rnn", WINDOW: "window",
          INFER: "infer"}
# ring slots a stage fills ahead of the serial one: features (feat_c#0 …, drive#0 …) and, with GPU preprocessing,
# LiteEval's fine input of each frame (frame_f#0 …) and SlowFast's assembled clips (clip#0 …)
RINGS = ("feat_c#", "drive#", "frame_f#", "clip#")
ZERO = "zero"  # the role of an op that clears its device buffers (a state reset), run by the executor itself

# the tensors each role's graph reads and writes, by name: LiteEval's and PreRNN's (drive v or u, c for LSTM)
ROLE_IO: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = dict(liteeval.ROLE_IO)
ROLE_IO.update({
    "backbone": (("frame",), prernn.DRIVES),
    "step": (prernn.DRIVES + tuple(name_in for _, name_in, _ in prernn.STATES),
             tuple(name_out for _, _, name_out in prernn.STATES) + ("logits",)),
})
# GPU preprocessing (preprocess.py): the uploaded frame in, an engine input per CNN (or SlowFast's window) out;
# SlowFast's clip engine, and the assembly of its window into a clip (slowfast.py)
ROLE_IO["gpu_preprocess"] = (("frame",), ("coarse", "fine", "backbone", "window"))
ROLE_IO["clip"] = (("clip",), ("logits",))
ROLE_IO["clip_assemble"] = (("ring",), ("clip",))
assert len(ROLE_IO) == len(liteeval.ROLE_IO) + 5, "a role name is used twice"


@dataclass(frozen=True)
class Op:
    """One engine run: ``role`` on ``stream``, after the events in ``waits``, recording ``records`` after it.

    ``device`` binds tensors (inputs it reads, outputs it writes) to named device buffers; ``host`` inputs are
    copied up from the host; ``fetch`` outputs are copied back, and the host waits for them. Events and
    buffers are names: the executor holds the CUDA objects. Role :data:`ZERO` clears every buffer in
    ``device`` (its keys are only labels) on ``stream``."""

    role: str
    stream: str
    device: Mapping[str, str]
    waits: Tuple[str, ...] = ()
    records: Tuple[str, ...] = ()
    host: Tuple[str, ...] = ()
    fetch: Tuple[str, ...] = ()
    frame: Optional[int] = None  # the frame whose ring slot it makes or reads, for hazards
    reads: Tuple[str, ...] = field(init=False)
    writes: Tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.role == ZERO:
            inputs, outputs = (), tuple(self.device)
        else:
            inputs, outputs = ROLE_IO[self.role]
        object.__setattr__(self, "reads", tuple(b for t, b in self.device.items() if t in inputs))
        object.__setattr__(self, "writes", tuple(b for t, b in self.device.items() if t in outputs))


def ring_slots(queue_size: int) -> int:
    """Ring slots for features in flight between a CNN stage and the serial stage after it: one being made,
    ``queue_size`` queued, one being stepped on."""
    return int(queue_size) + 2


def state(name: str, parity: int) -> str:
    return "%s#%d" % (name, parity)


def is_ring(buffer: str) -> bool:
    return buffer.startswith(RINGS)


# checking a schedule without CUDA ---------------------------------------------------------------------
def hazards(schedule: Iterable[Op]) -> List[str]:
    """The device-buffer races in ``schedule`` (ops in the order the host enqueues them), empty when none.

    Models CUDA's ordering with vector clocks: an op happens after the earlier ops of its stream, after what
    an event it waits for covered when that event was last recorded (an event never recorded orders nothing,
    as in CUDA), and after what its host thread synchronized on before enqueueing it (a fetch). A read must
    happen after the buffer's last write; a write after its last write and every read since; and an op of a
    frame must read the ring slot holding that frame (not one a later frame wrote over it)."""
    clocks: Dict[str, Dict[str, int]] = {}
    events: Dict[str, Dict[str, int]] = {}
    host: Dict[str, Dict[str, int]] = {}
    last_write: Dict[str, Tuple[str, Dict[str, int]]] = {}
    written_for: Dict[str, Optional[int]] = {}  # ring slot -> the frame its content belongs to
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
            if is_ring(buffer) and written_for.get(buffer, op.frame) != op.frame:
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
            if is_ring(buffer):
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
