"""How close two sets of graph outputs are: the one row-wise cosine that verify and the precision report use
(numpy only; the device side may import it)."""
from __future__ import annotations

import numpy as np


def row_cosines(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Cosine of each row of two [rows, …] arrays (flattened per row, float64); two zero rows agree (1.0),
    a zero row against a non-zero one does not (0.0)."""
    ref = ref.reshape(ref.shape[0], -1).astype(np.float64)
    got = got.reshape(got.shape[0], -1).astype(np.float64)
    n_ref, n_got = np.linalg.norm(ref, axis=1), np.linalg.norm(got, axis=1)
    cos = (ref * got).sum(1) / np.maximum(n_ref * n_got, 1e-300)
    return np.where((n_ref == 0) & (n_got == 0), 1.0, cos)
