"""``edgevid quantize``: reduced-precision artifacts for every role the family's rules allow, what was kept
higher and why, and the report of what each precision costs.

::

    calibration feeds (edgevid calibrate) ─► per role, per form:
        int8 / trt  ─► <role>.int8.trt.onnx (symmetric s8 Q/DQ) + <role>.calib.cache   (trt_int8.py)
        int8 / cpu  ─► <role>.int8.cpu.onnx (ONNX Runtime's fast u8/s8 form)            (cpu_int8.py)
        fp16        ─► <role>.fp16.onnx                                                 (fp16.py)
    ─► bundle.add_artifacts (all or nothing) ─► bundle.json "precision": per role what was produced or kept, why
    ─► report on held-out streams (report.py) ─► quantization/<name>.json + .md in the bundle

A role the family keeps higher (LiteEval's and PreRNN's recurrent steps for INT8) is recorded as kept, with
the rule's reason, never silently; ``force`` quantizes it anyway (and says so).
"""
from __future__ import annotations

import importlib
import json
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..bundle import Bundle, NewArtifact
from ..errors import ConfigError
from ..log import get_logger

log = get_logger(__name__)

# (precision, form) -> "module:function"(bundle, role, **options) -> NewArtifacts (or (NewArtifacts, report))
CONVERTERS = {("int8", "trt"): "edgevid.quant.trt_int8:quantize_trt",
              ("int8", "cpu"): "edgevid.quant.cpu_int8:quantize_cpu",
              ("fp16", None): "edgevid.quant.fp16:convert_fp16"}
FORMS = {"int8": ("trt", "cpu"), "fp16": (None,)}
# what a reduced role must keep on its calibration feeds, output cosine vs FP32: on average, and on its worst
# call (the end-to-end report then says what the stream makes of it)
# the fewest calibration samples a method's statistics are worth computing from: histogram methods (entropy,
# percentile) estimate tails, which a few frames do not show
METHOD_MIN_SAMPLES = {"minmax": 8, "entropy": 32, "percentile": 32}
DEFAULT_METHOD = {"trt": "entropy", "cpu": "minmax"}
ROLE_MEAN_COSINE = 0.999
ROLE_WORST_COSINE = 0.99
HELD_OUT = {"liteeval": ["synthetic:seed=9000,segments=30,frames=8,fps=10"],
            "slowfast": ["synthetic:seed=9100,segments=30,frames=16,fps=10"],
            "prernn": ["synthetic:seed=9200,segments=30,frames=8,fps=10"]}


