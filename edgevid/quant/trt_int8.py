"""INT8 for TensorRT: the explicit Q/DQ graph, the native calibration cache, and per-layer sensitivity.

::

    calibration/<role>.npz ─► activations.collect (one pass, every tensor's range)
         ├─► quantize_static(QDQ, s8/s8, per-channel, symmetric) + residual-Add Q/DQ ─► <role>.int8.trt.onnx
         └─► amax/127 as big-endian float32 hex, TRT-<ver>-<algo> header        ─► <role>.calib.cache

The Q/DQ graph is the form TensorRT 8.5 to 11 takes (tensorrt-facts.md §4): signed int8, zero points 0,
per-channel weights on the output axis, per-tensor activations, Q/DQ only on the inputs of Conv/Gemm/MatMul
and on the residual input of a Conv+Add so TensorRT fuses the Add into the Conv. ``check_trt_qdq`` verifies
all of it on the result; nothing is written that fails it. The cache (§1) lets TensorRT 8.5/8.6 build
implicit INT8 (Xavier's DLA) without an on-device calibration pass.
"""
from __future__ import annotations

import struct
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..bundle import Bundle, NewArtifact, load_bundle
from ..errors import ConfigError, ExportError
from ..log import get_logger
from .ortq import quiet_quantizer
from .activations import Activations, collect, feed_list

log = get_logger(__name__)

WEIGHTED = ("Conv", "Gemm", "MatMul")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
# The TensorRT calibrator class whose cache each method's scales stand in for: TensorRT has no percentile
# calibrator, so percentile scales are written for the EntropyCalibrator2 that reads them on the device.
CALIBRATOR = {"entropy": "EntropyCalibration2", "percentile": "EntropyCalibration2", "minmax": "MinMaxCalibration"}


def qdq_file(role: str) -> str:
    return "%s.int8.trt.onnx" % role


def cache_file(role: str) -> str:
    return "%s.calib.cache" % role


# ---------------------------------------------------------------------------------------------- the graph

