"""Optical flow cost per frame on this CPU (edgevid/data/flow.py): DIS and Farneback at 112² and 224².

    python benchmarks/flow_bench.py [--runs 200]

Each size: consecutive frames of a textured scene moving a few pixels per frame, flow image of each against the
one before (BGR → grey, the flow, the three-channel image), with OpenCV's default threads and with one thread.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import time_calls, write_results  # noqa: E402
from edgevid.data.flow import METHODS, FlowSpec, FlowStream  # noqa: E402

SIZES = (112, 224)


def scene(size: int, frames: int = 16):
    import cv2

    rng = np.random.RandomState(0)
    big = cv2.GaussianBlur(cv2.resize(rng.randint(0, 255, (size // 4, size // 4, 3), np.uint8),
                                      (2 * size, 2 * size), interpolation=cv2.INTER_CUBIC), (5, 5), 0)
    return [np.ascontiguousarray(big[k * 2:k * 2 + size, k * 3:k * 3 + size]) for k in range(frames)]


def next_flow(stream: FlowStream, frames):
    """A call that makes the flow image of the next frame of the looping scene."""
    count = [0]

    def call():
        stream(frames[count[0] % len(frames)])
        count[0] += 1

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cpu-2core"))
    args = parser.parse_args()
    import cv2

    default = cv2.getNumThreads()
    results = {}
    for size in SIZES:
        frames = scene(size)
        for method in METHODS:
            for threads in (default, 1):
                cv2.setNumThreads(threads)
                results["%d/%s/%d" % (size, method, threads)] = time_calls(
                    next_flow(FlowStream(FlowSpec(method=method)), frames), args.runs)
    cv2.setNumThreads(default)
    lines = ["# Optical flow per frame (what the flow modality costs)", "",
             "Measured by `python benchmarks/flow_bench.py` on %s (%d cores, OpenCV %s); one flow image per frame "
             "(grey, flow, image), %d runs after a warm-up; mean ms (p99)." % (
                 time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), cv2.__version__, args.runs), "",
             "| size | method | OpenCV threads %d | 1 thread |" % default, "|---|---|---|---|"]
    for size in SIZES:
        for method in METHODS:
            cells = ["%.2f (%.2f)" % (r["mean"], r["p99"]) for r in
                     (results["%d/%s/%d" % (size, method, t)] for t in (default, 1))]
            lines.append("| %d² | %s | %s |" % (size, method, " | ".join(cells)))
    write_results(Path(args.out), "flow", {"results": results, "opencv": cv2.__version__}, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
