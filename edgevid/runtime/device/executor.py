"""Running plan ops on CUDA: :class:`DeviceExecutor` over ``TrtSession.enqueue``; the ring of features a CNN
stage leaves on the device (:class:`FeatureRing`, :class:`DeviceFeature`); :func:`on_device`."""
from __future__ import annotations

import time
import weakref
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

from ...errors import SessionError
from ..stats import Recorder, timed
from .plan import ZERO, Op

_POLL_S = 0.0002  # the serial stage reads a slot within one step: poll finely, for a short while


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
        from ...backends import cuda

        ops = list(ops)
        sizes = self._sizes(ops)
        with cuda.pushed(self.device):
            self.streams = {name: cuda.new_stream() for name in sorted({op.stream for op in ops})}
            self.events = {e: cuda.new_event() for op in ops for e in op.waits + op.records}
            self.buffers = {name: cuda.DeviceBuffer(nbytes) for name, nbytes in sizes.items()}
            self._zeros = cuda.pinned_zeros(max(sizes.values(), default=1))
        return self

    def _sizes(self, ops: Sequence[Op]) -> Dict[str, int]:
        """Bytes per device buffer, from the specs of the tensors bound to it (which must agree); a buffer
        only a ZERO op names has no size: SessionError."""
        sizes: Dict[str, Tuple[int, str]] = {}
        for op in ops:
            if op.role == ZERO:
                continue
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
        unbound = sorted({b for op in ops if op.role == ZERO for b in op.device.values()} - set(sizes))
        if unbound:
            raise SessionError("the device plan clears buffers %s that no engine binds" % unbound, None,
                               "a plan bug: report it")
        return {name: nbytes for name, (nbytes, _) in sizes.items()}

    def run(self, ops: Iterable[Op], host: Optional[Mapping[str, Mapping[str, np.ndarray]]] = None
            ) -> Dict[str, np.ndarray]:
        """Run ``ops``; ``host[role]`` are the host inputs of each. Returns ``{"role.tensor": array}`` for the
        fetched outputs (the sessions' page-locked buffers: valid until that session runs again)."""
        out: Dict[str, np.ndarray] = {}
        for op in ops:
            if op.role == ZERO:
                self.zero(op.device.values(), op.stream)
                continue
            out.update(timed(self.record, op.role, self._run_op, op, (host or {}).get(op.role, {})))
        return out

    def _run_op(self, op: Op, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        from ...backends import cuda

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
    """A feature that stays on the GPU: frame number ``seq``, in ring slot ``seq % slots``; ``read`` once the
    serial stage's step was queued after it (its slot may then be written again, after the step's free event)."""

    __slots__ = ("seq", "read", "__weakref__")

    def __init__(self, seq: int):
        self.seq = seq
        self.read = False


class FeatureRing:
    """Which ring slot each frame's feature goes to, and when a slot may be written again: once the feature it
    held was read by the serial stage or is gone (a live queue dropped its frame). With :func:`ring_slots` of
    the queue size that is always so, except for the moment the serial stage holds that very frame, when
    :meth:`claim` waits for it (at most ``wait_s``; then SessionError: the ring is too small for the queues).
    ``reader`` and ``what`` name the serial stage and the feature in that error."""

    def __init__(self, slots: int, wait_s: float = 2.0, reader: str = "the LiteEval chain",
                 what: str = "coarse feature", stages: str = "GatedStages"):
        self.slots, self.wait_s = int(slots), float(wait_s)
        self.reader, self.what, self.stages = reader, what, stages
        self._next = 0  # frame number of the next claim (one thread claims)
        self._held: Dict[int, "weakref.ref[DeviceFeature]"] = {}  # slot -> the feature written into it last

    def claim(self) -> DeviceFeature:
        """The next frame's feature handle, once its slot is free to be written."""
        feature = DeviceFeature(self._next)
        slot = feature.seq % self.slots
        deadline = time.monotonic() + self.wait_s
        while not self._free(slot):
            if time.monotonic() > deadline:
                raise SessionError("%s has not read frame %d's %s for %.1f s"
                                   % (self.reader, self._held[slot]().seq, self.what, self.wait_s),
                                   "frame %d needs its slot of the GPU feature ring (%d slots)"
                                   % (feature.seq, self.slots),
                                   "give %s the queue_size of its pipeline (plan['queue_size'])" % self.stages)
            time.sleep(_POLL_S)
        self._held[slot] = weakref.ref(feature)
        self._next += 1
        return feature

    def _free(self, slot: int) -> bool:
        held = self._held.get(slot)
        feature = held() if held is not None else None
        return feature is None or feature.read


def on_device(sessions: Mapping[str, Any], roles: Sequence[str]) -> bool:
    """True when every one of ``roles`` runs on a TensorRT engine, all on one GPU: then the tensors between
    them can stay there."""
    from ...backends.trt import TrtSession

    chosen = [sessions.get(role) for role in roles]
    return all(isinstance(s, TrtSession) for s in chosen) and len({s.device for s in chosen}) == 1
