"""INT8 graphs in the form ONNX Runtime's CPU kernels are fast with, from a role's calibration feeds.

::

    bundle/<role>.onnx ─► quant_pre_process (shape inference, folding) ─► quantize_static
    bundle/calibration/<role>.npz ─► FeedReader (one recorded call at a time) ─┘   │ u8 activations, s8 weights
                                                                                    ▼
    bundle/<role>.int8.cpu.onnx   (artifact onnx int8, info target "cpu", quantization settings + feeds hash)

Why this form and not TensorRT's: ONNX Runtime's x86 integer kernels (MLAS) are built around u8
activations times s8 weights (the VPDPBUSD instruction of AVX512-VNNI / AVX-VNNI multiplies u8 by s8);
the symmetric s8×s8 Q/DQ graph TensorRT wants falls off that path and runs slower than FP32 here.
``reduce_range`` (7-bit weights) only matters on x86 without VNNI, where u8×s8 pairs can saturate.
"""
from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

import numpy as np

from ..bundle import Bundle, NewArtifact
from ..errors import ConfigError, DependencyError
from ..log import get_logger
from .feeds import KIND as CALIBRATION, STREAM_KEY, load_feeds
from .ortq import quiet_quantizer

log = get_logger(__name__)

TARGET = "cpu"
METHODS = ("minmax", "entropy", "percentile")
FORMATS = ("qdq", "qoperator")


def cpu_file(role: str) -> str:
    return "%s.int8.cpu.onnx" % role


class FeedReader:
    """onnxruntime.quantization's CalibrationDataReader over recorded feeds: call k is ``{name: x[k:k+1]}``
    (feeds are stacked along the batch axis; the graphs take batch 1)."""

    def __init__(self, feeds: Mapping[str, np.ndarray]):
        self.feeds = {k: v for k, v in feeds.items() if k != STREAM_KEY}
        self.count = min(len(v) for v in self.feeds.values())
        self._it: Optional[Iterator[Dict[str, np.ndarray]]] = None

    def calls(self) -> Iterator[Dict[str, np.ndarray]]:
        for k in range(self.count):
            yield {name: np.ascontiguousarray(x[k:k + 1]) for name, x in self.feeds.items()}

    # the CalibrationDataReader protocol (duck-typed: importing its base class would import onnxruntime here)
    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        if self._it is None:
            self._it = self.calls()
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = None


def quantize_file(src: Path, dst: Path, feeds: Mapping[str, np.ndarray], *, method: str = "minmax",
                  fmt: str = "qdq", per_channel: bool = True, reduce_range: bool = False,
                  activation: str = "uint8", weight: str = "int8", symmetric: bool = False,
                  preprocess: bool = True) -> Dict[str, Any]:
    """Quantize the ONNX graph ``src`` into ``dst`` with onnxruntime.quantization.quantize_static over ``feeds``.

    The defaults are the CPU form (u8 asymmetric activations, s8 weights); ``activation="int8",
    symmetric=True`` gives TensorRT's symmetric s8 Q/DQ (benchmarks compare the two). Returns the settings
    used and what the graph holds afterwards (node counts by op type)."""
    try:
        import onnx
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as e:  # pragma: no cover - depends on the install
        raise DependencyError("INT8 quantization needs onnx and onnxruntime", str(e),
                              "pip install onnx onnxruntime") from e
    _check_choice("method", method, METHODS)
    _check_choice("format", fmt, FORMATS)
    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    _check_choice("activation type", activation, tuple(types))
    _check_choice("weight type", weight, tuple(types))
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    reader = FeedReader(feeds)
    with tempfile.TemporaryDirectory(prefix="edgevid-int8-") as tmp:
        model = Path(src)
        if preprocess:
            # ORT's docs ask for this first: shapes inferred and constants folded let the quantizer see
            # every Conv/MatMul (and fuse BatchNorm leftovers) instead of leaving them float
            model = Path(tmp) / "pre.onnx"
            quant_pre_process(str(src), str(model), skip_symbolic_shape=True)
        extra = {"ActivationSymmetric": symmetric, "WeightSymmetric": True}
        if method == "percentile":
            extra["CalibPercentile"] = 99.999
        with quiet_quantizer():
            quantize_static(str(model), str(dst), reader,
                            quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                            per_channel=per_channel, reduce_range=reduce_range, activation_type=types[activation],
                            weight_type=types[weight], calibrate_method=methods[method], extra_options=extra)
    ops: Dict[str, int] = {}
    for node in onnx.load(str(dst), load_external_data=False).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"method": method, "format": fmt, "per_channel": per_channel, "reduce_range": reduce_range,
            "activation_type": activation, "weight_type": weight, "activation_symmetric": symmetric,
            "weight_symmetric": True, "preprocessed": preprocess, "samples": reader.count,
            "ops": dict(sorted(ops.items()))}


def quantize_cpu(bundle: Bundle, role: str, *, method: str = "minmax", fmt: str = "qdq", per_channel: bool = True,
                 reduce_range: bool = False, force: bool = False) -> List[NewArtifact]:
    """The CPU-form INT8 graph of ``role`` as an artifact to add (``bundle.add_artifacts``), file
    ``<role>.int8.cpu.onnx``, made from the role's calibration feeds.

    ConfigError for a role the family rules keep out of INT8 (unless ``force``) or a bad choice;
    CalibrationError (from load_feeds) when the role has no feeds or they are stale."""
    rule = bundle.rules.precision_rule(role)  # ManifestError for a role the family lacks
    if not rule.allows("int8") and not force:
        raise ConfigError("role %s of a %s bundle is kept out of INT8" % (role, bundle.family), rule.why,
                          "quantize the roles the rules allow, or pass --force to quantize it anyway "
                          "(and measure what it costs)")
    _check_choice("method", method, METHODS)
    _check_choice("format", fmt, FORMATS)
    feeds = load_feeds(bundle, role)
    calibration = bundle.graph(role).find(CALIBRATION)[-1]
    with tempfile.TemporaryDirectory(prefix="edgevid-int8-") as tmp:
        out = Path(tmp) / cpu_file(role)
        settings = quantize_file(bundle.path(bundle.graph(role)), out, feeds, method=method, fmt=fmt,
                                 per_channel=per_channel, reduce_range=reduce_range)
        data = out.read_bytes()  # held in memory so the artifact is written only when the caller adds it
    import onnxruntime
    settings.update({"calibration": calibration.file, "data_sha256": calibration.info.get("data_sha256"),
                     "recipe": calibration.info.get("recipe"), "source_sha256": bundle.graph(role).sha256,
                     "onnxruntime": onnxruntime.__version__, "forced": bool(force and not rule.allows("int8"))})
    log.info("role %s: CPU INT8 (%s, %s, per_channel=%s, reduce_range=%s) from %d calibration samples",
             role, method, fmt, per_channel, reduce_range, settings["samples"])
    return [NewArtifact(role, "onnx", cpu_file(role), _bytes_writer(data), "int8",
                        {"target": TARGET, "quantization": settings})]


def _bytes_writer(data: bytes):
    def write(path: Path) -> None:
        with io.open(str(path), "wb") as f:
            f.write(data)
    return write


def _check_choice(what: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ConfigError("unknown %s %r" % (what, value), None, "choose one of " + ", ".join(allowed))
