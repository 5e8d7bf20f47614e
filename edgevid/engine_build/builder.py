"""``edgevid build``: TensorRT engines for a bundle's roles, on the device, added to the bundle all or nothing.

::

    plan.make_plan (what to build; plain) ─► per engine: plan.decide (reuse or rebuild, and why)
        ─► trt_ops.make_engine (parse, configure, build, inspect) ─► layers.check (no silent downgrade)
        ─► best: trt_ops.time_engine per candidate (through the backend's TrtSession)
           ─► best.choose (fastest the quantize report allows)
        ─► bundle.add_artifacts(engines) + bundle.json "build" record, in one write

The device (TensorRT version, SM, DLA cores), the tensorrt module and the CUDA context are the TensorRT
backend's (backends/trt.py ``current_device``, ``tensorrt``; backends/cuda.py ``pushed``): one place reads
them for building and for running.

The timing cache (``timing.trt<M.m>.sm<NN>.cache``, beside the engines) is read before and written after each
build, so a rebuild or the next role reuses the tactics already timed; it is a build accelerator, not an
artifact a device needs to run.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .._version import __version__
from ..backends import cuda
from ..backends import trt as trt_backend
from ..backends.engines import Device, engine_info
from ..bundle import Bundle, NewArtifact
from ..fsutil import atomic_path
from ..log import get_logger
from . import best as best_mod
from . import calibration as calib_mod
from . import layers as layers_mod
from .plan import DEFAULT_WORKSPACE_MIB, BuildPlan, Caps, RolePlan, decide, make_plan
from .trtexec import timing_cache_file

log = get_logger(__name__)
Progress = Optional[Callable[[str], None]]
TIMING_RUNS = 50
PURPOSE = "edgevid build (TensorRT engines)"  # what needs TensorRT, in the DependencyError without it
GPU = 0  # the CUDA device builds run on: the one trt_backend.current_device() describes


def device_and_caps(device: Optional[Device], caps: Optional[Caps]) -> Tuple[Device, Caps, Any]:
    """(device, its TensorRT's caps, the tensorrt module or None): given ones are used as they are, the rest
    read off this machine (DependencyError without TensorRT)."""
    if device is not None and caps is not None:
        return device, caps, None
    from . import trt_ops

    trt = trt_backend.tensorrt(PURPOSE)
    return device or trt_backend.current_device(), caps or trt_ops.caps_of(trt), trt


@dataclass
class Outcome:
    """One engine of the plan: reused or built, and what the build found."""

    item: RolePlan
    action: str  # "reused" or "built"
    why: str
    data: Optional[bytes] = None  # the engine (built ones; reused ones are read from the bundle when timed)
    info: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        d = {"role": self.item.role, "precision": self.item.precision, "engine": self.item.engine,
             "source": self.item.source, "action": self.action, "why": self.why, "dla_core": self.item.dla_core,
             "notes": list(self.item.notes)}
        for key in ("build_s", "layers", "calibration_cache_adapted"):
            if key in self.info:
                d[key] = self.info[key]
        return d


def build(bundle: Bundle, precision: str = "default", *, device: Optional[Device] = None, caps: Optional[Caps] = None,
          calibration: str = "qdq", dla: Optional[int] = None, workspace_mib: int = DEFAULT_WORKSPACE_MIB,
          roles: Optional[Sequence[str]] = None, force: bool = False, progress: Progress = None,
          runs: int = TIMING_RUNS) -> Dict[str, Any]:
    """Build (or reuse) the engines ``precision`` needs for ``bundle`` on this device and add them to it.

    ``device``/``caps`` default to this machine's (tests pass them). Returns the report: per engine what was
    done and why, roles kept FP32 and why, and for ``best`` the timings and the choice per role."""
    device, caps, trt = device_and_caps(device, caps)
    plan = make_plan(bundle, precision, device, caps, calibration=calibration, dla=dla, workspace_mib=workspace_mib,
                     roles=roles)
    outcomes = []
    for item in plan.items:
        keep, why = decide(bundle, item, device, force)
        if keep is not None:
            outcomes.append(Outcome(item, "reused", why, info=dict(keep.info)))
            _say(progress, "%s %s: %s" % (item.role, item.precision, why))
            continue
        if trt is None:
            trt = trt_backend.tensorrt(PURPOSE)
        outcomes.append(_build_one(trt, bundle, item, device, why, progress))
    chosen = _choose_best(bundle, plan, outcomes, runs, progress) if precision == "best" else None
    _commit(bundle, plan, outcomes, chosen)
    return _report(bundle, plan, outcomes, chosen, calibration)


def _say(progress: Progress, text: str) -> None:
    log.info("%s", text)
    if progress:
        progress(text)


# ---------------------------------------------------------------------------------------------- one engine

def _build_one(trt: Any, bundle: Bundle, item: RolePlan, device: Device, why: str, progress: Progress) -> Outcome:
    from . import trt_ops

    _say(progress, "%s %s: building from %s (%s)" % (item.role, item.precision, item.source, why))
    cache_path = bundle.root / timing_cache_file(device)
    timing = cache_path.read_bytes() if cache_path.is_file() else b""
    calibrator, adapted = _calibrator(trt, bundle, item, device)
    # on-device calibration copies the feeds to the GPU during the build: the backend's CUDA context, current
    on_device = cuda.pushed(GPU) if item.calibration == "feeds" else contextlib.nullcontext()
    with on_device:
        try:
            built = trt_ops.make_engine(trt, item, (bundle.root / item.source).read_bytes(), timing_cache=timing,
                                        calibrator=calibrator, progress=progress)
        finally:
            if calibrator is not None:
                calibrator.release()
    summary = layers_mod.summarize(built.layer_info)
    layers_mod.check(item.role, item.precision, summary)
    _write_timing_cache(cache_path, built.timing_cache)
    info = engine_info(device, dla_core=item.dla_core, workspace_mib=item.workspace_mib,
                       source_sha256=item.source_sha256, **item.settings())
    info.update(build_s=round(built.seconds, 2), layers=summary, notes=list(item.notes), edgevid=__version__)
    if item.calibration_file:
        info.update(calibration_file=item.calibration_file, calibration_cache_adapted=adapted)
    _say(progress, "%s %s: built in %.1f s, layers %s" % (item.role, item.precision, built.seconds,
                                                         summary.get("counts", "not readable on this TensorRT")))
    return Outcome(item, "built", why, built.engine, info)


def _calibrator(trt: Any, bundle: Bundle, item: RolePlan, device: Device) -> Tuple[Any, bool]:
    """(the implicit-INT8 calibrator, or None; whether the stored cache's header was rewritten for this
    TensorRT). Made before the build: a feeds calibrator touches the GPU only once TensorRT asks for batches."""
    from . import trt_ops

    if item.calibration is None:
        return None, False
    if item.calibration == "cache":
        data, algorithm, adapted = calib_mod.load_cache(bundle, item.calibration_file or "", device.trt_version)
        return trt_ops.make_calibrator(trt, algorithm, data, None), adapted
    feeds = calib_mod.load_feeds(bundle, item.role)
    return trt_ops.make_calibrator(trt, "EntropyCalibration2", None, feeds), False


def _write_timing_cache(path: Path, data: bytes) -> None:
    if data:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)


# ---------------------------------------------------------------------------------------------------- best

def _choose_best(bundle: Bundle, plan: BuildPlan, outcomes: List[Outcome], runs: int,
                 progress: Progress) -> Dict[str, Any]:
    """Time every candidate engine on this device, then pick per role (best.choose). Engines built now are not
    in the bundle yet: they are timed from a scratch folder, reused ones from the bundle."""
    from . import trt_ops

    reports = {p: best_mod.report_of(bundle, p) for p in ("int8", "fp16")}
    chosen: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edgevid-best-") as scratch:
        for role in dict.fromkeys(o.item.role for o in outcomes):
            graph = bundle.graph(role)
            timings, refused = {}, {}
            for o in (o for o in outcomes if o.item.role == role):
                timings[o.item.precision] = trt_ops.time_engine(_engine_path(bundle, o, Path(scratch)), role,
                                                                (graph.inputs, graph.outputs),
                                                                dla_core=o.item.dla_core, runs=runs)
                refused[o.item.precision] = best_mod.refusal(bundle, role, o.item.precision,
                                                             reports.get(o.item.precision))
                _say(progress, "%s %s: %.3f ms" % (role, o.item.precision, timings[o.item.precision]))
            precision, record = best_mod.choose(timings, refused)
            record["excluded"] = plan.excluded.get(role, {})
            record["engine"] = next(o.item.engine for o in outcomes
                                    if o.item.role == role and o.item.precision == precision)
            chosen[role] = record
            _say(progress, "%s: best is %s" % (role, precision))
    return chosen


def _engine_path(bundle: Bundle, outcome: Outcome, scratch: Path) -> Path:
    """The file of ``outcome``'s engine: the bundle's for a reused one, written to ``scratch`` for a new one."""
    if outcome.data is None:
        return bundle.root / outcome.item.engine
    path = scratch / outcome.item.engine
    path.write_bytes(outcome.data)
    return path


# ------------------------------------------------------------------------------------------------ record

def _record(plan: BuildPlan, outcomes: List[Outcome], chosen: Optional[Dict[str, Any]],
            before: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """This device's "build" record: the roles built now replace theirs in ``before`` (a build of --role R
    leaves the other roles' record as it was)."""
    roles: Dict[str, Any] = dict((before or {}).get("roles") or {})
    for o in outcomes:
        if chosen is None or chosen[o.item.role]["engine"] == o.item.engine:
            roles[o.item.role] = {"precision": o.item.precision, "engine": o.item.engine}
            if o.item.role in plan.kept:
                roles[o.item.role]["kept"] = plan.kept[o.item.role]
    record = {"precision": plan.precision, "trt_version": plan.device.trt_version, "sm": plan.device.sm,
              "roles": roles, "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if chosen is not None:
        record["best"] = dict((before or {}).get("best") or {}, **chosen)
    return record


def _commit(bundle: Bundle, plan: BuildPlan, outcomes: List[Outcome], chosen: Optional[Dict[str, Any]]) -> None:
    """The built engines and the "build" record of bundle.json in one write (all or nothing)."""
    key = "trt%s.sm%s" % (plan.device.trt_version, plan.device.sm)  # one record per TensorRT and GPU
    before = bundle.meta.get("build")
    records = dict(before or {})
    records[key] = _record(plan, outcomes, chosen, records.get(key))
    bundle.meta["build"] = records
    new = [NewArtifact(o.item.role, "engine", o.item.engine, _writer(o.data), precision=o.item.precision,
                       info=o.info) for o in outcomes if o.action == "built"]
    try:
        if new:
            bundle.add_artifacts(new)
        else:
            bundle.save()
    except BaseException:
        if before is None:
            bundle.meta.pop("build", None)
        else:
            bundle.meta["build"] = before
        raise


def _writer(data: Optional[bytes]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(data or b"")
    return write


def _report(bundle: Bundle, plan: BuildPlan, outcomes: List[Outcome], chosen: Optional[Dict[str, Any]],
            calibration: str) -> Dict[str, Any]:
    report = {"bundle": str(bundle.root), "device": plan.device.describe(), "precision": plan.precision,
              "calibration": calibration, "engines": [o.to_dict() for o in outcomes], "kept": dict(plan.kept),
              "timing_cache": timing_cache_file(plan.device)}
    if chosen is not None:
        report["best"] = chosen
    return report
