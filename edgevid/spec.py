"""Plain descriptions shared by exporter, bundle and runtime: tensors, preprocessing, graph roles.

Everything here is JSON-serialisable through ``to_dict``/``from_dict`` and imports nothing heavy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .errors import ManifestError

DTYPES = ("float32", "float16", "int8", "int32", "int64", "uint8", "bool")


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
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError("a tensor entry in bundle.json is malformed: %r" % (d,), str(e),
                                "re-export the bundle with 'edgevid export'") from e
        if spec.dtype not in DTYPES:
            raise ManifestError("tensor '%s' has unknown dtype '%s'" % (spec.name, spec.dtype),
                                "known dtypes are " + ", ".join(DTYPES), "re-export the bundle")
        return spec


# ImageNet statistics (models.md §1.3), RGB order.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class PreprocessSpec:
    """How one decoded frame becomes network input (models.md §1.3).

    The frame is resized so its short side is ``resize_short``, centre-cropped to ``crop``,
    converted to RGB, scaled by ``scale``, normalised by ``mean``/``std`` and laid out NCHW.
    Each entry of ``sizes`` is an extra square resolution made from that crop (bilinear,
    antialiased): LiteEval's coarse stream uses 112 from the 224 crop.
    """

    resize_short: int = 256
    crop: int = 224
    sizes: Tuple[int, ...] = (224,)
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    scale: float = 1.0 / 255.0
    color: str = "RGB"
    layout: str = "NCHW"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "PreprocessSpec":
        try:
            return cls(
                resize_short=int(d["resize_short"]), crop=int(d["crop"]),
                sizes=tuple(int(s) for s in d["sizes"]),
                mean=tuple(float(x) for x in d["mean"]), std=tuple(float(x) for x in d["std"]),
                scale=float(d.get("scale", 1.0 / 255.0)), color=str(d.get("color", "RGB")),
                layout=str(d.get("layout", "NCHW")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError("the preprocessing entry of bundle.json is malformed", str(e),
                                "re-export the bundle with 'edgevid export'") from e


@dataclass
class GraphSpec:
    """One exported graph of a bundle: its role, file, checksum, I/O and precision."""

    role: str
    file: str
    sha256: str
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    precision: str = "fp32"
    gmacs: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        d = {"role": self.role, "file": self.file, "sha256": self.sha256,
             "inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs],
             "precision": self.precision, "gmacs": self.gmacs}
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "GraphSpec":
        known = {"role", "file", "sha256", "inputs", "outputs", "precision", "gmacs"}
        try:
            return cls(
                role=str(d["role"]), file=str(d["file"]), sha256=str(d["sha256"]),
                inputs=[TensorSpec.from_dict(t) for t in d["inputs"]],
                outputs=[TensorSpec.from_dict(t) for t in d["outputs"]],
                precision=str(d.get("precision", "fp32")),
                gmacs=None if d.get("gmacs") is None else float(d["gmacs"]),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError("a graph entry of bundle.json is malformed", str(e),
                                "re-export the bundle with 'edgevid export'") from e
