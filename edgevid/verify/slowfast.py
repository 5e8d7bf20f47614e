"""Parity of an exported SlowFast bundle with its torch model (models.md §3.5) on real clips.

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

from typing import Any, Dict, List, Optional

import numpy as np

from ..errors import EdgevidError, ExportError
from ..log import get_logger
from ..models.modes import eval_mode
from .common import preprocess_frames, close_sessions, error_measures, family_bundle, infer, open_sessions, require_for_verify

log = get_logger(__name__)

DEFAULT_CLIPS = 8


def verify_slowfast(model, bundle, frames, *, clips: Optional[int] = DEFAULT_CLIPS, stride: Optional[int] = None,
                    backend: str = "ort", threads: int = 0, atol: float = 1e-3, min_cosine: float = 0.9999,
                    min_top1_agreement: float = 1.0) -> Dict[str, Any]:
    """Compare a SlowFast bundle with its torch ``model``; returns a JSON-able report with ``ok``.

    ``frames``: decoded BGR uint8 frames (a list of H×W×3 or one [F,H,W,3] array), preprocessed here
    with the bundle's spec, or preprocessed float32 frames [F,3,S,S]. Clips are windows of the
    graph's T frames starting every ``stride`` frames (default T: disjoint clips), at most ``clips``
    of them (None: all that fit). Tolerances: ``atol`` (logits max-abs), ``min_cosine`` (per clip),
    ``min_top1_agreement`` (share of clips whose argmax agrees).
    """
    torch = require_for_verify("torch")
    from ..runtime.clip import clip_geometry

    bundle = family_bundle(bundle, "slowfast", ("clip",))
    try:
        t, size = clip_geometry(bundle)
    except EdgevidError as e:
        raise ExportError("cannot verify the bundle %s" % bundle.root, str(e),
                          "verify a bundle exported with one 'clip' input (not --two-input)") from e
    x = preprocess_frames(bundle, frames, size)
    windows = clip_windows(x.shape[0], t, stride or t, clips)
    tol = dict(atol=atol, min_cosine=min_cosine, min_top1_agreement=min_top1_agreement)
    sessions = open_sessions(bundle, ("clip",), backend, threads)
    ref: List[np.ndarray] = []
    got: List[np.ndarray] = []
    try:
        with eval_mode(model), torch.no_grad():
            device = next(iter(model.parameters())).device
            for idx in windows:
                clip = np.ascontiguousarray(x[idx].transpose(1, 0, 2, 3)[None])  # [T,3,S,S] -> [1,3,T,S,S]
                ref.append(model(torch.from_numpy(clip).to(device)).float().cpu().numpy())
                got.append(infer(sessions, "clip", {"clip": clip})["logits"])
    finally:
        close_sessions(sessions)
    ref_a, got_a = np.concatenate(ref), np.concatenate(got)
    max_abs, cos = error_measures(ref_a, got_a)
    agree = float((ref_a.argmax(1) == got_a.argmax(1)).mean())
    ok = bool(max_abs <= atol and cos >= min_cosine and agree >= min_top1_agreement)
    report = {"ok": ok, "backend": backend, "frames": int(x.shape[0]), "clips": len(windows), "clip_frames": t,
              "size": size, "starts": [int(w[0]) for w in windows], "max_abs": max_abs, "min_cosine": cos,
              "ref_max_abs": float(np.abs(ref_a).max()), "top1_agreement": agree, "tolerances": tol}
    log.info("verify %s: %s (%d clips, logits max-abs %.2e, top-1 agreement %.3f)", bundle.root,
             "ok" if ok else "MISMATCH", len(windows), max_abs, agree)
    return report


def clip_windows(n_frames: int, frames: int, stride: int, clips: Optional[int]) -> List[np.ndarray]:
    """Frame indices of each window: starts 0, stride, …; a recording shorter than a window is cycled."""
    if n_frames < 1 or stride < 1 or (clips is not None and clips < 1):
        raise ExportError("cannot cut clips from %d frames with stride %d, clips %r" % (n_frames, stride, clips),
                          None, "pass at least one frame, stride >= 1 and clips >= 1")
    starts = list(range(0, max(1, n_frames - frames + 1), stride))
    if clips is not None:
        starts = starts[:clips]
    return [np.arange(s, s + frames) % n_frames for s in starts]


def describe_slowfast_report(report: Dict[str, Any]) -> str:
    """A few lines for humans (the CLI prints the JSON with --json)."""
    return "\n".join([
        "parity %s on %s: %d frames, %d clips of %d frames at %d²" % (
            "OK" if report["ok"] else "MISMATCH", report["backend"], report["frames"], report["clips"],
            report["clip_frames"], report["size"]),
        "  clip         logits max-abs %.3e (of %.3g)  min cosine %.7f  top-1 agreement %.3f" % (
            report["max_abs"], report["ref_max_abs"], report["min_cosine"], report["top1_agreement"]),
    ])
