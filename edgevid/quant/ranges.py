"""Activation ranges of an FP32 graph on its calibration feeds, and what they mean for FP16.

::

    role.onnx ─► shape inference ─► every float intermediate made a graph output ─► ONNX Runtime, feed by feed
                                                                                     │
          tensor_ranges: {tensor: min, max, absmax, nonzero, subnormal, flushed, inf} ◄─┤
          gate_saturation: inputs of Sigmoid/Tanh, share where FP16 rounds the gate  ◄─┘
                           to exactly 1 or 0 (a forget gate stuck at 1 never forgets)
    fp16_risks(ranges): overflow / near overflow / underflow per tensor, riskiest first

The statistics are exact counts over every value the graph computed on the recorded feeds (no sampling,
no histograms), so another precision step (INT8 scales, a TensorRT cache) can read them too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..log import get_logger

log = get_logger(__name__)

FP16_MAX = 65504.0  # largest finite float16
FP16_MIN_NORMAL = 2.0 ** -14  # 6.1e-5: below it float16 is subnormal and keeps fewer significant bits
FP16_INF_FROM = 65520.0  # |x| >= this rounds to inf (round to nearest even past 65504)
FP16_ZERO_UPTO = 2.0 ** -25  # 0 < |x| <= this rounds to 0 (half the smallest subnormal, ties to even)
GATE_OPS = ("Sigmoid", "Tanh")

PathLike = Union[str, Path]


def samples(feeds: Mapping[str, np.ndarray], limit: Optional[int] = None) -> List[Dict[str, np.ndarray]]:
    """Feed k of stacked calibration feeds ({input: [N, …]}; keys starting with "_" are bookkeeping), at most
    ``limit`` of them evenly spaced so that a long recurrent stream keeps its steady state in the picture."""
    names = [k for k in feeds if not k.startswith("_")]
    n = min(len(feeds[k]) for k in names)
    picked = range(n) if limit is None or limit >= n else \
        np.unique(np.linspace(0, n - 1, max(1, limit)).round().astype(int))
    return [{k: np.ascontiguousarray(feeds[k][i:i + 1]) for k in names} for i in picked]


def float_tensors(model: Any) -> List[str]:
    """Names of the float32 tensors a graph computes or takes as input (not weights, not Constant outputs), in
    graph order; types come from ONNX shape inference."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    weights = {t.name for t in graph.initializer}
    weights |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    is_float = {v.name: v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
                for v in list(graph.input) + list(graph.value_info) + list(graph.output)}
    ordered = [i.name for i in graph.input] + [o for n in graph.node for o in n.output]
    unknown = [t for t in ordered if t and t not in is_float and t not in weights]
    if unknown:  # shape inference could not type them; leaving them out is reported, not guessed
        log.debug("%d tensors have no inferred type and are left out of the ranges: %s", len(unknown), unknown[:5])
    seen, out = set(), []
    for t in ordered:
        if t and t not in seen and t not in weights and is_float.get(t):
            seen.add(t)
            out.append(t)
    return out


