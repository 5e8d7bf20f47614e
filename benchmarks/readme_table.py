"""The README's performance table, regenerated from fresh runs on this machine.

    python benchmarks/readme_table.py [--work DIR] [--readme README.md]

For each family: the demo (``edgevid demo --model F --out DIR/F``, skipped where DIR/F already holds its
bundle), then ``edgevid bench`` of that bundle on the demo's held-out stream (ground truth from its
``.labels.json``). The table goes to ``benchmarks/results/cpu-2core/readme_table.{json,md}`` and, with
``--readme``, between the ``<!-- perf-table -->`` markers of the README, next to the anchors it compares with.
Every figure comes from the bench reports of this run; the anchors are the papers' and the model zoo's.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results  # noqa: E402

FAMILIES = ("liteeval", "slowfast", "prernn")
TITLES = {"liteeval": "LiteEval", "slowfast": "SlowFast", "prernn": "PreRNN-SIH"}
START, END = "<!-- perf-table -->", "<!-- /perf-table -->"

# What each family's figures are compared with (../shared/docs/models.md §6, with their sources there)
ANCHORS = {
    "liteeval": "paper: 51.8% of GMACs saved at equal mAP on FCVID (94.3 vs 195.5 GMACs per video, ResNet-101 "
                "fine at 7.82 GMACs/frame; seed 004 Table 4.1)",
    "slowfast": "published R50 4×16 / 8×8: 36.69 / 65.71 GMACs per view at 256² (PyTorchVideo zoo); the demo is "
                "a small SlowFast, 8 frames at 128²",
    "prernn": "paper: best AUC 0.768 for SIH-GRU on fc6, up to 82% fewer recurrent parameters (seed 001 [0067], "
              "[0068]); no cost figures",
}
XAVIER = ("Jetson AGX Xavier FP16: the docs this project works from give no measured per-model latency. The "
          "thesis's 4.97 s per 30 SlowFast views (seed 002 Table 7.2) is GFLOPs divided by the device's peak, "
          "arithmetic that was never measured, so it is not quoted as a latency; the project's GPU-preprocessing "
          "issue quotes about 1.7 ms for MobileNetV2 and 1.6 ms for ResNet-18 per 224² frame without a source. "
          "`edgevid bench BUNDLE --backend trt` on the device gives the measured figures.")


def run(cmd: List[str], log: Path) -> None:
    """Run an edgevid command, its output into ``log``; a failure stops the script with the log's tail."""
    print("$ " + " ".join(cmd), file=sys.stderr)
    start = time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    print("  %.0f s, exit %d (log: %s)" % (time.perf_counter() - start, code, log), file=sys.stderr)
    if code != 0:
        sys.exit("%s failed; the end of %s:\n%s" % (cmd[3], log, "".join(open(log).readlines()[-15:])))


def measure(family: str, work: Path, frames: int, runs: int) -> Dict[str, Any]:
    """The demo (once) and a fresh bench of its bundle; the bench report."""
    demo = work / family
    python = [sys.executable, "-m", "edgevid"]
    if not (demo / "bundle" / "bundle.json").is_file():
        run(python + ["demo", "--model", family, "--out", str(demo)], work / (family + ".demo.log"))
    bench = demo / "bench"
    run(python + ["bench", str(demo / "bundle"), "--source", str(demo / "data" / "stream.avi"), "--out", str(bench),
                  "--checkpoint", str(demo / "checkpoint.pt"), "--overwrite", "--frames", str(frames),
                  "--runs", str(runs)], work / (family + ".bench.log"))
    return json.loads((bench / "bench.json").read_text())


def _get(d: Any, *path: str) -> Optional[Any]:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def row(family: str, report: Dict[str, Any]) -> Dict[str, Any]:
    """The figures of one family's table row, every one read from its bench report (None: not measured)."""
    streams, memory = report.get("streams", {}), report.get("memory", {})
    graphs = {r["role"]: (r["latency_ms"]["p50"], r.get("vs_torch")) for r in _get(report, "graphs", "results") or []
              if r["backend"] == "ort" and r["precision"] == "fp32"}
    pipelined = _get(streams, "throughput", "pipelined") or {}
    gated = _get(streams, "gated_vs_always_fine") or {}
    return {
        "family": family,
        "graph_p50_ms": graphs,
        "fps_pipelined": pipelined.get("fps"),
        "fps_sequential": _get(streams, "throughput", "sequential", "fps"),
        "pipelined_over_sequential": _get(streams, "throughput", "pipelined_over_sequential"),
        "pipelined_over_limit": _get(streams, "compute_bound", "pipelined_over_limit"),
        "paced_fps": _get(streams, "paced", "source_fps"),
        "paced_p50_ms": _get(streams, "paced", "latency_ms", "p50"),
        "paced_p99_ms": _get(streams, "paced", "latency_ms", "p99"),
        "gmacs_per_frame": pipelined.get("gmacs_per_frame"),
        "fine_rate": pipelined.get("fine_rate"),
        "gmacs_vs_always_fine": gated.get("gmacs_per_frame"),
        "segment_accuracy": _get(streams, "accuracy", "segment_accuracy"),
        "frame_accuracy": _get(streams, "accuracy", "frame_accuracy"),
        "change_delay_p50_ms": _get(streams, "accuracy", "change_delay", "ms", "p50"),
        "peak_rss_mb": memory.get("peak_rss_mb"),
        "torch_loaded": memory.get("torch_loaded"),
        "anchor": ANCHORS[family],
    }


