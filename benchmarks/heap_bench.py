"""Runtime memory and FPS with and without edgevid.runtime.heap, side by side in one run.

    python benchmarks/heap_bench.py [--bundle B] [--source S] [--rounds 4]

Each round, alternating: the memory child of ``edgevid bench`` (peak and end RSS of the runtime path alone) and
one throughput run of ``edgevid run`` in a fresh process, once as shipped and once with ``EDGEVID_KEEP_HEAP=1``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results  # noqa: E402

MODES = {"heap returned (default)": {}, "EDGEVID_KEEP_HEAP=1": {"EDGEVID_KEEP_HEAP": "1"}}
FPS = ("import json, sys; from edgevid.runtime.cli_run import run_stream; "
       "print(json.dumps(run_stream(sys.argv[1], sys.argv[2], max_frames=int(sys.argv[3]))['fps']))")


def child(args, env):
    out = subprocess.run([sys.executable] + args, env=dict(os.environ, **env), check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="/work/perf-demo/bundle")
    parser.add_argument("--source", default="synthetic:seed=2000,segments=10,frames=32,clip=8,fps=30")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cpu-2core"))
    args = parser.parse_args()
    runs = {m: {"peak_mb": [], "end_mb": [], "fps": []} for m in MODES}
    for _ in range(args.rounds):
        for mode, env in MODES.items():
            mem = child(["-m", "edgevid.bench.memory_child", args.bundle, args.source, "--frames", "200"], env)
            runs[mode]["peak_mb"].append(mem["peak_hwm_mb"])
            runs[mode]["end_mb"].append(mem["rss_end_mb"])
            runs[mode]["fps"].append(child(["-c", FPS, args.bundle, args.source, str(args.frames)], env))
    med = {m: {k: statistics.median(v) for k, v in r.items()} for m, r in runs.items()}
    base, kept = med["heap returned (default)"], med["EDGEVID_KEEP_HEAP=1"]
    lines = ["# Runtime heap: memory returned after loading vs malloc as it is", "",
             "Measured by `python benchmarks/heap_bench.py` on %s; bundle %s, source `%s`, %d rounds alternating "
             "(medians; every run a fresh process)." % (time.strftime("%Y-%m-%d %H:%M"), args.bundle, args.source,
                                                        args.rounds), "",
             "| mode | peak RSS MB | RSS at the end MB | stream FPS |", "|---|---|---|---|"]
    for mode, m in med.items():
        lines.append("| %s | %.1f | %.1f | %.1f |" % (mode, m["peak_mb"], m["end_mb"], m["fps"]))
    lines += ["", "Default over kept: peak RSS %.2f, FPS %.3f." % (base["peak_mb"] / kept["peak_mb"],
                                                                  base["fps"] / kept["fps"])]
    write_results(Path(args.out), "heap", {"runs": runs, "medians": med, "bundle": args.bundle,
                                           "source": args.source}, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