def quantize(bundle: Bundle, precision: str, *, target: str = "all", roles: Optional[Sequence[str]] = None,
             force: bool = False, options: Optional[Dict[str, Any]] = None, streams: Optional[Sequence[str]] = None,
             backend: str = "ort", keep_float: bool = True,
             progress: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Make ``precision`` artifacts for the bundle's roles, record the plan in bundle.json and report on
    held-out ``streams`` (default: synthetic streams the demo never trains on). Returns the report.

    ``keep_float``: for INT8's TensorRT form, keep the most sensitive layers float until the stream's top-1
    agreement with FP32 on the calibration streams meets the target (keep.py)."""
    forms = _forms(precision, target)
    plan, kept = _plan(bundle, precision, roles, force)
    if precision == "int8":
        _check_samples(bundle, plan, forms, (options or {}).get("method"))
    made: Dict[str, Dict[str, List[NewArtifact]]] = {}
    details: Dict[str, Any] = {}
    for role in list(plan):
        made[role] = {}
        for form in forms:
            if progress:
                progress("%s %s%s" % (role, precision, "" if form is None else " (%s form)" % form))
            opts = dict(options or {}) if precision == "int8" else {}
            out = _converter(precision, form)(bundle, role, force=force, **opts)
            artifacts, detail = out if isinstance(out, tuple) else (out, None)
            made[role][form or precision] = artifacts
            details.setdefault(role, {})[form or precision] = detail
        measured = _agreement(bundle, role, [a for artifacts in made[role].values() for a in artifacts])
        if measured is not None and (measured[0] < ROLE_MEAN_COSINE or measured[1] < ROLE_WORST_COSINE):
            # measured, not assumed: the role stays FP32 and the record says by how much it missed
            kept[role] = ("measured on its calibration feeds: output cosine vs FP32 mean %.6f, worst %.6f "
                          "(needs mean >= %g and worst >= %g)" % (measured + (ROLE_MEAN_COSINE, ROLE_WORST_COSINE)))
            plan.remove(role)
            del made[role]
    choice = None
    if precision == "int8" and "trt" in forms and plan and keep_float:
        choice = _keep_float(bundle, made, options, progress)
    new = [a for role in plan for artifacts in made[role].values() for a in artifacts]
    added = bundle.add_artifacts(new)
    record: Dict[str, Any] = {"target": target, "forms": [f for f in forms if f], "forced": bool(force)}
    record["roles"] = {role: {"precision": precision, "files": [item.file for item in new if item.role == role]}
                       for role in plan}
    record["roles"].update({role: {"precision": "fp32", "kept": why} for role, why in kept.items()})
    if choice is not None:
        for role, layers in choice.float_layers.items():
            record["roles"][role]["float_layers"] = sorted(layers)
    bundle.meta.setdefault("precision", {})[precision] = record
    bundle.save()
    plans = {("%s-%s" % (precision, form) if form else precision): {role: precision for role in plan}
             for form in forms}
    targets = {name: form for name, form in zip(plans, forms) if form}
    from .report import compare, markdown

    if progress:
        progress("report on held-out streams")
    report = compare(bundle, plans, streams or HELD_OUT[bundle.family], backend=backend, targets=targets)
    report.update(precision=precision, kept=kept, details=details,
                  float_layers=None if choice is None else choice.to_dict())
    _write_report(bundle, precision, report, markdown(report))
    log.info("%s: %d artifacts for %s; kept higher: %s", precision, len(added), ", ".join(plan) or "no role",
             ", ".join(kept) or "none")
    return report


def _keep_float(bundle: Bundle, made: Dict[str, Dict[str, List[NewArtifact]]], options: Optional[Dict[str, Any]],
                progress: Optional[Callable[[str], None]]):
    """Replace each role's TensorRT-form artifacts by those keep.choose_float_layers picks; returns the Choice."""
    from .keep import choose_float_layers
    from .report import TARGETS

    opts = {k: v for k, v in (options or {}).items() if k in ("method", "percentile")}
    choice = choose_float_layers(bundle, {role: forms["trt"] for role, forms in made.items()}, TARGETS["int8"]["top1_agreement"],
                    progress=progress, **opts)
    for role, artifacts in choice.artifacts.items():
        made[role]["trt"] = artifacts
    return choice


def _agreement(bundle: Bundle, role: str, made: Sequence[NewArtifact]):
    """(mean, worst) per-call cosine vs FP32 over the role's outputs, the worst form counting, from what each
    converter measured (FP16: with FP16 arithmetic emulated, since ONNX Runtime's CPU kernels compute in FP32)
    or, for the CPU form, measured here on ONNX Runtime; None when nothing was measured."""
    found = []
    for item in made:
        info = item.info or {}
        if item.kind != "onnx":
            continue
        if item.precision == "fp16":
            for r in info.get("agreement", {}).get("fp16_arithmetic", {}).values():
                found.append((_finite(r.get("cosine")), _finite(r.get("cosine_min"))))
        elif info.get("target") == "trt":
            a = info["quantization"]["agreement_on_calibration_feeds"]
            found.append((a["cosine"], a["min_cosine"]))
        else:
            found.append(_measure_cpu(bundle, role, item))
    return (min(m for m, _ in found), min(w for _, w in found)) if found else None


def _finite(x: Any) -> float:
    return float(x) if x is not None and x == x else 0.0  # NaN (an FP16 overflow) counts as no agreement


def _measure_cpu(bundle: Bundle, role: str, item: NewArtifact, limit: int = 64):
    """(mean, worst) per-call cosine of the CPU-form graph vs FP32 on up to ``limit`` calibration feeds."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from ..backends.ort import OrtSession
    from ..metrics import row_cosines
    from .feeds import STREAM_KEY, load_feeds

    feeds = load_feeds(bundle, role)
    n = min(limit, len(next(v for k, v in feeds.items() if k != STREAM_KEY)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.onnx"
        item.write(path)
        with OrtSession(bundle.graph_path(role)) as ref, OrtSession(path) as got:
            rows = []
            for k in range(n):
                f = {name: v[k:k + 1] for name, v in feeds.items() if name != STREAM_KEY}
                rows.append([np.concatenate([np.ravel(x) for x in s.infer(f).values()]) for s in (ref, got)])
    cos = row_cosines(np.stack([a for a, _ in rows]), np.stack([b for _, b in rows]))
    return float(cos.mean()), float(cos.min())


def _check_samples(bundle: Bundle, plan: Sequence[str], forms: Sequence[Optional[str]], method: Optional[str]) -> None:
    """CalibrationError before anything is made when a role's feeds are too few for a form's method."""
    from ..errors import CalibrationError
    from .feeds import KIND

    for role in plan:
        found = bundle.graph(role).find(KIND)
        if not found:
            continue  # the converter says how to record them
        samples = int(found[-1].info.get("samples", 0))
        for form in forms:
            chosen = method or DEFAULT_METHOD[form]
            if samples < METHOD_MIN_SAMPLES[chosen]:
                raise CalibrationError("role %s has %d calibration samples; %s calibration needs at least %d"
                                       % (role, samples, chosen, METHOD_MIN_SAMPLES[chosen]),
                                       "statistics of so few inputs do not describe the stream",
                                       "record more (the recipe's max_frames / max_samples) or use --method minmax")


def _forms(precision: str, target: str) -> Sequence[Optional[str]]:
    if precision not in FORMS:
        raise ConfigError("unknown precision '%s'" % precision, None, "use --precision int8 or fp16")
    if precision == "fp16":
        return (None,)
    if target == "all":
        return FORMS["int8"]
    if target not in FORMS["int8"]:
        raise ConfigError("unknown target '%s'" % target, "INT8 is made for TensorRT (trt) or ONNX Runtime's CPU "
                          "kernels (cpu)", "use --target trt, cpu or all")
    return (target,)


def _plan(bundle: Bundle, precision: str, roles: Optional[Sequence[str]], force: bool):
    """(roles to convert, {role kept higher: why}). Naming a role the rules keep higher needs ``force``; a
    precision that is opt-in for a role is made only when the role is named."""
    named = list(roles) if roles else list(bundle.rules.roles)
    plan, kept = [], {}
    for role in named:
        bundle.graph(role)  # ManifestError for a role the bundle lacks
        rule = bundle.rules.precision_rule(role)
        if precision in rule.opt_in and not roles and not force:
            kept[role] = "%s is opt-in for this role (name it: --role %s): %s" % (precision, role, rule.why)
        elif rule.allows(precision) or force:
            plan.append(role)
        elif roles:
            raise ConfigError("role %s of a %s bundle is kept off %s" % (role, bundle.family, precision), rule.why,
                              "leave it out, or pass --force if a measurement says %s holds" % precision)
        else:
            kept[role] = rule.why
    return plan, kept


def _converter(precision: str, form: Optional[str]) -> Callable[..., Any]:
    module, _, name = CONVERTERS[(precision, form)].partition(":")
    return getattr(importlib.import_module(module), name)


def _write_report(bundle: Bundle, precision: str, report: Dict[str, Any], text: str) -> None:
    """The report as two artifacts of the first role (bundle-level files still need an entry)."""
    role = bundle.rules.roles[0]
    body = json.dumps(report, indent=2, default=str).encode()
    bundle.add_artifacts([
        NewArtifact(role, "report", "quantization/%s.json" % precision, lambda p: p.write_bytes(body),
                    info={"precision": precision}),
        NewArtifact(role, "report", "quantization/%s.md" % precision, lambda p: p.write_text(text),
                    info={"precision": precision})])