def _n(value: Optional[float], fmt: str = "%.1f", scale: float = 1.0) -> str:
    return "not measured" if value is None else fmt % (value * scale)


def markdown(rows: List[Dict[str, Any]], meta: Dict[str, Any]) -> str:
    lines = ["Measured by `python benchmarks/readme_table.py --readme README.md` on %s (%s; %s). Each family: "
             "`edgevid demo`, then `edgevid bench --checkpoint` on the demo's held-out stream (`--frames %d`), "
             "ONNX Runtime FP32; × eager: PyTorch eager's time for the same graph over ONNX Runtime's." % (meta["date"], meta["machine"], meta["libraries"], meta["frames"]), "",
             "| model | graph p50 (ms) | stream FPS: pipelined / sequential (ratio; of compute limit) | paced "
             "%s: capture → label p50 / p99 | GMACs per frame | frames right / segments right | peak RSS, "
             "torch loaded | compare with |" % "at the stream's fps", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        graphs = ", ".join("%s %.2f (%s)" % (role, ms, _n(eager, "%.1f× eager")) for role, (ms, eager)
                           in sorted(r["graph_p50_ms"].items()))
        gmacs = _n(r["gmacs_per_frame"], "%.4f")
        if r["gmacs_vs_always_fine"] is not None:
            gmacs += " (fine model on %s of frames: %s saved vs always-fine)" % (
                _n(r["fine_rate"], "%.1f%%", 100), _n(1.0 - r["gmacs_vs_always_fine"], "%.1f%%", 100))
        lines.append("| %s | %s | %s / %s (%s; %s) | %s fps: %s / %s ms | %s | %s / %s | %s MB, %s | %s |" % (
            TITLES[r["family"]], graphs or "not measured", _n(r["fps_pipelined"]), _n(r["fps_sequential"]),
            _n(r["pipelined_over_sequential"], "%.2f×"), _n(r["pipelined_over_limit"], "%.2f"), _n(r["paced_fps"], "%.0f"),
            _n(r["paced_p50_ms"]), _n(r["paced_p99_ms"]), gmacs, _n(r["frame_accuracy"], "%.1f%%", 100),
            _n(r["segment_accuracy"], "%.1f%%", 100), _n(r["peak_rss_mb"], "%.0f"),
            {True: "yes", False: "no", None: "not measured"}[r["torch_loaded"]], r["anchor"]))
    return "\n".join(lines + ["", XAVIER]) + "\n"


def replace_between_markers(readme: Path, table: str) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        sys.exit("%s has no %s … %s markers: add them where the table goes" % (readme, START, END))
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    tmp = readme.with_name(readme.name + ".tmp")
    tmp.write_text(head + START + "\n" + table + END + tail)
    os.replace(str(tmp), str(readme))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="readme-table-work", help="folder for the demos and bench reports")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--frames", type=int, default=300, help="frames per end-to-end run (edgevid bench)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per graph (edgevid bench)")
    parser.add_argument("--readme", help="write the table into this README between the markers")
    parser.add_argument("--render-only", action="store_true",
                        help="render the last run's figures (readme_table.json in --out) again, measuring nothing")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cpu-2core"))
    args = parser.parse_args()
    if args.render_only:  # the last run's figures, rendered again (after editing the anchors)
        saved = json.loads((Path(args.out) / "readme_table.json").read_text())
        return finish(saved["rows"], saved["meta"], args)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    reports = {f: measure(f, work, args.frames, args.runs) for f in args.families}
    libraries = _get(reports[args.families[0]], "context", "libraries") or {}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "frames": args.frames,
            "machine": "%s, %d cores" % (platform.machine(), os.cpu_count() or 0),
            "libraries": ", ".join("%s %s" % (k, v) for k, v in sorted(libraries.items())
                                   if k in ("onnxruntime", "numpy", "cv2") and not str(v).startswith("unavailable"))}
    return finish([row(f, reports[f]) for f in args.families], meta, args)


def finish(rows: List[Dict[str, Any]], meta: Dict[str, Any], args: Any) -> int:
    for r in rows:
        r["anchor"] = ANCHORS[r["family"]]
    table = markdown(rows, meta)
    write_results(Path(args.out), "readme_table", {"meta": meta, "rows": rows}, table)
    if args.readme:
        replace_between_markers(Path(args.readme), table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
