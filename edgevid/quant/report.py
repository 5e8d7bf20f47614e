"""How much a reduced precision costs: each role and the whole stream, against FP32 and the ground truth.

::

    held-out streams ─► FP32 bundle (recording each role's feeds and outputs) ─► reference predictions
                    └─► the bundle at a precision plan ({role: int8 | fp16 | fp32}) ─► predictions
    per role:   the plan's graph on the FP32 feeds (teacher-forced): cosine, max-abs, top-1 of logits
    end to end: accuracy against the ground truth (synthetic streams carry it), top-1 agreement with FP32,
                logits cosine / max error; LiteEval gate agreement, fine-rate and GMACs change; SlowFast
                per-clip agreement; PreRNN agreement over the carried sequences

Targets (issue 9): INT8 end-to-end top-1 within 0.5 points of FP32 and ≥ 99% agreement, LiteEval gate
agreement ≥ 98% and fine-rate change ≤ 2 points; FP16 agreement ≥ 99.5%. The report says which held.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..backends import open_role
from ..bundle import Bundle
from ..data.scoring import score_stream
from ..log import get_logger
from ..metrics import row_cosines
from .feeds import RecordingSession

log = get_logger(__name__)

TARGETS = {"int8": {"accuracy_drop_points": 0.5, "top1_agreement": 0.99, "gate_agreement": 0.98,
                    "fine_rate_change_points": 2.0},
           "fp16": {"top1_agreement": 0.995}}


def compare(bundle: Bundle, plans: Mapping[str, Mapping[str, str]], streams: Sequence[str], *,
            backend: str = "ort", fps: Optional[float] = None,
            targets: Optional[Mapping[str, str]] = None,
            graphs: Optional[Mapping[str, Mapping[str, Any]]] = None,
            backends: Optional[Mapping[str, str]] = None, frames: Optional[int] = None,
            pipelined: bool = False) -> Dict[str, Any]:
    """The report for each precision plan (name → {role: precision}) against FP32 on ``backend`` on ``streams``
    (the first ``frames`` of each, default all); ``targets`` (name → "cpu" | "trt") picks the form of the
    plan's graphs (default: the backend's own); ``backends`` (name → backend) runs a plan on another backend
    than the reference (verify: TensorRT engines against ONNX Runtime), ``pipelined`` as ``edgevid run`` does.
    ``graphs`` (name → {role: ONNX file}) runs candidate graphs not (yet) in the bundle instead, on ONNX
    Runtime; their plans get no per-role section (keep.py compares candidates end to end only)."""
    targets, graphs, backends = dict(targets or {}), dict(graphs or {}), dict(backends or {})
    from ..runtime.source import open_source
    from ..runtime.stream import StreamRuntime

    fps = fps if fps is not None else bundle.policy.get("step_fps")
    recorders = {role: RecordingSession(open_role(bundle, role, backend), outputs=True) for role in bundle.rules.roles}
    runs: Dict[str, List[Dict[str, Any]]] = {"fp32": []}
    truth: List[Optional[List[Dict[str, Any]]]] = []
    try:
        for spec in streams:
            with open_source(spec, fps=fps) as source:
                runs["fp32"].append(_stream(StreamRuntime(bundle, sessions=recorders, pipelined=False), source,
                                            frames))
                truth.append(getattr(source, "segments", None))
    finally:
        for r in recorders.values():
            r.deactivate()
    for name, plan in plans.items():
        runs[name] = []
        for spec in streams:
            with open_source(spec, fps=fps) as source:
                factory = _factory(backends.get(name, backend), plan, targets.get(name), graphs.get(name))
                runs[name].append(_stream(StreamRuntime(bundle, sessions=factory, pipelined=pipelined), source,
                                          frames))
    report: Dict[str, Any] = {"bundle": str(bundle.root), "family": bundle.family, "streams": list(streams),
                              "fp32": _accuracy(runs["fp32"], truth), "plans": {}}
    for name, plan in plans.items():
        entry = {"plan": dict(plan), "target": targets.get(name), "backend": backends.get(name, backend),
                 "roles": {} if name in graphs else _roles(bundle, plan, recorders, backends.get(name, backend),
                                                           targets.get(name), same=backends.get(name, backend) == backend),
                 "stream": _end_to_end(bundle, runs["fp32"], runs[name], truth)}
        entry["targets"] = _targets(plan, entry["stream"], report["fp32"], entry["backend"] != backend)
        report["plans"][name] = entry
    return report


def _factory(backend: str, plan: Mapping[str, str], target: Optional[str], files: Optional[Mapping[str, Any]]):
    from ..backends import session_factory

    factory = session_factory(backend, dict(plan), _options(target), target=target)
    if not files:
        return factory

    def candidate(bundle: Bundle, role: str):
        if role not in files:
            return factory(bundle, role)
        from ..backends.ort import OrtSession

        return OrtSession(files[role], role, precision=plan[role], **_options(target).get("*", {}))
    return candidate


def _options(target: Optional[str]) -> Dict[str, Dict[str, Any]]:
    """Session options for a form: the TensorRT form runs on ONNX Runtime unfused (ort.py ``optimize``)."""
    return {"*": {"optimize": "basic"}} if target == "trt" else {}


def _stream(runtime, source, frames: Optional[int] = None) -> Dict[str, Any]:
    with runtime:
        preds = list(itertools.islice(runtime.run(source), frames))
    return {"predictions": preds, "stats": runtime.stats.to_dict()}


def _roles(bundle: Bundle, plan: Mapping[str, str], recorders, backend: str, target: Optional[str],
           same: bool = True) -> Dict[str, Any]:
    """Each role the plan runs otherwise than the reference (reduced, or on another backend) on the feeds it
    saw in the reference run, against the reference outputs."""
    out = {}
    for role, precision in plan.items():
        if precision == "fp32" and same:
            continue
        calls = list(zip(recorders[role].feeds, recorders[role].outputs_seen))
        with open_role(bundle, role, backend, precision, target=target, **_options(target).get("*", {})) as session:
            got = [{k: np.array(v) for k, v in session.infer(feeds).items()} for feeds, _ in calls]
            artifact = session.describe()["artifact"]
        out[role] = {"precision": precision, "artifact": artifact, "calls": len(calls),
                     "outputs": {name: _errors(np.concatenate([ref[name] for _, ref in calls]),
                                               np.concatenate([g[name] for g in got]), name)
                                 for name in calls[0][1]} if calls else {}}
    return out


def _errors(ref: np.ndarray, got: np.ndarray, name: str) -> Dict[str, Any]:
    ref2 = ref.reshape(ref.shape[0], -1).astype(np.float64)
    got2 = got.reshape(got.shape[0], -1).astype(np.float64)
    cos = row_cosines(ref2, got2)
    d = {"max_abs": float(np.abs(ref2 - got2).max()), "ref_max_abs": float(np.abs(ref2).max()),
         "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}
    if "logits" in name or name == "gate_logits":
        d["top1_agreement"] = float((ref2.argmax(1) == got2.argmax(1)).mean())
    return d


def _accuracy(runs: List[Dict[str, Any]], truth) -> Dict[str, Any]:
    scored = [score_stream([p.to_dict() for p in run["predictions"]], segs) for run, segs in zip(runs, truth) if segs]
    stats = [run["stats"] for run in runs]
    out: Dict[str, Any] = {"frames": sum(s["frames"] for s in stats)}
    if scored:
        segments = sum(s["segments"] for s in scored)
        out["segment_accuracy"] = sum(s["segment_accuracy"] * s["segments"] for s in scored) / segments
        frames = sum(s["frames_scored"] for s in scored)
        out["frame_accuracy"] = sum((s["frame_accuracy"] or 0) * s["frames_scored"] for s in scored) / max(frames, 1)
        out["segments"] = segments
    rates = [s["fine_rate"] for s in stats if s.get("fine_rate") is not None]
    if rates:
        steps = [s["steps"] for s in stats]
        out["fine_rate"] = sum(r * n for r, n in zip(rates, steps)) / max(sum(steps), 1)
        out["gmacs_per_frame"] = float(np.mean([s["gmacs_per_frame"] for s in stats if s["gmacs_per_frame"]]))
    return out


def _end_to_end(bundle: Bundle, ref_runs, runs, truth) -> Dict[str, Any]:
    pairs = [(a, b) for ra, rb in zip(ref_runs, runs)
             for a, b in _matched(ra["predictions"], rb["predictions"])]
    ref_logits = np.stack([a.logits for a, _ in pairs]).astype(np.float64)
    got_logits = np.stack([b.logits for _, b in pairs]).astype(np.float64)
    out = _accuracy(runs, truth)
    same = np.array([a.class_index == b.class_index for a, b in pairs])
    probs = np.exp(ref_logits - ref_logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    confident = top2[:, 1] >= 0.5
    out.update({"predictions": len(pairs), "top1_agreement": float(same.mean()),
                # where they differ: is it on frames FP32 itself was unsure of (a near tie flips), or not?
                "disagreements": int((~same).sum()),
                "max_fp32_margin_where_they_differ": float(margin[~same].max()) if (~same).any() else None,
                "top1_agreement_where_fp32_is_confident": float(same[confident].mean()) if confident.any() else None,
                "logits": _errors(ref_logits, got_logits, "logits"),
                "sessions": runs[0]["stats"]["sessions"]})
    if bundle.rules.gated_roles:  # LiteEval: did the gate send the same frames to the fine model?
        out["gate_agreement"] = float(np.mean([a.path == b.path for a, b in pairs]))
    clips = [(a, b) for a, b in pairs if a.path == "clip"]
    if clips:  # SlowFast: the clips themselves, not the frames that hold their label
        out["clip_agreement"] = float(np.mean([a.class_index == b.class_index for a, b in clips]))
        out["clips"] = len(clips)
    return out


def _matched(ref, got):
    by_index = {p.frame_index: p for p in got}
    return [(p, by_index[p.frame_index]) for p in ref if p.frame_index in by_index]


def _targets(plan: Mapping[str, str], stream: Mapping[str, Any], fp32: Mapping[str, Any],
             other_backend: bool = False) -> Dict[str, Any]:
    """The issue's targets for the lowest precision in the plan, each with the measured figure. An FP32 plan
    on another backend is held to FP16's: TensorRT may run FP32 layers in TF32 (Ampere and later)."""
    lowest = "int8" if "int8" in plan.values() else "fp16" if "fp16" in plan.values() else None
    if lowest is None and other_backend:
        lowest = "fp16"
    if lowest is None:
        return {}
    t = TARGETS[lowest]
    checks = {"top1_agreement": (stream["top1_agreement"], t["top1_agreement"], ">=")}
    if lowest == "int8":
        if "segment_accuracy" in fp32:
            drop = 100.0 * (fp32["segment_accuracy"] - stream["segment_accuracy"])
            checks["accuracy_drop_points"] = (drop, t["accuracy_drop_points"], "<=")
        if "gate_agreement" in stream:
            checks["gate_agreement"] = (stream["gate_agreement"], t["gate_agreement"], ">=")
            change = 100.0 * abs(stream["fine_rate"] - fp32["fine_rate"])
            checks["fine_rate_change_points"] = (change, t["fine_rate_change_points"], "<=")
    return {name: {"measured": v, "target": target, "ok": bool(v >= target if op == ">=" else v <= target)}
            for name, (v, target, op) in checks.items()}


