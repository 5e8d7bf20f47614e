"""(Weighted) Fisher vectors of CNN layers (edgevid/fusion/fisher.py): the seed's [0048] formula checked element by
element against a direct loop, the region split, the factors, per-layer learners on synthetic maps, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from edgevid.errors import ConfigError, DataError
from edgevid.fusion.fisher import (FCLearner, FisherEncoder, LayerLearner, conv_descriptors, held_out_scores,
                                   region_accuracies, region_factors, regions)

pytest.importorskip("sklearn")


def encoder(k=2, pca_dims=2, dims=3, n=200, seed=0, **kw):
    rng = np.random.RandomState(seed)
    x = np.concatenate([rng.randn(n // 2, dims), rng.randn(n - n // 2, dims) * 0.5 + 2.0])
    return FisherEncoder(k, pca_dims, seed=seed, **kw).fit(x), rng


def maps_video(label, rng, frames=4, d=6, s=6, shift=0.8):
    """Maps [T, d, s, s] of noise; the class shows only in the top-left region (channel ``label`` raised)."""
    m = rng.randn(frames, d, s, s)
    m[:, label, :s // 2, :s // 2] += shift
    return m


def maps_set(per_class, classes=3, seed=0, **kw):
    rng = np.random.RandomState(seed)
    labels = np.repeat(np.arange(classes), per_class)
    return [maps_video(c, rng, **kw) for c in labels], labels


# ------------------------------------------------------------------------------------------ descriptors, regions
def test_conv_descriptors_put_one_d_vector_per_cell_and_frame():
    maps = np.arange(2 * 3 * 4 * 4, dtype=float).reshape(2, 3, 4, 4)
    x = conv_descriptors(maps)
    assert x.shape == (2, 4, 4, 3)
    assert np.array_equal(x[1, 2, 3], maps[1, :, 2, 3])


@pytest.mark.parametrize("s,grid", [(4, 2), (5, 2), (7, 3), (6, 1), (3, 3)])
def test_regions_cover_every_cell_once_in_near_equal_rectangles(s, grid):
    r = regions(s, grid)
    assert r.shape == (s, s) and set(np.unique(r)) == set(range(grid * grid))
    counts = np.bincount(r.ravel())
    assert counts.sum() == s * s and counts.max() - counts.min() <= 2 * (s // grid) + 1
    for j in range(grid * grid):  # each region is one axis-aligned block
        rows, cols = np.nonzero(r == j)
        assert (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1) == counts[j]
    bands = r[:, 0] // grid
    assert np.bincount(bands).max() - np.bincount(bands).min() <= 1


# ------------------------------------------------------------------------------------------ the Fisher vector
def test_fisher_vector_has_2kd_dimensions_after_pca():
    enc, rng = encoder(k=3, pca_dims=2, dims=5)
    assert enc.dims == 2 and enc.dim == 2 * 3 * 2
    assert enc.encode(rng.randn(7, 5)).shape == (12,)


def test_fisher_vector_matches_the_formula_element_by_element():
    enc, rng = encoder(k=2, pca_dims=2, dims=3)
    x, w = rng.randn(5, 3) + 1.0, rng.rand(5) + 0.2
    got = enc.encode(x, w, normalize=False).reshape(2, 2, 2)  # [k, (ρ, τ), d']
    y = enc.pca_.transform(x)
    pi, mu, var = enc.gmm_.weights_, enc.gmm_.means_, enc.gmm_.covariances_
    # γ from its definition, π_k φ_k(x_i) / Σ_j π_j φ_j(x_i) with diagonal Gaussians
    dens = np.array([[pi[k] * np.prod(np.exp(-(y[i] - mu[k]) ** 2 / (2 * var[k])) / np.sqrt(2 * np.pi * var[k]))
                      for k in range(2)] for i in range(5)])
    gamma = dens / dens.sum(axis=1, keepdims=True)
    assert np.allclose(gamma, enc.gmm_.predict_proba(y))
    n = len(x)
    for k in range(2):
        for e in range(2):
            sigma = np.sqrt(var[k, e])
            rho = sum(gamma[i, k] * w[i] * (y[i, e] - mu[k, e]) / sigma for i in range(n)) / (n * np.sqrt(pi[k]))
            tau = sum(gamma[i, k] * w[i] * ((y[i, e] - mu[k, e]) ** 2 / sigma ** 2 - 1) for i in range(n)) / (
                n * np.sqrt(2 * pi[k]))
            assert got[k, 0, e] == pytest.approx(rho, rel=1e-9, abs=1e-12)
            assert got[k, 1, e] == pytest.approx(tau, rel=1e-9, abs=1e-12)


def test_no_weights_is_all_weights_one_and_weights_scale_contributions():
    enc, rng = encoder()
    x = rng.randn(9, 3)
    plain = enc.encode(x, normalize=False)
    assert np.allclose(plain, enc.encode(x, np.ones(9), normalize=False))
    assert np.allclose(enc.encode(x, np.full(9, 3.0), normalize=False), 3 * plain)
    # a zero weight removes that descriptor's contribution, but n still counts it
    w = np.ones(9)
    w[0] = 0
    assert np.allclose(enc.encode(x, w, normalize=False) * 9, enc.encode(x[1:], normalize=False) * 8)
    # doubling one descriptor's weight adds its own (unweighted, n = 1) contribution once more
    w[0] = 2
    assert np.allclose(enc.encode(x, w, normalize=False) * 9,
                       enc.encode(x[1:], normalize=False) * 8 + 2 * enc.encode(x[:1], normalize=False))


def test_improved_normalisation_is_signed_sqrt_then_unit_l2():
    enc, rng = encoder()
    x = rng.randn(6, 3)
    raw, fv = enc.encode(x, normalize=False), enc.encode(x)
    assert np.linalg.norm(fv) == pytest.approx(1.0)
    expect = np.sign(raw) * np.sqrt(np.abs(raw))
    assert np.allclose(fv, expect / np.linalg.norm(expect))


# ------------------------------------------------------------------------------------------ factors
def test_softmax_factors_sum_to_one_and_follow_the_accuracies():
    a = np.array([0.9, 0.4, 0.6, 0.5])
    w = region_factors(a, "softmax")
    assert w.sum() == pytest.approx(1.0) and list(np.argsort(w)) == list(np.argsort(a))
    assert w[0] / w[1] == pytest.approx(np.exp(0.5))


def test_sigmoid_factors_are_one_half_at_the_mean_threshold():
    a = np.array([0.2, 0.5, 0.8])
    w = region_factors(a, "sigmoid")
    assert w[1] == pytest.approx(0.5) and w[0] < 0.5 < w[2]
    assert w[2] == pytest.approx(1 / (1 + np.exp(0.5 - 0.8)))
    assert region_factors(a, "sigmoid", threshold=0.8)[2] == pytest.approx(0.5)
    assert region_factors(a, "sigmoid", scale=100)[2] == pytest.approx(1 / (1 + np.exp(-30)))


def test_region_accuracies_find_the_region_that_holds_the_class():
    rng = np.random.RandomState(0)
    labels = np.repeat([0, 1], 10)
    q = rng.randn(20, 3, 4)
    q[:, 1, 0] += 5 * labels  # only region 1 tells the classes apart
    a = region_accuracies(q, labels, folds=5)
    assert a.shape == (3,) and np.argmax(a) == 1 and a[1] >= 0.9 and max(a[0], a[2]) <= 0.8


# ------------------------------------------------------------------------------------------ learners
def test_layer_features_equal_the_direct_weighted_fisher_vector():
    videos, labels = maps_set(5, s=5)
    learner = LayerLearner(k=2, pca_dims=3, grid=2, folds=2).fit(videos, labels)
    w = learner.factors_[learner.regions_]  # [s, s]: each cell's factor
    x = conv_descriptors(videos[0])
    expect = learner.encoder_.encode(x, np.broadcast_to(w, x.shape[:3]))
    assert np.allclose(learner.features(videos[:1])[0], expect)
    plain = LayerLearner(k=2, pca_dims=3, grid=2, weighted=False).fit(videos, labels)
    assert plain.accuracies_ is None and np.array_equal(plain.factors_, np.ones(4))
    assert np.allclose(plain.features(videos[:1])[0], plain.encoder_.encode(x))


def test_layer_learner_separates_classes_shown_in_one_region_and_weights_that_region_most():
    videos, labels = maps_set(8)
    learner = LayerLearner(k=2, pca_dims=4, grid=2, folds=3).fit(videos, labels)
    assert np.argmax(learner.accuracies_) == 0 and np.argmax(learner.factors_) == 0
    test, test_labels = maps_set(10, seed=1)
    assert (learner.predict(test) == test_labels).mean() >= 0.8
    scores = learner.scores(test)
    assert scores.shape == (30, 3) and np.array_equal(np.argmax(scores, 1), learner.predict(test))


def test_fc_learner_max_pools_maps_chi2_and_classifies():
    rng = np.random.RandomState(0)

    def fc_video(label):
        f = np.maximum(rng.randn(5, 8), 0)
        f[rng.randint(5), label] += 3.0  # the class fires strongly in one frame: max pooling keeps it
        return f

    labels = np.repeat(np.arange(3), 8)
    learner = FCLearner(z=1).fit([fc_video(c) for c in labels], labels)
    test_labels = np.repeat(np.arange(3), 5)
    test = [fc_video(c) for c in test_labels]
    assert learner.features(test).shape == (15, 8 * 3)  # d(2z+1)
    assert (learner.predict(test) == test_labels).mean() >= 0.9
    learner.features([-np.ones((2, 8))])
    assert learner.clipped_ == 8


def test_held_out_scores_and_two_class_scores_have_one_column_per_class():
    videos, labels = maps_set(4, classes=2)
    scores = held_out_scores(lambda: LayerLearner(k=2, pca_dims=3, weighted=False), videos, labels, folds=2)
    assert scores.shape == (8, 2) and np.allclose(scores[:, 0], -scores[:, 1])


# ------------------------------------------------------------------------------------------ bad input
def test_bad_input_raises_clear_errors():
    videos, labels = maps_set(3, s=4)
    with pytest.raises(DataError, match="shape"):
        conv_descriptors(np.zeros((2, 3, 4)))
    with pytest.raises(DataError):
        conv_descriptors(np.zeros((2, 3, 4, 5)))  # not square
    with pytest.raises(ConfigError):
        regions(3, 4)
    with pytest.raises(DataError, match="Gaussians"):
        FisherEncoder(k=50).fit(np.random.rand(20, 3))
    with pytest.raises(ConfigError):
        FisherEncoder(k=0)
    with pytest.raises(ConfigError, match="not fitted"):
        FisherEncoder(k=2).encode(np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="factor kind"):
        region_factors([0.5, 0.6], "tanh")
    with pytest.raises(ConfigError, match="factor kind"):
        LayerLearner(k=2, factors="max")
    with pytest.raises(DataError, match="class"):
        LayerLearner(k=2).fit(videos, np.zeros(len(videos)))
    with pytest.raises(DataError, match="labels"):
        LayerLearner(k=2).fit(videos, labels[:-1])
    with pytest.raises(DataError, match="different shapes"):
        LayerLearner(k=2).fit(videos[:-1] + [np.zeros((4, 6, 5, 5))], labels)
    with pytest.raises(DataError, match="sequence"):
        LayerLearner(k=2).fit(videos[0], labels[:1])
    with pytest.raises(DataError, match="finite"):
        LayerLearner(k=2).fit([np.full((2, 6, 4, 4), np.nan)] + videos[1:], labels)
    learner = LayerLearner(k=2, pca_dims=2, weighted=False).fit(videos, labels)
    with pytest.raises(DataError, match="fitted on"):
        learner.features([np.zeros((2, 5, 4, 4))])
    enc, _ = encoder()
    with pytest.raises(DataError, match="weights"):
        enc.encode(np.zeros((4, 3)), w=np.ones(3))
    with pytest.raises(ConfigError, match="not fitted"):
        FCLearner().predict([np.ones((2, 3))])
    with pytest.raises(ConfigError):
        FCLearner(z=3)
    with pytest.raises(DataError, match="2 videos"):
        region_accuracies(np.zeros((3, 2, 4)), [0, 1, 1])
