"""Plain descriptions shared by exporter, bundle and runtime: tensors, preprocessing, graph roles.

Everything here is JSON-serialisable through ``to_dict``/``from_dict`` and imports nothing heavy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .errors import ManifestError

DTYPES = ("float32", "float16", "int8", "int32", "int64", "uint8", "bool")

MAX_DIM = 2 ** 31 - 1  # the int32 dimensions of TensorRT and ONNX Runtime


@dataclass(frozen=True)
class TensorSpec:
    """One named graph input or output with a static shape."""

    name: str
    shape: Tuple[int, ...]
    dtype: str = "float32"

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TensorSpec":
        try:
            spec = cls(str(d["name"]), tuple(int(x) for x in d["shape"]), str(d.get("dtype", "float32")))
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ManifestError("a tensor entry in bundle.json is malformed: %r" % (d,), str(e),
                                "re-export the bundle with 'edgevid export'") from e
        if spec.dtype not in DTYPES:
            raise ManifestError("tensor '%s' has unknown dtype '%s'" % (spec.name, spec.dtype),
                                "known dtypes are " + ", ".join(DTYPES), "re-export the bundle")
        if any(x < -1 or x > MAX_DIM for x in spec.shape):
            raise ManifestError("tensor '%s' has shape %s" % (spec.name, list(spec.shape)),
                                "a dimension is -1 (dynamic) or 0 to %d" % MAX_DIM, "re-export the bundle")
        return spec


# ImageNet statistics (docs/models.md §1.3), RGB order.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class PreprocessSpec:
    """How one decoded frame becomes network input (docs/models.md §1.3).

    The frame is resized so its short side is ``resize_short``, centre-cropped to ``crop``,
    converted to RGB, scaled by ``scale``, normalised by ``mean``/``std`` and laid out NCHW.
    Each entry of ``sizes`` is an extra square resolution made from that crop (bilinear,
    antialiased): LiteEval's coarse stream uses 112 from the 224 crop.
    ``flow`` (None for colour models) says the network takes optical-flow images, made from consecutive frames as
    these settings say (edgevid.data.flow.FlowSpec: method, bound, size), before the steps above: the runtime
    computes them in its flow stage, training in the data loader.
    """

    resize_short: int = 256
    crop: int = 224
    sizes: Tuple[int, ...] = (224,)
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    scale: float = 1.0 / 255.0
    color: str = "RGB"
    layout: str = "NCHW"
    flow: Optional[Dict[str, Any]] = field(default=None, hash=False)

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        if d["flow"] is None:
            del d["flow"]  # colour bundles read as they always did
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "PreprocessSpec":
        try:
            return cls(
                resize_short=int(d["resize_short"]), crop=int(d["crop"]),
                sizes=tuple(int(s) for s in d["sizes"]),
                mean=tuple(float(x) for x in d["mean"]), std=tuple(float(x) for x in d["std"]),
                scale=float(d.get("scale", 1.0 / 255.0)), color=str(d.get("color", "RGB")),
                layout=str(d.get("layout", "NCHW")), flow=_flow_entry(d.get("flow")),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ManifestError("the preprocessing entry of bundle.json is malformed", str(e),
                                "re-export the bundle with 'edgevid export'") from e


def _flow_entry(flow: Any) -> Optional[Dict[str, Any]]:
    if flow is not None and not isinstance(flow, dict):
        raise TypeError("preprocess.flow is %r, not a mapping of flow settings" % (flow,))
    return None if flow is None else dict(flow)


ARTIFACT_KINDS = {
    # kind: (what it is, the provenance keys its ``info`` must hold)
    "onnx": ("an ONNX graph: the FP32 export, a Q/DQ INT8 graph (info: quantization) or an FP16 graph", ()),
    "calibration": ("recorded calibration feeds of the role (.npz)", ("recipe", "data_sha256")),
    "calibration_cache": ("a TensorRT calibration cache (scales per tensor)", ("recipe", "data_sha256")),
    "report": ("a precision report (JSON or Markdown): what each precision costs, per role and end to end",
               ("precision",)),
    "engine": ("a TensorRT engine for one GPU and TensorRT version",
               ("trt_version", "sm", "dla_core", "workspace_mib", "source_sha256")),
}
ARTIFACT_PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class Artifact:
    """One file a role has: its kind, precision, checksum and the provenance that made it.

    ``info`` carries what the kind needs (:data:`ARTIFACT_KINDS`): a Q/DQ graph its quantization
    settings, calibration feeds and caches the recipe and data hash, an engine its TensorRT version,
    GPU SM, DLA core, workspace and the sha256 of the ONNX it was built from.
    """

    kind: str
    file: str
    sha256: str
    precision: Optional[str] = None
    info: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"kind": self.kind, "file": self.file, "sha256": self.sha256}
        if self.precision is not None:
            d["precision"] = self.precision
        if self.info:
            d["info"] = dict(self.info)
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Artifact":
        try:
            art = cls(kind=str(d["kind"]), file=str(d["file"]), sha256=str(d["sha256"]),
                      precision=None if d.get("precision") is None else str(d["precision"]),
                      info=dict(d.get("info") or {}))
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ManifestError("an artifact entry of bundle.json is malformed: %r" % (d,), str(e),
                                "re-export the bundle, or add artifacts only with edgevid's commands") from e
        art.check()
        return art

    def check(self) -> None:
        """ManifestError for an unknown kind or precision, or provenance the kind needs and lacks."""
        if self.kind not in ARTIFACT_KINDS:
            raise ManifestError("artifact %s has unknown kind %r" % (self.file, self.kind),
                                "known kinds are " + ", ".join(ARTIFACT_KINDS), "use a newer edgevid, or re-export")
        if self.precision is not None and self.precision not in ARTIFACT_PRECISIONS:
            raise ManifestError("artifact %s has unknown precision %r" % (self.file, self.precision),
                                "precisions are " + ", ".join(ARTIFACT_PRECISIONS), "re-export the bundle")
        needed = list(ARTIFACT_KINDS[self.kind][1])
        if self.kind == "onnx" and self.precision == "int8":
            needed.append("quantization")
        lacking = [k for k in needed if k not in self.info]
        if lacking:
            raise ManifestError("artifact %s (%s) lacks %s" % (self.file, self.kind, ", ".join(lacking)),
                                "a %s records where it came from" % self.kind, "make it again with edgevid's command")


@dataclass
class GraphSpec:
    """One role of a bundle: its I/O, cost and artifacts.

    ``file``/``sha256`` are the role's FP32 ONNX graph, which every role has (the source of every other
    artifact); ``artifacts`` holds the rest (Q/DQ or FP16 graphs, calibration feeds and caches, engines).
    """

    role: str
    file: str
    sha256: str
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    gmacs: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    artifacts: List[Artifact] = field(default_factory=list)

    @property
    def source(self) -> Artifact:
        """The FP32 ONNX graph as an Artifact."""
        return Artifact("onnx", self.file, self.sha256, "fp32")

    def all_artifacts(self) -> List[Artifact]:
        return [self.source] + list(self.artifacts)

    def find(self, kind: str, precision: Optional[str] = None) -> List[Artifact]:
        """Artifacts of ``kind`` (and ``precision`` when given), the FP32 ONNX first."""
        return [a for a in self.all_artifacts() if a.kind == kind and (precision is None or a.precision == precision)]

    def to_dict(self) -> Dict[str, Any]:
        d = {"inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs],
             "gmacs": self.gmacs, "artifacts": [a.to_dict() for a in self.all_artifacts()]}
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, role: str, d: Dict[str, Any]) -> "GraphSpec":
        """A schema-2 role entry (its artifacts list holds the FP32 ONNX first)."""
        known = {"inputs", "outputs", "gmacs", "artifacts"}
        try:
            artifacts = [Artifact.from_dict(a) for a in d["artifacts"]]
            inputs = [TensorSpec.from_dict(t) for t in d["inputs"]]
            outputs = [TensorSpec.from_dict(t) for t in d["outputs"]]
            gmacs = None if d.get("gmacs") is None else float(d["gmacs"])
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ManifestError("the entry of role %s in bundle.json is malformed" % role, str(e),
                                "re-export the bundle with 'edgevid export'") from e
        sources = [a for a in artifacts if a.kind == "onnx" and a.precision == "fp32"]
        if len(sources) != 1:
            raise ManifestError("role %s lists %d FP32 ONNX graphs" % (role, len(sources)),
                                "every role has exactly one, the source of its other artifacts", "re-export the bundle")
        rest = [a for a in artifacts if a is not sources[0]]
        return cls(role=role, file=sources[0].file, sha256=sources[0].sha256, inputs=inputs, outputs=outputs,
                   gmacs=gmacs, extra={k: v for k, v in d.items() if k not in known}, artifacts=rest)

    @classmethod
    def from_schema1(cls, role: str, d: Dict[str, Any]) -> "GraphSpec":
        """A schema-1 ``graphs`` entry: one FP32 ONNX file, no other artifacts (its "precision" was always fp32)."""
        known = {"role", "file", "sha256", "inputs", "outputs", "precision", "gmacs"}
        try:
            return cls(
                role=role, file=str(d["file"]), sha256=str(d["sha256"]),
                inputs=[TensorSpec.from_dict(t) for t in d["inputs"]],
                outputs=[TensorSpec.from_dict(t) for t in d["outputs"]],
                gmacs=None if d.get("gmacs") is None else float(d["gmacs"]),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ManifestError("a graph entry of bundle.json is malformed", str(e),
                                "re-export the bundle with 'edgevid export'") from e
