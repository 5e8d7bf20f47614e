"""Which precision each role of a bundle runs at when a run asks for one (``edgevid run --precision``).

A run asks for one precision; the family rules say per role what it may be. Roles whose rule forbids it
(LiteEval's and PreRNN's recurrent steps for int8) run at fp32 rather than fail, because the request
means "as fast as this bundle allows", not "break the recurrence". A role that may run at the
precision but has no artifact of it is an error: silently falling back would report a speedup that
never happened. Plain Python (the device runs this): no numpy, no torch.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ..errors import ConfigError, ManifestError
from ..families import PRECISIONS
from ..log import get_logger

log = get_logger(__name__)


def precision_plan(bundle: Any, precision: Optional[str], kind: str = "onnx") -> Dict[str, str]:
    """{role: precision} for a run at ``precision`` (None or "fp32": every role fp32).

    ConfigError for an unknown precision; ManifestError, saying to quantize first, when a role the rules
    allow at ``precision`` has no ``kind`` artifact of it."""
    wanted = precision or "fp32"
    if wanted not in PRECISIONS:
        raise ConfigError("unknown precision %r" % (precision,), None, "choose one of " + ", ".join(PRECISIONS))
    plan: Dict[str, str] = {}
    missing = []
    for role in bundle.rules.roles:
        allowed = wanted == "fp32" or bundle.rules.precision_rule(role).allows(wanted)
        plan[role] = wanted if allowed else "fp32"
        if allowed and wanted != "fp32" and not bundle.graph(role).find(kind, wanted):
            missing.append(role)
    if missing:
        raise ManifestError("bundle %s has no %s graph for %s" % (bundle.root, wanted, ", ".join(missing)),
                            "a run at %s uses one wherever the family rules allow it" % wanted,
                            "make them first (edgevid calibrate %s --recipe calibration/%s.json, then quantize), "
                            "or run at fp32" % (bundle.root, bundle.family))
    if wanted != "fp32":
        kept = sorted(r for r, p in plan.items() if p != wanted)
        log.info("precision %s: %s%s", wanted, ", ".join("%s %s" % kv for kv in plan.items()),
                 "; %s kept fp32 by the family rules" % ", ".join(kept) if kept else "")
    return plan
