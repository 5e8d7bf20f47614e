"""Which layers of the TensorRT-form INT8 graphs stay float, chosen by what the stream makes of them.

::

    Q/DQ graphs of the roles (every layer INT8) ─► the calibration streams end to end vs FP32: top-1 agreement
        meets the target ─► done, nothing kept float
        misses ─► per layer, what quantizing it alone costs its role (trt_int8.sensitivity), worst first
               ─► candidates with the 1, 2, 4 … most sensitive layers float (at most ``max_fraction`` of the
                  layers: beyond that INT8 buys little), all streamed in one comparison
               ─► the fewest layers that meet the target, else the best measured agreement

The measurement is end to end because a role's own output cosine does not predict the stream: LiteEval's
fine CNN at cosine 0.99989 still moves the recurrent chain's logits by up to 13% on near-tie frames. The
candidates are chosen on the calibration streams (the recipe's), never on the held-out streams the report
is measured on. Each layer kept float records why; the report lists them.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..bundle import Bundle, NewArtifact
from ..errors import CalibrationError
from ..log import get_logger
from .feeds import KIND as FEEDS_KIND

log = get_logger(__name__)

MAX_FRACTION = 0.5  # the most layers of a role kept float: past half, the INT8 graph is mostly float


@dataclass
class Choice:
    """The graphs chosen (role → the artifacts quantize_trt made), the layers kept float with why, and every
    candidate measured (float layers → top-1 agreement on the calibration streams)."""

    artifacts: Dict[str, List[NewArtifact]]
    float_layers: Dict[str, Dict[str, str]]
    agreement: float
    target: float
    met: bool
    streams: List[str]
    candidates: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {"float_layers": self.float_layers, "top1_agreement": self.agreement, "target": self.target,
                "met": self.met, "chosen_on": self.streams, "candidates": self.candidates}


def choose_float_layers(bundle: Bundle, made: Dict[str, List[NewArtifact]], target: float, *, method: str = "entropy",
           percentile: float = 99.999, max_fraction: float = MAX_FRACTION, samples: int = 32,
           progress: Optional[Callable[[str], None]] = None) -> Choice:
    """From ``made`` (role → quantize_trt's artifacts with every layer INT8), the graphs whose stream top-1
    agreement with FP32 on the calibration streams reaches ``target`` with the fewest layers kept float."""
    from .activations import collect
    from .trt_int8 import quantize_trt, sensitivity, weighted_layers, _source

    say = progress or (lambda what: None)
    streams = calibration_streams(bundle, list(made))
    plan = {role: "int8" for role in made}
    with tempfile.TemporaryDirectory(prefix="edgevid-keep-") as tmp:
        say("end to end on the calibration streams, every layer INT8")
        first = _measure(bundle, plan, {"k0": made}, streams, Path(tmp))["k0"]
        if first >= target:
            return Choice(made, {}, first, target, True, streams, [{"float_layers": 0, "top1_agreement": first}])
        acts = {role: collect(bundle, role, method, percentile) for role in made}
        ranked = []
        for role in made:
            say("sensitivity of %s, layer by layer" % role)
            ranked += [(role, cost) for cost in sensitivity(bundle, role, method=method, percentile=percentile,
                                                            samples=samples, activations=acts[role])]
        ranked.sort(key=lambda rc: rc[1].cosine)
        ranked = _within(ranked, {role: int(max_fraction * len(weighted_layers(_source(bundle, role))))
                                  for role in made})
        candidates: Dict[str, Dict[str, List[NewArtifact]]] = {}
        floats: Dict[str, Dict[str, Dict[str, str]]] = {}
        for k in _ladder(len(ranked)):
            excluded = _excluded(ranked[:k], first, target)
            say("candidate with %d layers float" % k)
            candidates["k%d" % k] = {role: quantize_trt(bundle, role, method=method, percentile=percentile,
                                                        exclude=excluded.get(role, {}), activations=acts[role])
                                     for role in made}
            floats["k%d" % k] = excluded
        say("end to end on the calibration streams, %d candidates" % len(candidates))
        measured = _measure(bundle, plan, candidates, streams, Path(tmp)) if candidates else {}
    tried = [{"float_layers": 0, "top1_agreement": first}] + [
        {"float_layers": sum(len(v) for v in floats[name].values()), "top1_agreement": a}
        for name, a in measured.items()]
    meeting = [name for name, a in measured.items() if a >= target]
    if meeting:
        best = meeting[0]  # the ladder grows: the first is the fewest layers
    elif measured and max(measured.values()) > first:
        best = max(measured, key=lambda name: measured[name])
    else:
        return Choice(made, {}, first, target, False, streams, tried)
    log.info("INT8: %d layers kept float for top-1 agreement %.4f on the calibration streams (target %.4f)",
             sum(len(v) for v in floats[best].values()), measured[best], target)
    return Choice(candidates[best], floats[best], measured[best], target, measured[best] >= target, streams, tried)


def calibration_streams(bundle: Bundle, roles: Sequence[str]) -> List[str]:
    """The source specs the roles' calibration feeds were recorded from (their recipe's streams, videos
    included); the whole of each is streamed, even past the recipe's max_frames."""
    for role in roles:
        found = bundle.graph(role).find(FEEDS_KIND)
        if found and found[-1].info.get("streams"):
            return list(found[-1].info["streams"])
    raise CalibrationError("the calibration feeds of %s do not say which streams they came from" % ", ".join(roles),
                           "feeds recorded before recipes were stored with them",
                           "record them again: edgevid calibrate %s --recipe R" % bundle.root)


def _within(ranked, limit: Dict[str, int]):
    """The longest prefix of ``ranked`` that keeps no role above its limit of float layers."""
    counts: Dict[str, int] = {}
    for k, (role, _) in enumerate(ranked):
        counts[role] = counts.get(role, 0) + 1
        if counts[role] > limit[role]:
            return ranked[:k]
    return ranked


def _ladder(n: int) -> List[int]:
    """1, 2, 4, 8 … up to n: a few candidates cover a wide range of how many layers stay float."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n] if n else ks


def _excluded(ranked, first: float, target: float) -> Dict[str, Dict[str, str]]:
    out: Dict[str, Dict[str, str]] = {}
    for rank, (role, cost) in enumerate(ranked, 1):
        out.setdefault(role, {})[cost.layer] = (
            "kept float: the most sensitive layer #%d (quantized alone, its role's output cosine vs FP32 is %.6f, "
            "max abs %.3g); with every layer INT8 the stream's top-1 agreement with FP32 was %.4f < %.4f"
            % (rank, cost.cosine, cost.max_abs, first, target))
    return out


def _measure(bundle: Bundle, plan: Dict[str, str], candidates: Dict[str, Dict[str, List[NewArtifact]]],
             streams: List[str], tmp: Path) -> Dict[str, float]:
    """Top-1 agreement with FP32 of each candidate on ``streams`` (one FP32 reference run for all)."""
    from .report import compare

    files: Dict[str, Dict[str, Path]] = {}
    for name, made in candidates.items():
        for role, artifacts in made.items():
            graph = next(a for a in artifacts if a.kind == "onnx")
            path = tmp / ("%s.%s.onnx" % (name, role))
            graph.write(path)
            files.setdefault(name, {})[role] = path
    report = compare(bundle, {name: plan for name in candidates}, streams, graphs=files,
                     targets={name: "trt" for name in candidates})
    return {name: report["plans"][name]["stream"]["top1_agreement"] for name in candidates}