def _quantize(model, acts: Activations, *, exclude: Sequence[str] = (), only: Optional[Sequence[str]] = None,
              residual: bool = True):
    """The Q/DQ ModelProto of ``model`` from ``acts`` (onnxruntime's QDQ quantizer, fed our ranges through
    its JSON calibration cache so the feeds are not run again), then Q/DQ on residual Add inputs."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    from .activations import _calibration_method

    options = {
        "ActivationSymmetric": True, "WeightSymmetric": True,  # zero point 0 everywhere (TensorRT refuses others)
        "QuantizeBias": False,        # TensorRT's parser takes int8 Q/DQ only; bias stays float and is fused
        "AddQDQPairToWeight": True,   # float weight + Q/DQ: the form NVIDIA's 8.5 exporters write
        "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},  # MatMul B is [K, N]: one scale per output column
        # no Q/DQ on Conv/Gemm/MatMul outputs: it would split TensorRT's Conv+Add/activation fusions (§4)
        "OpTypesToExcludeOutputQuantization": list(WEIGHTED),
    }
    with tempfile.TemporaryDirectory(prefix="edgevid-qdq-") as tmp:
        cache, out = Path(tmp) / "ranges.json", Path(tmp) / "qdq.onnx"
        save_tensors_data(acts.tensors_data, cache)
        with quiet_quantizer():
            quantize_static(model, str(out), None, calibration_cache_path=str(cache),
                            quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=list(WEIGHTED),
                            nodes_to_quantize=list(only) if only else None, nodes_to_exclude=list(exclude),
                            calibrate_method=_calibration_method(acts.method), extra_options=options)
        qdq = onnx.load(str(out))
    _float_for_others(qdq)
    if residual:
        _residual_qdq(qdq, acts)
    return qdq


def _float_for_others(model) -> None:
    """onnxruntime gives every consumer of a quantized tensor the DQ output, and a quantized graph output its
    name on the DQ; consumers that are not Conv/Gemm/MatMul/Add (a Concat of a state) and graph outputs read the
    float tensor again, so Q/DQ sits only where TensorRT fuses it and outputs keep full precision."""
    nodes = model.graph.node
    outputs = {o.name for o in model.graph.output}
    producer = {o: n for n in nodes for o in n.output}
    for dq in [n for n in nodes if n.op_type == "DequantizeLinear" and n.output[0] in outputs]:
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        name, renamed = dq.output[0], q.input[0]
        dq.output[0] = name + "_dq"
        for node in nodes:
            if node.op_type in WEIGHTED + ("Add",):
                node.input[:] = [name + "_dq" if t == name else t for t in node.input]
        for node in nodes:  # the float tensor takes the output's name back
            node.input[:] = [name if t == renamed else t for t in node.input]
            node.output[:] = [name if t == renamed else t for t in node.output]
    producer = {o: n for n in nodes for o in n.output}
    for node in nodes:
        if node.op_type in WEIGHTED + ("Add",) + QDQ_OPS:
            continue
        for i, name in enumerate(node.input):
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[i] = q.input[0]


def _residual_qdq(model, acts: Activations) -> int:
    """Q/DQ on the residual input of each Add fed by a Conv, none between that Conv and the Add: TensorRT then
    fuses Conv+Add with the residual as INT8 (§4). A residual that already has a Q/DQ (it also feeds a Conv)
    reuses it. Returns how many Adds were handled."""
    from onnx import TensorProto, helper

    graph = model.graph
    consts = {i.name for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consts |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    dq_of = {}  # tensor -> output of the DequantizeLinear after its QuantizeLinear
    for q in graph.node:
        if q.op_type == "QuantizeLinear":
            for dq in graph.node:
                if dq.op_type == "DequantizeLinear" and dq.input[0] == q.output[0]:
                    dq_of[q.input[0]] = dq.output[0]
    handled, nodes = 0, []
    for node in graph.node:
        ins = [t for t in node.input if t not in consts]
        if node.op_type == "Add" and len(ins) == 2:
            kinds = [producer[t].op_type if t in producer else None for t in ins]
            if "Conv" in kinds and "DequantizeLinear" not in kinds:
                # torch writes out + identity: the Conv side is fused, the residual is the non-Conv input or,
                # when both come from Convs (a downsample shortcut), the second one
                side = 1 if kinds[1] != "Conv" or kinds[0] == "Conv" else 0
                tensor = ins[side]
                if tensor not in dq_of:
                    scale = np.float32(acts.amax(tensor) / 127.0)
                    base = tensor.replace("/", "_").strip("_") + "_residual"
                    graph.initializer.extend([
                        helper.make_tensor(base + "_scale", TensorProto.FLOAT, [], [float(scale)]),
                        helper.make_tensor(base + "_zp", TensorProto.INT8, [], [0])])
                    nodes += [helper.make_node("QuantizeLinear", [tensor, base + "_scale", base + "_zp"],
                                               [base + "_q"], name=base + "_Q"),
                              helper.make_node("DequantizeLinear", [base + "_q", base + "_scale", base + "_zp"],
                                               [base + "_dq"], name=base + "_DQ")]
                    dq_of[tensor] = base + "_dq"
                node.input[list(node.input).index(tensor)] = dq_of[tensor]
                handled += 1
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return handled


def _named(model):
    """Every node named (nodes_to_exclude and the sensitivity list go by name); exported graphs already are."""
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = "%s_%d" % (node.op_type, index)
    return model


def weighted_layers(model) -> List[Tuple[str, str]]:
    """(name, op_type) of the Conv/Gemm/MatMul nodes the Q/DQ graph quantizes, in graph order."""
    consts = {i.name for i in model.graph.initializer}
    return [(n.name, n.op_type) for n in model.graph.node
            if n.op_type in WEIGHTED and (n.op_type != "MatMul" or n.input[1] in consts)]


def check_trt_qdq(model) -> Dict[str, int]:
    """Raise ExportError naming each place where ``model`` is not the Q/DQ form TensorRT 8.5+ takes; return
    counts (quantize, dequantize, per-channel weights, per-tensor activations, residual adds)."""
    from onnx import numpy_helper

    graph = model.graph
    const = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute:
            const[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    producer = {o: n for n in graph.node for o in n.output}
    consumers: Dict[str, list] = {}
    for n in graph.node:
        for i, t in enumerate(n.input):
            consumers.setdefault(t, []).append((n, i))
    problems: List[str] = []
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0, "weights_per_channel": 0, "activations_per_tensor": 0,
              "residual_adds": 0}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        problems.append("opset %d < 13 has no per-channel axis" % opset)
    for n in graph.node:
        if n.op_type not in QDQ_OPS:
            continue
        counts[n.op_type] += 1
        if n.domain not in ("", "ai.onnx"):
            problems.append("%s is in domain %s, not the ONNX one TensorRT parses" % (n.name, n.domain))
        zp = const.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        scale = const.get(n.input[1])
        if zp is None:
            problems.append("%s has no constant zero point (TensorRT 8.5 needs one, all 0)" % n.name)
        elif zp.dtype != np.int8:
            problems.append("%s zero point is %s, not int8" % (n.name, zp.dtype))
        elif np.any(zp != 0):
            problems.append("%s zero point is not 0 (TensorRT takes symmetric only)" % n.name)
        if scale is None or not np.all(scale > 0):
            problems.append("%s scale is not a positive constant" % n.name)
            continue
        source = n.input[0] if n.op_type == "QuantizeLinear" else None
        if n.op_type == "DequantizeLinear":
            q = producer.get(n.input[0])
            source = q.input[0] if q is not None and q.op_type == "QuantizeLinear" else n.input[0]
        axis = next((a.i for a in n.attribute if a.name == "axis"), None)
        if source in const:  # a weight
            weight = const[source]
            users = _users(n, consumers)
            expected = _weight_axis(users[0], weight) if users else None
            if expected is None:
                problems.append("%s quantizes %s, which is not the weight of a Conv/Gemm/MatMul" % (n.name, source))
            elif scale.size != weight.shape[expected] or (scale.size > 1 and axis != expected):
                problems.append("%s: weight %s %s has %d scales on axis %s, expected per-channel on axis %d"
                                % (n.name, source, list(weight.shape), scale.size, axis, expected))
            elif n.op_type == "DequantizeLinear":
                counts["weights_per_channel"] += 1
        else:
            if scale.size != 1:
                problems.append("%s: activation %s has %d scales; TensorRT takes per-tensor only"
                                % (n.name, source, scale.size))
            elif n.op_type == "DequantizeLinear":
                counts["activations_per_tensor"] += 1
                for user, _ in consumers.get(n.output[0], []):
                    if user.op_type == "Add":
                        other = [t for t in user.input if t != n.output[0] and t not in const]
                        if other and other[0] in producer and producer[other[0]].op_type == "DequantizeLinear":
                            problems.append("%s has Q/DQ on both inputs: the Conv feeding it cannot fuse the Add"
                                            % user.name)
                        else:
                            counts["residual_adds"] += 1
                    elif user.op_type not in WEIGHTED:
                        problems.append("%s feeds %s (%s): Q/DQ belongs only on Conv/Gemm/MatMul inputs and "
                                        "residual Adds" % (n.name, user.name, user.op_type))
    for n in graph.node:  # a Conv+Add whose residual stayed float runs the fused output in float (§4)
        ins = [t for t in n.input if t not in const]
        if n.op_type == "Add" and len(ins) == 2 and any(producer.get(t) is not None and
                                                        producer[t].op_type == "Conv" for t in ins):
            if not any(producer.get(t) is not None and producer[t].op_type == "DequantizeLinear" for t in ins):
                problems.append("residual %s has no Q/DQ on its residual input" % n.name)
    if problems:
        raise ExportError("the Q/DQ graph is not in the form TensorRT 8.5 to 11 takes",
                          "; ".join(problems[:8]) + (" (and %d more)" % (len(problems) - 8) if len(problems) > 8 else ""),
                          "report this with the bundle; quantize again with the offending layers in exclude")
    return counts


def _users(node, consumers):
    """(consumer, input index) of a DQ's output, or of the DQ after a Q."""
    if node.op_type == "DequantizeLinear":
        return consumers.get(node.output[0], [])
    return [u for dq, _ in consumers.get(node.output[0], []) if dq.op_type == "DequantizeLinear"
            for u in consumers.get(dq.output[0], [])]


