"""FP16 graphs of a bundle's roles, checked on the role's own calibration feeds before they are kept.

::

    role.onnx (FP32) + calibration/<role>.npz
        │ ranges.activation_pass: per-tensor max|x| vs FP16 limits, gate saturation of Sigmoid/Tanh inputs
        │ onnxruntime.transformers.float16 (keep_io_types: the runtime keeps feeding float32)
        ▼
    <role>.fp16.onnx ── ONNX Runtime, feed by feed, beside FP32 ──► agreement: cosine, max|Δ|, top-1 of logits

``convert_fp16`` returns the artifact to add (``Bundle.add_artifacts``) and a JSON-able report; it writes
nothing itself, so a caller converting several roles adds them all or none.

The converter is ONNX Runtime's own (``onnxruntime.transformers.float16``) rather than onnxconverter-common
1.16: with keep_io_types that one leaves a float32 graph output feeding an FP16 node whenever a graph output
is also consumed inside the graph (every step graph here: h_out feeds the classifier), and ONNX Runtime
refuses the result with a type error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..bundle import Bundle, NewArtifact, load_bundle
from ..errors import ConfigError, ExportError
from ..log import get_logger
from . import ranges as R
from .feeds import load_feeds

log = get_logger(__name__)

LOGITS = ("logits", "logits_sync")
AGREEMENT_NOTE = ("fp16_arithmetic: the FP32 graph with FP16 weights and FP16 tensors between nodes (emulate_fp16), as "
                  "a GPU runs it; ort_cpu: this file under ONNX Runtime's CPU provider, which computes most nodes in "
                  "FP32 (FP16 weights only); both per call on the recorded FP32 feeds")  # outputs whose argmax is a decision: top-1 agreement is reported for them


def fp16_file(role: str) -> str:
    return "%s.fp16.onnx" % role


def to_fp16(model: Any, op_block_list: Optional[Sequence[str]] = None) -> Tuple[Any, Dict[str, Any]]:
    """The FP16 form of an FP32 ONNX model with float32 inputs and outputs, and the settings that made it."""
    import onnxruntime
    from onnxruntime.transformers import float16

    blocked = list(float16.DEFAULT_OP_BLOCK_LIST if op_block_list is None else op_block_list)
    from onnxruntime.transformers.onnx_model import OnnxModel

    converted = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked)
    # the converter appends its input casts at the end of the node list; ONNX (and TensorRT's parser) want
    # nodes in topological order
    OnnxModel(converted).topological_sort()
    settings = {"tool": "onnxruntime.transformers.float16", "version": onnxruntime.__version__,
                "keep_io_types": True, "op_block_list": blocked}
    return converted, settings


def emulate_fp16(model: Any, op_block_list: Sequence[str] = ()) -> Any:
    """The FP32 graph with FP16 *storage*: weights and every float tensor a node gives (except the outputs of ops
    in ``op_block_list``, which the conversion keeps FP32) rounded to float16, the math inside each node FP32.

    That is how a GPU runs an FP16 graph (TensorRT: FP16 tensors between layers, FP32 accumulation), and what
    ONNX Runtime's CPU provider does not do with the converted graph: it has few FP16 kernels and inserts casts
    to run the FP32 ones, removing the casts between neighbours, so intermediates stay FP32 and only the weights
    are FP16. Agreement on the CPU would then miss overflow, underflow and rounding between layers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            with np.errstate(over="ignore"):  # a weight beyond FP16 becomes inf, as it would on the device
                rounded = numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
            graph.initializer[i].CopyFrom(numpy_helper.from_array(rounded, init.name))
    floats = set(R.float_tensors(model)) | {n.output[0] for n in graph.node if n.op_type == "Constant" and _float_constant(n)}
    inputs = {i.name for i in graph.input}
    blocked = set(op_block_list)
    nodes = []

    def rounding(name: str, source: str) -> List[Any]:
        return [helper.make_node("Cast", [source], [name + "__fp16"], to=TensorProto.FLOAT16),
                helper.make_node("Cast", [name + "__fp16"], [name], to=TensorProto.FLOAT)]

    renamed = {name: name + "__rounded" for name in inputs if name in floats}
    for name, alias in renamed.items():  # the converted graph casts its float32 inputs to FP16 first
        nodes += rounding(alias, name)
    for node in graph.node:
        node.input[:] = [renamed.get(x, x) for x in node.input]
        outs = [o for o in node.output if o in floats and node.op_type not in blocked]
        for k, o in enumerate(node.output):
            if o in outs:
                node.output[k] = o + "__fp32"
        nodes.append(node)
        for o in outs:
            nodes += rounding(o, o + "__fp32")
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _float_constant(node: Any) -> bool:
    from onnx import TensorProto

    return any(a.name in ("value_float", "value_floats") or (a.name == "value" and a.t.data_type == TensorProto.FLOAT)
               for a in node.attribute)


