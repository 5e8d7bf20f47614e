"""The child process of :func:`edgevid.bench.memory.measure_memory`: the runtime path alone, then its memory.

    python -m edgevid.bench.memory_child BUNDLE SOURCE [--backend B] [--precision P] [--frames N]

Prints one JSON line: resident memory after ``import edgevid`` (baseline: ``-m`` imports the package first) and at the end (peak: VmHWM and
ru_maxrss), the frames streamed, and whether torch was ever imported (``"torch" in sys.modules`` at the end).
Imports only what ``edgevid run`` does, so the figures are the runtime's.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
from typing import Dict, Optional


def status_mb() -> Dict[str, Optional[float]]:
    """VmRSS and VmHWM of this process in MB from /proc/self/status (None where it is not readable)."""
    out: Dict[str, Optional[float]] = {"VmRSS": None, "VmHWM": None}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in out:
                    out[key] = int(value.split()[0]) / 1024.0  # kB
    except OSError:
        pass
    return out


def maxrss_mb() -> float:
    """ru_maxrss in MB (kilobytes on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / (1024.0 * 1024.0) if sys.platform == "darwin" else value / 1024.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("source")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--precision")
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args(argv)
    # the baseline: ``python -m edgevid.bench.memory_child`` has imported the edgevid package (and edgevid.bench,
    # a docstring) and nothing of the runtime yet
    baseline = {"rss_mb": status_mb()["VmRSS"], "maxrss_mb": maxrss_mb()}
    from edgevid.runtime.cli_run import run_stream

    stats = run_stream(args.bundle, args.source, backend=args.backend, precision=args.precision,
                       max_frames=args.frames)
    end = status_mb()
    print(json.dumps({"baseline": baseline, "peak_hwm_mb": end["VmHWM"], "peak_maxrss_mb": maxrss_mb(),
                      "rss_end_mb": end["VmRSS"], "frames": stats["frames"], "backend": stats["backend"],
                      "torch_loaded": "torch" in sys.modules}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