def run_tensors(model_path: PathLike, feeds: Mapping[str, np.ndarray], tensors: Optional[Sequence[str]] = None,
                limit: Optional[int] = None) -> Iterator[Dict[str, np.ndarray]]:
    """For each calibration sample, the values of ``tensors`` (default: every float tensor) of the FP32 graph.

    The named tensors are made extra graph outputs and optimisations are off, so the values are the graph's
    own FP32 ones, not those of a fused kernel."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    names = list(tensors) if tensors is not None else float_tensors(model)
    present = {o.name for o in model.graph.output}
    inputs = {i.name for i in model.graph.input}
    for name in names:
        if name not in present and name not in inputs:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
            present.add(name)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    fetch = [n for n in names if n not in inputs]
    for feed in samples(feeds, limit):
        values = dict(zip(fetch, session.run(fetch, feed)))
        values.update({n: feed[n] for n in names if n in inputs})
        yield values


class RangeStats:
    """Running exact statistics of one tensor against the float16 limits."""

    def __init__(self) -> None:
        self.count = self.nonzero = self.subnormal = self.flushed = self.inf = self.nonfinite = 0
        self.min, self.max = np.inf, -np.inf

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float32).ravel()
        finite = np.isfinite(x)
        self.nonfinite += int(x.size - finite.sum())
        x = x[finite]
        self.count += int(x.size)
        if not x.size:
            return
        a = np.abs(x)
        self.min, self.max = min(self.min, float(x.min())), max(self.max, float(x.max()))
        self.nonzero += int(np.count_nonzero(a))
        self.subnormal += int(np.count_nonzero((a > 0) & (a < FP16_MIN_NORMAL)))
        self.flushed += int(np.count_nonzero((a > 0) & (a <= FP16_ZERO_UPTO)))
        self.inf += int(np.count_nonzero(a >= FP16_INF_FROM))

    def to_dict(self) -> Dict[str, Any]:
        empty = self.count == 0
        absmax = 0.0 if empty else max(abs(self.min), abs(self.max))
        nz = max(self.nonzero, 1)
        return {"min": None if empty else self.min, "max": None if empty else self.max, "absmax": absmax,
                "count": self.count, "nonzero": self.nonzero, "nonfinite": self.nonfinite,
                "subnormal_share": self.subnormal / nz,  # share of nonzero values below FP16's smallest normal
                "flushed_share": self.flushed / nz,  # share of nonzero values FP16 rounds to 0
                "inf_count": self.inf}  # values FP16 rounds to inf


class GateStats:
    """Where FP16 rounds a gate to exactly 1 or 0, counted from its FP32 pre-activations."""

    def __init__(self, op: str) -> None:
        self.op = op
        self.count = self.at_one = self.at_zero = self.fp32_at_one = 0
        self.min, self.max = np.inf, -np.inf

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64).ravel()
        with np.errstate(over="ignore"):  # exp of a large |x| is inf and its sigmoid exactly 0 or 1: what we count
            y = 1.0 / (1.0 + np.exp(-x)) if self.op == "Sigmoid" else np.tanh(x)
        half, single = np.abs(y.astype(np.float16)), np.abs(y.astype(np.float32))
        self.count += int(x.size)
        if x.size:
            self.min, self.max = min(self.min, float(x.min())), max(self.max, float(x.max()))
        self.at_one += int(np.count_nonzero(half == 1.0))  # tanh: ±1
        self.at_zero += int(np.count_nonzero(half == 0.0))
        self.fp32_at_one += int(np.count_nonzero(single == 1.0))

    def to_dict(self) -> Dict[str, Any]:
        n = max(self.count, 1)
        return {"op": self.op, "count": self.count, "x_min": float(self.min) if self.count else None,
                "x_max": float(self.max) if self.count else None, "fp16_at_one": self.at_one / n,
                "fp16_at_zero": self.at_zero / n, "fp32_at_one": self.fp32_at_one / n}


def gate_inputs(model: Any) -> List[Dict[str, str]]:
    """The pre-activation tensors of every Sigmoid and Tanh node, with the node and what produced the input
    (LiteEval's Gemm → Slice → Sigmoid, PreRNN's Split → Sigmoid)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    out = []
    for node in model.graph.node:
        if node.op_type in GATE_OPS:
            src = producer.get(node.input[0])
            out.append({"tensor": node.input[0], "op": node.op_type, "node": node.name,
                        "from": "%s %s" % (src.op_type, src.name) if src is not None else "graph input"})
    return out


def tensor_ranges(model_path: PathLike, feeds: Mapping[str, np.ndarray], *, tensors: Optional[Sequence[str]] = None,
                  limit: Optional[int] = None) -> Dict[str, Dict[str, Any]]:
    """{tensor: {min, max, absmax, count, nonzero, subnormal_share, flushed_share, inf_count, nonfinite}} of every
    float tensor (or ``tensors``) of the FP32 graph over the calibration ``feeds`` ({input: [N, …]})."""
    return activation_pass(model_path, feeds, tensors=tensors, limit=limit, gates=False)["ranges"]


