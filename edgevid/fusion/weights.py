"""Fusion weights by the linear programme of the seed's [0063] (docs/models.md §5.1), multiclass as edgevid states it.

With M members' class scores s_m(v_i) ∈ R^C on N held-out samples with labels y_i, boost-u finds one weight per
member, θ ≥ 0, Σθ = 1, maximising the soft margin::

    max  ε − 1/(νN) Σ_i ξ_i    s.t.  Σ_m θ_m (s_{m,i,y_i} − s_{m,i,c}) + ξ_i ≥ ε   for every i and c ≠ y_i,
                                     Σ_m θ_m = 1,  θ ≥ 0,  ξ ≥ 0

and predicts argmax_c Σ_m θ_m s_{m,c}(v). boost-c has a weight per member and class, Θ ≥ 0 with Σ_m Θ_{m,c} = 1
for each class (the seed reports it over-fits; it is here to compare). Both are solved by scipy's HiGHS
(``scipy.optimize.linprog``), a well-kept LP solver; nothing is solved by hand.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .._optional import require
from ..errors import ConfigError, DataError

FALLBACKS = ("equal", "error")


@dataclass
class Weights:
    """Learned fusion weights: ``theta`` [M] (boost-u) or [M, C] (boost-c), the margin ε reached, how they were
    found (``method``, the solver's ``status`` text, the ``nu`` it was asked with), and ``fallback`` when the LP
    gave none and equal weights stand in (None when the LP solved)."""

    theta: np.ndarray
    method: str
    margin: Optional[float]
    status: str
    fallback: Optional[str] = None
    nu: Optional[float] = None

    def fuse(self, scores: Sequence[np.ndarray]) -> np.ndarray:
        """The fused scores [N, C] of members' scores (each [N, C])."""
        return fuse(scores, self.theta)


def fuse(scores: Sequence[np.ndarray], theta: np.ndarray) -> np.ndarray:
    """Σ_m θ_m s_m (boost-u, θ [M]) or Σ_m Θ_{m,c} s_{m,c} (boost-c, Θ [M, C]) over members' scores [N, C]."""
    stack = np.stack([np.asarray(s, np.float64) for s in scores])  # [M, N, C]
    theta = np.asarray(theta, np.float64)
    if theta.ndim == 1:
        return np.einsum("m,mnc->nc", theta, stack)
    return np.einsum("mc,mnc->nc", theta, stack)


def member_weight(theta: np.ndarray, j: int) -> Any:
    """Member ``j``'s weight: a float (boost-u) or its per-class weights as a list (boost-c)."""
    row = np.asarray(theta)[j]
    return float(row) if np.ndim(row) == 0 else [float(x) for x in row]


def weight_text(weight: Any) -> str:
    """A member's weight for people: ``0.282`` or ``per class [0.00, 0.80, …]``."""
    if isinstance(weight, (int, float)):
        return "%.3f" % weight
    return "per class [%s]" % ", ".join("%.2f" % x for x in weight)


def learn(scores: Sequence[np.ndarray], labels: np.ndarray, *, method: str = "boost-u", nu: float = 0.5,
          fallback: str = "equal") -> Weights:
    """Fusion weights from members' scores [N, C] on held-out samples with ``labels`` [N]. ``nu`` ∈ (0, 1] trades
    margin for errors (about the share of samples allowed inside the margin). When the solver finds no weighting,
    ``fallback`` "equal" returns equal weights (said in ``fallback`` and ``status``), "error" raises DataError."""
    stack, labels = _check(scores, labels, nu, fallback, method)
    linprog = require("scipy.optimize", "learning fusion weights (pip install scipy)").linprog
    m, n, c = stack.shape
    per_class = method == "boost-c"
    n_theta = m * c if per_class else m
    rows, cols, vals = [], [], []
    row = 0
    for i in range(n):
        y = labels[i]
        for k in range(c):
            if k == y:
                continue
            # −Σ θ (s_y − s_k) − ξ_i + ε ≤ 0
            for j in range(m):
                if per_class:
                    rows += [row, row]
                    cols += [j * c + y, j * c + k]
                    vals += [-stack[j, i, y], stack[j, i, k]]
                else:
                    rows.append(row)
                    cols.append(j)
                    vals.append(-(stack[j, i, y] - stack[j, i, k]))
            rows += [row, row]
            cols += [n_theta + i, n_theta + n]
            vals += [-1.0, 1.0]
            row += 1
    from scipy.sparse import coo_matrix

    a_ub = coo_matrix((vals, (rows, cols)), shape=(row, n_theta + n + 1)).tocsr()
    if per_class:  # Σ_m Θ_{m,c} = 1 for each class
        a_eq = np.zeros((c, n_theta + n + 1))
        for k in range(c):
            a_eq[k, [j * c + k for j in range(m)]] = 1.0
        b_eq = np.ones(c)
    else:
        a_eq = np.zeros((1, n_theta + n + 1))
        a_eq[0, :m] = 1.0
        b_eq = np.ones(1)
    cost = np.concatenate([np.zeros(n_theta), np.full(n, 1.0 / (nu * n)), [-1.0]])
    bounds = [(0, None)] * (n_theta + n) + [(None, None)]
    result = linprog(cost, A_ub=a_ub, b_ub=np.zeros(row), A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if not result.success:
        return _fallback(m, c, per_class, method, str(result.message), fallback, nu)
    theta = np.clip(result.x[:n_theta], 0.0, None)
    theta = theta.reshape(m, c) if per_class else theta
    theta = theta / theta.sum(axis=0, keepdims=per_class) if per_class else theta / theta.sum()
    return Weights(theta=theta, method=method, margin=float(result.x[-1]), status=str(result.message), nu=nu)


def _fallback(m: int, c: int, per_class: bool, method: str, message: str, fallback: str, nu: float) -> Weights:
    if fallback == "error":
        raise DataError("the fusion LP (%s) found no weighting" % method, message,
                        "check the members' scores on the held-out data, or use fallback='equal'")
    theta = np.full((m, c) if per_class else (m,), 1.0 / m)
    return Weights(theta=theta, method=method, margin=None, status=message, fallback="equal weights", nu=nu)


def _check(scores: Sequence[np.ndarray], labels: np.ndarray, nu: float, fallback: str, method: str):
    if method not in ("boost-u", "boost-c"):
        raise ConfigError("fusion method %r" % (method,), "the seed's methods are boost-u and boost-c",
                          "use method='boost-u' (or 'boost-c' to compare)")
    if fallback not in FALLBACKS:
        raise ConfigError("fallback %r" % (fallback,), "without a solution the weights are equal or an error",
                          "use fallback=%s" % " or ".join(repr(f) for f in FALLBACKS))
    if not 0 < nu <= 1:
        raise ConfigError("nu = %r" % (nu,), "it is the share of samples the margin may miss, in (0, 1]",
                          "use e.g. nu=0.5")
    if len(scores) < 1:
        raise DataError("no members' scores to fuse", None, "pass one [N, C] score array per member")
    stack = np.stack([np.asarray(s, np.float64) for s in scores]) if len({np.shape(s) for s in scores}) == 1 else None
    if stack is None or stack.ndim != 3:
        raise DataError("the members' scores have shapes %s" % [np.shape(s) for s in scores],
                        "every member scores the same N samples over the same C classes",
                        "score every member on the same held-out samples, with the same label set")
    labels = np.asarray(labels)
    if labels.shape != (stack.shape[1],) or labels.min() < 0 or labels.max() >= stack.shape[2]:
        raise DataError("labels of shape %s for %d samples of %d classes" % (labels.shape, stack.shape[1],
                                                                             stack.shape[2]),
                        "one label in 0..C-1 per sample", "pass the held-out samples' class indices")
    if not np.isfinite(stack).all():
        raise DataError("the members' scores are not all finite", "a NaN or inf score", "check the members")
    return stack, labels.astype(int)
