"""What ``edgevid build`` makes for each role, decided before TensorRT is touched: plain Python, tested anywhere.

::

    bundle + precision (default | fp32 | fp16 | int8 | best) + Caps of the TensorRT that builds
        │ per role: backends.registry.role_precision (the family's PrecisionRule, what quantize kept FP32):
        │           the rule a run on TensorRT follows too, so what is built is what a run opens
        ▼
    RolePlan(role, precision, source ONNX, builder flags or strongly typed, calibration, DLA core, engine file)
        │ decide(): reuse the engine in the bundle, or (re)build it and why
        ▼
    builder.py (the build) / trtexec.py (the same plan as trtexec command lines)

Which ONNX an engine comes from depends on what the TensorRT offers, never on its version string:

- FP16: the FP32 ONNX with ``BuilderFlag.FP16`` where that flag exists (8.x, 10.x); the FP16 ONNX artifact as a
  strongly typed network where it does not (11.x).
- INT8: the Q/DQ ONNX (explicit quantization, every TensorRT from 8.5 on), with ``INT8`` + ``FP16`` flags where
  they exist so layers outside Q/DQ may run FP16; or, asked for with ``calibration="cache"|"feeds"`` where
  implicit calibrators exist (8.x, 10.x), the FP32 ONNX with the stored calibration cache or an on-device
  calibrator over the stored feeds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..backends.engines import Device, engine_file, engines_of, mismatch, stale
from ..backends.registry import DEFAULT, role_precision
from ..errors import BuildError, ConfigError

PRECISIONS = (DEFAULT, "fp32", "fp16", "int8", "best")
CALIBRATIONS = ("qdq", "cache", "feeds")
ORDER = ("int8", "fp16", "fp32")  # lowest first: the candidates of ``best``
DEFAULT_WORKSPACE_MIB = 1024


@dataclass(frozen=True)
class Caps:
    """What the TensorRT that builds can do, detected from its bindings (trt_ops.caps_of) or, for printing
    trtexec lines where no TensorRT is installed, assumed for a named release (``assumed``)."""

    precision_flags: bool = True   # BuilderFlag.FP16 / INT8 (8.x, 10.x; gone in 11)
    calibrators: bool = True       # IInt8EntropyCalibrator2 and IBuilderConfig.int8_calibrator (gone in 11)
    strongly_typed: bool = False   # NetworkDefinitionCreationFlag.STRONGLY_TYPED (10 on)
    explicit_batch: bool = True    # the network must be created with EXPLICIT_BATCH (8.x)

    @classmethod
    def assumed(cls, trt_version: str) -> "Caps":
        """The capabilities of a TensorRT release that is not installed here (``--print-trtexec --trt-version``).
        Only for printing: a real build detects them from the bindings (tensorrt-facts.md §5)."""
        major = int(trt_version.split(".")[0])
        if major >= 11:
            return cls(precision_flags=False, calibrators=False, strongly_typed=True, explicit_batch=False)
        if major >= 10:
            return cls(precision_flags=True, calibrators=True, strongly_typed=True, explicit_batch=False)
        return cls()


@dataclass(frozen=True)
class RolePlan:
    """One engine to have: from which ONNX, with which builder settings, under which file name."""

    role: str
    precision: str
    source: str                   # the ONNX file in the bundle the engine is built from
    source_sha256: str
    source_kind: str              # "fp32", "fp16" (FP16 ONNX) or "qdq"
    engine: str                   # engines.engine_file(...)
    flags: Tuple[str, ...] = ()   # BuilderFlag names ("FP16", "INT8", "GPU_FALLBACK")
    strongly_typed: bool = False
    calibration: Optional[str] = None   # None, "cache" (stored cache) or "feeds" (on-device calibrator)
    calibration_file: Optional[str] = None
    dla_core: Optional[int] = None
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    notes: Tuple[str, ...] = ()   # why a role stays FP32, why it runs on the GPU, …

    def settings(self) -> Dict[str, Any]:
        """What the engine's info records of how it was built; a difference means rebuild."""
        return {"source_file": self.source, "source_kind": self.source_kind, "flags": list(self.flags),
                "strongly_typed": self.strongly_typed, "calibration": self.calibration}


@dataclass
class BuildPlan:
    """Every engine of one ``edgevid build``: ``items`` to have, and per role the precision chosen and why."""

    device: Device
    precision: str
    items: List[RolePlan] = field(default_factory=list)
    kept: Dict[str, str] = field(default_factory=dict)  # role -> why it is FP32
    excluded: Dict[str, Dict[str, str]] = field(default_factory=dict)  # best: role -> {precision: why not built}


# ------------------------------------------------------------------------------------------- options

