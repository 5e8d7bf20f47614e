"""Drawing primitives for the synthetic data set: textures, sprites, backgrounds, noise, compositing.

Everything is numpy + OpenCV and draws into uint8 BGR arrays. Randomness always comes from a
``numpy.random.Generator`` passed in, so a caller that seeds its generator gets identical pixels.
Textures are drawn supersampled and box-filtered down, so a 50 % duty pattern keeps a 50 % mean at
any period: fine classes then differ only in fine structure, never in mean colour.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .._optional import require

SUPERSAMPLE = 4


def opencv():
    """OpenCV, imported on first use (it is an optional dependency)."""
    return require("cv2", "synthetic video rendering")


def smooth_field(rng: np.random.Generator, size: int, cells: int, channels: int = 3) -> np.ndarray:
    """Smooth random field in [0, 1], float32 size×size×channels: a cells×cells grid upsampled bicubically."""
    grid = rng.random((cells, cells, channels)).astype(np.float32)
    field = opencv().resize(grid, (size, size), interpolation=opencv().INTER_CUBIC)
    if field.ndim == 2:
        field = field[:, :, None]
    return np.clip(field, 0.0, 1.0)


def grating(size: int, period: float, angle_deg: float, phase: float = 0.0) -> np.ndarray:
    """Square-wave stripes (50 % duty) of ``period`` pixels at ``angle_deg``, float32 size×size in [0, 1]."""
    n = size * SUPERSAMPLE
    # sample at sub-pixel centres, then average each SUPERSAMPLE² block (a box filter)
    coords = (np.arange(n, dtype=np.float32) + 0.5) / SUPERSAMPLE
    a = np.deg2rad(angle_deg)
    u = coords[None, :] * np.cos(a) + coords[:, None] * np.sin(a)
    wave = (np.floor((u / period + phase) * 2.0) % 2.0).astype(np.float32)
    return _box_down(wave)


def checks(size: int, period: float, phase: Tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Checkerboard with squares of ``period / 2`` pixels (50 % duty), float32 size×size in [0, 1]."""
    n = size * SUPERSAMPLE
    coords = (np.arange(n, dtype=np.float32) + 0.5) / SUPERSAMPLE
    cx = np.floor((coords / period + phase[0]) * 2.0)
    cy = np.floor((coords / period + phase[1]) * 2.0)
    wave = ((cx[None, :] + cy[:, None]) % 2.0).astype(np.float32)
    return _box_down(wave)


def _box_down(pattern: np.ndarray) -> np.ndarray:
    n = pattern.shape[0] // SUPERSAMPLE
    return pattern.reshape(n, SUPERSAMPLE, n, SUPERSAMPLE).mean(axis=(1, 3)).astype(np.float32)


def colorize(pattern: np.ndarray, color_a: np.ndarray, color_b: np.ndarray) -> np.ndarray:
    """Map a [0, 1] pattern to a float32 BGR image between two colours (0 → a, 1 → b)."""
    p = pattern[:, :, None] if pattern.ndim == 2 else pattern
    return color_a[None, None, :] * (1.0 - p) + color_b[None, None, :] * p


def disc_mask(size: int) -> np.ndarray:
    """Antialiased disc filling a size×size box, float32 in [0, 1]."""
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.sqrt((xx - c) ** 2 + (yy - c) ** 2)
    return np.clip(size / 2.0 - r, 0.0, 1.0)


def warp_sprite(sprite: np.ndarray, mask: np.ndarray, angle_deg: float, scale: float):
    """Rotate (counter-clockwise, OpenCV convention) and scale a sprite and its mask about the centre.

    Returns (sprite, mask) in a square box just big enough for the result. Bilinear resampling blurs
    pixel-scale texture, so fine-texture sprites are never warped (they only translate).
    """
    cv2 = opencv()
    size = sprite.shape[0]
    out = max(3, int(np.ceil(size * scale * 1.42)) | 1)
    m = cv2.getRotationMatrix2D(((size - 1) / 2.0, (size - 1) / 2.0), angle_deg, scale)
    m[:, 2] += (out - size) / 2.0
    warped = cv2.warpAffine(sprite, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    wmask = cv2.warpAffine(mask, m, (out, out), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return warped, wmask


def composite(canvas: np.ndarray, sprite: np.ndarray, mask: np.ndarray, cx: float, cy: float) -> None:
    """Alpha-blend ``sprite`` (float32 BGR) centred at (cx, cy) into uint8 ``canvas`` in place, clipped.

    The top-left corner is rounded to whole pixels, so a sprite that only translates keeps its
    pixel-exact texture.
    """
    h, w = mask.shape
    x0, y0 = int(round(cx - w / 2.0)), int(round(cy - h / 2.0))
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, canvas.shape[1]), min(y0 + h, canvas.shape[0])
    if cx1 <= cx0 or cy1 <= cy0:
        return  # entirely outside the canvas
    sx0, sy0 = cx0 - x0, cy0 - y0
    region = canvas[cy0:cy1, cx0:cx1]
    a = mask[sy0:sy0 + (cy1 - cy0), sx0:sx0 + (cx1 - cx0), None]
    s = sprite[sy0:sy0 + (cy1 - cy0), sx0:sx0 + (cx1 - cx0)]
    region[...] = np.clip(region * (1.0 - a) + s * a + 0.5, 0, 255).astype(np.uint8)


class NoiseBank:
    """Per-frame sensor noise at low cost: a few pre-drawn noise fields read at random offsets.

    Noise is stored as two uint8 fields (positive and negative part) so applying it is two
    saturating OpenCV adds instead of a float round trip; the difference of two uniform
    variables gives a symmetric, roughly bell-shaped distribution.
    """

    def __init__(self, rng: np.random.Generator, size: int, amplitude: int, fields: int = 2, margin: int = 32):
        self.size, self.margin, self.amplitude = size, margin, int(amplitude)
        n = size + margin
        hi = max(1, self.amplitude + 1)
        self._pos = [rng.integers(0, hi, (n, n, 3), dtype=np.uint8) for _ in range(fields)]
        self._neg = [rng.integers(0, hi, (n, n, 3), dtype=np.uint8) for _ in range(fields)]

    def apply(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.amplitude <= 0:
            return frame
        cv2 = opencv()
        i, j = rng.integers(0, len(self._pos), 2)
        y0, x0, y1, x1 = rng.integers(0, self.margin + 1, 4)
        h, w = frame.shape[:2]
        pos = self._pos[i][y0:y0 + h, x0:x0 + w]
        neg = self._neg[j][y1:y1 + h, x1:x1 + w]
        return cv2.subtract(cv2.add(frame, pos), neg)
