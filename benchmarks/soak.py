"""Long runs: resident memory, latency, threads and open files over 100,000 frames per family (issue 13's soak).

    python benchmarks/soak.py [--frames 100000] [--families liteeval slowfast prernn] [--demos DIR]

Each run is a fresh process streaming a demo bundle with ``edgevid run``'s runtime (ONNX Runtime) from a source
that loops: the demo's held-out video file (LiteEval also from the synthetic source, and overloaded: that source
released live at 600 fps, faster than the pipeline, so frames are dropped), PreRNN with a state reset
every step (``max_steps=1``: 100,000 resets), SlowFast through its ring buffer. Every 1,000 frames the process
samples its resident memory (VmRSS), threads, open file descriptors and the p99 capture-to-label latency of those
frames. Growth is measured after the warm-up (the first 10% of the run) against its end.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results  # noqa: E402

EVERY = 1000
OVERLOAD_FPS = 600  # a live source faster than any family's pipeline on this machine
RUNS = [("liteeval", "file"), ("liteeval", "synthetic"), ("prernn", "file"), ("slowfast", "file")]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024.0 for line in f if line.startswith("VmRSS"))


def child(bundle: str, source: str, frames: int, options: dict) -> dict:
    from edgevid.runtime.cli_run import run_stream

    samples, window = [], []
    start = time.perf_counter()

    def sample(pred) -> None:
        window.append(pred.latency * 1000.0)
        if len(window) == EVERY:
            samples.append({"frames": len(samples) * EVERY + EVERY, "s": time.perf_counter() - start,
                            "rss_mb": rss_mb(), "threads": threading.active_count(),
                            "fds": len(os.listdir("/proc/self/fd")), "p99_ms": float(np.percentile(window, 99))})
            window.clear()

    if source.startswith("paced:"):  # overload: a live source at that rate, faster than the pipeline
        stats = paced(bundle, source.partition(":")[2], frames, sample, options)
    else:
        stats = run_stream(bundle, source, loop=True, max_frames=frames, on_prediction=sample, **options)
    return {"samples": samples, "fps": stats["fps"], "frames": stats["frames"], "resets": stats.get("resets"),
            "clips": stats.get("clips"), "dropped": stats["dropped"], "source_frames": stats["source_frames"],
            "wall_s": time.perf_counter() - start}


def paced(bundle: str, source: str, frames: int, sample, options: dict) -> dict:
    """``frames`` predictions of the bundle on ``source`` (a spec with its fps) released at its frame rate, live."""
    from edgevid.runtime.source import PacedSource, open_source
    from edgevid.runtime.stream import StreamRuntime

    with open_source(source, loop=True) as src, StreamRuntime(bundle, **options) as runtime:
        for count, pred in enumerate(runtime.run(PacedSource(src)), 1):
            sample(pred)
            if count >= frames:
                break
        return runtime.stats.to_dict()


def summarize(run: dict) -> dict:
    s = run["samples"]
    after = s[max(1, len(s) // 10)]  # the end of the warm-up
    last = s[-1]
    p99 = [x["p99_ms"] for x in s[len(s) // 10:]]
    return {"rss_after_warmup_mb": after["rss_mb"], "rss_end_mb": last["rss_mb"],
            "rss_growth": last["rss_mb"] / after["rss_mb"] - 1.0, "rss_max_mb": max(x["rss_mb"] for x in s),
            "threads": sorted({x["threads"] for x in s}), "fds": sorted({x["fds"] for x in s}),
            "p99_ms_median": float(np.median(p99)), "p99_ms_max": float(np.max(p99)),
            "p99_first_vs_last_tenth": float(np.median(p99[-max(1, len(p99) // 10):]) /
                                             np.median(p99[:max(1, len(p99) // 10)]))}


def policy_line(r: dict) -> str:
    done = "%s clips" % r["clips"] if r.get("clips") else "%s state resets" % r["resets"]
    return done + ("; %d frames dropped" % r["dropped"] if r.get("dropped") else "")


def markdown(results: dict, meta: dict) -> str:
    lines = ["# Soak: %d frames per run" % meta["frames"], "",
             "Measured by `python benchmarks/soak.py` on %s (%s); ONNX Runtime, sources looping; samples every %d "
             "frames; growth from the end of the warm-up (first tenth) to the end." % (
                 meta["date"], meta["machine"], EVERY), "",
             "| run | predictions (source frames) | FPS | RSS after warm-up → end (growth) | max RSS | threads | open fds | p99 latency "
             "median / max ms (last tenth over first) | what the policy did |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        m = r["summary"]
        lines.append("| %s | %d (%s) | %.0f | %.1f → %.1f MB (%+.1f%%) | %.1f MB | %s | %s | %.1f / %.1f (%.2f×) | %s |" % (
            name, r["frames"], r.get("source_frames"), r["fps"], m["rss_after_warmup_mb"], m["rss_end_mb"], 100 * m["rss_growth"],
            m["rss_max_mb"], m["threads"], m["fds"], m["p99_ms_median"], m["p99_ms_max"],
            m["p99_first_vs_last_tenth"], policy_line(r)))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100000)
    parser.add_argument("--demos", default="/work/demos2", help="folder with the demos (edgevid demo --out DIR/F)")
    parser.add_argument("--runs", nargs="+", default=["%s:%s" % r for r in RUNS])
    parser.add_argument("--child", nargs=3, metavar=("BUNDLE", "SOURCE", "OPTIONS"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cpu-2core"))
    parser.add_argument("--name", default="soak", help="results file name (NAME.json, NAME.md)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.frames, json.loads(args.child[2]))))
        return 0
    results = {}
    for run in args.runs:
        family, kind = run.split(":")
        demo = Path(args.demos) / family
        source = {"file": str(demo / "data" / "stream.avi"), "synthetic": "synthetic:seed=7,segments=20,frames=32",
                  "overload": "paced:synthetic:seed=7,segments=20,frames=32,fps=%g" % OVERLOAD_FPS}[kind]
        options = {"max_steps": 1} if family == "prernn" else {}
        print("soak: %s from %s, %d frames" % (family, source, args.frames), file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--frames", str(args.frames), "--child", str(demo / "bundle"),
                              source, json.dumps(options)], check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        r["summary"] = summarize(r)
        results["%s (%s)" % (family, kind)] = r
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": "%s cores" % os.cpu_count(), "frames": args.frames}
    write_results(Path(args.out), args.name, {"meta": meta, "runs": results}, markdown(results, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
