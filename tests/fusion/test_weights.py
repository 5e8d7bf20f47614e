"""Fusion weights by the seed's LP (edgevid/fusion/weights.py): non-negative, summing to one, favouring the member
that is right where the others are wrong; boost-c per class; bad input and a solver failure said clearly."""
from __future__ import annotations

import numpy as np
import pytest

from edgevid.errors import ConfigError, DataError
from edgevid.fusion.weights import fuse, learn

pytest.importorskip("scipy")


def members(n=120, c=4, seed=0):
    """Three members' scores: a good one (right on 90%), a weaker one (60%) and pure noise."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, c, n)

    def member(right):
        s = rng.normal(0, 1, (n, c))
        hit = rng.rand(n) < right
        s[np.arange(n)[hit], labels[hit]] += 3.0
        return s

    return [member(0.9), member(0.6), rng.normal(0, 1, (n, c))], labels


def accuracy(scores, labels):
    return float((np.argmax(scores, axis=1) == labels).mean())


def test_boost_u_weights_are_a_convex_combination_that_trusts_the_good_member():
    scores, labels = members()
    w = learn(scores, labels)
    assert w.theta.shape == (3,) and (w.theta >= 0).all() and w.theta.sum() == pytest.approx(1.0)
    assert w.theta[0] > w.theta[2] and w.fallback is None and w.margin is not None
    assert accuracy(w.fuse(scores), labels) >= accuracy(scores[1], labels)


def test_the_fusion_beats_each_member_when_they_err_on_different_samples():
    rng = np.random.RandomState(3)
    n, c = 200, 3
    labels = rng.randint(0, c, n)
    a, b = rng.normal(0, 0.3, (n, c)), rng.normal(0, 0.3, (n, c))
    half = np.arange(n) < n // 2
    a[np.arange(n)[half], labels[half]] += 2.0  # a knows the first half, b the second, each a little of the other
    b[np.arange(n)[~half], labels[~half]] += 2.0
    a[np.arange(n)[~half], labels[~half]] += 0.5
    b[np.arange(n)[half], labels[half]] += 0.5
    w = learn([a, b], labels)
    assert accuracy(w.fuse([a, b]), labels) > max(accuracy(a, labels), accuracy(b, labels))


def test_boost_c_has_a_weight_per_member_and_class():
    scores, labels = members()
    w = learn(scores, labels, method="boost-c")
    assert w.theta.shape == (3, 4) and (w.theta >= 0).all()
    np.testing.assert_allclose(w.theta.sum(axis=0), 1.0)
    np.testing.assert_allclose(fuse(scores, w.theta), w.fuse(scores))


def test_bad_input_is_refused_with_what_to_do():
    scores, labels = members()
    with pytest.raises(DataError, match="same N samples"):
        learn([scores[0], scores[1][:10]], labels)
    with pytest.raises(DataError, match="one label in 0..C-1"):
        learn(scores, labels + 10)
    with pytest.raises(DataError, match="not all finite"):
        learn([scores[0], np.full_like(scores[1], np.nan)], labels)
    with pytest.raises(ConfigError, match="boost-u and boost-c"):
        learn(scores, labels, method="vote")
    with pytest.raises(ConfigError, match="nu"):
        learn(scores, labels, nu=0)


def test_a_solver_failure_falls_back_to_equal_weights_or_raises(monkeypatch):
    import scipy.optimize

    class Failed:
        success, message, x = False, "the problem is infeasible (forced)", None

    monkeypatch.setattr(scipy.optimize, "linprog", lambda *a, **k: Failed())
    scores, labels = members()
    w = learn(scores, labels)
    assert w.fallback == "equal weights" and np.allclose(w.theta, 1 / 3) and "infeasible" in w.status
    with pytest.raises(DataError, match="found no weighting.*infeasible"):
        learn(scores, labels, fallback="error")


def test_a_members_weight_and_its_text():
    from edgevid.fusion.weights import member_weight, weight_text

    assert member_weight(np.array([0.25, 0.75]), 1) == 0.75 and weight_text(0.75) == "0.750"
    per_class = member_weight(np.array([[0.1, 0.9], [0.9, 0.1]]), 0)
    assert per_class == [0.1, 0.9] and weight_text(per_class) == "per class [0.10, 0.90]"