def _weight_axis(user, weight) -> Optional[int]:
    node, index = user
    if index != 1 or node.op_type not in WEIGHTED:
        return None
    if node.op_type == "Conv":
        return 0  # KCRS: one scale per output channel
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return weight.ndim - 1  # MatMul B [.., K, N]


# ---------------------------------------------------------------------------------------- the cache

def trt_header(trt_version: str, method: str) -> str:
    """Line 1 of TensorRT's native cache: ``TRT-<NV_TENSORRT_VERSION>-<calibrator>`` (8.5.2 -> 8502,
    10.3.0 -> 100300; §1). TensorRT recalibrates on a mismatch, so it must name the device's exact version."""
    parts = [int(p) for p in (trt_version.split(".") + ["0", "0"])[:3]]
    major, minor, patch = parts
    number = major * 1000 + minor * 100 + patch if major < 10 else major * 10000 + minor * 100 + patch
    return "TRT-%d-%s" % (number, CALIBRATOR[method])


def scale_hex(scale: float) -> str:
    """A float32 scale as TensorRT writes it: its IEEE-754 bits, most significant digit first."""
    return struct.pack(">f", scale).hex()


def cache_text(acts: Activations, trt_version: str = "8.5.2") -> str:
    """The native cache: scale = amax/127 per activation tensor of the FP32 graph, by its ONNX name."""
    lines = [trt_header(trt_version, acts.method)]
    for name in sorted(acts.ranges):
        amax = acts.amax(name)
        if amax > 0:  # an all-zero tensor has no scale; TensorRT then keeps that tensor in float
            lines.append("%s: %s" % (name, scale_hex(amax / 127.0)))
    return "\n".join(lines) + "\n"


def parse_cache(text: str) -> Tuple[str, Dict[str, float]]:
    """(header, {tensor: scale}) of a native TensorRT calibration cache."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("TRT-"):
        raise ExportError("not a TensorRT calibration cache", "line 1 must be TRT-<version>-<calibrator>",
                          "write it with edgevid's quantize")
    scales = {}
    for line in lines[1:]:
        name, _, value = line.rpartition(": ")
        scales[name] = struct.unpack(">f", bytes.fromhex(value))[0]
    return lines[0], scales


# ------------------------------------------------------------------------------------- measurement

@dataclass
class Agreement:
    """A role's outputs vs FP32 over feeds: mean and worst per-sample cosine, largest absolute difference."""

    cosine: float
    min_cosine: float
    max_abs: float
    samples: int


def _session(model):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
    opts.log_severity_level = 3
    # Basic level keeps Q/DQ as separate float ops: the arithmetic TensorRT's INT8 kernels reproduce (int8 values,
    # exact products, one float rescale). ORT's extended level fuses them into its own int8 kernels, whose fixed-
    # point requantization loses the result on tiny scales (measured: the demo MobileNetV2's last block, scales
    # near 1e-10, cosine 0.82 fused vs 0.9998 unfused), which would blame the layer for an ORT CPU artefact.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _outputs(model, feeds: list) -> List[np.ndarray]:
    session = _session(model)
    return [np.concatenate([np.ravel(o) for o in session.run(None, f)]).astype(np.float64) for f in feeds]


def agreement(reference: List[np.ndarray], got: List[np.ndarray]) -> Agreement:
    cos = [float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30)) for a, b in zip(reference, got)]
    return Agreement(float(np.mean(cos)), float(np.min(cos)),
                     float(max(np.max(np.abs(a - b)) for a, b in zip(reference, got))), len(cos))


# ------------------------------------------------------------------------------------------- public API

def _source(bundle: Bundle, role: str):
    import onnx

    return _named(onnx.load(str(bundle.root / bundle.graph(role).file)))


def _check_role(bundle: Bundle, role: str, force: bool) -> None:
    rule = bundle.rules.precision_rule(role)
    if not rule.allows("int8") and not force:
        raise ConfigError("role %s of the %s family is not quantized to INT8 by default" % (role, bundle.family),
                          rule.why, "pass --force (force=True) to quantize it anyway and check the measured agreement")