def check_options(bundle: Any, precision: str, calibration: str, dla: Optional[int], device: Device,
                  roles: Optional[Sequence[str]], workspace_mib: int) -> List[str]:
    """The roles to build; ConfigError for an option this bundle or device cannot use."""
    if precision not in PRECISIONS:
        raise ConfigError("unknown precision '%s'" % precision, "build makes " + ", ".join(PRECISIONS),
                          "use one of them")
    if calibration not in CALIBRATIONS:
        raise ConfigError("unknown calibration '%s'" % calibration, "INT8 comes from " + ", ".join(CALIBRATIONS),
                          "use one of them")
    if workspace_mib <= 0:
        raise ConfigError("workspace %d MiB" % workspace_mib, "the builder needs some scratch memory",
                          "pass --workspace 256 or more")
    chosen = list(roles) if roles else list(bundle.rules.roles)
    for role in chosen:
        bundle.graph(role)  # ManifestError for a role the bundle lacks
    if dla is not None:
        _check_dla(bundle, chosen, dla, device)
    return chosen


def _check_dla(bundle: Any, roles: Sequence[str], dla: int, device: Device) -> None:
    if device.dla_cores <= 0:
        raise ConfigError("--dla %d asked, but this GPU (%s) has no DLA" % (dla, device.describe()),
                          "DLA cores exist on Jetson AGX Xavier, Xavier NX and Orin AGX/NX, not on this GPU",
                          "leave out --dla to build for the GPU")
    if not 0 <= dla < device.dla_cores:
        raise ConfigError("DLA core %d does not exist" % dla, "this device has %d (0 to %d)"
                          % (device.dla_cores, device.dla_cores - 1), "pass --dla 0 or another core it has")
    volumetric = [r for r in roles if has_3d_input(bundle, r)]
    if volumetric:
        raise ConfigError("role %s cannot run on the DLA" % ", ".join(volumetric),
                          "its graph takes 5D clips: 3D convolutions, which the DLA does not implement",
                          "build it without --dla (GPU), or pass --role for the 2D roles only")


def has_3d_input(bundle: Any, role: str) -> bool:
    """True for a role fed [N,C,T,H,W] clips (SlowFast): its convolutions are 3D."""
    return any(len(t.shape) == 5 for t in bundle.graph(role).inputs)


# ------------------------------------------------------------------------------------------ the sources

def source_for(bundle: Any, role: str, precision: str, caps: Caps, calibration: str):
    """(source artifact, source kind, flags, strongly typed, calibration mode, calibration artifact) for one
    engine. BuildError when the bundle lacks the graph this TensorRT needs, ConfigError when the asked
    calibration does not exist on it."""
    graph = bundle.graph(role)
    if precision == "fp32":
        return graph.source, "fp32", (), not caps.precision_flags, None, None
    if precision == "fp16":
        if caps.precision_flags:
            return graph.source, "fp32", ("FP16",), False, None, None
        return _fp16_graph(bundle, role), "fp16", (), True, None, None
    if calibration == "qdq":
        flags = ("INT8", "FP16") if caps.precision_flags else ()  # FP16: layers outside Q/DQ need not stay FP32
        return _qdq_graph(bundle, role), "qdq", flags, not caps.precision_flags, None, None
    if not caps.calibrators:
        raise ConfigError("--calibration %s needs an implicit INT8 calibrator" % calibration,
                          "this TensorRT has none (TensorRT 11 builds INT8 only from Q/DQ graphs)",
                          "use --calibration qdq (the default)")
    kind = "calibration_cache" if calibration == "cache" else "calibration"
    found = graph.find(kind)
    if not found:
        raise BuildError("role %s has no %s" % (role, "calibration cache" if calibration == "cache" else
                                                "calibration feeds"),
                         "implicit INT8 takes its scales from it",
                         "make it with edgevid calibrate %s --recipe … and edgevid quantize --precision int8"
                         % bundle.root)
    if found[-1].info.get("source_sha256", graph.sha256) != graph.sha256:
        raise BuildError("the calibration %s of role %s is stale" % (kind.replace("_", " "), role),
                         "it was made for another version of %s" % graph.file,
                         "run edgevid calibrate and edgevid quantize --precision int8 again")
    return graph.source, "fp32", ("INT8", "FP16"), False, calibration, found[-1]


def _fp16_graph(bundle: Any, role: str):
    found = bundle.graph(role).find("onnx", "fp16")
    if not found:
        raise BuildError("role %s has no FP16 ONNX graph" % role,
                         "this TensorRT has no FP16 builder flag: FP16 engines come from an FP16 graph, "
                         "built strongly typed", "make it first: edgevid quantize %s --precision fp16" % bundle.root)
    return found[-1]


