"""Shared helpers for the data tests: tiny videos whose frames carry their own index."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")


def indexed_frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """n frames; frame i is flat grey 4*i (so a decoded frame tells which source frame it was)."""
    return np.stack([np.full((h, w, 3), 4 * i, np.uint8) for i in range(n)])


def frame_index(frame: np.ndarray) -> int:
    return int(round(float(frame.mean()) / 4.0))


def fine_stripes(h: int = 48, w: int = 64) -> np.ndarray:
    """Colour stripes of a 2 px period: what lossy codecs smear and the synthetic fine classes use."""
    f = np.empty((h, w, 3), np.uint8)
    f[:, 0::2] = (200, 50, 30)
    f[:, 1::2] = (40, 160, 220)
    return f