def markdown(report: Mapping[str, Any], title: str = "Precision report") -> str:
    """The report as Markdown tables (also what the CLI prints)."""
    fp32 = report["fp32"]
    lines = ["# %s: %s bundle %s" % (title, report["family"], report["bundle"]), "",
             "Streams: %s" % ", ".join("`%s`" % s for s in report["streams"]), "",
             "| plan | segment accuracy | top-1 agreement | where FP32 is confident (p ≥ 0.5) | largest FP32 margin "
             "where they differ | logits min cosine | gate agreement | fine rate | targets |",
             "|---|---|---|---|---|---|---|---|---|",
             "| fp32 | %s | – | – | – | – | – | %s | – |" % (_pct(fp32.get("segment_accuracy")),
                                                        _pct(fp32.get("fine_rate")))]
    for name, entry in report["plans"].items():
        s = entry["stream"]
        held = [k for k, v in entry["targets"].items() if v["ok"]]
        missed = ["%s %.4g (target %g)" % (k, v["measured"], v["target"]) for k, v in entry["targets"].items()
                  if not v["ok"]]
        margin = s["max_fp32_margin_where_they_differ"]
        lines.append("| %s | %s | %s | %s | %s | %.5f | %s | %s | %s |" % (
            name, _pct(s.get("segment_accuracy")), _pct(s["top1_agreement"]),
            _pct(s["top1_agreement_where_fp32_is_confident"]), "–" if margin is None else "%.3f" % margin,
            s["logits"]["min_cosine"],
            _pct(s.get("gate_agreement")), _pct(s.get("fine_rate")),
            "all met" if not missed else "missed: " + "; ".join(missed) if held or missed else "–"))
    for name, entry in report["plans"].items():
        if not entry["roles"]:
            continue
        lines += ["", "## %s per role (on the FP32 run's own feeds)" % name, "",
                  "| role | precision | artifact | output | min cosine | max-abs (of) | top-1 |", "|---|---|---|---|---|---|---|"]
        for role, r in entry["roles"].items():
            for out, e in r["outputs"].items():
                lines.append("| %s | %s | %s | %s | %.5f | %.3g (%.3g) | %s |" % (
                    role, r["precision"], r["artifact"], out, e["min_cosine"], e["max_abs"], e["ref_max_abs"],
                    _pct(e.get("top1_agreement"))))
    return "\n".join(lines + _kept_lines(report)) + "\n"