def _qdq_graph(bundle: Any, role: str):
    found = [a for a in bundle.graph(role).find("onnx", "int8") if a.info.get("target") == "trt"]
    if not found:
        raise BuildError("role %s has no Q/DQ INT8 graph for TensorRT" % role,
                         "INT8 engines are built from <role>.int8.trt.onnx (explicit quantization)",
                         "make it first: edgevid calibrate %s --recipe …, then edgevid quantize --precision int8"
                         % bundle.root)
    return found[-1]


# --------------------------------------------------------------------------------------------- the plan

def role_plan(bundle: Any, role: str, precision: str, device: Device, caps: Caps, *, calibration: str = "qdq",
              dla: Optional[int] = None, workspace_mib: int = DEFAULT_WORKSPACE_MIB,
              notes: Sequence[str] = ()) -> RolePlan:
    """The engine of ``role`` at ``precision`` (already resolved per role)."""
    source, kind, flags, typed, mode, calib = source_for(bundle, role, precision, caps, calibration)
    notes = list(notes)
    core = dla
    if dla is not None and precision == "fp32":
        core = None  # the DLA computes FP16/INT8 only
        notes.append("FP32 runs on the GPU: the DLA has no FP32")
    if core is not None:
        flags = tuple(flags) + ("GPU_FALLBACK",)
        if kind == "qdq" and not caps.strongly_typed:
            notes.append("TensorRT 8.x's DLA takes no Q/DQ graph: its layers fall back to the GPU; "
                         "--calibration cache builds implicit INT8 for the DLA")
    return RolePlan(role=role, precision=precision, source=source.file, source_sha256=source.sha256, source_kind=kind,
                    engine=engine_file(role, precision, device, core), flags=tuple(flags), strongly_typed=typed,
                    calibration=mode, calibration_file=None if calib is None else calib.file, dla_core=core,
                    workspace_mib=int(workspace_mib), notes=tuple(notes))


def make_plan(bundle: Any, precision: str, device: Device, caps: Caps, *, calibration: str = "qdq",
              dla: Optional[int] = None, workspace_mib: int = DEFAULT_WORKSPACE_MIB,
              roles: Optional[Sequence[str]] = None) -> BuildPlan:
    """Every engine ``edgevid build`` is to have: one per role, or for ``best`` one per candidate precision."""
    chosen = check_options(bundle, precision, calibration, dla, device, roles, workspace_mib)
    plan = BuildPlan(device=device, precision=precision)
    for role in chosen:
        options = dict(calibration=calibration, dla=dla, workspace_mib=workspace_mib)
        if precision == "best":
            items, plan.excluded[role] = candidates(bundle, role, device, caps, **options)
            plan.items.extend(items)
            continue
        got, why = role_precision(bundle, role, precision)
        if why:
            plan.kept[role] = why
        plan.items.append(role_plan(bundle, role, got, device, caps, notes=[why] if why else [], **options))
    return plan


def candidates(bundle: Any, role: str, device: Device, caps: Caps,
               **options: Any) -> Tuple[List[RolePlan], Dict[str, str]]:
    """(the engines ``best`` times for ``role``, {precision: why it is no candidate}): FP32 always, and each
    lower precision the rules allow, quantize did not keep higher, its report allows (best.refusal), and this
    TensorRT can build from what the bundle holds."""
    from .best import refusal

    found, excluded = [], {}
    for precision in ORDER:
        got, why = role_precision(bundle, role, precision)
        why = why if got != precision else refusal(bundle, role, precision)
        if why:
            excluded[precision] = why  # never built: an engine best may not pick is device time lost
            continue
        try:
            found.append(role_plan(bundle, role, precision, device, caps, **options))
        except (BuildError, ConfigError) as e:
            if precision == "fp32":
                raise
            excluded[precision] = str(e)  # that form is not in the bundle, or this TensorRT cannot take it
    return found, excluded


# ------------------------------------------------------------------------------------------ reuse or build

def decide(bundle: Any, item: RolePlan, device: Device, force: bool = False) -> Tuple[Optional[Any], str]:
    """(the engine artifact to keep, or None to build; why). An engine is reused only when it was built by this
    TensorRT for this GPU, from this very ONNX (sha256), with the same settings."""
    existing = [a for a in engines_of(bundle, item.role, item.precision) if a.file == item.engine]
    if not existing:
        return None, "no engine yet"
    artifact = existing[-1]
    if force:
        return None, "rebuild asked (--force)"
    wrong = mismatch(artifact, device)
    if wrong:
        return None, "rebuild: the engine in the bundle was %s" % wrong
    if stale(artifact, item.source_sha256):
        return None, "rebuild: %s changed since the engine was built" % item.source
    recorded = {k: artifact.info.get(k) for k in item.settings()}
    if recorded != item.settings() or artifact.info.get("workspace_mib") != item.workspace_mib:
        return None, "rebuild: built with other settings"
    return artifact, "unchanged: %s is what it was built from" % item.source
