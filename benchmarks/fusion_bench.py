"""The fused stream against its members on this CPU, and the fusion demo's accuracies (seed 000, docs/fusion.md).

    edgevid demo --model fusion --out DEMO        # once: members, fusion bundle, held-out stream, report.json
    python benchmarks/fusion_bench.py --demo DEMO [--repeats 3]

Speed: the held-out stream file read as fast as possible, through each member alone and through the fusion
(pipelined and sequential), interleaved, ``--repeats`` times; the ratio fused / slowest member is taken within each
repeat (the machine is shared and noisy), its median reported. The flow stage's cost per frame is from the same
runs. Accuracy: the demo's report (each member, boost-u, boost-c and equal weights on the held-out stream, from one
fused run), with the weights.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results  # noqa: E402
from edgevid.fusion.runtime import run_fusion_stream  # noqa: E402
from edgevid.fusion.weights import weight_text  # noqa: E402
from edgevid.runtime.cli_run import run_stream  # noqa: E402


def speeds(demo: Path, repeats: int) -> Dict[str, Any]:
    stream = str(demo / "data" / "stream.avi")
    members = json.loads((demo / "fusion" / "fusion.json").read_text())["members"]
    runs: Dict[str, List[Dict[str, Any]]] = {}
    for _ in range(repeats):
        for m in members:
            runs.setdefault(m["name"], []).append(run_stream(demo / "fusion" / m["path"], stream, backend="ort"))
        for pipelined in (True, False):
            name = "fused" if pipelined else "fused, sequential"
            runs.setdefault(name, []).append(run_fusion_stream(demo / "fusion", stream, backend="ort",
                                                               pipelined=pipelined))
    names = [m["name"] for m in members]
    ratio = [runs["fused"][r]["fps"] / min(runs[n][r]["fps"] for n in names) for r in range(repeats)]
    out = {name: {"fps": statistics.median(s["fps"] for s in stats),
                  "latency_p50_ms": statistics.median(s["latency_ms"]["p50"] for s in stats),
                  "flow_ms_p50": _median_stage(stats, "flow")} for name, stats in runs.items()}
    return {"runs": out, "fused_vs_slowest_member": {"per_repeat": ratio, "median": statistics.median(ratio)},
            "frames": runs["fused"][0]["frames"], "members": names}


def _median_stage(stats: List[Dict[str, Any]], stage: str):
    values = [(s["stages_ms"].get(stage) or {}).get("p50") for s in stats]
    return statistics.median(values) if all(v is not None for v in values) else None


def markdown(speed: Dict[str, Any], report: Dict[str, Any], repeats: int) -> str:
    lines = ["# Fusion: colour + optical flow (seed 000) on this CPU", "",
             "`python benchmarks/fusion_bench.py --demo DEMO` after `edgevid demo --model fusion --out DEMO` "
             "(seed %d%s). ONNX Runtime, 2 shared cores." % (report["seed"], ", --quick" if report["quick"] else ""),
             "", "## Accuracy on the held-out stream (%d frames, %d segments of %d frames)" % (
                 report["frames"], report["accuracy"]["segments"], report["settings"]["stream_frames"]), "",
             "| representation | weights | segments | frames | change delay p50 (frames) |", "|---|---|---|---|---|"]
    rows = [("%s member" % n, weight_text(m["weight"]), m["accuracy"]) for n, m in report["members"].items()]
    rows += [("fused, %s" % k, "θ = %s" % _w(v["theta"]), v["accuracy"]) for k, v in report["fusion"].items()]
    for name, weights, acc in rows:
        delay = acc["change_delay"]["frames"]["p50"]
        lines.append("| %s | %s | %.1f%% | %.1f%% | %s |" % (name, weights, 100 * acc["segment_accuracy"],
                                                             100 * acc["frame_accuracy"],
                                                             "n/a" if delay is None else "%.0f" % delay))
    classes = list(report["members"][next(iter(report["members"]))]["accuracy"]["per_class_segment_accuracy"])
    lines += ["", "Per class (segment accuracy, %):", "", "| | " + " | ".join(classes) + " |",
              "|---|" + "---|" * len(classes)]
    for name, _, acc in rows:
        per = acc["per_class_segment_accuracy"]
        lines.append("| %s | " % name + " | ".join("%.0f" % (100 * per[c]) for c in classes) + " |")
    held = report["held_out"]
    lines += ["", "Weights learned on the %d validation videos (accuracy there: %s; fused %.1f%%)." % (
        held["videos"], ", ".join("%s %.1f%%" % (k, 100 * v) for k, v in held["accuracy"].items() if k != "fused"),
        100 * held["accuracy"]["fused"]), "",
        "## Speed (the stream file read as fast as possible; median of %d interleaved repeats)" % repeats, "",
        "| run | FPS | capture-to-label p50 (ms, includes queueing) | flow stage p50 (ms) |", "|---|---|---|---|"]
    for name, r in speed["runs"].items():
        lines.append("| %s | %.1f | %.1f | %s |" % (name, r["fps"], r["latency_p50_ms"],
                                                     "—" if r["flow_ms_p50"] is None else "%.2f" % r["flow_ms_p50"]))
    ratio = speed["fused_vs_slowest_member"]
    lines += ["", "Fused FPS / slowest member's FPS alone: median %.2f (per repeat %s)." % (
        ratio["median"], ", ".join("%.2f" % x for x in ratio["per_repeat"])), ""]
    return "\n".join(lines)


def _w(theta: Any) -> str:
    """A fusion's whole θ: ``[0.282, 0.718]`` (boost-u) or ``per class`` (boost-c, in the JSON)."""
    if theta and isinstance(theta[0], list):
        return "per class"
    return "[%s]" % ", ".join("%.3f" % x for x in theta)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", required=True, help="folder written by 'edgevid demo --model fusion'")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cpu-2core"))
    args = parser.parse_args()
    demo = Path(args.demo)
    report = json.loads((demo / "report.json").read_text())
    speed = speeds(demo, args.repeats)
    write_results(Path(args.out), "fusion", {"speed": speed, "demo_report": {
        k: report[k] for k in ("seed", "quick", "flow", "members", "fusion", "held_out", "accuracy")}},
        markdown(speed, report, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
