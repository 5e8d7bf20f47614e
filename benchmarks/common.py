"""What every benchmark script shares: per-call timing and writing ``<name>.json`` + ``<name>.md``."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgevid.fsutil import atomic_path, write_json  # noqa: E402


def time_calls(fn: Callable[[], Any], reps: int) -> Dict[str, float]:
    """Milliseconds per call of ``fn`` over ``reps`` calls after a warm-up: p50, p90, mean."""
    for _ in range(max(3, reps // 10)):
        fn()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    p50, p90 = np.percentile(samples, [50, 90])
    return {"p50": float(p50), "p90": float(p90), "mean": float(np.mean(samples))}


def write_results(out: Path, name: str, result: Dict[str, Any], markdown: str) -> None:
    """``out/<name>.json`` and ``out/<name>.md``, each written atomically; the Markdown also goes to stdout."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / (name + ".json"), result)
    with atomic_path(out / (name + ".md")) as tmp:
        tmp.write_text(markdown)
    print(markdown)