def _kept_lines(report: Mapping[str, Any]) -> List[str]:
    """What stayed higher: whole roles (the family's rules or a measurement) and single layers (keep.py)."""
    lines = []
    if report.get("kept"):
        lines += ["", "## Roles kept FP32", ""] + ["- %s: %s" % kv for kv in report["kept"].items()]
    chosen = report.get("float_layers")
    if chosen:
        lines += ["", "## Layers kept float in the TensorRT-form INT8 graphs", "",
                  "Chosen end to end on the calibration streams (%s): top-1 agreement with FP32 %s for %d float "
                  "layers (target %s, %s)." % (", ".join("`%s`" % s for s in chosen["chosen_on"]),
                                               _pct(chosen["top1_agreement"]),
                                               sum(len(v) for v in chosen["float_layers"].values()),
                                               _pct(chosen["target"]), "met" if chosen["met"] else "not met"),
                  "", "| float layers | top-1 agreement (calibration streams) |", "|---|---|"]
        lines += ["| %d | %s |" % (c["float_layers"], _pct(c["top1_agreement"])) for c in chosen["candidates"]]
        lines += [""] + ["- %s `%s`: %s" % (role, layer, why) for role, layers in chosen["float_layers"].items()
                         for layer, why in layers.items()]
    return lines


def _pct(x: Optional[float]) -> str:
    return "–" if x is None else "%.1f%%" % (100.0 * x)
