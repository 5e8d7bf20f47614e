"""One synthetic clip as a scene: background, one textured object, its trajectory, camera jitter, noise.

A :class:`Scene` is drawn once from a seeded generator (:func:`build_scene`) and then rendered frame
by frame (:meth:`Scene.frame`), so a long stream never holds more than one frame per segment in
memory. Geometry is specified for 256-pixel frames (the size the preprocessor resizes the short
side to) and scaled by ``size / 256``; at size 256 the 224 centre crop sees texture periods
exactly as drawn.

Class families (see ``synthetic.CLASSES``):

- motion classes: a large disc with coarse oriented stripes; the class is in how it moves
  (slides, turns, grows, shrinks, pulses). Visible at 112 px.
- fine classes: a small hard-edged tile that drifts slowly; the class is its texture (vertical
  stripes, horizontal stripes, checks) with a period of 2-6 px at 224. The 112 px antialiased resize
  averages periods of 2-3 px to a flat tile of the same mean colour, so only the 224 frame shows them.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from . import _render

# class name -> (family, what distinguishes it)
MOTION, FINE = "motion", "fine"
KINDS = {
    "slide_left": (MOTION, "slide_left"),
    "slide_right": (MOTION, "slide_right"),
    "rotate_cw": (MOTION, "rotate_cw"),
    "rotate_ccw": (MOTION, "rotate_ccw"),
    "grow": (MOTION, "grow"),
    "shrink": (MOTION, "shrink"),
    "pulse": (MOTION, "pulse"),
    "stripes_v": (FINE, "stripes_v"),
    "stripes_h": (FINE, "stripes_h"),
    "checks": (FINE, "checks"),
}

# texture period (pixels at 224) of fine tiles and how often each is drawn: 2-3 px vanish at 112,
# 4 px survives at 112 only in some phases, 6 px is plain at 112 (the "easy" instances)
FINE_PERIODS = (2.0, 3.0, 4.0, 6.0)
FINE_PERIOD_P = (0.45, 0.2, 0.15, 0.2)


class Scene:
    """A drawn clip: call :meth:`frame` for t = 0, 1, … (the generator drives jitter and noise)."""

    def __init__(self, size: int, background: np.ndarray, sprite: np.ndarray, mask: np.ndarray,
                 track: np.ndarray, warp: bool, jitter: int, noise: "_render.NoiseBank",
                 rng: np.random.Generator, params: Dict[str, Any]):
        self.size, self.background, self.sprite, self.mask = size, background, sprite, mask
        self.track, self.warp, self.jitter, self.noise = track, warp, jitter, noise
        self.rng, self.params = rng, params
        self._offset = np.zeros(2, np.int64)
        self._margin = (background.shape[0] - size) // 2

    def __len__(self) -> int:
        return len(self.track)

    def frame(self, t: int) -> np.ndarray:
        """Frame t (uint8 BGR size×size×3). Call in order: jitter is a random walk."""
        cx, cy, angle, scale = self.track[t]
        canvas = self.background.copy()
        if self.warp:
            sprite, mask = _render.warp_sprite(self.sprite, self.mask, angle, scale)
        else:
            sprite, mask = self.sprite, self.mask
        m = self._margin
        _render.composite(canvas, sprite, mask, cx + m, cy + m)
        if self.jitter:
            # camera shake: whole-pixel random walk, so pixel textures stay pixel-exact
            step = self.rng.integers(-1, 2, 2)
            self._offset = np.clip(self._offset + step, -self.jitter, self.jitter)
        oy, ox = m + int(self._offset[0]), m + int(self._offset[1])
        view = canvas[oy:oy + self.size, ox:ox + self.size]
        return self.noise.apply(np.ascontiguousarray(view), self.rng)


def build_scene(kind: str, rng: np.random.Generator, num_frames: int, size: int) -> Scene:
    """Draw a scene of class ``kind`` (a key of KINDS) from ``rng``."""
    family, _ = KINDS[kind]
    u = size / 256.0
    margin = int(np.ceil(6 * u))
    params: Dict[str, Any] = {"class": kind, "family": family}
    background = _background(rng, size + 2 * margin, u)
    if family == MOTION:
        sprite, mask = _motion_sprite(rng, u, params)
        track = _motion_track(kind, rng, num_frames, size, u, params)
        warp = True
    else:
        sprite, mask = _fine_sprite(kind, rng, u, params)
        track = _drift_track(rng, num_frames, size, u, params, max_speed=2.0)
        warp = False
    jitter = int(rng.integers(0, int(round(4 * u)) + 1))
    noise_amp = int(rng.integers(2, 25))
    params.update(jitter=jitter, noise=noise_amp)
    noise = _render.NoiseBank(rng, size, noise_amp)
    return Scene(size, background, sprite, mask, track, warp, jitter, noise, rng, params)


def _color(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(20, 235, 3).astype(np.float32)


def _color_pair(rng: np.random.Generator, lo: float, hi: float):
    """Two colours whose difference has a drawn length (the texture contrast) and a shared mean."""
    contrast = float(rng.uniform(lo, hi))
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction) + 1e-9
    half = direction * contrast / 2.0
    mid = rng.uniform(np.abs(half) + 5.0, 250.0 - np.abs(half))
    return (mid - half).astype(np.float32), (mid + half).astype(np.float32), contrast


def _background(rng: np.random.Generator, n: int, u: float) -> np.ndarray:
    """Textured background: smooth colour gradient × mid-scale mottling + a few static clutter shapes."""
    cv2 = _render._cv2()
    base = _render.smooth_field(rng, n, 3) * 180.0 + 30.0
    mottle = _render.smooth_field(rng, n, int(rng.integers(8, 20)), 1)
    strength = float(rng.uniform(0.1, 0.5))
    img = base * (1.0 - strength + strength * 2.0 * mottle)
    bg = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 7))):
        color = tuple(int(c) for c in _color(rng))
        x, y = (int(v) for v in rng.integers(0, n, 2))
        r = int(rng.integers(int(8 * u), int(40 * u) + 1))
        if rng.random() < 0.5:
            cv2.circle(bg, (x, y), r, color, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(bg, (x - r, y - r // 2), (x + r, y + r // 2), color, -1, cv2.LINE_AA)
    return bg


def _motion_sprite(rng: np.random.Generator, u: float, params: Dict[str, Any]):
    """Large disc with coarse stripes (period 10-20 px): its orientation shows rotation, its area scale."""
    diameter = int(rng.integers(int(60 * u), int(110 * u) + 1))
    period = float(rng.uniform(10, 20)) * u
    a, b, contrast = _color_pair(rng, 60, 200)
    pattern = _render.grating(diameter, period, float(rng.uniform(0, 180)), float(rng.random()))
    params.update(diameter=diameter, period=period, contrast=contrast)
    return _render.colorize(pattern, a, b), _render.disc_mask(diameter)


def _fine_sprite(kind: str, rng: np.random.Generator, u: float, params: Dict[str, Any]):
    """Small tile (24-56 px) textured with fine stripes or checks; the drawn period sets the difficulty."""
    side = int(rng.integers(int(24 * u), int(56 * u) + 1))
    period = float(rng.choice(FINE_PERIODS, p=FINE_PERIOD_P)) * u
    a, b, contrast = _color_pair(rng, 50, 160)
    phase = float(rng.random())
    if kind == "stripes_v":
        pattern = _render.grating(side, period, 0.0, phase)
    elif kind == "stripes_h":
        pattern = _render.grating(side, period, 90.0, phase)
    else:
        pattern = _render.checks(side, period, (phase, float(rng.random())))
    params.update(side=side, period=period, contrast=contrast)
    return _render.colorize(pattern, a, b), _render.box_mask(side, corner=max(1, side // 8))


def _start(rng: np.random.Generator, size: int, u: float, spread: float):
    c = size / 2.0
    return c + float(rng.uniform(-spread, spread)) * u, c + float(rng.uniform(-spread, spread)) * u


def _motion_track(kind: str, rng: np.random.Generator, n: int, size: int, u: float,
                  params: Dict[str, Any]) -> np.ndarray:
    """Per-frame (cx, cy, angle, scale) for a motion class; amounts vary per clip (the difficulty)."""
    t = np.arange(n, dtype=np.float64)
    span = max(n - 1, 1)
    track = _drift_track(rng, n, size, u, params, max_speed=1.0)
    angle0 = float(rng.uniform(0, 360))
    track[:, 2] = angle0
    if kind in ("slide_left", "slide_right"):
        sign = -1.0 if kind == "slide_left" else 1.0
        speed = float(rng.uniform(3, 7)) * u
        travel = min(speed * span, 120 * u)  # stay mostly in view however long the clip
        cx0, _ = _start(rng, size, u, 20)
        track[:, 0] = cx0 + sign * (t / span - 0.5) * travel
        params.update(speed=travel / span)
    elif kind in ("rotate_cw", "rotate_ccw"):
        # OpenCV angles are counter-clockwise on screen
        sign = -1.0 if kind == "rotate_cw" else 1.0
        omega = float(rng.uniform(6, 15))
        track[:, 2] = angle0 + sign * omega * t
        params.update(speed=omega)
    elif kind in ("grow", "shrink"):
        lo, ratio = float(rng.uniform(0.45, 0.6)), float(rng.uniform(1.6, 2.2))
        f = t / span if kind == "grow" else 1.0 - t / span
        track[:, 3] = lo * ratio ** f
        params.update(speed=ratio)
    elif kind == "pulse":
        mid, amp = float(rng.uniform(0.6, 0.9)), float(rng.uniform(0.25, 0.4))
        period = float(rng.uniform(5, 9))
        track[:, 3] = mid * (1.0 + amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)))
        params.update(speed=amp)
    return track


def _drift_track(rng: np.random.Generator, n: int, size: int, u: float, params: Dict[str, Any],
                 max_speed: float) -> np.ndarray:
    """Slow straight drift in a random direction: (cx, cy, angle 0, scale 1) per frame."""
    cx, cy = _start(rng, size, u, 30)
    heading = float(rng.uniform(0, 2 * np.pi))
    speed = float(rng.uniform(0, max_speed)) * u
    speed = min(speed, 60 * u / max(n - 1, 1))  # long clips drift slower rather than leave the view
    t = np.arange(n, dtype=np.float64)
    track = np.zeros((n, 4), np.float64)
    track[:, 0] = cx + np.cos(heading) * speed * t
    track[:, 1] = cy + np.sin(heading) * speed * t
    track[:, 3] = 1.0
    params.setdefault("speed", speed)
    return track


def render(scene: Scene) -> np.ndarray:
    """All frames of a scene as one array [T, H, W, 3] uint8."""
    out = np.empty((len(scene), scene.size, scene.size, 3), np.uint8)
    for t in range(len(scene)):
        out[t] = scene.frame(t)
    return out
