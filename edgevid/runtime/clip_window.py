"""SlowFast's clip window: the last T preprocessed frames in a ring, assembled oldest first (runtime/clip.py uses
it; device/slowfast.py keeps the same bookkeeping with the pixels on the GPU)."""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np


class ClipWindow:
    """The last T preprocessed frames in a preallocated ring, assembled in time order on demand.

    ::

        ring [T,3,S,S]:  | f5 | f6 | f7 | f2 | f3 | f4 |      write index w = 3 (oldest)
        clip [1,3,T,S,S]:  f2 f3 f4 f5 f6 f7                = ring[w:] then ring[:w], C before T

    ``push(frame)`` copies a [1,3,S,S] or [3,S,S] frame in; ``repeat(n)`` pushes the latest frame n more
    times; ``fill(frame)`` makes every slot that frame (pad="repeat"). ``assemble(out)`` writes the clip
    into ``out`` or the window's reused buffer (valid until the next assemble: copy what you keep).
    Which slots a call writes is decided here; ``_store`` and ``_copy`` keep the pixels (a device window,
    device/slowfast.py, keeps them on the GPU instead).
    """

    def __init__(self, frames: int, size: int):
        self.frames, self.size = int(frames), int(size)
        self.ring = np.zeros((self.frames, 3, self.size, self.size), np.float32)
        self.clip = np.zeros((1, 3, self.frames, self.size, self.size), np.float32)
        self.clear()

    def clear(self) -> None:
        self.write = 0  # the next slot to write = the oldest frame once full
        self.filled = 0  # slots written since clear, capped at T

    @property
    def full(self) -> bool:
        return self.filled >= self.frames

    def push(self, frame: Any) -> None:
        self._store([self.write], frame)
        self._advance(1)

    def repeat(self, n: int) -> None:
        """The latest frame into the next ``n`` slots (more than T-1 would only overwrite itself)."""
        if self.filled == 0 or n <= 0:
            return
        last = (self.write - 1) % self.frames
        slots = [(self.write + i) % self.frames for i in range(min(int(n), self.frames - 1))]
        self._copy(last, slots)
        self._advance(len(slots))

    def fill(self, frame: Any) -> None:
        self._store(list(range(self.frames)), frame)
        self.write, self.filled = 0, self.frames

    def assemble(self, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The window as a [1,3,T,S,S] clip, oldest frame first."""
        out = self.clip if out is None else out
        w, k = self.write, self.frames - self.write
        # two slice copies, ring [T,3,S,S] -> clip [3,T,S,S]: no temporary array
        out[0, :, :k] = self.ring[w:].transpose(1, 0, 2, 3)
        out[0, :, k:] = self.ring[:w].transpose(1, 0, 2, 3)
        return out

    def _store(self, slots: List[int], frame: np.ndarray) -> None:
        for slot in slots:
            self.ring[slot] = frame.reshape(self.ring.shape[1:])

    def _copy(self, source: int, slots: List[int]) -> None:
        for slot in slots:
            self.ring[slot] = self.ring[source]

    def _advance(self, n: int) -> None:
        self.write = (self.write + n) % self.frames
        self.filled = min(self.frames, self.filled + n)
