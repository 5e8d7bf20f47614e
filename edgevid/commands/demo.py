"""``edgevid demo``: the main job, end to end on CPU; prints where the report and video are."""
from __future__ import annotations

import sys

from . import enable_progress, print_json


def main(args) -> int:
    from ..demo import run_demo

    report = run_demo(args.out, model=args.model, seed=args.seed, quick=args.quick, overwrite=args.overwrite,
                      progress=lambda message: print(message, file=sys.stderr, flush=True),
                      show_bars=enable_progress(args), precision=args.precision)
    if args.json:
        print_json(report)
        return 0
    if report["model"] == "fusion":
        from ..demo.fusion import format_report as format_fusion

        print(format_fusion(report, args.out))
    else:
        print(format_report(report, args.out))
    return 0


def _change_lines(acc, what: str) -> list:
    """The change delay, printed under the segment and per-frame accuracy (none for a stream without changes)."""
    d = acc.get("change_delay")
    if not d or not d["changes"]:
        return []
    if d["frames"]["p50"] is None:
        return ["  change delay    %sno action change labelled correctly (%d changes)" % (what, d["changes"])]
    return ["  change delay    %sp50 %.0f / max %.0f frames (%.0f / %.0f ms) after an action change, %d of %d never" % (
        what, d["frames"]["p50"], d["frames"]["max"], d["ms"]["p50"], d["ms"]["max"], d["missed"], d["changes"])]


def _stress_lines(report) -> list:
    stress = report.get("stress")
    if not stress:
        return []
    acc = stress["accuracy"]
    return ["  stress stream   %.1f%% of %d segments of %d frames (per frame %.1f%%)" % (
        100 * acc["segment_accuracy"], acc["segments"], stress["segment_frames"], 100 * (acc["frame_accuracy"] or 0.0))
    ] + _change_lines(acc, "stress: ")


def format_report(report, out) -> str:
    from ..demo import family_demo

    acc, lat = report["accuracy"], report["latency_ms"]
    files = report["files"]
    quick = report.get("quick", False)
    return "\n".join([
        "%s demo, ONNX Runtime on CPU%s" % (report["title"], " (--quick: a smoke test)" if quick else ""),
    ] + (["  note            quick run: a smoke test of the pipeline on tiny data; accuracy is not meaningful "
          "(run without --quick for a measured result)"] if quick else []) + [
        "  accuracy        %.1f%% of %d held-out segments (per frame %.1f%%)%s" % (
            100 * acc["segment_accuracy"], acc["segments"], 100 * (acc["frame_accuracy"] or 0.0),
            ", not meaningful in a quick run" if quick else ""),
    ] + _change_lines(acc, "") + _stress_lines(report) + family_demo(report["model"]).summary_lines(report)
      + _precision_lines(report) + [
        "  speed           %.1f FPS reading the stream file as fast as possible" % report["fps"],
        "  latency         p50 %.1f / p90 %.1f / p99 %.1f ms from capture to label" % (lat["p50"], lat["p90"],
                                                                                    lat["p99"]),
        "                  (the file is read as fast as possible, so frames queue and this includes queueing;",
        "                  at a camera's pace: edgevid bench %s/%s --source %s/%s --out DIR)" % (
            out, files["bundle"], out, files["stream"]),
        "report:          %s/report.json" % out,
        "annotated video: %s/%s" % (out, files["annotated_video"]),
        "bundle:          %s/%s  (try: edgevid run %s/%s --source %s/%s)" % (
            out, files["bundle"], out, files["bundle"], out, files["stream"]),
    ])


def _precision_lines(report) -> list:
    """What --precision made and what it cost (the whole report is in the bundle's quantization/ folder)."""
    p = report.get("precision")
    if not p:
        return []
    lines = []
    for name, plan in p["plans"].items():
        missed = ["%s %.4g (target %g)" % (k, v["measured"], v["target"]) for k, v in plan["targets"].items()
                  if not v["ok"]]
        lines.append("  precision       %s: %s reduced; top-1 agreement with FP32 %.1f%%; %s" % (
            name, ", ".join(plan["roles"]) or "no role", 100 * plan["top1_agreement"],
            "targets met" if not missed else "missed " + "; ".join(missed)))
    if p["kept"]:
        lines.append("                  kept FP32: %s" % ", ".join(sorted(p["kept"])))
    return lines