def _session(model_bytes: bytes, optimize: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimize:  # keep every Cast of an emulation graph: an optimiser may drop a round trip through FP16
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def agreement(fp32: bytes, fp16: bytes, feeds: Mapping[str, np.ndarray], limit: Optional[int] = None,
              optimize: bool = True) -> Dict[str, Any]:
    """FP16 against FP32, feed by feed, per output: cosine over all values and the worst single call, max |Δ|
    (and relative to max |FP32|), and for logits the share of calls whose argmax agrees.

    Step graphs get the FP32 state recorded in the feeds at every call: this measures one step, not drift
    carried over a stream (that is the end-to-end report's)."""
    ref, half = _session(fp32), _session(fp16, optimize)
    names = [o.name for o in ref.get_outputs()]
    got: Dict[str, List[Tuple[np.ndarray, np.ndarray]]] = {n: [] for n in names}
    for feed in R.samples(feeds, limit):
        for n, a, b in zip(names, ref.run(names, feed), half.run(names, feed)):
            got[n].append((np.asarray(a, np.float64), np.asarray(b, np.float64)))
    out: Dict[str, Any] = {}
    for n, pairs in got.items():
        a = np.concatenate([p[0].ravel() for p in pairs])
        b = np.concatenate([p[1].ravel() for p in pairs])
        row = {"calls": len(pairs), "cosine": _cosine(a, b), "cosine_min": min(_cosine(x.ravel(), y.ravel()) for x, y in pairs),
               "nonfinite": int(np.count_nonzero(~np.isfinite(b)))}
        finite = np.isfinite(b)  # inf/NaN are counted apart: the report stays strict JSON
        row["max_abs"] = float(np.max(np.abs(a - b)[finite])) if finite.any() else None
        scale = float(np.max(np.abs(a))) if a.size else 0.0
        row["max_rel"] = row["max_abs"] / scale if scale and row["max_abs"] is not None else None
        if n in LOGITS:
            row["top1"] = float(np.mean([np.argmax(x.reshape(x.shape[0], -1), 1) == np.argmax(y.reshape(y.shape[0], -1), 1)
                                         for x, y in pairs]))
        out[n] = row
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0  # both exactly zero (a zero state at a stream's start): they agree
    if na == 0.0 or nb == 0.0 or not np.isfinite(nb):
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def convert_fp16(bundle: Union[Bundle, str, Path], role: str, *, force: bool = False, limit: Optional[int] = None,
                 op_block_list: Optional[Sequence[str]] = None, margin: float = 4.0,
                 underflow_share: float = 0.01) -> Tuple[List[NewArtifact], Dict[str, Any]]:
    """``<role>.fp16.onnx`` for ``role`` and its report: FP16 risks of the FP32 activations, gate saturation, and
    agreement of the FP16 graph with FP32 on the role's calibration feeds (at most ``limit`` of them).

    ConfigError when the family's rules keep the role off FP16 (unless ``force``); CalibrationError when the
    role has no (or stale) feeds: record them with ``edgevid calibrate``. Nothing is written to the bundle."""
    import onnx

    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    bundle.graph(role)  # ManifestError for a role the bundle lacks
    rule = bundle.rules.precision_rule(role)
    if not rule.allows("fp16") and not force:
        raise ConfigError("role %s of a %s bundle is kept off FP16" % (role, bundle.family), rule.why,
                          "leave it at %s, or force the conversion if a measurement says FP16 holds" % rule.default)
    feeds = load_feeds(bundle, role)
    source = bundle.graph_path(role)
    activations = R.activation_pass(source, feeds, limit=limit)
    risks = R.fp16_risks(activations["ranges"], margin=margin, underflow_share=underflow_share)
    fp32 = source.read_bytes()
    try:
        model, settings = to_fp16(onnx.load_from_string(fp32), op_block_list)
        onnx.checker.check_model(model)
    except Exception as e:  # the converter raises plain exceptions; say which role and what to try
        raise ExportError("the FP16 conversion of role %s failed" % role, str(e),
                          "keep the role at FP32, or block the failing op (op_block_list)") from e
    half = model.SerializeToString()
    _check_io(model, bundle, role)
    # the figure that counts is FP16 arithmetic (emulated); the converted graph under ORT CPU shows it loads,
    # runs and what FP16 weights alone cost
    emulated = emulate_fp16(onnx.load_from_string(fp32), settings["op_block_list"]).SerializeToString()
    agree = agreement(fp32, emulated, feeds, limit, optimize=False)
    agree_cpu = agreement(fp32, half, feeds, limit)
    ranges_summary = R.summarize(risks)
    ranges_summary.update(margin=margin, underflow_share=underflow_share)
    gates = [{k: g[k] for k in ("tensor", "op", "fp16_at_one", "fp16_at_zero", "x_min", "x_max")}
             for g in activations["gates"]]
    info = {"conversion": settings, "source_sha256": bundle.graph(role).sha256, "samples": activations["samples"],
            "ranges": ranges_summary, "gates": gates,
            "agreement": {"fp16_arithmetic": _brief(agree), "ort_cpu": _brief(agree_cpu),
                          "note": AGREEMENT_NOTE}}
    if not rule.allows("fp16"):
        info["forced"] = rule.why
    report = {"role": role, "file": fp16_file(role), "precision": "fp16", "rule": {"allowed": list(rule.allowed),
              "default": rule.default, "why": rule.why}, "forced": bool(force and not rule.allows("fp16")),
              "conversion": settings, "samples": activations["samples"], "risks": risks, "gates": activations["gates"],
              "agreement": agree, "agreement_ort_cpu": agree_cpu, "agreement_note": AGREEMENT_NOTE}
    log.info("fp16 %s: %d samples, %d tensors flagged, agreement %s", role, activations["samples"],
             sum(r["risk"] != "ok" for r in risks), {n: round(r["cosine_min"], 6) for n, r in agree.items()})
    new = NewArtifact(role, "onnx", fp16_file(role), lambda path: path.write_bytes(half), precision="fp16", info=info)
    return [new], report


def _brief(rows: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    return {n: {k: v for k, v in row.items() if k in ("cosine", "cosine_min", "max_abs", "nonfinite", "top1")} for n, row in rows.items()}


def _check_io(model: Any, bundle: Bundle, role: str) -> None:
    """The FP16 graph must take and give exactly what the bundle declares (float32), or the runtime cannot feed it."""
    import onnx

    graph = bundle.graph(role)
    declared = {t.name: t.dtype for t in list(graph.inputs) + list(graph.outputs)}
    types = {v.name: onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
             for v in list(model.graph.input) + list(model.graph.output)}
    if types != declared:
        raise ExportError("the FP16 graph of role %s changed its inputs or outputs" % role,
                          "declared %s, converted %s" % (declared, types), "report this; keep the role at FP32")
