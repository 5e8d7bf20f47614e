"""TensorRT engines as bundle artifacts: how they are named, what provenance they carry, which one a device
may run. Pure logic: nothing here imports TensorRT or touches a GPU, so every decision is testable anywhere.

::

    Device(trt_version="8.5.2.2", sm="72", dla_cores=2)          (backends/trt.py reads it off the device)
        │ engine_file(role, precision, device, dla_core)  → "fine_cnn.int8.trt8.5.sm72.engine"
        │ engine_info(device, …)                          → the artifact's provenance (spec.ARTIFACT_KINDS)
        ▼
    select_engine(bundle, role, precision, device, dla_core)
        the engine built for exactly this TensorRT version and GPU, or
        EngineMismatchError when the role's engines were built for another one (says: rebuild), or
        BuildError when the role has no engine at that precision (says: edgevid build)

A serialized engine only deserializes on the TensorRT version (all four parts) and GPU architecture (SM)
that built it, so both are compared exactly; the name carries major.minor and SM for people reading the
folder, the artifact's info carries the full version.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ..errors import BuildError, EngineMismatchError
from ..spec import Artifact

KIND = "engine"


@dataclass(frozen=True)
class Device:
    """What an engine is tied to: the TensorRT version that builds/runs it and the GPU's compute capability
    (``sm`` as digits, "72" for Xavier, "87" for Orin), with how many DLA cores the GPU has."""

    trt_version: str
    sm: str
    dla_cores: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        if not self.sm.isdigit():
            raise ValueError("sm must be digits such as '72', got %r" % (self.sm,))

    @property
    def trt_short(self) -> str:
        """major.minor of the TensorRT version ("8.5" of "8.5.2.2")."""
        return ".".join(self.trt_version.split(".")[:2])

    @property
    def tag(self) -> str:
        """``trt<M.m>.sm<NN>``: what the names of files tied to this device carry (engines, timing caches)."""
        return "trt%s.sm%s" % (self.trt_short, self.sm)

    def describe(self) -> str:
        return "%sTensorRT %s, SM %s" % (self.name + ", " if self.name else "", self.trt_version, self.sm)


def engine_file(role: str, precision: str, device: Device, dla_core: Optional[int] = None) -> str:
    """The engine's file name in the bundle, by provenance: ``<role>.<precision>.trt<M.m>.sm<NN>[.dla<N>].engine``."""
    dla = "" if dla_core is None else ".dla%d" % dla_core
    return "%s.%s.%s%s.engine" % (role, precision, device.tag, dla)


def engine_info(device: Device, *, dla_core: Optional[int], workspace_mib: int, source_sha256: str,
                **extra: Any) -> Dict[str, Any]:
    """The provenance an engine artifact records (the keys spec.ARTIFACT_KINDS requires, then ``extra``:
    source file and kind, build settings, layer precisions read back, build time …)."""
    info: Dict[str, Any] = {"trt_version": device.trt_version, "sm": device.sm, "dla_core": dla_core,
                            "workspace_mib": int(workspace_mib), "source_sha256": source_sha256}
    if device.name:
        info["gpu"] = device.name
    info.update(extra)
    return info


def mismatch(artifact: Artifact, device: Device) -> Optional[str]:
    """Why ``artifact`` cannot run on ``device`` (None when it can)."""
    info = artifact.info
    if str(info.get("trt_version")) != device.trt_version:
        return "built with TensorRT %s, this device has %s" % (info.get("trt_version"), device.trt_version)
    if str(info.get("sm")) != device.sm:
        return "built for SM %s, this GPU is SM %s" % (info.get("sm"), device.sm)
    core = info.get("dla_core")
    if core is not None and int(core) >= device.dla_cores:
        return "built for DLA core %s, this device has %d DLA cores" % (core, device.dla_cores)
    return None


def stale(artifact: Artifact, source_sha256: str) -> bool:
    """True when the engine was built from another version of its source ONNX (re-exported or re-quantized)."""
    return artifact.info.get("source_sha256") != source_sha256


def engines_of(bundle: Any, role: str, precision: Optional[str] = None) -> List[Artifact]:
    """The role's engine artifacts, of ``precision`` when given."""
    return [a for a in bundle.graph(role).find(KIND) if precision is None or a.precision == precision]


def select_engine(bundle: Any, role: str, precision: str, device: Device,
                  dla_core: Optional[int] = None) -> Artifact:
    """The role's ``precision`` engine that runs on ``device`` (on ``dla_core``, or on the GPU when None)."""
    found = [a for a in engines_of(bundle, role, precision) if a.info.get("dla_core") == dla_core]
    for artifact in found:
        if mismatch(artifact, device) is None:
            return artifact
    where = "DLA core %d" % dla_core if dla_core is not None else "the GPU"
    if found:
        raise EngineMismatchError(
            "no %s engine of role %s runs on this device (%s)" % (precision, role, device.describe()),
            "; ".join("%s: %s" % (a.file, mismatch(a, device)) for a in found),
            "rebuild on this device: edgevid build %s --precision %s" % (bundle.root, precision))
    have = sorted({str(a.precision) for a in engines_of(bundle, role)})
    raise BuildError("role %s has no %s engine for %s" % (role, precision, where),
                     "engines present: %s" % (", ".join(have) if have else "none"),
                     "build them on the device: edgevid build %s --precision %s" % (bundle.root, precision))