def gate_saturation(model_path: PathLike, feeds: Mapping[str, np.ndarray], *,
                    limit: Optional[int] = None) -> List[Dict[str, Any]]:
    """Per Sigmoid/Tanh input of the graph: share of values where FP16 rounds the gate to exactly 1 (tanh ±1)
    and exactly 0, with FP32's share at 1 beside it; most saturated first."""
    import onnx

    gates = gate_inputs(onnx.load(str(model_path)))
    return activation_pass(model_path, feeds, tensors=[g["tensor"] for g in gates], limit=limit)["gates"]


def activation_pass(model_path: PathLike, feeds: Mapping[str, np.ndarray], *,
                    tensors: Optional[Sequence[str]] = None, limit: Optional[int] = None,
                    gates: bool = True) -> Dict[str, Any]:
    """Ranges of ``tensors`` (default every float tensor) and, with ``gates``, gate saturation, in one run."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    names = list(tensors) if tensors is not None else float_tensors(model)
    found = gate_inputs(model) if gates else []
    wanted = list(dict.fromkeys(names + [g["tensor"] for g in found]))
    ranges = {t: RangeStats() for t in names}
    gate_stats = [GateStats(g["op"]) for g in found]
    runs = 0
    for values in run_tensors(model_path, feeds, wanted, limit):
        runs += 1
        for t, stats in ranges.items():
            stats.add(values[t])
        for g, stats in zip(found, gate_stats):
            stats.add(values[g["tensor"]])
    gate_rows = [dict(g, **s.to_dict()) for g, s in zip(found, gate_stats)]
    gate_rows.sort(key=lambda r: -(r["fp16_at_one"] + r["fp16_at_zero"]))
    return {"samples": runs, "ranges": {t: s.to_dict() for t, s in ranges.items()}, "gates": gate_rows}


def fp16_risks(ranges: Mapping[str, Mapping[str, Any]], *, margin: float = 4.0,
               underflow_share: float = 0.01) -> List[Dict[str, Any]]:
    """Every tensor with its FP16 risk, riskiest first.

    ``risk``: "overflow" (max|x| > 65504: FP16 gives inf), "near_overflow" (max|x| above 65504/``margin``: one
    larger input away from it), "underflow" (more than ``underflow_share`` of the nonzero values below FP16's
    smallest normal 6.1e-5, where it keeps fewer bits or none), else "ok". ``score`` ≥ 1 is a flag."""
    rows = []
    for tensor, r in ranges.items():
        over = r["absmax"] / (FP16_MAX / margin)
        under = r["subnormal_share"] / underflow_share
        if r["absmax"] > FP16_MAX or r.get("inf_count"):
            risk = "overflow"
        elif over > 1:
            risk = "near_overflow"
        elif under > 1:
            risk = "underflow"
        else:
            risk = "ok"
        rows.append({"tensor": tensor, "risk": risk, "score": max(over, under), "absmax": r["absmax"],
                     "headroom": FP16_MAX / r["absmax"] if r["absmax"] else None,
                     "subnormal_share": r["subnormal_share"], "flushed_share": r["flushed_share"]})
    order = {"overflow": 0, "near_overflow": 1, "underflow": 2, "ok": 3}
    rows.sort(key=lambda row: (order[row["risk"]], -row["score"]))
    return rows


def summarize(risks: Iterable[Mapping[str, Any]], top: int = 5) -> Dict[str, Any]:
    """What a bundle records of the risk list: flagged tensors by kind, and the riskiest few."""
    risks = list(risks)
    by = {kind: [r["tensor"] for r in risks if r["risk"] == kind] for kind in ("overflow", "near_overflow", "underflow")}
    return dict(by, tensors=len(risks), max_absmax=max((r["absmax"] for r in risks), default=0.0),
                riskiest=[{k: r[k] for k in ("tensor", "risk", "absmax", "subnormal_share")} for r in risks[:top]])
