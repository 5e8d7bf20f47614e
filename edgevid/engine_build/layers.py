"""What precision each layer of a built engine really runs at, from TensorRT's engine inspector (JSON, detailed
profiling verbosity). TensorRT may pick a higher-precision kernel than asked, per layer and silently; the
build records the counts in the engine's info and refuses an engine in which nothing runs at the precision
asked (a Q/DQ graph that was not honoured, an FP16 flag without effect)."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from ..errors import BuildError

SKIPPED_TYPES = ("Reformat", "NoOp")  # format conversions, not computation: counting them would mislead
MAX_LISTED = 40


def dtype_of(text: str) -> str:
    """The precision named in an inspector "Format/Datatype" string ("Row major linear FP16 format", "Int8 …")."""
    lowered = text.lower()
    for key, name in (("int8", "int8"), ("fp16", "fp16"), ("half", "fp16"), ("fp32", "fp32"), ("float", "fp32")):
        if key in lowered:
            return name
    return "other"


def summarize(info_json: Optional[str]) -> Dict[str, Any]:
    """{"counts": {precision: layers}, "fp32_layers": [...]} from the inspector's JSON; {"available": False}
    without it (a TensorRT without an inspector, or layer information not kept)."""
    if not info_json:
        return {"available": False}
    data = json.loads(info_json)
    layers = data.get("Layers", []) if isinstance(data, dict) else []
    counts: Dict[str, int] = {}
    seen = set()
    fp32: List[str] = []
    for layer in layers:
        if not isinstance(layer, dict):  # names only: the engine was built without detailed verbosity
            return {"available": False, "layers": len(layers)}
        if any(t in str(layer.get("LayerType", "")) for t in SKIPPED_TYPES):
            continue
        outputs = layer.get("Outputs") or []
        precision = dtype_of(str(outputs[0].get("Format/Datatype", ""))) if outputs else "other"
        counts[precision] = counts.get(precision, 0) + 1
        # a layer computing in INT8 may hand FP32 on (Conv + DQ): its inputs say what it computed in
        seen.update(dtype_of(str(t.get("Format/Datatype", ""))) for t in (layer.get("Inputs") or []) + outputs)
        if precision == "fp32":
            fp32.append(str(layer.get("Name", "?")))
    return {"available": True, "counts": counts, "tensor_precisions": sorted(seen), "fp32_layers": fp32[:MAX_LISTED],
            "fp32_listed": min(len(fp32), MAX_LISTED)}


def check(role: str, precision: str, summary: Dict[str, Any]) -> None:
    """BuildError when no layer of an FP16/INT8 engine takes or gives a tensor at that precision (or lower)."""
    if precision == "fp32" or not summary.get("available"):
        return
    seen = set(summary.get("tensor_precisions", ()))
    if not ({"int8"} if precision == "int8" else {"int8", "fp16"}) & seen:
        raise BuildError("the %s engine of role %s has no layer at %s" % (precision, role, precision),
                         "TensorRT chose higher-precision kernels for every layer (%s)" % summary["counts"],
                         "check the source graph (edgevid quantize), or build it at another precision")
