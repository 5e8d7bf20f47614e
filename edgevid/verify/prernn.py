"""Parity of an exported PreRNN bundle with its torch model (docs/models.md §4.10), on frames of a real stream.

Shares the session, preprocessing-free error and report helpers of :mod:`edgevid.verify` (LiteEval's
parity). Three checks on the same recorded frames, ``steps`` steps cycling them:

(a) ``backbone``: the graph on every recorded frame against ``model.backbone`` (v or u);
(b) ``step`` **teacher-forced**: at every step both sides get the torch drive and the torch state, so each
    step's error (h_out, c_out, logits) is measured on its own instead of compounding;
(c) **free-running stream**: the runtime chains its own backbone outputs and its own state for all
    ``steps`` steps (never reset), the torch model its own; per step the max-abs error of the logits and
    of the state, and top-1 agreement. Any drift of the carried state shows here (first vs last tenth).

Mismatches are reported (``report["ok"]``), never raised; :class:`ExportError` means the check could not run.
torch is imported inside the functions.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from ..log import get_logger
from ..models.modes import eval_mode
from ..errors import EdgevidError, ExportError
from ..families import prernn as rules
from ..runtime.recurrent import RecurrentPolicy
from .common import (DEFAULT_STEPS, family_bundle, infer, output_report, preprocess_frames, require_for_verify,
                     role_sessions, steps_report, used)

log = get_logger(__name__)

ROLES = rules.FAMILY.roles


def verify_prernn(model, bundle, frames, *, backend: str = "auto", sessions=None, steps: Optional[int] = None, threads: int = 0,
                  backbone_atol: float = 1e-3, step_atol: float = 1e-4, stream_atol: float = 1e-3,
                  min_cosine: float = 0.9999, min_top1_agreement: float = 1.0) -> Dict[str, Any]:
    """Compare a PreRNN bundle with its torch :class:`~edgevid.models.prernn.PreRNNModel`; JSON-able report.

    ``frames``: decoded BGR uint8 frames (a list of H×W×3 or one [T,H,W,3] array), preprocessed here with the
    bundle's spec, or preprocessed float32 ``[T,3,S,S]``. ``steps`` (default max(T, 300)) cycles them.
    Tolerances are max-abs relative to max(1, |reference|): ``backbone_atol`` (drive), ``step_atol``
    (teacher-forced step outputs), ``stream_atol`` (free-running logits and state); ``min_cosine`` per call;
    ``min_top1_agreement`` (share of free-running steps with the same argmax).
    """
    torch = require_for_verify("torch")
    bundle = family_bundle(bundle, "prernn", ROLES)
    try:
        contract = rules.contract(bundle)
    except EdgevidError as e:
        raise ExportError("cannot verify the bundle %s" % bundle.root, str(e), "re-export the bundle") from e
    x = preprocess_frames(bundle, frames, contract.size)
    n_frames = x.shape[0]
    steps = int(steps) if steps else max(n_frames, DEFAULT_STEPS)
    idx = np.arange(steps) % n_frames
    tol = dict(backbone_atol=backbone_atol, step_atol=step_atol, stream_atol=stream_atol, min_cosine=min_cosine,
               min_top1_agreement=min_top1_agreement)
    drive = contract.drive
    with role_sessions(bundle, ROLES, backend, threads, sessions) as sessions, eval_mode(model), torch.no_grad():
        v_torch = np.concatenate([model.backbone(torch.from_numpy(x[i:i + 8])).float().numpy()
                                  for i in range(0, n_frames, 8)])
        v_rt = np.concatenate([infer(sessions, "backbone", {"frame": x[i:i + 1]})[drive] for i in range(n_frames)])
        graphs = {"backbone": _scaled(output_report(v_torch, v_rt, np.inf, min_cosine), backbone_atol, min_cosine)}
        teacher, torch_run = _teacher_forced(torch, model, sessions, drive, v_torch[idx])
        graphs["step"] = _scaled(steps_report(teacher, np.inf, min_cosine), step_atol, min_cosine, teacher)
        stream = _free_running(bundle, contract, sessions, v_rt[idx], torch_run, tol)
        ran = used(sessions)
    ok = all(g["ok"] for g in graphs.values()) and stream["ok"]
    report = {"ok": ok, "family": "prernn", "frames": int(n_frames), "steps": int(steps),
              "drive": drive, "tolerances": tol, "graphs": graphs, "stream": stream}
    report.update(ran)
    log.info("verify %s: %s (top-1 agreement %.4f, stream logits max-abs %.2e, state %.2e)", bundle.root,
             "ok" if ok else "MISMATCH", stream["top1_agreement"], stream["logits"]["max_abs"], stream["state"]["max_abs"])
    return report


def _scaled(report: Dict[str, Any], atol: float, min_cos: float, pairs=None) -> Dict[str, Any]:
    """``ok`` with the tolerance relative to the reference's magnitude: max-abs <= atol · max(1, |ref|)."""
    ref_max = report.get("ref_max_abs")
    if ref_max is None:
        ref_max = max(float(np.abs(np.concatenate(ref)).max()) for ref, _ in pairs.values())
        report["ref_max_abs"] = ref_max
    report["ok"] = bool(report["max_abs"] <= atol * max(1.0, ref_max) and report["min_cosine"] >= min_cos)
    return report


