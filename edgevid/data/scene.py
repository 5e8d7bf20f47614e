"""One synthetic clip as a scene: background, textured objects, their tracks, camera shake, sensor noise.

A :class:`Scene` is drawn once from a seeded generator (:func:`build_scene`) and then rendered frame
by frame (:meth:`Scene.frame`), so a long stream never holds more than one frame per segment.
Geometry is specified for 256-pixel frames (what the preprocessor resizes the short side to) and
scaled by ``size / 256``; at size 256 the 224 centre crop sees texture periods exactly as drawn.

Why the classes look the way they do (benchmarks/synthetic_probe.py measured it): LiteEval's
backbones are random-init CNNs with global average pooling. Their features are global texture and
colour statistics, nearly blind to where things are. So every class must change *how much* of some
texture the frame holds, not only *where* it is:

- motion pairs visit the same states in opposite order, so one frame cannot tell them apart but
  the trend over frames can: ``grow``/``shrink`` (area of a striped disc), ``rotate_cw``/
  ``rotate_ccw`` (stripe orientation swinging through the same ±A range from a level start),
  ``rise``/``fall``/``bounce`` (a disc crossing the horizon of a textured-ground/plain-sky scene,
  so position shows up as how much ground it hides).
- fine classes: 10-18 small tiles camouflaged in the background's colour, textured with vertical
  stripes, horizontal stripes or checks. Most clips use a 2 px period: tiles, their drift and the
  camera shake move in 2 px steps (the 2×2 cells that the 112 px resize averages), so at 112 px such
  a tile is a flat patch of the background's colour with no tell-tale edge. The rest use an 8 px
  period, which stays visible at 112 px (the easy instances); contrast, tile count and noise vary too.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

from . import _render

MOTION, FINE = "motion", "fine"
# class name -> family (synthetic.CLASSES sorts the names: that order is the label order)
KINDS = {
    "grow": MOTION, "shrink": MOTION,
    "rotate_cw": MOTION, "rotate_ccw": MOTION,
    "rise": MOTION, "fall": MOTION, "bounce": MOTION,
    "stripes_v": FINE, "stripes_h": FINE, "checks": FINE,
}

# texture period (pixels at 224) of fine tiles and how often each is drawn: 2 px vanishes at 112,
# 8 px stays visible there (the easy instances). More periods make each class a mixture of more
# looks, which the probe measured as harder to learn from a few dozen clips.
FINE_PERIODS = (2.0, 8.0)
FINE_PERIOD_P = (0.6, 0.4)
FINE_CONTRAST = (100, 200)  # grey levels between the two texture colours
FINE_COUNT = (10, 18)      # tiles per clip
FINE_SIDE = (24, 48)       # tile side in pixels
GRAIN = (0.4, 40, 64)      # ground texture: weight of the fine grain field, its grid size range
MOTION_DIAMETER = (100, 160)   # striped disc, pixels
MOTION_CONTRAST = (120, 220)
GROW_FROM, GROW_TO = (0.3, 0.4), (1.05, 1.3)  # grow/shrink scale range ends
NOISE = (1, 6)  # per-clip sensor noise amplitude (grey levels; sd ≈ amplitude / 2.45)
SHAKE = 4        # largest camera offset in pixels (even)


class Actor:
    """One object: float32 BGR sprite, alpha mask, and ``track[t] = (cx, cy, angle, scale)``.

    ``warp`` False means the sprite only translates by whole pixels, which keeps texture exact.
    """

    def __init__(self, sprite: np.ndarray, mask: np.ndarray, track: np.ndarray, warp: bool):
        self.sprite, self.mask, self.track, self.warp = sprite, mask, track, warp

    def draw(self, canvas: np.ndarray, t: int, margin: int) -> None:
        cx, cy, angle, scale = self.track[t]
        sprite, mask = self.sprite, self.mask
        if self.warp:
            sprite, mask = _render.warp_sprite(sprite, mask, angle, scale)
        _render.composite(canvas, sprite, mask, cx + margin, cy + margin)


class Scene:
    """A drawn clip: call :meth:`frame` for t = 0, 1, … in order (shake and noise draw from ``rng``)."""

    def __init__(self, size: int, num_frames: int, background: np.ndarray, actors: List[Actor], shake: int,
                 noise: "_render.NoiseBank", rng: np.random.Generator, params: Dict[str, Any]):
        self.size, self.num_frames, self.background, self.actors = size, num_frames, background, actors
        self.shake, self.noise, self.rng, self.params = shake, noise, rng, params
        self._offset = np.zeros(2, np.int64)
        self._margin = (background.shape[0] - size) // 2

    def __len__(self) -> int:
        return self.num_frames

    def frame(self, t: int) -> np.ndarray:
        """Frame t as uint8 BGR size×size×3."""
        canvas = self.background.copy()
        m = self._margin
        for actor in self.actors:
            actor.draw(canvas, t, m)
        if self.shake:
            # camera shake: a random walk in 2 px steps (see module doc)
            self._offset = np.clip(self._offset + 2 * self.rng.integers(-1, 2, 2), -self.shake, self.shake)
        oy, ox = m + int(self._offset[0]), m + int(self._offset[1])
        view = canvas[oy:oy + self.size, ox:ox + self.size]
        return self.noise.apply(np.ascontiguousarray(view), self.rng)


def build_scene(kind: str, rng: np.random.Generator, num_frames: int, size: int) -> Scene:
    """Draw a scene of class ``kind`` (a key of KINDS) from ``rng``."""
    u = size / 256.0
    margin = _even(SHAKE * u) + 2
    params: Dict[str, Any] = {"class": kind, "family": KINDS[kind]}
    background, horizon = _background(rng, size + 2 * margin, u)
    horizon -= margin  # in frame coordinates
    if KINDS[kind] == MOTION:
        actors = [_motion_actor(kind, rng, num_frames, size, u, horizon, params)]
    else:
        actors = _fine_swarm(kind, rng, num_frames, size, u, background, margin, params)
    shake = _even(float(rng.uniform(0, SHAKE)) * u)
    noise_amp = int(rng.integers(NOISE[0], NOISE[1] + 1))
    params.update(shake=shake, noise=noise_amp)
    return Scene(size, num_frames, background, actors, shake, _render.NoiseBank(rng, size, noise_amp), rng, params)


def _even(x: float) -> int:
    return 2 * int(round(x / 2.0))


# ---------------------------------------------------------------- colours and background

def _muted(rng: np.random.Generator, lo: float, hi: float, tint: float) -> np.ndarray:
    """A grey level in [lo, hi] with a mild colour tint: colour varies but never dominates the frame."""
    return (float(rng.uniform(lo, hi)) + rng.normal(0.0, tint, 3)).astype(np.float32)


def _color_pair(rng: np.random.Generator, contrast: float, mid: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Two texture colours ``contrast`` grey levels apart (plus a little tint) around ``mid``."""
    half = np.clip(contrast / 2.0 + rng.normal(0.0, 6.0, 3), 0.0, 119.0 - NOISE[1])
    # keep both colours clear of 0 and 255 by more than the noise, so noise never saturates on texture
    mid = np.clip(mid, half + NOISE[1] + 2.0, 253.0 - NOISE[1] - half)
    return (mid - half).astype(np.float32), (mid + half).astype(np.float32)


