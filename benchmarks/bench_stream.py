"""The stream and memory figures of ``edgevid bench`` on one bundle, printed against the issue's targets.

    python benchmarks/bench_stream.py [--bundle /work/perf-demo/bundle] [--source SPEC] [--frames N] [--out DIR]

Calls the package (edgevid.bench.stream.measure_streams, edgevid.bench.memory.measure_memory,
edgevid.bench.stream_plots.write_stream_plots): no measurement code of its own. Writes ``stream.json``,
``stream.md`` and the plots into ``--out``. Targets (issue 11; reported, not asserted): pipelined ≥ 1.6×
sequential and ≥ 0.85 of the compute-bound limit; paced capture-to-label p99 ≤ 2× the per-frame compute;
runtime peak RSS ≤ 220 MB with torch never imported.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results  # noqa: E402

from edgevid.bench.memory import measure_memory  # noqa: E402
from edgevid.bench.report import points_text  # noqa: E402
from edgevid.bench.stream import measure_streams  # noqa: E402
from edgevid.bench.stream_plots import write_stream_plots  # noqa: E402

# the demo's held-out stream seed (seed + 2000), segments of four 8-frame clips (the demo's training clips), at a
# camera's 30 fps
DEFAULT_SOURCE = "synthetic:seed=2000,segments=10,frames=32,clip=8,fps=30"


def targets(streams: dict, memory: dict) -> list:
    """(what, measured, target, met) rows; a figure not measured reads None and is not met."""
    t, cb, paced = streams["throughput"], streams["compute_bound"], streams["paced"]
    return [("pipelined / sequential", t["pipelined_over_sequential"], ">= 1.6", _ge(t["pipelined_over_sequential"], 1.6)),
            ("pipelined / compute-bound limit", cb.get("pipelined_over_limit"), ">= 0.85",
             _ge(cb.get("pipelined_over_limit"), 0.85)),
            ("paced p99 / per-frame compute (mean)", paced["p99_over_per_frame_compute"], "<= 2",
             _le(paced["p99_over_per_frame_compute"], 2.0)),
            ("paced p99 / per-frame compute (p99)", paced["p99_over_per_frame_compute_p99"], "<= 2",
             _le(paced["p99_over_per_frame_compute_p99"], 2.0)),
            ("runtime peak RSS (MB)", memory["peak_rss_mb"], "<= 220", _le(memory["peak_rss_mb"], 220.0)),
            ("torch imported by the runtime", memory["torch_loaded"], "False", memory["torch_loaded"] is False)]


def _ge(x, y):
    return x is not None and x >= y


def _le(x, y):
    return x is not None and x <= y


def markdown(r: dict) -> str:
    s, m = r["streams"], r["memory"]
    t, paced, cb = s["throughput"], s["paced"], s["compute_bound"]
    acc, cmp = s["accuracy"], s["gated_vs_always_fine"]
    lines = ["# Stream benchmark: %s" % r["bundle"], "", "Measured by `%s` on %s; source `%s`, %s backend." % (
        r["command"], r["date"], s["source"], s["backend"]), "",
        "| figure | measured | target | met |", "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % (name, _f(v), goal, "yes" if ok else "no") for name, v, goal, ok in r["targets"]]
    lines += ["", "| run | FPS | capture-to-label p50 / p99 ms | dropped |", "|---|---|---|---|"]
    for name, run in (("pipelined", t["pipelined"]), ("sequential", t["sequential"]), ("paced", paced),
                      ("always-fine (pipelined)", s["always_fine"])):
        if "not_measured" in run:
            lines.append("| %s | not measured: %s | | |" % (name, run["not_measured"]))
            continue
        lat = run["latency_ms"]
        lines.append("| %s | %s | %s / %s | %s |" % (name, _f(run["fps"]), _f(lat["p50"]), _f(lat["p99"]), run["dropped"]))
    lines += ["", "Compute-bound limit %s FPS (%s ms per frame of graphs, from the sequential run's graph "
              "timings at the measured fine rate); per-frame compute mean %s / p99 %s ms (sequential capture-to-label)." % (
                  _f(cb.get("limit_fps")), _f(cb.get("compute_ms_per_frame")), _f(paced["per_frame_compute_ms"]["mean"]),
                  _f(paced["per_frame_compute_ms"]["p99"]))]
    if "not_measured" not in acc:
        d = acc["change_delay"]
        lines += ["", "Accuracy: segment %s, per frame %s; change delay p50 / max %s / %s frames (%s / %s ms), "
                  "%d of %d changes never labelled." % (_f(acc["segment_accuracy"]), _f(acc["frame_accuracy"]),
                                                        _f(d["frames"]["p50"]), _f(d["frames"]["max"]),
                                                        _f((d["ms"] or {}).get("p50")), _f((d["ms"] or {}).get("max")),
                                                        d["missed"], d["changes"])]
    if "not_measured" not in cmp:
        lines += ["", "Gated / always-fine: time per frame %s, GMACs per frame %s, accuracy %s (%s)." % (
            _f(cmp["time_per_frame"]), _f(cmp["gmacs_per_frame"]), points_text(cmp.get("accuracy_points")),
            cmp["always_fine_means"])]
    lines += ["", "Memory: baseline after import edgevid %s MB, peak %s MB (%s); tegrastats: %s." % (
        _f(m["baseline_rss_mb"]), _f(m["peak_rss_mb"]), m["measures"],
        m["tegrastats"].get("not_measured", "sampled")), "", "Plots: " + ", ".join(r["plots"])]
    return "\n".join(lines) + "\n"


def _f(x):
    if isinstance(x, float):
        return "%.3g" % x if abs(x) < 10 else "%.1f" % x
    return str(x)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="/work/perf-demo/bundle")
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--frames", type=int, help="cap every run at N source frames")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--out", default="benchmarks/results/_scratch/bench_stream")
    args = parser.parse_args()
    out = Path(args.out)
    streams = measure_streams(args.bundle, args.source, backend=args.backend, frames=args.frames,
                              progress=lambda m: print(m, file=sys.stderr, flush=True))
    print("memory: the runtime path in a child process", file=sys.stderr, flush=True)
    memory = measure_memory(args.bundle, args.source, backend=args.backend, frames=200)
    result = {"command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"),
              "bundle": args.bundle, "streams": streams, "memory": memory}
    result["targets"] = targets(streams, memory)
    result["plots"] = write_stream_plots(result, out)
    write_results(out, "stream", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