def quantize_trt(bundle: Union[Bundle, str, Path], role: str, *, method: str = "entropy", percentile: float = 99.999,
                 exclude: Union[Sequence[str], Mapping[str, str]] = (), force: bool = False,
                 trt_version: str = "8.5.2", samples: int = 64,
                 activations: Optional[Activations] = None) -> List[NewArtifact]:
    """The TensorRT Q/DQ graph and native calibration cache of ``role`` as artifacts to add
    (``bundle.add_artifacts(...)``). ``exclude`` lists layers kept in float ({layer: reason} records why,
    e.g. from keep.choose_float_layers). ConfigError for a role the family keeps out of INT8 unless ``force``;
    CalibrationError without feeds; ExportError when the graph is not TensorRT's Q/DQ form."""
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    _check_role(bundle, role, force)
    model = _source(bundle, role)
    layers = weighted_layers(model)
    if not layers:
        raise ExportError("role %s has no Conv, Gemm or MatMul to quantize" % role, None,
                          "keep it FP16/FP32")
    reasons = dict(exclude) if isinstance(exclude, Mapping) else {name: "asked" for name in exclude}
    unknown = sorted(set(reasons) - {name for name, _ in layers})
    if unknown:
        raise ConfigError("cannot exclude %s from role %s" % (unknown, role), "it has no such Conv/Gemm/MatMul",
                          "its layers are " + ", ".join(name for name, _ in layers))
    acts = activations or collect(bundle, role, method, percentile)
    qdq = _quantize(model, acts, exclude=list(reasons))
    counts = check_trt_qdq(qdq)
    feeds = feed_list(_feeds_of(bundle, role), samples)
    measured = agreement(_outputs(model, feeds), _outputs(qdq, feeds))
    log.info("%s: Q/DQ %s, cosine %.5f vs FP32 on %d feeds", role, counts, measured.cosine, measured.samples)
    calibration = {"file": acts.calibration_file, "recipe": acts.recipe, "data_sha256": acts.data_sha256,
                   "samples": acts.samples}
    source_sha = bundle.graph(role).sha256
    import onnxruntime

    quantization = {"method": method, "percentile": acts.percentile, "per_channel": True, "symmetric": True,
                    "activations": "int8", "weights": "int8 (float weights with Q/DQ)", "op_types": list(WEIGHTED),
                    "residual_adds": counts["residual_adds"], "excluded": reasons, "calibration": calibration,
                    "qdq_nodes": {k: counts[k] for k in QDQ_OPS}, "layers": len(layers) - len(reasons),
                    "forced": bool(force and not bundle.rules.precision_rule(role).allows("int8")),
                    "agreement_on_calibration_feeds": asdict(measured), "tool": "onnxruntime.quantization "
                    + onnxruntime.__version__}
    data = qdq.SerializeToString()
    text = cache_text(acts, trt_version)
    return [
        NewArtifact(role, "onnx", qdq_file(role), lambda p: p.write_bytes(data), precision="int8",
                    info={"target": "trt", "quantization": quantization, "source_sha256": source_sha}),
        NewArtifact(role, "calibration_cache", cache_file(role), lambda p: p.write_text(text),
                    info={"recipe": acts.recipe, "data_sha256": acts.data_sha256, "trt_header": text.split("\n")[0],
                          "method": method, "tensors": text.count("\n") - 1, "calibration": acts.calibration_file,
                          "source_sha256": source_sha}),
    ]


def _feeds_of(bundle: Bundle, role: str):
    from .feeds import load_feeds

    return load_feeds(bundle, role)


@dataclass
class LayerCost:
    """What quantizing one layer alone costs the role's outputs vs FP32 on the calibration feeds."""

    layer: str
    op_type: str
    cosine: float
    min_cosine: float
    max_abs: float


def sensitivity(bundle: Union[Bundle, str, Path], role: str, *, method: str = "entropy", percentile: float = 99.999,
                samples: int = 32, force: bool = False,
                activations: Optional[Activations] = None) -> List[LayerCost]:
    """Per Conv/Gemm/MatMul layer, the role's output agreement with FP32 when only that layer is quantized
    (its input and weight Q/DQ), worst first. One quantization and ``samples`` runs per layer."""
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    _check_role(bundle, role, force)
    model = _source(bundle, role)
    acts = activations or collect(bundle, role, method, percentile)
    feeds = feed_list(_feeds_of(bundle, role), samples)
    reference = _outputs(model, feeds)
    costs = []
    for name, op in weighted_layers(model):
        a = agreement(reference, _outputs(_quantize(model, acts, only=[name], residual=False), feeds))
        costs.append(LayerCost(name, op, a.cosine, a.min_cosine, a.max_abs))
    return sorted(costs, key=lambda c: c.cosine)
