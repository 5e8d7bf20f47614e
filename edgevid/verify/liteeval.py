"""Parity of an exported LiteEval bundle with its torch model (docs/models.md §2.8).

Two checks on the same recorded frames:

(a) **per graph**: each graph on the runtime backend against its torch counterpart on identical
    feeds — the CNNs on the preprocessed frames; ``coarse_step`` and ``fine_step`` at every step of a
    stream with **teacher-forced gates** (the torch gate decisions drive the state, and both sides
    get that same state), so an error is measured per step instead of compounding;
(b) **free-running**: the runtime graphs run a stream on their own features and their own gate
    decisions (argmax(gate_logits) == 0 → fine, ties → fine) next to ``LiteEvalHead`` in eval mode
    on the torch features. Reported: gate agreement, the first step where the decisions differ, the
    fine-rate delta and the logits' max-abs error.

Frames are cycled when the stream is longer than the recording. Mismatches are reported, never
raised (``report["ok"]`` and the numbers let the caller decide); :class:`ExportError` means the
check could not run. torch is imported inside the functions: this module imports on a device.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from ..errors import EdgevidError, ExportError
from ..log import get_logger
from ..models.modes import eval_mode
from ..families import liteeval as rules
from ..runtime.policies import GatedPolicy
from .common import (DEFAULT_STEPS, as_numpy, family_bundle, infer, output_report, require_for_verify, role_sessions,
                     steps_report, used)

log = get_logger(__name__)

ROLES = ("coarse_cnn", "fine_cnn", "coarse_step", "fine_step")
COARSE_OUT = ("v_c", "h_c_out", "c_c_out", "gate_logits", "h_f_sync", "c_f_sync", "logits_sync")
FINE_OUT = ("h_f_out", "c_f_out", "logits")


def verify_liteeval(model, bundle, frames, frames_112=None, *, backend: str = "auto", sessions=None,
                    steps: Optional[int] = None,
                    threads: int = 0, cnn_atol: float = 1e-3, step_atol: float = 1e-4, min_cosine: float = 0.9999,
                    min_gate_agreement: float = 1.0, max_fine_rate_delta: float = 0.0,
                    logits_atol: float = 1e-3) -> Dict[str, Any]:
    """Compare a LiteEval bundle with its torch ``model``; returns a JSON-able report with ``ok``.

    ``frames`` is either decoded BGR uint8 frames (a list of H×W×3, or one [T,H,W,3] array),
    preprocessed here with the bundle's spec at 224 and 112, or preprocessed float32 frames
    ``[T,3,224,224]`` together with ``frames_112`` ``[T,3,112,112]``. The stream has ``steps`` steps (default max(T, 300)), cycling
    the frames; the torch side runs on torch features, the runtime side on runtime features.
    Tolerances: ``cnn_atol`` (CNN features max-abs), ``step_atol`` (teacher-forced step outputs
    max-abs), ``min_cosine`` (every graph, per call), ``min_gate_agreement`` (fraction of equal
    decisions in the free-running stream), ``max_fine_rate_delta``, ``logits_atol`` (free-running logits).
    """
    torch = require_for_verify("torch")
    bundle = _liteeval_bundle(bundle, ROLES)
    f224, f112 = _frames(bundle, frames, frames_112)
    n_frames = f224.shape[0]
    steps = int(steps) if steps else max(n_frames, DEFAULT_STEPS)
    idx = np.arange(steps) % n_frames
    tol = dict(cnn_atol=cnn_atol, step_atol=step_atol, min_cosine=min_cosine, min_gate_agreement=min_gate_agreement,
               max_fine_rate_delta=max_fine_rate_delta, logits_atol=logits_atol)
    with role_sessions(bundle, ROLES, backend, threads, sessions) as sessions, eval_mode(model), torch.no_grad():
        device = next(iter(model.parameters())).device
        ft_c = _torch_features(torch, model.coarse_cnn, f112, device)
        ft_f = _torch_features(torch, model.fine_cnn, f224, device)
        fo_c = np.concatenate([infer(sessions, "coarse_cnn", {"frame": f112[i:i + 1]})["feat"] for i in range(n_frames)])
        fo_f = np.concatenate([infer(sessions, "fine_cnn", {"frame": f224[i:i + 1]})["feat"] for i in range(n_frames)])
        graphs = {"coarse_cnn": output_report(ft_c, fo_c, cnn_atol, min_cosine),
                  "fine_cnn": output_report(ft_f, fo_f, cnn_atol, min_cosine)}
        step_graphs, stream = _verify_steps(torch, model.head, bundle, sessions, ft_c[idx], ft_f[idx], fo_c[idx],
                                            fo_f[idx], device, tol)
        graphs.update(step_graphs)
        ran = used(sessions)
    return _report(bundle, ran, n_frames, steps, tol, graphs, stream)


def verify_liteeval_steps(head, bundle, feat_c, feat_f, *, feat_c_runtime=None, feat_f_runtime=None,
                          backend: str = "auto", sessions=None, threads: int = 0, step_atol: float = 1e-4, min_cosine: float = 0.9999,
                          min_gate_agreement: float = 1.0, max_fine_rate_delta: float = 0.0,
                          logits_atol: float = 1e-3) -> Dict[str, Any]:
    """The step-graph part of :func:`verify_liteeval` on recorded features ``[T,1280]``, ``[T,F]``.

    ``head`` is the torch :class:`LiteEvalHead` (or a LiteEval, whose head is used). The free-running
    runtime stream uses ``feat_c_runtime``/``feat_f_runtime`` when given (e.g. features from the
    runtime CNNs), else the same features as torch. Only ``coarse_step`` and ``fine_step`` are needed.
    """
    torch = require_for_verify("torch")
    head = getattr(head, "head", head)
    bundle = _liteeval_bundle(bundle, ("coarse_step", "fine_step"))
    fc, ff = (np.ascontiguousarray(as_numpy(a), dtype=np.float32) for a in (feat_c, feat_f))
    fc_rt = fc if feat_c_runtime is None else np.ascontiguousarray(as_numpy(feat_c_runtime), dtype=np.float32)
    ff_rt = ff if feat_f_runtime is None else np.ascontiguousarray(as_numpy(feat_f_runtime), dtype=np.float32)
    if fc.ndim != 2 or ff.ndim != 2 or not (fc.shape[0] == ff.shape[0] == fc_rt.shape[0] == ff_rt.shape[0] > 0) \
            or fc_rt.shape != fc.shape or ff_rt.shape != ff.shape:
        raise ExportError("features of shapes %s, %s (runtime %s, %s)" % (fc.shape, ff.shape, fc_rt.shape, ff_rt.shape),
                          None, "pass [T,1280] coarse and [T,F] fine features with the same T >= 1")
    tol = dict(step_atol=step_atol, min_cosine=min_cosine, min_gate_agreement=min_gate_agreement,
               max_fine_rate_delta=max_fine_rate_delta, logits_atol=logits_atol)
    with role_sessions(bundle, ("coarse_step", "fine_step"), backend, threads, sessions) as sessions, \
            eval_mode(head), torch.no_grad():
        device = next(iter(head.parameters())).device
        graphs, stream = _verify_steps(torch, head, bundle, sessions, fc, ff, fc_rt, ff_rt, device, tol)
        ran = used(sessions)
    return _report(bundle, ran, None, fc.shape[0], tol, graphs, stream)


# ---------------------------------------------------------------------------------------------
def _liteeval_bundle(bundle, roles):
    return family_bundle(bundle, "liteeval", roles)


def _report(bundle, ran, n_frames, steps, tol, graphs, stream):
    ok = all(g["ok"] for g in graphs.values()) and stream["ok"]
    report = {"ok": ok, "family": "liteeval", "frames": n_frames if n_frames is None else int(n_frames),
              "steps": int(steps), "tolerances": tol, "graphs": graphs, "stream": stream}
    report.update(ran)
    log.info("verify %s: %s (gate agreement %.4f, max-abs %s)", bundle.root, "ok" if ok else "MISMATCH",
             stream["gate_agreement"], {r: "%.2e" % g["max_abs"] for r, g in graphs.items()})
    return report


def _verify_steps(torch, head, bundle, sessions, fc, ff, fc_rt, ff_rt, device, tol):
    """(a) teacher-forced per-step parity on the torch features, (b) free-running stream."""
    teacher = _teacher_forced(torch, head, sessions, fc, ff, device)
    graphs = {role: steps_report(teacher[role], tol["step_atol"], tol["min_cosine"]) for role in ("coarse_step", "fine_step")}
    out = head(torch.from_numpy(fc[None]).to(device), torch.from_numpy(ff[None]).to(device))  # eval: argmax, ties → fine
    torch_run = {"fine": out["fine"][0].cpu().numpy() > 0.5, "logits": out["logits"][0].float().cpu().numpy(),
                 "gate_logits": out["gate_logits"][0].float().cpu().numpy()}
    return graphs, _free_running(bundle, sessions, torch_run, fc_rt, ff_rt, tol)


def _frames(bundle, frames, frames_112):
    """→ (float32 [T,3,224,224], float32 [T,3,112,112])."""
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3:
        frames = list(frames)  # a stack of decoded BGR frames [T,H,W,3]
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ExportError("no frames to verify with", None, "pass at least one frame")
        from ..preprocess import Preprocessor
        spec = bundle.preprocess
        if 224 not in spec.sizes or 112 not in spec.sizes:
            raise ExportError("the bundle's preprocessing makes sizes %s" % (spec.sizes,),
                              "LiteEval needs 224 and 112", "re-export the bundle")
        try:
            pre = Preprocessor(spec)
            f224, f112 = [], []
            for f in frames:
                o = pre(f)
                f224.append(o[224].copy())
                f112.append(o[112].copy())
        except EdgevidError as e:
            raise ExportError("cannot preprocess the frames for verification", str(e),
                              "pass decoded BGR uint8 frames (H×W×3)") from e
        return np.concatenate(f224), np.concatenate(f112)
    if frames_112 is None:
        raise ExportError("preprocessed 224 frames came without frames_112",
                          "the coarse CNN needs the 112 frames made from the same crops",
                          "pass frames_112 too, or pass the decoded BGR frames")
    f224, f112 = (np.ascontiguousarray(as_numpy(a), dtype=np.float32) for a in (frames, frames_112))
    if f224.ndim != 4 or f224.shape[1:] != (3, 224, 224) or f112.ndim != 4 or f112.shape[1:] != (3, 112, 112) \
            or f224.shape[0] != f112.shape[0] or f224.shape[0] == 0:
        raise ExportError("frames of shapes %s and %s" % (f224.shape, f112.shape), None,
                          "pass [T,3,224,224] and [T,3,112,112] with the same T >= 1")
    return f224, f112


def _torch_features(torch, cnn, frames: np.ndarray, device, chunk: int = 8) -> np.ndarray:
    return np.concatenate([cnn(torch.from_numpy(frames[i:i + chunk]).to(device)).float().cpu().numpy()
                           for i in range(0, frames.shape[0], chunk)])


def _teacher_forced(torch, head, sessions, feat_c: np.ndarray, feat_f: np.ndarray, device):
    """Both step graphs at every step, fed the torch state of the torch-gated stream.

    Returns, per role and output name, the lists of torch and runtime values.
    """
    pairs = {"coarse_step": {k: ([], []) for k in COARSE_OUT}, "fine_step": {k: ([], []) for k in FINE_OUT}}
    state = head.init_state(1, device)

    def np_(t):
        return t.float().cpu().numpy()

    for t in range(feat_c.shape[0]):
        fc = torch.from_numpy(feat_c[t:t + 1]).to(device)
        ff = torch.from_numpy(feat_f[t:t + 1]).to(device)
        v_c, (h_c, c_c), b, (h_sync, c_sync) = head.coarse_step(fc, state)
        ref_c = dict(zip(COARSE_OUT, map(np_, (v_c, h_c, c_c, b, h_sync, c_sync, head.classifier(h_sync)))))
        got_c = infer(sessions, "coarse_step", {"feat_c": feat_c[t:t + 1], "h_c_in": np_(state[0]),
                                                 "c_c_in": np_(state[1]), "h_f_in": np_(state[2]), "c_f_in": np_(state[3])})
        h_new, c_new = head.fine_step(ff, v_c, state[2], state[3])
        ref_f = dict(zip(FINE_OUT, map(np_, (h_new, c_new, head.classifier(h_new)))))
        got_f = infer(sessions, "fine_step", {"feat_f": feat_f[t:t + 1], "v_c": ref_c["v_c"],
                                               "h_f_in": np_(state[2]), "c_f_in": np_(state[3])})
        for role, ref, got in (("coarse_step", ref_c, got_c), ("fine_step", ref_f, got_f)):
            for k in ref:
                pairs[role][k][0].append(ref[k])
                pairs[role][k][1].append(got[k])
        go_fine = bool(b[0, 0] >= b[0, 1])  # LiteEvalHead eval rule: argmax == 0, ties → fine
        state = (h_c, c_c, h_new, c_new) if go_fine else (h_c, c_c, h_sync, c_sync)
    return pairs


def _free_running(bundle, sessions, torch_run, feat_c: np.ndarray, feat_f: np.ndarray, tol) -> Dict[str, Any]:
    """The runtime's own GatedPolicy on the runtime features, against the torch stream. The torch reference
    is one unbroken sequence, so the policy's resets and fine cap are off here."""
    settings = dict(rules.FAMILY.check_policy(bundle.policy), max_steps=None, max_gap_s=None, fine_cap=None,
                    fine_window=None)
    policy = GatedPolicy(bundle, sessions, plan={"settings": settings, "contract": rules.contract(bundle)})
    fine, logits = [], []
    for t in range(feat_c.shape[0]):
        try:
            out, path = policy.step(feat_c[t:t + 1], feat_f=feat_f[t:t + 1])
        except EdgevidError as e:
            raise ExportError("the gated chain failed during verification", str(e),
                              "check the bundle matches the model") from e
        fine.append(path == "fine")
        logits.append(out)
    fine = np.array(fine)
    logits = np.concatenate(logits)
    ref_fine, ref_logits, ref_b = torch_run["fine"], torch_run["logits"], torch_run["gate_logits"]
    same = fine == ref_fine
    first = None if same.all() else int(np.argmin(same))
    margin = np.abs(ref_b[:, 0] - ref_b[:, 1])
    err = np.abs(logits - ref_logits).max(axis=1)
    report = {
        "steps": int(fine.size), "gate_agreement": float(same.mean()), "first_disagreement": first,
        "margin_at_first_disagreement": None if first is None else float(margin[first]),
        "min_gate_margin": float(margin.min()),
        "fine_rate_torch": float(ref_fine.mean()), "fine_rate_runtime": float(fine.mean()),
        "fine_rate_delta": float(abs(fine.mean() - ref_fine.mean())),
        "logits_max_abs": float(err.max()),
        "logits_max_abs_before_disagreement": float(err[:first].max()) if first != 0 else None,
    }
    report["ok"] = bool(report["gate_agreement"] >= tol["min_gate_agreement"]
                        and report["fine_rate_delta"] <= tol["max_fine_rate_delta"]
                        and report["logits_max_abs"] <= tol["logits_atol"])
    return report


def describe_report(report: Dict[str, Any]) -> str:
    """A few lines for humans (the CLI prints the JSON with --json)."""
    source = "recorded features" if report["frames"] is None else "%d frames" % report["frames"]
    lines = ["parity %s on %s: %s, %d steps" % ("OK" if report["ok"] else "MISMATCH", report["backend"], source,
                                               report["steps"])]
    for role, g in report["graphs"].items():
        lines.append("  %-12s max-abs %.3e  min cosine %.7f  %s" % (role, g["max_abs"], g["min_cosine"],
                                                                  "ok" if g["ok"] else "FAIL"))
    s = report["stream"]
    lines.append("  stream       gate agreement %.4f (first difference at %s), fine rate %.3f vs %.3f, "
                 "logits max-abs %.3e  %s" % (s["gate_agreement"], s["first_disagreement"], s["fine_rate_runtime"],
                                              s["fine_rate_torch"], s["logits_max_abs"], "ok" if s["ok"] else "FAIL"))
    return "\n".join(lines)

