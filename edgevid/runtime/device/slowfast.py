"""SlowFast on a TensorRT engine with GPU preprocessing: the clip window lives on the device and only the logits
come back.

Two CUDA streams, and events where a clip crosses between them::

    window stream (window stage thread)  frame ─H2D─► gpu_preprocess ─► window ring [1,3,T,S,S], slot t
                                         (a clip is due) clip_assemble(ring, write) ─► clip#k ──(clip_ready#k)──┐
    infer stream  (infer stage thread)                                                                        ▼
                                         clip(clip#k) ─D2H─► logits ─► host;  records clip_free#k

- The window is the host's :class:`~edgevid.runtime.clip_window.ClipWindow` bookkeeping (which slot each frame, a
  repeated frame or a padded window goes to) over a device ring in the clip's own layout: frame slot t is the
  plane at ``t·S²`` of each channel (channel stride ``T·S²``), written by libedgevid_preproc straight from the
  uploaded frame; a missed slot gets the previous frame's crop again, before the new frame is cropped.
- A due clip is assembled oldest frame first into one of ``slots`` clip buffers (``clip#k``, six device copies,
  on the window stream) while the window moves on; the engine reads it on the infer stream after
  ``clip_ready#k``, and the buffer is written again only after ``clip_free#k`` and once the host saw it read
  (:class:`FeatureRing`), as LiteEval's coarse features.

The ops are plan.py's, checked by ``hazards`` and run by executor.py's :class:`DeviceExecutor`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ...spec import TensorSpec
from ..clip_window import ClipWindow
from ..stats import Recorder
from .executor import DeviceExecutor, DeviceFeature, FeatureRing, on_device
from .plan import INFER, WINDOW, Op, ring_slots
from .preprocess import ROLE as PRE

ASSEMBLE = "clip_assemble"
RING = "clip#"  # the assembled clips' buffers, clip#0 … clip#<slots-1> (one of plan.RINGS)


def plan_frame(seq: int) -> List[Op]:
    """Frame ``seq`` into the window ring (its slots and the repeated ones are host inputs of the op)."""
    return [Op(PRE, WINDOW, {"window": "window"}, host=("frame",), frame=seq)]


def plan_assemble(seq: int, slots: int) -> List[Op]:
    """The window as a clip into ``clip#k`` (k = seq mod slots), once the engine has read what it held."""
    k = seq % slots
    return [Op(ASSEMBLE, WINDOW, {"ring": "window", "clip": RING + str(k)}, waits=("clip_free#%d" % k,),
               records=("clip_ready#%d" % k,), host=("write",), frame=seq)]


def plan_clip(seq: int, slots: int) -> List[Op]:
    """The engine on clip ``seq``; only the logits come back."""
    k = seq % slots
    return [Op("clip", INFER, {"clip": RING + str(k)}, waits=("clip_ready#%d" % k,), records=("clip_free#%d" % k,),
               fetch=("logits",), frame=seq)]


def all_ops(slots: int) -> List[Op]:
    """Every op shape the plan makes: what the executor allocates buffers and events for up front."""
    ops = plan_frame(0)
    for k in range(slots):
        ops += plan_assemble(k, slots) + plan_clip(k, slots)
    return ops


class ClipAssembler:
    """The ``clip_assemble`` role: the ring [1,3,T,S,S] with write index w into a clip, oldest first, as two
    device copies per channel (``ring[c, w:]`` then ``ring[c, :w]``)."""

    backend = "cuda"

    def __init__(self, spec: TensorSpec):
        self.inputs = [TensorSpec("ring", tuple(spec.shape), spec.dtype)]
        self.outputs = [TensorSpec("clip", tuple(spec.shape), spec.dtype)]
        frames, size = int(spec.shape[2]), int(spec.shape[3])
        self.frames, self.plane = frames, size * size * np.dtype(spec.dtype).itemsize

    def enqueue(self, stream: Any, *, host: Mapping[str, Any], device: Mapping[str, int],
                fetch: Sequence[str] = ()) -> Dict[str, Any]:
        from ...backends import cuda

        w, t, plane = int(host["write"]), self.frames, self.plane
        ring, clip = device["ring"], device["clip"]
        for c in range(3):
            base = c * t * plane
            cuda.copy_dtod(clip + base, ring + base + w * plane, (t - w) * plane, stream)
            if w:
                cuda.copy_dtod(clip + base + (t - w) * plane, ring + base, w * plane, stream)
        return {}


class DeviceClipWindow(ClipWindow):
    """ClipWindow's slot bookkeeping with the pixels on the device: each call notes the slots to write; the
    window stage hands them to the preprocessing op with the frame (:meth:`take`)."""

    def __init__(self, frames: int, size: int):
        self.frames, self.size = int(frames), int(size)
        self._slots: List[int] = []
        self._repeat: List[int] = []
        self.clear()

    def _store(self, slots: List[int], frame: Any) -> None:
        self._slots += slots

    def _copy(self, source: int, slots: List[int]) -> None:
        # the previous frame is still the preprocessing's crop: it is written there again, before the new one
        self._repeat += slots

    def take(self) -> Dict[str, List[int]]:
        """The slots of the frame just pushed, and those the previous frame repeats into; cleared."""
        taken = {"slots": self._slots, "repeat": self._repeat}
        self._slots, self._repeat = [], []
        return taken

    def assemble(self, out: Optional[np.ndarray] = None) -> np.ndarray:
        raise NotImplementedError("a device window is assembled on the GPU (DeviceClips.assemble)")


class DeviceClips:
    """What ClipStages needs for a SlowFast stream on the GPU: ``window`` (a DeviceClipWindow for its ClipPolicy),
    ``put(frame)`` and ``assemble()`` for the window thread, ``run(clip)`` for the infer thread."""

    def __init__(self, sessions: Mapping[str, Any], plan: Mapping[str, Any], gpu_pre: Any,
                 record: Optional[Recorder] = None):
        frames, size = plan["geometry"]
        self.window = DeviceClipWindow(frames, size)
        self.ring = FeatureRing(ring_slots(plan.get("queue_size", 1)), reader="the SlowFast engine",
                                what="clip", stages="ClipStages")
        spec = sessions["clip"].inputs[0]
        roles = {"clip": sessions["clip"], PRE: gpu_pre, ASSEMBLE: ClipAssembler(spec)}
        self.executor = DeviceExecutor(roles, sessions["clip"].device, record).prepare(all_ops(self.ring.slots))
        self._seq = 0

    def put(self, image: np.ndarray) -> None:
        """The frame just pushed into the window (its slots, and the repeats of the one before) on the GPU."""
        self.executor.run(plan_frame(self._seq), {PRE: dict(self.window.take(), frame=image)})
        self._seq += 1

    def assemble(self) -> DeviceFeature:
        """The window now as a clip in a device buffer of its own (the window moves on meanwhile)."""
        clip = self.ring.claim()
        self.executor.run(plan_assemble(clip.seq, self.ring.slots), {ASSEMBLE: {"write": self.window.write}})
        return clip

    def run(self, clip: DeviceFeature) -> np.ndarray:
        out = self.executor.run(plan_clip(clip.seq, self.ring.slots))
        clip.read = True
        return np.array(out["clip.logits"], np.float32).reshape(-1)


def clip_on_device(sessions: Mapping[str, Any]) -> bool:
    """True when the clip graph runs on a TensorRT engine: then the window can live on its GPU."""
    return on_device(sessions, ("clip",))
