"""Multilayer video representations: (weighted) Fisher vectors of CNN layers as weak learners (seed 000
[0027]–[0056], docs/models.md §5.1), whose class scores :mod:`edgevid.fusion.weights` then fuses.

One convolutional layer of a 2D CNN (one map per frame)::

    maps [T, d, s, s] ─► descriptors x_i ∈ R^d, one per cell and frame, n = T·s·s         conv_descriptors
        ─► PCA (decorrelate; keep d' dims) ─► diagonal GMM {π_k, μ_k, σ_k}, k = 1..K        FisherEncoder
    the s×s cells split into |R| = grid² non-overlapping regions R_j                        regions
    convlet q_j = FV of R_j's descriptors over all T frames ─► linear classifier ─►
        α_j = its k-fold cross-validated accuracy on the training videos                   region_accuracies
    w_j = softmax or sigmoid of the α_j; every x_i of R_j gets w_i = w_j                    region_factors
    wFV of the video ─► power + L2 normalisation ─► standardise ─► linear SVM ─► scores     LayerLearner

With γ_ik = π_k φ_k(x_i) / Σ_j π_j φ_j(x_i) (``gmm.predict_proba``), x_i after PCA, and for k = 1..K ([0048];
the OCR's "= 1" read as "− 1", the derivative with respect to σ_k)::

    ρ_k = 1/(n √π_k)    Σ_i γ_ik w_i (x_i − μ_k)/σ_k
    τ_k = 1/(n √(2π_k)) Σ_i γ_ik w_i [ (x_i − μ_k)²/σ_k² − 1 ]
    wFV = [ρ_1, τ_1, …, ρ_K, τ_K] ∈ R^{2·K·d'}          (all w_i = 1: the plain FV)

n counts all the video's descriptors at the layer; a convlet is the FV of one region's descriptors alone, so its
n is that region's count. The factors are constant per region, so the sums of each region are computed once and
give both the convlets (each alone) and the wFV (Σ_j w_j · sums_j).

An FC layer ([0055]–[0056], :class:`FCLearner`): per-frame features [T, d] ─► temporal max pooling ─► explicit
additive χ² feature map ψ: R^d → R^{d(2z+1)} (sklearn ``AdditiveChi2Sampler``) ─► linear SVM.

Not in the seed, edgevid's choices (each can be changed): the power (signed square root) and L2 normalisation of
the improved Fisher vector (Perronnin et al., 2010), on by default; standardisation before the SVM; the GMM fitted
on a random subset of the training descriptors; the sigmoid's threshold ᾱ (the seed gives none) = the mean of the
α_j; the α_j protocol (the seed states none): k-fold cross-validation, folds limited by the smallest class.

numpy only at import; scikit-learn is imported inside the functions that fit or classify.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from .._optional import require
from ..errors import ConfigError, DataError

FACTOR_KINDS = ("softmax", "sigmoid")
_SKLEARN = "Fisher-vector fusion"


# ---------------------------------------------------------------------------------------------- descriptors
def conv_descriptors(maps) -> np.ndarray:
    """One video's maps at a layer, [T, d, s, s] (channels first, as torch gives them) → descriptors
    [T, s, s, d]: one x_i ∈ R^d per spatial cell per frame ([0044])."""
    maps = _finite(maps, "the feature maps")
    if maps.ndim != 4 or maps.shape[2] != maps.shape[3] or 0 in maps.shape:
        raise DataError("feature maps of shape %s" % (maps.shape,),
                        "one video's maps at a layer are [T, d, s, s]: frames, channels, a square map",
                        "pass one video's maps, frames first and channels second")
    return np.ascontiguousarray(maps.transpose(0, 2, 3, 1))


def regions(s: int, grid: int = 2) -> np.ndarray:
    """The region index (0 .. grid²−1, row-major) of every cell of an s×s map [s, s]: grid×grid non-overlapping
    regions ([0029]); when grid does not divide s the bands differ by at most one cell."""
    s, grid = _whole("the map size s", s), _whole("grid", grid)
    if grid > s:
        raise ConfigError("grid %d for a %d×%d map" % (grid, s, s), "every region needs at least one cell",
                          "use grid <= %d" % s)
    band = np.arange(s) * grid // s  # floor(i·grid/s): band sizes are floor or ceil of s/grid
    return band[:, None] * grid + band[None, :]


# ---------------------------------------------------------------------------------------------- the encoder
class FisherEncoder:
    """PCA then a diagonal GMM with ``k`` components, fitted on descriptors; encodes sets of descriptors as
    (weighted) Fisher vectors of dimension 2·k·d' (d' = ``pca_dims``, None: all input dimensions, PCA then only
    decorrelates). ``normalize``: power + L2 normalisation (improved FV, not in the seed). ``max_descriptors``:
    fit on at most that many, drawn at random (None: all). ``reg_covar``, ``gmm_iter``: the GMM's variance floor
    and EM iterations (sklearn's defaults; ``gmm_.converged_`` says whether EM met its tolerance)."""

    def __init__(self, k: int = 128, pca_dims: Optional[int] = None, *, normalize: bool = True,
                 max_descriptors: Optional[int] = 200000, reg_covar: float = 1e-6, gmm_iter: int = 100,
                 seed: int = 0):
        self.k = _whole("K (GMM components)", k)
        self.pca_dims = None if pca_dims is None else _whole("pca_dims", pca_dims)
        self.max_descriptors = None if max_descriptors is None else _whole("max_descriptors", max_descriptors)
        self.normalize, self.reg_covar, self.seed = bool(normalize), float(reg_covar), int(seed)
        self.gmm_iter = _whole("gmm_iter", gmm_iter)
        self.pca_ = self.gmm_ = None

    def fit(self, descriptors) -> "FisherEncoder":
        """Fit PCA and the GMM on descriptors [..., D] (any leading shape, e.g. [T, s, s, D] or [n, D])."""
        decomposition = require("sklearn.decomposition", _SKLEARN)
        mixture = require("sklearn.mixture", _SKLEARN)
        x = _rows(descriptors, "the training descriptors")
        n, dims = x.shape
        if n < self.k:
            raise DataError("%d training descriptors for K = %d Gaussians" % (n, self.k),
                            "each component needs descriptors to fit", "use fewer components or more descriptors")
        if self.pca_dims is not None and self.pca_dims > min(n, dims):
            raise ConfigError("pca_dims = %d for %d descriptors of %d dimensions" % (self.pca_dims, n, dims),
                              "PCA keeps at most min(descriptors, dimensions)", "use pca_dims <= %d" % min(n, dims))
        if self.max_descriptors is not None and self.max_descriptors < self.k:
            raise ConfigError("max_descriptors = %d for K = %d" % (self.max_descriptors, self.k),
                              "the GMM is fitted on at most max_descriptors", "use max_descriptors >= K")
        if self.max_descriptors is not None and n > self.max_descriptors:
            # a random subset: GMM cost grows with n, and neighbouring cells repeat each other
            x = x[np.random.RandomState(self.seed).choice(n, self.max_descriptors, replace=False)]
        keep = self.pca_dims or min(len(x), dims)
        self.pca_ = decomposition.PCA(n_components=keep, whiten=False, random_state=self.seed).fit(x)
        self.gmm_ = mixture.GaussianMixture(self.k, covariance_type="diag", reg_covar=self.reg_covar,
                                            max_iter=self.gmm_iter, random_state=self.seed).fit(self.pca_.transform(x))
        return self

    @property
    def dims(self) -> int:
        """d': the descriptors' dimension after PCA."""
        return int(self._fitted().pca_.n_components_)

    @property
    def dim(self) -> int:
        """2·K·d': the length of a Fisher vector."""
        return 2 * self.k * self.dims

    def project(self, descriptors) -> Tuple[np.ndarray, np.ndarray]:
        """Descriptors [..., D] → (PCA-projected rows y [n, d'], soft assignments γ [n, K])."""
        self._fitted()
        x = _rows(descriptors, "the descriptors")
        if x.shape[1] != self.pca_.n_features_in_:
            raise DataError("descriptors of %d dimensions" % x.shape[1],
                            "the encoder was fitted on %d" % self.pca_.n_features_in_,
                            "encode maps of the layer the encoder was fitted on")
        y = self.pca_.transform(x)
        return y, self.gmm_.predict_proba(y)

    def statistics(self, y: np.ndarray, gamma: np.ndarray, w=None) -> np.ndarray:
        """The sums of [0048] before the 1/(n√π_k) factors, [K, 2, d']: row k holds
        Σ_i γ_ik w_i (y_i − μ_k)/σ_k and Σ_i γ_ik w_i [(y_i − μ_k)²/σ_k² − 1]. Sums add over disjoint sets."""
        g = gamma if w is None else gamma * _weights(w, gamma.shape[0])[:, None]
        mu, sigma = self.gmm_.means_, np.sqrt(self.gmm_.covariances_)  # diag: covariances_ are variances [K, d']
        s0 = g.sum(axis=0)[:, None]  # Σ γw, then its first and second moments (one pass over y, no [n, K, d'])
        s1 = g.T @ y
        s2 = g.T @ (y * y)
        rho = (s1 - s0 * mu) / sigma
        tau = (s2 - 2 * mu * s1 + s0 * mu * mu) / (sigma * sigma) - s0
        return np.stack([rho, tau], axis=1)

    def vector(self, stats: np.ndarray, n: int, normalize: Optional[bool] = None) -> np.ndarray:
        """The Fisher vector [2·K·d'] = [ρ_1, τ_1, …, ρ_K, τ_K] of sums from :meth:`statistics` over n
        descriptors, power + L2 normalised when ``normalize`` (None: the encoder's setting)."""
        pi = self.gmm_.weights_[:, None]
        fv = np.stack([stats[:, 0] / np.sqrt(pi), stats[:, 1] / np.sqrt(2 * pi)], axis=1) / max(int(n), 1)
        fv = fv.reshape(-1)
        return _improved(fv) if (self.normalize if normalize is None else normalize) else fv

    def encode(self, descriptors, w=None, normalize: Optional[bool] = None) -> np.ndarray:
        """The (weighted) Fisher vector of one set of descriptors [..., D]; ``w``: one weight per descriptor
        (same leading shape or flat; None: all 1, the plain FV)."""
        y, gamma = self.project(descriptors)
        return self.vector(self.statistics(y, gamma, w), y.shape[0], normalize)

    def _fitted(self) -> "FisherEncoder":
        if self.gmm_ is None:
            raise ConfigError("the Fisher encoder is not fitted", None, "call fit(descriptors) first")
        return self


def _improved(fv: np.ndarray) -> np.ndarray:
    # signed square root damps bursty components; L2 makes videos of different lengths comparable
    fv = np.sign(fv) * np.sqrt(np.abs(fv))
    norm = np.linalg.norm(fv)
    return fv / norm if norm > 0 else fv


# ---------------------------------------------------------------------------------------------- factors
def region_factors(accuracies, kind: str = "sigmoid", threshold: Optional[float] = None,
                   scale: float = 1.0) -> np.ndarray:
    """Spatial discrimination factors w_j of region accuracies α_j ([0030]): "softmax" w_j = exp(α_j)/Σ_k exp(α_k),
    "sigmoid" w_j = 1/(1 + exp(ᾱ − α_j)) with ``threshold`` ᾱ (the seed gives no value: None = the mean α_j).
    ``scale`` multiplies the α_j (and ᾱ) first: 1 is the formula as printed for α as a fraction; the seed does not
    say whether α is a fraction or a percentage (scale=100 reads it as one), which sets how peaked w is.
    The seed finds sigmoid better than softmax ([0086]), hence the default."""
    a = _finite(accuracies, "the region accuracies")
    if a.ndim != 1 or a.size == 0:
        raise DataError("region accuracies of shape %s" % (a.shape,), "one accuracy per region", "pass a 1-D array")
    if kind not in FACTOR_KINDS:
        raise ConfigError("factor kind %r" % (kind,), "the seed's factors are a softmax or a sigmoid",
                          "use kind=%s" % " or ".join(repr(k) for k in FACTOR_KINDS))
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError("scale = %r" % (scale,), "it multiplies the accuracies", "use a positive number")
    a = a * scale
    if kind == "softmax":
        e = np.exp(a - a.max())  # shifting by the max changes nothing but cannot overflow
        return e / e.sum()
    thr = float(np.mean(a)) if threshold is None else _finite(threshold, "the sigmoid threshold") * scale
    with np.errstate(over="ignore"):  # exp overflow → w = 0, the right limit
        return 1.0 / (1.0 + np.exp(thr - a))


def region_accuracies(convlets, labels, *, folds: int = 3, c: float = 1.0, seed: int = 0) -> np.ndarray:
    """α_j of convlets [N, R, D] (the FV of region j of each training video): the mean accuracy of a linear SVM
    on region j's convlets alone by stratified k-fold cross-validation (k = ``folds``, at most the smallest class's
    count). The seed does not state its protocol; this one scores only videos the classifier did not see."""
    selection = require("sklearn.model_selection", _SKLEARN)
    q = _finite(convlets, "the convlets")
    if q.ndim != 3:
        raise DataError("convlets of shape %s" % (q.shape,), "one FV per video and region: [N, R, D]",
                        "pass the regions' Fisher vectors of every training video")
    labels, _ = _labels(labels, q.shape[0])
    cv = selection.StratifiedKFold(_folds(labels, folds), shuffle=True, random_state=seed)
    return np.array([selection.cross_val_score(linear_classifier(c, seed), q[:, j], labels, cv=cv).mean()
                     for j in range(q.shape[1])])


def linear_classifier(c: float = 1.0, seed: int = 0, standardize: bool = True):
    """Standardisation then a linear SVM (one-vs-rest; the seed's classifiers are linear SVMs, [0056]): FV
    dimensions differ in scale by orders of magnitude, and the SVM's C then means the same on every layer."""
    svm = require("sklearn.svm", _SKLEARN)
    pipeline = require("sklearn.pipeline", _SKLEARN)
    preprocessing = require("sklearn.preprocessing", _SKLEARN)
    model = svm.LinearSVC(C=c, max_iter=20000, random_state=seed)
    return pipeline.make_pipeline(preprocessing.StandardScaler(), model) if standardize else model


# ---------------------------------------------------------------------------------------------- learners
class _Learner:
    """Shared by the per-layer learners: class bookkeeping, scores [N, C], predictions."""

    classes_ = None
    classifier_ = None

    def features(self, videos) -> np.ndarray:
        raise NotImplementedError

    def decision_function(self, videos) -> np.ndarray:
        """Class scores [N, C] (columns in the order of ``classes_``): the linear SVM's decision values."""
        if self.classifier_ is None:
            raise ConfigError("the %s is not fitted" % type(self).__name__, None, "call fit(videos, labels) first")
        s = self.classifier_.decision_function(self.features(videos))
        return np.stack([-s, s], axis=1) if s.ndim == 1 else s  # two classes: sklearn gives one column

    scores = decision_function

    def predict(self, videos) -> np.ndarray:
        """The class label of every video."""
        scores = self.decision_function(videos)  # first: it says when the learner is not fitted
        return self.classes_[np.argmax(scores, axis=1)]


class LayerLearner(_Learner):
    """The weak learner of one convolutional layer: videos' maps ([T, d, s, s] each) → wFV → linear SVM.

    ``k``, ``pca_dims``: the encoder (:class:`FisherEncoder`); ``grid``: regions per side; ``weighted``: False gives
    the plain FV of the same layer (no factors, for the comparison); ``factors``, ``threshold``, ``scale``:
    :func:`region_factors`; ``folds``: for :func:`region_accuracies`; ``c``: the SVMs' C. After ``fit``:
    ``encoder_``, ``regions_`` [s, s], ``accuracies_`` [R] and ``factors_`` [R] (None and ones when not weighted),
    ``classes_``, ``classifier_``."""

    def __init__(self, k: int = 128, pca_dims: Optional[int] = None, *, grid: int = 2, weighted: bool = True,
                 factors: str = "sigmoid", threshold: Optional[float] = None, scale: float = 1.0, folds: int = 3,
                 c: float = 1.0, normalize: bool = True, max_descriptors: Optional[int] = 100000, seed: int = 0):
        region_factors([0.0], factors, threshold, scale)  # unknown kind or bad scale: fail now, not after the GMM
        self.encoder_ = FisherEncoder(k, pca_dims, normalize=normalize, max_descriptors=max_descriptors, seed=seed)
        self.grid, self.weighted, self.factors, self.threshold = _whole("grid", grid), weighted, factors, threshold
        self.scale, self.folds, self.c, self.seed = scale, _whole("folds", folds), c, seed
        self.accuracies_ = self.factors_ = self.regions_ = None

    def fit(self, videos: Sequence, labels) -> "LayerLearner":
        """Fit PCA/GMM on the training descriptors, measure the region accuracies and factors, then the SVM on the
        training videos' (w)FVs."""
        descs = _conv_videos(videos)
        labels, self.classes_ = _labels(labels, len(descs))
        self.regions_ = regions(descs[0].shape[1], self.grid)
        self.encoder_.fit(_sample(descs, self.encoder_.max_descriptors, self.seed))
        stats, counts = self._region_stats(descs)
        if self.weighted:
            convlets = np.array([[self.encoder_.vector(stats[v, j], counts[v, j]) for j in range(len(counts[v]))]
                                 for v in range(len(descs))])
            self.accuracies_ = region_accuracies(convlets, labels, folds=self.folds, c=self.c, seed=self.seed)
            self.factors_ = region_factors(self.accuracies_, self.factors, self.threshold, self.scale)
        else:
            self.accuracies_, self.factors_ = None, np.ones(self.grid * self.grid)
        self.classifier_ = linear_classifier(self.c, self.seed).fit(self._combine(stats, counts), labels)
        return self

    def features(self, videos) -> np.ndarray:
        """The videos' (w)FVs [N, 2·K·d'] with the learned factors."""
        if self.regions_ is None:
            raise ConfigError("the LayerLearner is not fitted", None, "call fit(videos, labels) first")
        descs = _conv_videos(videos)
        if descs[0].shape[1:3] != self.regions_.shape or descs[0].shape[3] != self.encoder_.pca_.n_features_in_:
            raise DataError("maps of %d channels at %d×%d" % ((descs[0].shape[3],) + descs[0].shape[1:3]),
                            "the learner was fitted on %d channels at %d×%d" % (
                                (self.encoder_.pca_.n_features_in_,) + self.regions_.shape),
                            "pass maps of the layer the learner was fitted on, at the same input size")
        return self._combine(*self._region_stats(descs))

    def _region_stats(self, descs: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        # each video is projected and soft-assigned once; its sums are kept per region
        n_regions = self.grid * self.grid
        all_stats, all_counts = [], []
        for d in descs:
            y, gamma = self.encoder_.project(d)
            cell = np.broadcast_to(self.regions_, d.shape[:3]).reshape(-1)  # region of each row of y
            all_stats.append([self.encoder_.statistics(y[cell == j], gamma[cell == j]) for j in range(n_regions)])
            all_counts.append(np.bincount(cell, minlength=n_regions))
        return np.array(all_stats), np.array(all_counts)

    def _combine(self, stats: np.ndarray, counts: np.ndarray) -> np.ndarray:
        # w_i = w_j on R_j, so Σ_i γ w_i (…) = Σ_j w_j · (region j's sums); n = all the video's descriptors
        weighted = np.einsum("j,vjkad->vkad", self.factors_, stats)
        return np.array([self.encoder_.vector(weighted[v], counts[v].sum()) for v in range(len(stats))])


class FCLearner(_Learner):
    """The weak learner of one FC layer ([0055]–[0056]): per-frame features [T, d] of each video → temporal max
    pooling → additive χ² explicit feature map (``AdditiveChi2Sampler(sample_steps=z + 1)``: d(2z+1) dims) →
    linear SVM (not standardised: the map's inner product approximates the χ² kernel, rescaling dimensions would
    change that kernel). The χ² map needs non-negative input, as post-ReLU features are; negatives (another
    layer, rounding) are clipped to 0 and counted in ``clipped_``. sklearn samples z+1 ≤ 3 by itself; larger z
    needs ``sample_interval``."""

    def __init__(self, z: int = 1, *, sample_interval: Optional[float] = None, c: float = 1.0, seed: int = 0):
        z = _whole("z", z, 0)
        if z + 1 > 3 and sample_interval is None:
            raise ConfigError("z = %d without sample_interval" % z, "sklearn has default intervals for z <= 2 only",
                              "use z <= 2 or pass sample_interval")
        self.z, self.sample_interval, self.c, self.seed = z, sample_interval, c, seed
        self.dims_, self.clipped_ = None, 0

    def fit(self, videos: Sequence, labels) -> "FCLearner":
        pooled = self._pooled(videos)
        labels, self.classes_ = _labels(labels, len(pooled))
        self.dims_ = pooled.shape[1]
        self.classifier_ = linear_classifier(self.c, self.seed, standardize=False).fit(self._mapped(pooled), labels)
        return self

    def features(self, videos) -> np.ndarray:
        """ψ of the max-pooled features [N, d(2z+1)]."""
        pooled = self._pooled(videos)
        if self.dims_ is not None and pooled.shape[1] != self.dims_:
            raise DataError("FC features of %d dimensions" % pooled.shape[1],
                            "the learner was fitted on %d" % self.dims_, "pass the layer it was fitted on")
        return self._mapped(pooled)

    def _pooled(self, videos) -> np.ndarray:
        feats = _videos(videos, 2, "[T, d] FC features")
        if len({f.shape[1] for f in feats}) != 1:
            raise DataError("FC features of different sizes %s" % sorted({f.shape[1] for f in feats}),
                            "every video comes from the same layer", "pass one layer's features")
        pooled = np.stack([f.max(axis=0) for f in feats])  # temporal max pooling, [0055]
        self.clipped_ = int((pooled < 0).sum())
        return np.maximum(pooled, 0.0)

    def _mapped(self, pooled: np.ndarray) -> np.ndarray:
        kernel = require("sklearn.kernel_approximation", _SKLEARN)
        sampler = kernel.AdditiveChi2Sampler(sample_steps=self.z + 1, sample_interval=self.sample_interval)
        return sampler.fit_transform(pooled)  # stateless: fit only checks the input


def held_out_scores(make_learner: Callable[[], _Learner], videos: Sequence, labels, *, folds: int = 3,
                    seed: int = 0) -> np.ndarray:
    """Out-of-fold class scores [N, C] of a learner on its training videos (stratified k-fold; each fold fitted
    afresh by ``make_learner()``): held-out scores to learn fusion weights on (weights.learn), as the members'
    scores on their own training videos would be over-confident. Columns in sorted label order."""
    selection = require("sklearn.model_selection", _SKLEARN)
    videos = list(videos)
    labels, classes = _labels(labels, len(videos))
    out = np.zeros((len(videos), len(classes)))
    cv = selection.StratifiedKFold(_folds(labels, folds), shuffle=True, random_state=seed)
    for train, test in cv.split(np.zeros(len(labels)), labels):
        learner = make_learner().fit([videos[i] for i in train], labels[train])
        out[test] = learner.decision_function([videos[i] for i in test])  # every class is in every train fold
    return out


# ---------------------------------------------------------------------------------------------- checks
def _whole(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError("%s = %r" % (name, value), "it must be a whole number >= %d" % minimum,
                          "pass a larger whole number")
    return int(value)


def _finite(x, what: str) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError("%s are not numbers" % what, str(e), "pass a numeric array") from e
    if not np.isfinite(a).all():
        raise DataError("%s are not all finite" % what, "a NaN or inf value", "check where they come from")
    return a


def _rows(descriptors, what: str) -> np.ndarray:
    x = _finite(descriptors, what)
    if x.ndim < 2 or 0 in x.shape:
        raise DataError("%s of shape %s" % (what, x.shape), "descriptors are [..., D] with D their dimension",
                        "pass at least one descriptor of at least one dimension")
    return x.reshape(-1, x.shape[-1])


def _weights(w, n: int) -> np.ndarray:
    w = _finite(w, "the descriptor weights").reshape(-1)
    if w.shape != (n,) or (w < 0).any():
        raise DataError("%d descriptor weights for %d descriptors" % (w.size, n) if w.size != n
                        else "negative descriptor weights", "one non-negative weight per descriptor",
                        "pass w with the descriptors' leading shape, or None")
    return w


def _videos(videos, ndim: int, what: str) -> List[np.ndarray]:
    if isinstance(videos, np.ndarray) and videos.ndim == ndim:  # one video: iterating it would give frames
        raise DataError("one array of shape %s instead of a sequence of videos" % (videos.shape,),
                        "the learners take one %s array per video" % what, "wrap a single video in a list")
    out = [_finite(v, "a video's %s" % what) for v in videos]
    if not out:
        raise DataError("no videos", None, "pass at least one video's %s" % what)
    for i, v in enumerate(out):
        if v.ndim != ndim or 0 in v.shape:
            raise DataError("video %d has features of shape %s" % (i, v.shape), "each video's are %s" % what,
                            "pass one array per video")
    return out


def _conv_videos(videos) -> List[np.ndarray]:
    descs = [conv_descriptors(v) for v in _videos(videos, 4, "[T, d, s, s] maps")]
    if len({d.shape[1:] for d in descs}) != 1:
        raise DataError("maps of different shapes %s" % sorted({d.shape[1:] for d in descs}),
                        "the videos' maps come from one layer at one input size (the regions are fixed)",
                        "resize every video's frames alike before the CNN")
    return descs


def _labels(labels, n: int) -> Tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise DataError("labels of shape %s for %d videos" % (labels.shape, n), "one label per video",
                        "pass a 1-D array of %d labels" % n)
    classes = np.unique(labels)
    if classes.size < 2:
        raise DataError("%d class among the training labels" % classes.size, "a classifier needs at least 2",
                        "train on videos of at least two classes")
    return labels, classes


def _folds(labels: np.ndarray, folds: int) -> int:
    folds = _whole("folds", folds, 2)
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    if smallest < 2:
        raise DataError("a class has %d training video" % smallest,
                        "cross-validation needs at least 2 videos of every class", "add training videos")
    return min(folds, smallest)


def _sample(descs: List[np.ndarray], limit: Optional[int], seed: int) -> np.ndarray:
    # an equal share from every video, so that long videos do not own the GMM; all when within the limit
    rows = [d.reshape(-1, d.shape[-1]) for d in descs]
    total = sum(len(r) for r in rows)
    if limit is None or total <= limit:
        return np.concatenate(rows)
    rng, share = np.random.RandomState(seed), -(-limit // len(rows))
    return np.concatenate([r[rng.choice(len(r), share, replace=False)] if len(r) > share else r for r in rows])
