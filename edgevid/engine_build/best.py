"""``edgevid build --precision best``: per role, the fastest engine whose precision the bundle's quantize report
allows. Plain Python over measured timings (builder.py measures them on the device): nothing is assumed about
which precision is faster — on small layers and on the DLA an INT8 engine can lose to FP16.

A lower precision is allowed for a role when ``edgevid quantize`` made it for that role (bundle.json "precision")
and its report on held-out streams met every target for the TensorRT form (plan ``int8-trt``, ``fp16``). FP32
is always allowed: it is the reference the report measures against.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Tuple

from ..log import get_logger

log = get_logger(__name__)

REPORT_PLAN = {"int8": "int8-trt", "fp16": "fp16"}  # the report plan that measured TensorRT's form
SAFER = {"fp32": 0, "fp16": 1, "int8": 2}  # on a tie, the higher precision wins


def report_of(bundle: Any, precision: str) -> Optional[Dict[str, Any]]:
    """The quantize report (JSON) for ``precision`` in the bundle, or None."""
    for graph in bundle.graphs.values():
        for artifact in graph.find("report"):
            if artifact.info.get("precision") == precision and artifact.file.endswith(".json"):
                return json.loads(bundle.path(artifact).read_text())
    return None


def refusal(bundle: Any, role: str, precision: str, report: Optional[Mapping[str, Any]] = None) -> Optional[str]:
    """Why ``best`` may not pick ``precision`` for ``role`` (None: it may)."""
    if precision == "fp32":
        return None
    record = (bundle.meta.get("precision") or {}).get(precision, {}).get("roles", {}).get(role)
    if not record or record.get("precision") != precision:
        return "edgevid quantize --precision %s has not made it for this role" % precision
    report = report if report is not None else report_of(bundle, precision)
    if report is None:
        return "no quantize report for %s in the bundle" % precision
    entry = (report.get("plans") or {}).get(REPORT_PLAN[precision])
    if entry is None or (entry.get("plan") or {}).get(role) != precision:
        return "the %s report did not measure this role at %s" % (precision, precision)
    missed = sorted(name for name, t in (entry.get("targets") or {}).items() if not t.get("ok"))
    if not entry.get("targets"):
        return "the %s report has no accuracy targets to check" % precision
    if missed:
        return "the %s report missed its targets: %s" % (precision, ", ".join(missed))
    return None


def choose(timings_ms: Mapping[str, float], refused: Mapping[str, Optional[str]]) -> Tuple[str, Dict[str, Any]]:
    """(precision, record) of one role: the fastest measured engine not refused; ties go to the higher precision.
    ``timings_ms`` is precision -> measured median latency, ``refused`` precision -> reason or None."""
    allowed = {p: ms for p, ms in timings_ms.items() if not refused.get(p)}
    if not allowed:
        raise ValueError("no allowed candidate among %s" % sorted(timings_ms))  # fp32 is always a candidate
    best = min(allowed, key=lambda p: (allowed[p], SAFER[p]))
    record = {"precision": best, "timings_ms": dict(timings_ms),
              "refused": {p: why for p, why in refused.items() if why}}
    faster = [p for p, ms in timings_ms.items() if ms < allowed[best] and refused.get(p)]
    if faster:
        record["faster_but_refused"] = faster
    lower = [p for p in timings_ms if SAFER[p] > SAFER[best] and p in allowed]
    if lower:
        # measured, not assumed: a lower precision that lost is worth saying (users expect INT8 to win)
        record["slower_lower_precision"] = lower
    return best, record