def _teacher_forced(torch, model, sessions, drive: str, v: np.ndarray):
    """Step graph fed the torch drive and torch state at every step; returns (pairs, torch stream)."""
    lstm = model.has_cell_state
    names = ("h_out", "c_out", "logits") if lstm else ("h_out", "logits")
    pairs: Dict[str, tuple] = {k: ([], []) for k in names}
    h = torch.zeros(1, model.hidden)
    c = torch.zeros(1, model.hidden) if lstm else None
    run: Dict[str, List[np.ndarray]] = {"logits": [], "h": [], "c": []}
    for t in range(v.shape[0]):
        feeds = {drive: v[t:t + 1], "h_in": h.numpy()}
        if lstm:
            feeds["c_in"] = c.numpy()
        got = infer(sessions, "step", feeds)
        h, c, logits = model.step(torch.from_numpy(v[t:t + 1]), h, c)
        ref = {"h_out": h.numpy(), "c_out": None if c is None else c.numpy(), "logits": logits.numpy()}
        for k in names:
            pairs[k][0].append(ref[k].copy())
            pairs[k][1].append(got[k])
        run["logits"].append(ref["logits"][0].copy())
        run["h"].append(ref["h_out"][0].copy())
        if lstm:
            run["c"].append(ref["c_out"][0].copy())
    return pairs, {k: np.array(a) for k, a in run.items() if a}


def _free_running(bundle, contract, sessions, v_rt: np.ndarray, torch_run: Dict[str, np.ndarray], tol) -> Dict[str, Any]:
    """The runtime's own RecurrentPolicy on the runtime drives, carrying its own state, against the torch
    stream (one unbroken sequence, so the policy's resets are off here)."""
    settings = dict(rules.FAMILY.check_policy(bundle.policy), max_steps=None, max_gap_s=None, scene_cut=None)
    policy = RecurrentPolicy(bundle, sessions["step"], plan={"settings": settings, "contract": contract})
    logits, states = [], {s: [] for s in policy.state}
    for t in range(v_rt.shape[0]):
        try:
            out = policy.step(v_rt[t:t + 1])
        except EdgevidError as e:
            raise ExportError("the step failed during verification", str(e), "check the bundle matches the model") from e
        for s in states:
            states[s].append(policy.state[s][0])
        logits.append(out[0])
    logits = np.array(logits)
    err_logits = np.abs(logits - torch_run["logits"]).max(axis=1)
    err_state = np.max([np.abs(np.array(states[s]) - torch_run[s]).max(axis=1) for s in states], axis=0)
    same = logits.argmax(1) == torch_run["logits"].argmax(1)
    first = None if same.all() else int(np.argmin(same))
    top2 = np.sort(torch_run["logits"], axis=1)[:, -2:]
    scale = max(1.0, float(np.abs(torch_run["logits"]).max()), *(float(np.abs(torch_run[s]).max()) for s in states))
    report = {"steps": int(logits.shape[0]), "top1_agreement": float(same.mean()), "first_disagreement": first,
              "min_top1_margin": float((top2[:, 1] - top2[:, 0]).min()),
              "logits": _series(err_logits), "state": _series(err_state), "scale": scale}
    report["ok"] = bool(report["top1_agreement"] >= tol["min_top1_agreement"]
                        and max(err_logits.max(), err_state.max()) <= tol["stream_atol"] * scale)
    return report


def _series(err: np.ndarray) -> Dict[str, Any]:
    """Per-step max-abs errors summarised: overall max (and its step), mean, and the first and last tenth."""
    tenth = max(1, err.size // 10)
    return {"max_abs": float(err.max()), "step_of_max": int(err.argmax()), "mean_abs": float(err.mean()),
            "first_tenth_max": float(err[:tenth].max()), "last_tenth_max": float(err[-tenth:].max())}


def describe_prernn_report(report: Dict[str, Any]) -> str:
    """A few lines for humans (the CLI prints the JSON with --json)."""
    lines = ["parity %s on %s: %d frames, %d steps, state carried" % (
        "OK" if report["ok"] else "MISMATCH", report["backend"], report["frames"], report["steps"])]
    for role, g in report["graphs"].items():
        lines.append("  %-10s max-abs %.3e  min cosine %.7f  %s" % (role, g["max_abs"], g["min_cosine"],
                                                                  "ok" if g["ok"] else "FAIL"))
    s = report["stream"]
    lines.append("  stream     logits max-abs %.3e, state max-abs %.3e (first/last tenth %.1e/%.1e), top-1 agreement "
                 "%.4f  %s" % (s["logits"]["max_abs"], s["state"]["max_abs"], s["state"]["first_tenth_max"],
                               s["state"]["last_tenth_max"], s["top1_agreement"], "ok" if s["ok"] else "FAIL"))
    return "\n".join(lines)
