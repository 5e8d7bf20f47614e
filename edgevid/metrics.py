"""How close two sets of graph outputs are (the one row-wise cosine that verify and the precision report use)
and how a series of timings reads (the one latency summary of the runtime's stats and ``edgevid bench``).
numpy only; the device side may import it."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np


def row_cosines(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Cosine of each row of two [rows, …] arrays (flattened per row, float64); two zero rows agree (1.0),
    a zero row against a non-zero one does not (0.0)."""
    ref = ref.reshape(ref.shape[0], -1).astype(np.float64)
    got = got.reshape(got.shape[0], -1).astype(np.float64)
    n_ref, n_got = np.linalg.norm(ref, axis=1), np.linalg.norm(got, axis=1)
    cos = (ref * got).sum(1) / np.maximum(n_ref * n_got, 1e-300)
    return np.where((n_ref == 0) & (n_got == 0), 1.0, cos)


LATENCY_KEYS = ("n", "mean", "p50", "p90", "p99", "min", "max", "fps")


def latency_summary(seconds: Sequence[float]) -> Dict[str, Optional[float]]:
    """mean, p50, p90, p99, min and max in milliseconds of timings given in seconds, their count ``n``, and
    ``fps`` = 1 / mean; every figure None (``n`` 0) for no timings, never a zero that reads as a measurement."""
    if len(seconds) == 0:
        return {key: (0 if key == "n" else None) for key in LATENCY_KEYS}
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    mean = float(ms.mean())
    return {"n": int(ms.size), "mean": mean, "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "min": float(ms.min()), "max": float(ms.max()), "fps": 1000.0 / mean if mean > 0 else None}
