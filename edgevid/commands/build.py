"""``edgevid build BUNDLE``: TensorRT engines on the device, or with ``--print-trtexec`` the trtexec lines."""
from __future__ import annotations

import re
import sys
from typing import Any, Dict, Optional, Tuple

from . import print_json
from ..errors import ConfigError, DependencyError


def main(args) -> int:
    from ..bundle import load_bundle

    bundle = load_bundle(args.bundle)
    if args.print_trtexec:
        return print_trtexec(bundle, args)
    if args.trt_version or args.sm:
        raise ConfigError("--trt-version and --sm describe a device for --print-trtexec only",
                          "a build reads the TensorRT version and GPU of the machine it runs on",
                          "add --print-trtexec, or leave them out")
    from ..engine_build.builder import build

    def progress(text: str) -> None:
        print("build: " + text, file=sys.stderr)

    report = build(bundle, args.precision, calibration=args.calibration, dla=args.dla, workspace_mib=args.workspace,
                   roles=args.roles, force=args.force, progress=None if args.quiet else progress)
    print_json(report) if args.json else print_report(report)
    return 0


def print_trtexec(bundle: Any, args) -> int:
    from ..engine_build.plan import make_plan
    from ..engine_build.trtexec import lines

    device, caps = target(args)
    plan = make_plan(bundle, args.precision, device, caps, calibration=args.calibration, dla=args.dla,
                     workspace_mib=args.workspace, roles=args.roles)
    for line in lines(plan, bundle.root):
        print(line)
    return 0


def target(args) -> Tuple[Any, Any]:
    """(Device, Caps) to print for: from --trt-version/--sm, else this machine's TensorRT and GPU."""
    from ..backends.engines import Device
    from ..engine_build.builder import device_and_caps
    from ..engine_build.plan import Caps

    if bool(args.trt_version) != bool(args.sm):
        raise ConfigError("--trt-version and --sm go together", "an engine is tied to both",
                          "pass both (e.g. --trt-version 8.5.2.2 --sm 72) or neither")
    if args.trt_version:
        version, sm = _version(args.trt_version), _sm(args.sm)
        # a device we cannot inspect: trust the DLA core asked for (the build on the device checks it)
        return Device(version, sm, dla_cores=0 if args.dla is None else args.dla + 1), Caps.assumed(version)
    try:
        return device_and_caps(None, None)[:2]
    except DependencyError as e:
        raise DependencyError(e.what, e.why, "pass the device's --trt-version and --sm to print without it; "
                              + (e.fix or "")) from e


def _version(text: str) -> str:
    if not re.match(r"^\d+\.\d+(\.\d+){0,2}$", text):
        raise ConfigError("--trt-version %r is not a TensorRT version" % text, "it reads like 8.5.2.2 or 10.3.0",
                          "pass the version dpkg -l | grep nvinfer shows on the device")
    return text


def _sm(text: str) -> str:
    digits = text.lower().replace("sm_", "").replace("sm", "").replace(".", "")
    if not digits.isdigit():
        raise ConfigError("--sm %r is not a compute capability" % text, "it reads like 72 (Xavier) or 87 (Orin)",
                          "pass the GPU's compute capability")
    return digits


def print_report(report: Dict[str, Any]) -> None:
    print("engines of %s (%s), precision %s:" % (report["bundle"], report["device"], report["precision"]))
    for e in report["engines"]:
        layers: Optional[Dict[str, Any]] = e.get("layers")
        detail = " %.1f s" % e["build_s"] if "build_s" in e else ""
        if layers and layers.get("available"):
            detail += ", layers %s" % layers["counts"]
        where = "" if e["dla_core"] is None else " DLA %d" % e["dla_core"]
        print("  %-12s %-5s %-7s %s%s  (%s%s)" % (e["role"], e["precision"], e["action"], e["engine"], where,
                                                  e["why"], ";" + detail if detail else ""))
        for note in e["notes"]:
            print("  %-12s   note: %s" % ("", note))
    for role, record in sorted(report.get("best", {}).items()):
        timings = ", ".join("%s %.3f ms" % kv for kv in sorted(record["timings_ms"].items()))
        print("best %-12s %s (%s)" % (role, record["precision"], timings))
        for precision, why in sorted(record["refused"].items()):
            print("  %-12s   %s refused: %s" % ("", precision, why))
        for precision, why in sorted(record.get("excluded", {}).items()):
            print("  %-12s   %s not built: %s" % ("", precision, why))
    print("timing cache: %s" % report["timing_cache"], file=sys.stderr)