def _background(rng: np.random.Generator, n: int, u: float) -> Tuple[np.ndarray, int]:
    """Plain shaded sky above a textured ground with a few stones; returns (image, horizon row)."""
    cv2 = _render.opencv()
    horizon = int(n * rng.uniform(0.42, 0.58))
    rows = np.arange(n, dtype=np.float32)[:, None, None]
    sky_top, sky_low = _muted(rng, 150, 220, 15.0), _muted(rng, 120, 200, 15.0)
    sky = sky_top + (sky_low - sky_top) * rows / n
    ground = _muted(rng, 60, 140, 15.0)[None, None, :]
    mottle = _render.smooth_field(rng, n, int(rng.integers(14, 28)), 1)
    grain = _render.smooth_field(rng, n, int(rng.integers(GRAIN[1], GRAIN[2] + 1)), 1)
    texture = (1.0 - GRAIN[0]) * mottle + GRAIN[0] * grain
    strength = float(rng.uniform(0.35, 0.6))
    ground = ground * (1.0 - strength + 2.0 * strength * texture)
    img = np.where(rows < horizon, sky, ground)
    bg = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        color = tuple(int(c) for c in np.clip(_muted(rng, 40, 170, 15.0), 0, 255))
        x, y = int(rng.integers(0, n)), int(rng.integers(horizon, n))
        r = int(rng.integers(int(6 * u), int(22 * u) + 1))
        cv2.ellipse(bg, (x, y), (r, max(2, r // 2)), 0.0, 0.0, 360.0, color, -1, cv2.LINE_AA)
    return bg, horizon


# ---------------------------------------------------------------- motion classes

def _motion_actor(kind: str, rng: np.random.Generator, n: int, size: int, u: float, horizon: int,
                  params: Dict[str, Any]) -> Actor:
    """A large disc with coarse stripes (period 12-24 px), level at angle 0, moving as ``kind`` says."""
    diameter = int(rng.integers(int(MOTION_DIAMETER[0] * u), int(MOTION_DIAMETER[1] * u) + 1))
    period = float(rng.uniform(12, 24)) * u
    contrast = float(rng.uniform(*MOTION_CONTRAST))
    a, b = _color_pair(rng, contrast, _muted(rng, 60, 190, 20.0))
    pattern = _render.grating(diameter, period, 0.0, float(rng.random()))
    params.update(diameter=diameter, period=period, contrast=contrast)
    track = _motion_track(kind, rng, n, size, u, horizon, params)
    return Actor(_render.colorize(pattern, a, b), _render.disc_mask(diameter), track, True)


def _ramp(n: int, forward: bool) -> np.ndarray:
    """0 → 1 over the clip (or 1 → 0): both directions visit the same states."""
    f = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    return f if forward else 1.0 - f


def _motion_track(kind: str, rng: np.random.Generator, n: int, size: int, u: float, horizon: int,
                  params: Dict[str, Any]) -> np.ndarray:
    """Per-frame (cx, cy, angle, scale). The amount of change is drawn per clip: small = hard."""
    track = _drift_track(rng, n, size, u, max_speed=1.0)
    if kind in ("grow", "shrink"):
        lo, hi = float(rng.uniform(*GROW_FROM)), float(rng.uniform(*GROW_TO))
        track[:, 3] = lo * (hi / lo) ** _ramp(n, kind == "grow")
        params.update(amount=hi / lo)
    elif kind in ("rotate_cw", "rotate_ccw"):
        # stripes swing through ±A about level; OpenCV angles turn counter-clockwise on screen
        amp = float(rng.uniform(25, 65))
        track[:, 2] = amp * (2.0 * _ramp(n, kind == "rotate_ccw") - 1.0) + float(rng.uniform(-8, 8))
        track[:, 3] = float(rng.uniform(0.75, 1.0))
        params.update(amount=2 * amp)
    else:
        # rise / fall / bounce: cross the horizon, hiding more or less textured ground
        travel = float(rng.uniform(70, 130)) * u
        top = float(np.clip(horizon - travel / 2.0 + rng.uniform(-15, 15) * u, 30 * u, size - 30 * u - travel))
        if kind == "bounce":
            f = 1.0 - np.abs(2.0 * _ramp(n, True) - 1.0)  # down, then back up
        else:
            f = _ramp(n, kind == "fall")
        track[:, 1] = top + travel * f
        track[:, 3] = float(rng.uniform(0.6, 0.9))
        params.update(amount=travel)
    return track


def _drift_track(rng: np.random.Generator, n: int, size: int, u: float, max_speed: float) -> np.ndarray:
    """Slow straight drift near the centre in a random direction: (cx, cy, angle 0, scale 1) per frame."""
    c = size / 2.0
    cx, cy = c + float(rng.uniform(-30, 30)) * u, c + float(rng.uniform(-30, 30)) * u
    heading = float(rng.uniform(0, 2 * np.pi))
    speed = min(float(rng.uniform(0, max_speed)) * u, 40 * u / max(n - 1, 1))  # long clips drift slower
    t = np.arange(n, dtype=np.float64)
    track = np.zeros((n, 4), np.float64)
    track[:, 0] = cx + np.cos(heading) * speed * t
    track[:, 1] = cy + np.sin(heading) * speed * t
    track[:, 3] = 1.0
    return track


# ---------------------------------------------------------------- fine classes

def _fine_swarm(kind: str, rng: np.random.Generator, n: int, size: int, u: float, background: np.ndarray,
                margin: int, params: Dict[str, Any]) -> List[Actor]:
    """Small tiles sharing one fine texture and one drift; period, contrast and count set the difficulty."""
    period = float(rng.choice(FINE_PERIODS, p=FINE_PERIOD_P)) * u
    contrast = float(rng.uniform(*FINE_CONTRAST))
    count = int(rng.integers(FINE_COUNT[0], FINE_COUNT[1] + 1))
    drift = _drift_track(rng, n, size, u, max_speed=2.0)
    drift[:, :2] = 2.0 * np.round((drift[:, :2] - size / 2.0) / 2.0)  # 2 px steps
    actors = []
    for _ in range(count):
        side = _even(float(rng.uniform(*FINE_SIDE)) * u)
        x0 = _even(float(rng.uniform(24 * u, size - 24 * u - side)))
        y0 = _even(float(rng.uniform(24 * u, size - 24 * u - side)))
        # camouflage: the tile's mean colour is the background's under it, so at 112 px only texture differs
        under = background[y0 + margin:y0 + margin + side, x0 + margin:x0 + margin + side]
        a, b = _color_pair(rng, contrast, under.reshape(-1, 3).mean(0).astype(np.float32))
        sprite = _render.colorize(_fine_texture(kind, rng, side, period), a, b)
        track = drift.copy()
        track[:, 0] += x0 + side / 2.0
        track[:, 1] += y0 + side / 2.0
        actors.append(Actor(sprite, np.ones((side, side), np.float32), track, False))
    params.update(count=count, period=period, contrast=contrast)
    return actors


def _fine_texture(kind: str, rng: np.random.Generator, side: int, period: float) -> np.ndarray:
    # whole-pixel phases keep 2 px patterns pixel-exact
    phase = float(rng.integers(0, 2)) / 2.0 if period == 2.0 else float(rng.random())
    if kind == "stripes_v":
        return _render.grating(side, period, 0.0, phase)
    if kind == "stripes_h":
        return _render.grating(side, period, 90.0, phase)
    return _render.checks(side, period, (phase, float(rng.integers(0, 2)) / 2.0))


def render(scene: Scene) -> np.ndarray:
    """All frames of a scene as one array [T, H, W, 3] uint8."""
    out = np.empty((len(scene), scene.size, scene.size, 3), np.uint8)
    for t in range(len(scene)):
        out[t] = scene.frame(t)
    return out
