"""Peak resident memory of the runtime path, measured in a child process (``edgevid.bench.memory_child``) so
the benchmark's own imports do not count, with proof that torch was never imported there; on a Jetson,
tegrastats sampled while the child runs (``edgevid.telemetry``)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import EdgevidError

CHILD = "edgevid.bench.memory_child"
TIMEOUT_S = 600


def measure_memory(bundle_root: Any, source: Any, *, backend: str = "auto", precision: Optional[str] = None,
                   frames: int = 200, tegrastats: str = "tegrastats") -> Dict[str, Any]:
    """``{"child": {baseline, peak_hwm_mb, peak_maxrss_mb, rss_end_mb, frames, backend, torch_loaded},
    "peak_rss_mb", "torch_loaded", "tegrastats": summary | {"not_measured": why}}``. EdgevidError when the child
    fails (its error output quoted)."""
    command = child_command(bundle_root, source, backend=backend, precision=precision, frames=frames)
    reader = _tegrastats(tegrastats)
    try:
        child = _run_child(command)
    finally:
        if reader is not None:
            reader.stop()
    peak = child["peak_hwm_mb"] if child["peak_hwm_mb"] is not None else child["peak_maxrss_mb"]
    return {"child": child, "peak_rss_mb": peak, "baseline_rss_mb": child["baseline"]["rss_mb"],
            "torch_loaded": child["torch_loaded"], "tegrastats": _tegra_summary(reader, tegrastats),
            "measures": "the runtime path alone (python -m %s), %d frames" % (CHILD, frames)}


def child_command(bundle_root: Any, source: Any, *, backend: str, precision: Optional[str], frames: int) -> List[str]:
    command = [sys.executable, "-m", CHILD, str(bundle_root), str(source), "--backend", backend,
               "--frames", str(int(frames))]
    return command + (["--precision", precision] if precision else [])


def _run_child(command: List[str]) -> Dict[str, Any]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the edgevid the parent runs, also when not installed
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise EdgevidError("the memory measurement ran past %d s" % TIMEOUT_S, str(e), "measure fewer frames") from e
    if out.returncode != 0:
        raise EdgevidError("the memory measurement's child process failed (exit %d)" % out.returncode,
                           out.stderr.strip()[-2000:] or "it printed no error", "run %s by hand" % " ".join(command))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _tegrastats(command: str) -> Any:
    """A recording Tegrastats reader, or None where tegrastats is not on PATH."""
    if shutil.which(command) is None:
        return None
    from ..telemetry import Tegrastats
    return Tegrastats(interval_ms=200, command=command).record()


def _tegra_summary(reader: Any, command: str) -> Dict[str, Any]:
    if reader is None:
        return {"not_measured": "'%s' is not on PATH: this is not a Jetson (tegrastats comes with L4T)" % command}
    if reader.error is not None:
        return {"not_measured": "tegrastats failed: %s" % reader.error}
    from ..telemetry import summarize
    return summarize(reader.samples, reader.skipped)
