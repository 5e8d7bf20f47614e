"""The errors of a build that TensorRT reports, worded for the user (what, why, what to do). Plain Python: the
TensorRT objects are read into plain values by trt_ops.py first, so every message is tested without TensorRT.
An engine TensorRT cannot load is the backend's error (backends/trt.py ``unloadable``), the same at a build and
at a run."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..backends.trt import quoted
from ..errors import BuildError


def parse_failure(role: str, source: str, errors: Sequence[Mapping[str, Any]]) -> BuildError:
    """TensorRT's ONNX parser refused ``source``: every error it reported, each with its node."""
    lines = []
    for i, e in enumerate(errors):
        where = "node %s" % e.get("node")
        if e.get("node_name"):
            where += " (%s%s)" % (e["node_name"], ", " + e["operator"] if e.get("operator") else "")
        code = " [%s]" % e["code"] if e.get("code") else ""
        lines.append("error %d at %s%s: %s" % (i + 1, where, code, e.get("desc", "")))
    return BuildError("TensorRT cannot parse %s (role %s)" % (source, role),
                      "; ".join(lines) if lines else "the parser reported no error text",
                      "the graph uses an operator or form this TensorRT lacks: re-export with a lower opset, or "
                      "keep this role on ONNX Runtime (edgevid run --backend ort)")


def build_failure(role: str, precision: str, messages: Sequence[str]) -> BuildError:
    """build_serialized_network returned nothing: the last errors TensorRT logged."""
    return BuildError("TensorRT could not build the %s engine of role %s" % (precision, role),
                      quoted(messages) or "TensorRT logged no error",
                      "a larger --workspace, another --precision, or leaving out --dla may help; run with -vv for "
                      "TensorRT's full log")

