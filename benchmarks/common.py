"""What every benchmark script shares: per-call timing and writing ``<name>.json`` + ``<name>.md``."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgevid.bench import timing  # noqa: E402
from edgevid.fsutil import atomic_path, write_json  # noqa: E402
from edgevid.metrics import latency_summary  # noqa: E402


def time_calls(fn: Callable[[], Any], reps: int) -> Dict[str, Any]:
    """Milliseconds per call of ``fn`` over ``reps`` calls after a warm-up (the package's timing loop and
    summary: mean, p50, p90, p99, min, max, fps)."""
    return latency_summary(timing.time_calls(fn, reps, warmup=max(3, reps // 10)))


def write_results(out: Path, name: str, result: Dict[str, Any], markdown: str) -> None:
    """``out/<name>.json`` and ``out/<name>.md``, each written atomically; the Markdown also goes to stdout."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / (name + ".json"), result)
    with atomic_path(out / (name + ".md")) as tmp:
        tmp.write_text(markdown)
    print(markdown)
