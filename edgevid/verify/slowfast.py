"""Parity of an exported SlowFast bundle with its torch model (docs/models.md §3.5) on real clips.

::

    frames (decoded BGR) ─► Preprocessor(bundle spec) ─► windows of T consecutive frames, every ``stride``
        ─► torch SlowFast (eval)  ─┐
        ─► runtime graph ``clip`` ─┴─► max-abs and cosine of the logits, top-1 agreement

The frames are taken in order as the stream gave them (one per slot at the model's spacing, as
``edgevid run`` samples them); a recording shorter than one window is cycled. Mismatches are
reported, never raised (``report["ok"]``); :class:`ExportError` means the check could not run.
torch is imported inside the functions: this module imports on a device.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import EdgevidError, ExportError
from ..log import get_logger
from ..models.modes import eval_mode
from ..families import slowfast as rules
from .common import error_measures, family_bundle, infer, preprocess_frames, require_for_verify, role_sessions, used

log = get_logger(__name__)

DEFAULT_CLIPS = 8


def verify_slowfast(model, bundle, frames, *, clips: Optional[int] = DEFAULT_CLIPS, stride: Optional[int] = None,
                    backend: str = "auto", sessions=None, threads: int = 0, atol: float = 1e-3, min_cosine: float = 0.9999,
                    min_top1_agreement: float = 1.0) -> Dict[str, Any]:
    """Compare a SlowFast bundle with its torch ``model``; returns a JSON-able report with ``ok``.

    ``frames``: decoded BGR uint8 frames (a list of H×W×3 or one [F,H,W,3] array), preprocessed here
    with the bundle's spec, or preprocessed float32 frames [F,3,S,S]. Clips are windows of the
    graph's T frames starting every ``stride`` frames (default T: disjoint clips), at most ``clips``
    of them (None: all that fit). Tolerances: ``atol`` (logits max-abs), ``min_cosine`` (per clip),
    ``min_top1_agreement`` (share of clips whose argmax agrees).
    """
    torch = require_for_verify("torch")
    bundle = family_bundle(bundle, "slowfast", ("clip",))
    try:
        t, size = rules.contract(bundle)
    except EdgevidError as e:
        raise ExportError("cannot verify the bundle %s" % bundle.root, str(e),
                          "verify a bundle exported with one 'clip' input (not --two-input)") from e
    x = preprocess_frames(bundle, frames, size)
    starts, windows = clip_windows(x, t, size, stride or t, clips)
    tol = dict(atol=atol, min_cosine=min_cosine, min_top1_agreement=min_top1_agreement)
    ref: List[np.ndarray] = []
    got: List[np.ndarray] = []
    with role_sessions(bundle, ("clip",), backend, threads, sessions) as sessions, eval_mode(model), torch.no_grad():
        device = next(iter(model.parameters())).device
        for clip in windows:
            ref.append(model(torch.from_numpy(clip).to(device)).float().cpu().numpy())
            got.append(infer(sessions, "clip", {"clip": clip})["logits"])
        ran = used(sessions)
    ref_a, got_a = np.concatenate(ref), np.concatenate(got)
    max_abs, cos = error_measures(ref_a, got_a)
    agree = float((ref_a.argmax(1) == got_a.argmax(1)).mean())
    ok = bool(max_abs <= atol and cos >= min_cosine and agree >= min_top1_agreement)
    report = {"ok": ok, "family": "slowfast", "frames": int(x.shape[0]), "clips": len(windows), "clip_frames": t,
              "size": size, "starts": starts, "max_abs": max_abs, "min_cosine": cos,
              "ref_max_abs": float(np.abs(ref_a).max()), "top1_agreement": agree, "tolerances": tol}
    report.update(ran)
    log.info("verify %s: %s (%d clips, logits max-abs %.2e, top-1 agreement %.3f)", bundle.root,
             "ok" if ok else "MISMATCH", len(windows), max_abs, agree)
    return report


def clip_windows(x: np.ndarray, frames: int, size: int, stride: int,
                 clips: Optional[int]) -> Tuple[List[int], List[np.ndarray]]:
    """``(starts, clips)``: the runtime's own ClipPolicy window over preprocessed frames ``x`` [F,3,S,S], every
    frame one slot, a clip every ``stride`` slots once full, at most ``clips`` (None: all); a recording shorter
    than a window is cycled."""
    from ..runtime.clip import ClipPolicy

    n = x.shape[0]
    if n < 1 or stride < 1 or (clips is not None and clips < 1):
        raise ExportError("cannot cut clips from %d frames with stride %d, clips %r" % (n, stride, clips),
                          None, "pass at least one frame, stride >= 1 and clips >= 1")
    policy = ClipPolicy(frames, size, every=stride)
    starts: List[int] = []
    out: List[np.ndarray] = []
    for i in range(max(n, frames)):
        if policy.push(x[i % n], 1, i == 0):
            starts.append(i - frames + 1)
            out.append(policy.window.assemble(np.empty_like(policy.window.clip)))
            if clips is not None and len(out) >= clips:
                break
    return starts, out


def describe_slowfast_report(report: Dict[str, Any]) -> str:
    """A few lines for humans (the CLI prints the JSON with --json)."""
    return "\n".join([
        "parity %s on %s: %d frames, %d clips of %d frames at %d²" % (
            "OK" if report["ok"] else "MISMATCH", report["backend"], report["frames"], report["clips"],
            report["clip_frames"], report["size"]),
        "  clip         logits max-abs %.3e (of %.3g)  min cosine %.7f  top-1 agreement %.3f" % (
            report["max_abs"], report["ref_max_abs"], report["min_cosine"], report["top1_agreement"]),
    ])
