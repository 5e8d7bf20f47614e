"""``edgevid verify BUNDLE --backend trt``: a backend's run of the bundle against ONNX Runtime FP32, on one
stream, with no checkpoint and no torch (what a device can check by itself).

::

    source ─► ONNX Runtime FP32, each role's feeds and outputs recorded ─► reference predictions
           └► the backend at its precision plan (TensorRT: the engines `edgevid build` made for this device,
              pipelined as `edgevid run` streams) ─► predictions
    per role: the backend's session on the recorded feeds (cosine, max error, top-1 of logits)
    end to end: top-1 agreement, logits error; LiteEval gate agreement and fine rate; SlowFast per clip

The comparison is the precision report's (quant/report.py), so both read the same; held to the targets of
the plan's lowest precision (an FP32 engine to FP16's: TensorRT may compute FP32 layers in TF32).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from ..bundle import Bundle
from ..errors import ConfigError

REFERENCE = "ort"


def verify_backend(bundle: Bundle, backend: str, source: str, *, precision: Optional[str] = None,
                   frames: int = 300) -> Dict[str, Any]:
    """The report (``ok``: every target met) of ``backend`` against ONNX Runtime FP32 on ``frames`` of ``source``.
    ``precision`` None: on TensorRT, what ``edgevid build`` makes by default."""
    from ..backends.registry import backend_class, precision_plan, resolve_backend
    from ..quant.report import compare

    name = resolve_backend(backend, bundle, precision)
    if name == REFERENCE:
        raise ConfigError("verify without --checkpoint compares a backend with ONNX Runtime, and %s is ONNX Runtime"
                          % ("auto" if backend == "auto" else backend),
                          "auto found no engines for this device" if backend == "auto" else None,
                          "pass --checkpoint CKPT to compare ONNX Runtime with PyTorch, or --backend trt on a device "
                          "with engines (edgevid build)")
    plan = precision_plan(bundle, precision, backend_class(name).ARTIFACT_KIND)
    label = "%s-%s" % (name, precision or "default")
    report = compare(bundle, {label: plan}, [source], backend=REFERENCE, backends={label: name}, frames=frames,
                     pipelined=True)
    entry = report["plans"][label]
    report.update(reference=REFERENCE, backend=name, ok=all(t["ok"] for t in entry["targets"].values()))
    return report


def describe_backend_report(report: Dict[str, Any]) -> Tuple[str, bool]:
    from ..quant.report import markdown

    text = markdown(report, title="%s against %s" % (report["backend"], report["reference"]))
    return text + ("\nall targets met\n" if report["ok"] else "\ntargets missed (see the table)\n"), report["ok"]
