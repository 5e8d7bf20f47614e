"""The one timing loop every benchmark uses: warm-up calls untimed, then the seconds of each timed call."""
from __future__ import annotations

import time
from typing import Any, Callable, List


def time_calls(fn: Callable[[], Any], runs: int, warmup: int = 0) -> List[float]:
    """Seconds of each of ``runs`` calls of ``fn`` after ``warmup`` untimed ones (summarise with
    :func:`edgevid.metrics.latency_summary`)."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds
