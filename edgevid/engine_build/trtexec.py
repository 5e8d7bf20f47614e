"""The build plan as ``trtexec`` command lines (``edgevid build --print-trtexec``): the same engines, made by
NVIDIA's tool, for comparing or for a device where edgevid's Python cannot build. Needs no TensorRT."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import List

from ..backends.engines import Device
from .plan import BuildPlan, RolePlan

FLAG_OPTIONS = {"FP16": "--fp16", "INT8": "--int8"}


def timing_cache_file(device: Device) -> str:
    """The timing cache beside the engines, one per TensorRT version and GPU (a cache only helps its own)."""
    return "timing.%s.cache" % device.tag


def command(item: RolePlan, root: Path, timing_cache: str) -> str:
    """One trtexec line for ``item`` (paths under the bundle folder ``root``)."""
    def path(name: str) -> str:
        return shlex.quote(str(root / name))

    words = ["trtexec", "--onnx=" + path(item.source), "--saveEngine=" + path(item.engine)]
    words += [FLAG_OPTIONS[f] for f in item.flags if f in FLAG_OPTIONS]
    if item.strongly_typed:
        words.append("--stronglyTyped")
    if item.calibration == "cache":
        words.append("--calib=" + path(item.calibration_file or ""))
    if item.dla_core is not None:
        words += ["--useDLACore=%d" % item.dla_core, "--allowGPUFallback"]
    words += ["--memPoolSize=workspace:%dM" % item.workspace_mib, "--timingCacheFile=" + path(timing_cache)]
    return " ".join(words)


def lines(plan: BuildPlan, root: Path) -> List[str]:
    """Per engine of ``plan``: its notes as comments, then its trtexec line (or why it has none)."""
    out = ["# %s, %s: %d engine(s)" % (root, plan.device.describe(), len(plan.items))]
    for role, excluded in plan.excluded.items():
        out += ["# %s %s: no candidate: %s" % (role, precision, why) for precision, why in excluded.items()]
    cache = timing_cache_file(plan.device)
    for item in plan.items:
        out += ["# %s %s: %s" % (item.role, item.precision, note) for note in item.notes]
        if item.calibration == "cache":
            out += _cache_note(item, root, plan.device.trt_version)
        if item.calibration == "feeds":
            # trtexec has no way to feed recorded inputs to a calibrator
            out.append("# %s int8: calibration from the stored feeds has no trtexec equivalent; "
                       "use --calibration cache or qdq to print one" % item.role)
            continue
        out.append(command(item, root, cache))
    return out


def _cache_note(item: RolePlan, root: Path, trt_version: str) -> List[str]:
    """trtexec's calibrator is an EntropyCalibrator2 and discards a cache whose line 1 names another version or
    calibrator (tensorrt-facts.md §2); edgevid build rewrites the header in memory, trtexec reads the file."""
    from ..quant.trt_int8 import trt_header

    text = (root / (item.calibration_file or "")).read_text()
    head = text.split("\n", 1)[0]
    wanted = trt_header(trt_version, "entropy")
    if head == wanted:
        return []
    return ["# %s int8: %s starts with %s; trtexec takes it only as %s (edgevid build adapts it itself)"
            % (item.role, item.calibration_file, head, wanted)]
