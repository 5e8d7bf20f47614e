"""Policies: the objects that own a stream's recurrent state and decide which graphs run per step.

Graphs are stateless (docs/architecture.md §3); a policy feeds state in, takes the new state out and
keeps it between steps. The base class holds what every recurrent family shares (reset at stream
start, every ``max_steps`` steps and after a timestamp gap longer than ``max_gap_s``); a family's
policy adds its own step: LiteEval's :class:`GatedPolicy` here, PreRNN's ``RecurrentPolicy`` in
recurrent.py.

LiteEval step (docs/models.md §2.2, §2.8)::

    feat_c ─► coarse_step ─► h_c, c_c (committed every step)
                  │ gate_logits
          argmax == 0 (fine; ties → fine)          argmax == 1 (skip)
                  │                                      │
    frame224 ─► fine_cnn ─► fine_step(prev h_f, c_f)     adopt h_f_sync, c_f_sync, logits_sync
                  │                                      │
                  └──────────── logits, path ────────────┘
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from ..errors import ConfigError
from ..families import liteeval as rules
from ..families.settings import positive_setting
from ..log import get_logger
from .stats import Recorder, timed

log = get_logger(__name__)

ArrayOrThunk = Union[np.ndarray, Callable[[], np.ndarray]]

CHAIN_ROLES = ("coarse_step", "fine_step")  # the serial chain; fine_cnn too when it is fed frames
FINE, SKIP = rules.FINE, rules.SKIP


class Policy:
    """State owner for one stream. Subclasses implement ``_zero_state`` and a family-specific step.

    Counters: ``steps`` (all steps), ``resets`` (state resets after the first), ``since_reset``,
    ``reset_causes`` (resets by cause: "gap", "max_steps", or the cause a subclass passes, e.g. "scene_cut").
    """

    def __init__(self, *, max_steps: Optional[int] = None, max_gap_s: Optional[float] = None):
        self.max_steps = positive_setting(max_steps, "max_steps", int)
        self.max_gap_s = positive_setting(max_gap_s, "max_gap_s", float)
        self.steps = 0
        self.resets = 0
        self.since_reset = 0
        self.reset_causes: Dict[str, int] = {}
        self._last_ts: Optional[float] = None
        self.reset()

    def reset(self) -> None:
        """Zero the state, as at stream start."""
        self.since_reset = 0
        self._zero_state()

    def _begin_step(self, timestamp: Optional[float], cause: Optional[str] = None) -> None:
        """Reset when the horizon is used up, the stream jumped, or ``cause`` (a subclass's own reason,
        e.g. a scene cut) is given; call at the start of every step. One reset per step at most, counted
        under the first cause of: gap, ``cause``, max_steps. The first step starts from zeros uncounted."""
        gap = (timestamp is not None and self._last_ts is not None and self.max_gap_s is not None
               and timestamp - self._last_ts > self.max_gap_s)
        if gap:
            cause = "gap"
        elif cause is None and self.max_steps is not None and self.since_reset >= self.max_steps:
            cause = "max_steps"
        if cause is not None and self.steps > 0:
            if gap:
                log.debug("state reset: %.3fs gap in stream time", timestamp - self._last_ts)
            self.reset()
            self.resets += 1
            self.reset_causes[cause] = self.reset_causes.get(cause, 0) + 1
        if timestamp is not None:
            self._last_ts = timestamp
        self.steps += 1
        self.since_reset += 1

    def _zero_state(self) -> None:
        raise NotImplementedError


class GatedPolicy(Policy):
    """LiteEval's gated recurrent chain on ``sessions`` (activated, by role: coarse_step, fine_step, and
    fine_cnn when fine steps are fed frames).

    ``step(feat_c, frame_fine, timestamp)`` returns ``(logits, path)`` with ``path`` "fine" or "coarse".
    ``frame_fine`` is the [1,3,224,224] input or a callable returning it, called only on fine steps;
    ``feat_f=`` (an array or callable) gives the fine CNN's feature instead (verify on recorded features).
    Setting ``gate="fine"`` forces every step to the fine branch (the always-fine comparison; the cap still applies).
    ``fine_cap`` fine calls per ``fine_window`` steps (sliding; without a window: per reset segment) caps the
    fine branch: over the cap a fine choice becomes a skip, counted in ``fine_capped``.
    ``record(name, seconds)`` receives each graph's inference time. ``plan`` is what
    ``GatedStages.check`` validated (settings and contract); without it the policy validates them itself.
    """

    def __init__(self, bundle: Any, sessions: Mapping[str, Any], *, fine_cap: Optional[int] = None,
                 fine_window: Optional[int] = None, record: Optional[Recorder] = None,
                 plan: Optional[Mapping[str, Any]] = None):
        missing = [role for role in CHAIN_ROLES if role not in sessions]
        if missing:
            raise ConfigError("GatedPolicy needs sessions for %s" % ", ".join(missing), None,
                              "pass active sessions for coarse_step, fine_cnn and fine_step")
        if plan is None:
            plan = {"settings": rules.FAMILY.check_policy(bundle.policy, {"fine_cap": fine_cap,
                                                                           "fine_window": fine_window}),
                    "contract": rules.contract(bundle)}
        self.sessions = dict(sessions)
        self._shapes = plan["contract"]["states"]
        settings = plan["settings"]
        self.fine_cap, self.fine_window = settings["fine_cap"], settings["fine_window"]
        self.force_fine = settings.get("gate") == "fine"
        self.record = record
        self.fine_steps = 0
        self.fine_capped = 0
        self.last_capped = False
        self._fine_at: Deque[int] = deque()
        super().__init__(max_steps=settings["max_steps"], max_gap_s=settings["max_gap_s"])

    def _zero_state(self) -> None:
        self.state = {name: np.zeros(shape, np.float32) for name, shape in self._shapes.items()}
        if self.fine_window is None:
            self._fine_at.clear()  # no window: the cap counts per reset segment

    def step(self, feat_c: Any, frame_fine: Optional[ArrayOrThunk] = None,
             timestamp: Optional[float] = None, *, feat_f: Optional[ArrayOrThunk] = None) -> Tuple[np.ndarray, str]:
        """One serial recurrent step; returns (logits [1, C] copy, "fine" | "coarse")."""
        self._begin_step(timestamp)
        gate = self._coarse_step(feat_c)
        # ties go to channel 0 (fine): np.argmax returns the first maximum
        wants_fine = self.force_fine or int(np.argmax(gate)) == FINE
        self.last_capped = wants_fine and not self._fine_allowed()
        if wants_fine and not self.last_capped:
            logits = self._fine_step(frame_fine, feat_f)
            self.fine_steps += 1
            self._fine_at.append(self.steps)
            return logits, "fine"
        if self.last_capped:
            self.fine_capped += 1
        return self._skip_step(), "coarse"

    # the three graph steps: host arrays here, device buffers in device.liteeval.DeviceGatedPolicy -------
    def _coarse_step(self, feat_c: np.ndarray) -> np.ndarray:
        """Run coarse_step, commit the coarse state; returns the gate logits (flat)."""
        s = self.state
        out = self._infer("coarse_step", {"feat_c": feat_c, "h_c_in": s["h_c"], "c_c_in": s["c_c"],
                                          "h_f_in": s["h_f"], "c_f_in": s["c_f"]})
        # copy before the next infer on this session may overwrite its output buffers
        s["h_c"], s["c_c"] = np.array(out["h_c_out"]), np.array(out["c_c_out"])
        self._coarse_out = out  # v_c and the sync outputs, for the fine or skip step that follows
        return np.asarray(out["gate_logits"]).reshape(-1)

    def _fine_step(self, frame_fine: Optional[ArrayOrThunk], feat_f: Optional[ArrayOrThunk]) -> np.ndarray:
        if feat_f is not None:
            feat_f = feat_f() if callable(feat_f) else feat_f
        else:
            frame = frame_fine() if callable(frame_fine) else frame_fine
            feat_f = self._infer("fine_cnn", {"frame": frame})["feat"]
        s = self.state
        out = self._infer("fine_step", {"feat_f": feat_f, "v_c": self._coarse_out["v_c"],
                                        "h_f_in": s["h_f"], "c_f_in": s["c_f"]})
        s["h_f"], s["c_f"] = np.array(out["h_f_out"]), np.array(out["c_f_out"])
        return np.array(out["logits"])

    def _skip_step(self) -> np.ndarray:
        """The gate skipped the fine branch: adopt coarse_step's sync of the fine state and its logits."""
        out, s = self._coarse_out, self.state
        s["h_f"], s["c_f"] = np.array(out["h_f_sync"]), np.array(out["c_f_sync"])
        return np.array(out["logits_sync"])

    def _fine_allowed(self) -> bool:
        if self.fine_cap is None:
            return True
        if self.fine_window is not None:
            # sliding window: the last fine_window steps, this one included
            while self._fine_at and self._fine_at[0] <= self.steps - self.fine_window:
                self._fine_at.popleft()
        return len(self._fine_at) < self.fine_cap

    def _infer(self, role: str, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return timed(self.record, role, self.sessions[role].infer, feeds)
