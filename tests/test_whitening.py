"""dlnotes.whitening against direct computations, an independent SVD reference and Monte Carlo."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr
from sklearn.neighbors import NearestNeighbors

from dlnotes.evidence import bootstrap_interval
from dlnotes.whitening import (
    alignment,
    anisotropy,
    anisotropy_interval,
    apply_whitening,
    bootstrap_spearman,
    fit_whitening,
    item_bootstrap_weights,
    knn_distance,
    paired_cosine,
    shared_mean_cosine,
    uniformity,
    weighted_spearman,
)


def correlated_data(n, d, seed=0, shift=3.0):
    """Rows with a non-zero mean and a badly conditioned (condition number 10⁴), non-diagonal
    covariance: a random rotation times scales from 1 to 0.01, so that no draw is singular."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    mixing = rotation * np.logspace(0, -2, d)
    return rng.normal(size=(n, d)) @ mixing.T + shift


@given(n_extra=st.integers(0, 40), d=st.integers(1, 12), seed=st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_whitened_covariance_is_identity_and_mean_is_zero(n_extra, d, seed):
    # n >= 2d + 1 keeps the smallest sample eigenvalue away from zero (with n barely above d it
    # can be numerically zero, which fit_whitening rightly refuses; tested separately below).
    X = correlated_data(2 * d + 1 + n_extra, d, seed)
    mu, W = fit_whitening(X)
    Y = apply_whitening(X, mu, W)
    assert np.allclose(Y.mean(axis=0), 0.0, atol=1e-8)
    assert np.allclose(np.cov(Y, rowvar=False).reshape(d, d), np.eye(d), atol=1e-7)


def test_whitening_matches_su_et_al_reference_up_to_column_signs():
    # The reference is the recipe of Su et al. (2021): SVD of np.cov, W = U diag(1/sqrt(s)).
    X = correlated_data(300, 10)
    u, s, _ = np.linalg.svd(np.cov(X.T))
    reference = (X - X.mean(axis=0)) @ (u / np.sqrt(s))
    mu, W = fit_whitening(X)
    ours = apply_whitening(X, mu, W)
    signs = np.sign((ours * reference).sum(axis=0))
    assert np.allclose(ours, reference * signs, atol=1e-8)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_keeping_k_columns_gives_k_dimensional_identity_of_the_top_directions(k):
    X = correlated_data(200, 9)
    mu, W_full = fit_whitening(X)
    mu_k, W_k = fit_whitening(X, k)
    assert W_k.shape == (9, k)
    assert np.allclose(mu_k, mu) and np.allclose(W_k, W_full[:, :k])
    Y = apply_whitening(X, mu_k, W_k)
    assert np.allclose(np.cov(Y, rowvar=False).reshape(k, k), np.eye(k), atol=1e-8)
    # The kept columns are the directions of largest variance: eigenvalues 1 / |w|^2 decrease.
    variances = 1.0 / (W_full**2).sum(axis=0)
    assert np.all(np.diff(variances) <= 1e-12)


def test_fit_whitening_accepts_tensors_and_fixes_column_signs():
    X = correlated_data(100, 5)
    mu, W = fit_whitening(torch.as_tensor(X, dtype=torch.float32))
    pivots = W[np.abs(W).argmax(axis=0), np.arange(5)]
    assert mu.dtype == np.float64 and np.all(pivots > 0)


def test_fit_whitening_keeps_fewer_directions_than_samples_even_when_d_exceeds_n():
    X = correlated_data(10, 20, seed=1)
    with pytest.raises(ValueError, match=r"smaller than the number of samples.*k=10, n=10"):
        fit_whitening(X, k=10)
    with pytest.raises(ValueError, match=r"k=20, n=10"):
        fit_whitening(X)
    mu, W = fit_whitening(X, k=5)
    assert W.shape == (20, 5)
    assert np.allclose(np.cov(apply_whitening(X, mu, W), rowvar=False), np.eye(5), atol=1e-8)


def test_fit_whitening_rejects_a_kept_numerically_zero_eigenvalue_but_allows_dropping_it():
    X = correlated_data(50, 4)
    X = np.hstack([X, X[:, :1] + X[:, 1:2]])  # a collinear fifth column
    with pytest.raises(ValueError, match="numerically zero"):
        fit_whitening(X)
    _, W = fit_whitening(X, k=4)
    assert W.shape == (5, 4)
    with pytest.raises(ValueError, match="numerically zero"):
        fit_whitening(np.ones((10, 2)), k=1)  # constant data: every eigenvalue is zero


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"k": 0}, "k"),
        ({"k": 6}, "k"),
        ({"k": 2.0}, "k"),
        ({"rtol": 0.0}, "rtol"),
    ],
)
def test_fit_whitening_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        fit_whitening(correlated_data(20, 5), **kwargs)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: fit_whitening(np.ones(5)), "X"),
        (lambda: fit_whitening(np.array([[np.nan, 1.0], [0.0, 1.0], [1.0, 2.0]])), "X"),
        (lambda: apply_whitening(np.ones((3, 2)), np.zeros(3), np.eye(2)), "mu"),
        (lambda: apply_whitening(np.ones((3, 2)), np.zeros(2), np.eye(3)), "W"),
        (lambda: anisotropy(np.ones((1, 3))), "at least 2 rows"),
        (lambda: anisotropy(np.array([[1.0, 0.0], [0.0, 0.0]])), "all-zero rows"),
        (lambda: paired_cosine(np.ones((2, 3)), np.ones((3, 3))), "same shape"),
        (lambda: shared_mean_cosine(-1.0, 1.0, 3), "mean_norm_sq"),
        (lambda: shared_mean_cosine(1.0, 0.0, 3), "noise_var"),
        (lambda: shared_mean_cosine(1.0, 1.0, 0), "dim"),
        (lambda: knn_distance(np.ones((3, 2)), k=3), "k"),
        (lambda: knn_distance(np.ones((3, 2)), k=1, queries=[3]), "queries"),
        (lambda: knn_distance(np.ones((3, 2)), k=1, queries=[0.5]), "queries"),
        (lambda: alignment(np.ones((3, 2)), np.ones((3, 3))), "same shape"),
        (lambda: alignment(np.ones(3), np.ones(3)), "x"),
        (lambda: alignment(np.ones((0, 2)), np.ones((0, 2))), "x must hold at least 1 row"),
        (lambda: alignment(np.ones((2, 2)), np.zeros((2, 2))), "all-zero rows"),
        (lambda: alignment(np.ones((2, 2)), np.full((2, 2), np.inf)), "y"),
        (lambda: alignment(np.ones((2, 2)), np.ones((2, 2)), alpha=0), "alpha"),
        (lambda: uniformity(np.ones((1, 2))), "at least 2 rows"),
        (lambda: uniformity(np.array([[1.0, np.nan], [1.0, 0.0]])), "x"),
        (lambda: uniformity(np.ones((3, 2)), t=-1.0), "t"),
        (lambda: uniformity(np.ones((3, 2)), chunk=0), "chunk"),
        (lambda: weighted_spearman(np.ones(3), np.ones(4), np.ones(3)), "same length"),
        (lambda: weighted_spearman(np.ones(3), np.ones(3), np.ones(4)), "weights"),
        (lambda: weighted_spearman(np.ones(3), np.ones(3), -np.ones(3)), "non-negative"),
        (lambda: weighted_spearman(np.ones(3), np.ones(3), np.ones((1, 1, 3))), "weights"),
        (lambda: weighted_spearman(np.ones(1), np.ones(1), np.ones(1)), "at least 2"),
        (lambda: weighted_spearman(np.ones((1, 1, 3)), np.ones(3), np.ones(3)), "x"),
        (lambda: weighted_spearman(np.ones(3), np.ones(3), np.array([1, np.nan, 1])), "weights"),
        (lambda: item_bootstrap_weights([0.0], [1.0], 5), "integer"),
        (lambda: item_bootstrap_weights([0, 1], [1], 5), "same shape"),
        (lambda: item_bootstrap_weights([0], [1], 0), "n_boot"),
    ],
    ids=["fit-X-1d", "fit-X-nan", "apply-mu", "apply-W", "aniso-1-row", "aniso-zero-row",
         "paired-shape", "smc-mean", "smc-var", "smc-dim", "knn-k", "knn-query-range",
         "knn-query-float", "align-shape", "align-1d", "align-empty", "align-zero-row",
         "align-inf", "align-alpha", "unif-1-row", "unif-nan", "unif-t", "unif-chunk",
         "wsp-length", "wsp-weights-length", "wsp-negative", "wsp-3d", "wsp-one-pair",
         "wsp-x-3d", "wsp-nan-weight",
         "boot-float", "boot-length", "boot-n"],
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


@given(n=st.integers(2, 30), d=st.integers(1, 8), seed=st.integers(0, 10_000),
       shift=st.floats(-5, 5))
@settings(max_examples=60, deadline=None)
def test_anisotropy_equals_mean_cosine_over_distinct_pairs_computed_directly(n, d, seed, shift):
    X = torch.as_tensor(np.random.default_rng(seed).normal(size=(n, d)) + shift)
    X = X + 1e-3 * (X.norm(dim=1, keepdim=True) == 0)  # keep rows non-zero
    cos = F.cosine_similarity(X[:, None, :], X[None, :, :], dim=-1)
    direct = (cos.sum() - cos.diagonal().sum()) / (n * (n - 1))
    assert anisotropy(X) == pytest.approx(float(direct), abs=1e-10)


def test_anisotropy_is_one_for_parallel_rows_and_minus_one_over_n_minus_one_at_the_minimum():
    assert anisotropy(np.outer([1.0, 2.0, 5.0], [3.0, -1.0])) == pytest.approx(1.0)
    # Unit vectors summing to zero (a regular simplex) reach the smallest possible mean cosine.
    angles = 2 * np.pi * np.arange(5) / 5
    simplex = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assert anisotropy(simplex) == pytest.approx(-1 / 4)


def test_anisotropy_of_isotropic_gaussian_is_near_zero_and_a_shared_mean_raises_it():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(2000, 64))
    assert abs(anisotropy(Z)) < 0.002  # its standard deviation is about sqrt(2 / d) / (n - 1)
    m = np.full(64, 0.5)  # |m|^2 = 16, d * sigma^2 = 64: predicted cosine 16 / 80
    assert anisotropy(Z + m) == pytest.approx(0.2, abs=0.01)


def test_shared_mean_cosine_matches_monte_carlo_in_high_dimension():
    rng = np.random.default_rng(1)
    d, sigma2 = 384, 0.25
    m = rng.normal(size=d)
    m *= 6.0 / np.linalg.norm(m)  # |m|^2 = 36, d * sigma^2 = 96
    x1 = m + np.sqrt(sigma2) * rng.normal(size=(4000, d))
    x2 = m + np.sqrt(sigma2) * rng.normal(size=(4000, d))
    expected = shared_mean_cosine(36.0, sigma2, d)
    assert expected == pytest.approx(36 / 132)
    assert paired_cosine(x1, x2).mean() == pytest.approx(expected, abs=0.005)
    assert shared_mean_cosine(0.0, sigma2, d) == 0.0


def test_paired_cosine_matches_torch_in_float64():
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(50, 7)), rng.normal(size=(50, 7))
    expected = F.cosine_similarity(torch.as_tensor(A), torch.as_tensor(B), dim=1).numpy()
    assert np.allclose(paired_cosine(A, B), expected, atol=1e-12)
    assert np.allclose(paired_cosine(A, 3.0 * A), 1.0)


@pytest.mark.parametrize("k", [1, 5])
def test_knn_distance_matches_scikit_learn_brute_force(k):
    X = np.random.default_rng(3).normal(size=(300, 6))
    distances, _ = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(X).kneighbors(X)
    expected = distances[:, 1:].mean(axis=1)  # column 0 is the point itself
    assert np.allclose(knn_distance(X, k, chunk=64), expected, atol=1e-9)
    queries = np.array([5, 0, 299])
    assert np.allclose(knn_distance(X, k, queries=queries), expected[queries], atol=1e-9)


# --- alignment and uniformity (Wang & Isola, 2020) -------------------------------------------

def unit(rows):
    return [r / np.sqrt(sum(v * v for v in r)) for r in rows]


def brute_force_alignment(x, y, alpha):
    pairs = zip(unit(x.tolist()), unit(y.tolist()), strict=True)
    terms = [sum((a - b) ** 2 for a, b in zip(u, v, strict=True)) ** (alpha / 2) for u, v in pairs]
    return sum(terms) / len(terms)


def brute_force_uniformity(x, t):
    u = unit(x.tolist())
    terms = [np.exp(-t * sum((a - b) ** 2 for a, b in zip(u[i], u[j], strict=True)))
             for i in range(len(u)) for j in range(len(u)) if i != j]
    return float(np.log(sum(terms) / len(terms)))


@given(n=st.integers(2, 12), d=st.integers(1, 6), alpha=st.floats(0.5, 4),
       t=st.floats(0.1, 5), seed=st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_alignment_and_uniformity_match_a_brute_force_loop(n, d, alpha, t, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)) + 0.3, rng.normal(size=(n, d))
    x[np.linalg.norm(x, axis=1) == 0] = 1.0
    y[np.linalg.norm(y, axis=1) == 0] = 1.0
    assert alignment(x, y, alpha) == pytest.approx(brute_force_alignment(x, y, alpha), abs=1e-10)
    assert uniformity(x, t, chunk=3) == pytest.approx(brute_force_uniformity(x, t), abs=1e-10)


def test_alignment_and_uniformity_match_the_papers_torch_code():
    # Wang & Isola's reference implementation (their Figure 5), on normalised rows.
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    xt, yt = (F.normalize(torch.as_tensor(a), dim=1) for a in (x, y))
    paper_align = (xt - yt).norm(dim=1).pow(2).mean()
    paper_uniform = torch.pdist(xt, p=2).pow(2).mul(-2).exp().mean().log()
    assert alignment(x, y) == pytest.approx(float(paper_align), abs=1e-12)
    assert uniformity(x) == pytest.approx(float(paper_uniform), abs=1e-12)


def test_alignment_and_uniformity_at_their_extremes_and_under_rescaling():
    x = np.random.default_rng(5).normal(size=(30, 4))
    assert alignment(x, 7.0 * x) == pytest.approx(0.0, abs=1e-12)  # only directions count
    assert alignment(x, -x, alpha=3) == pytest.approx(8.0)
    assert uniformity(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-12)
    # Antipodal points: half the pairs at squared distance 4, so log((1 + e^{-4t} ...)) > -4t.
    assert uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]]), t=3) == pytest.approx(-12.0)
    # Large t: a naive exp underflows to log(0); the log-sum-exp stays finite and exact.
    assert uniformity(np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]]), t=500) == pytest.approx(
        np.log(1 / 3))


def test_uniformity_of_spread_points_is_lower_than_of_a_cone():
    rng = np.random.default_rng(6)
    spread = rng.normal(size=(500, 16))
    cone = spread + 4.0
    assert uniformity(spread) < uniformity(cone) < 0


# --- rank correlation with an item-level bootstrap -------------------------------------------

@given(n=st.integers(3, 25), seed=st.integers(0, 10_000), ties=st.booleans())
@settings(max_examples=60, deadline=None)
def test_weighted_spearman_equals_scipy_on_the_repeated_sample(n, seed, ties):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rng.integers(0, 4, size=n).astype(float) if ties else rng.normal(size=n)
    w = rng.integers(0, 4, size=(3, n))
    w[:, :2] = 1  # at least two distinct positions in every resample
    got = weighted_spearman(x, y, w)
    for row, value in zip(w, got, strict=True):
        xs, ys = np.repeat(x, row), np.repeat(y, row)
        if np.ptp(ys) == 0:
            assert np.isnan(value)
        else:
            assert value == pytest.approx(spearmanr(xs, ys).statistic, abs=1e-10)
    assert weighted_spearman(x, y, np.ones(n)) == pytest.approx(
        spearmanr(x, y).statistic if np.ptp(y) else np.nan, abs=1e-10, nan_ok=True)


def test_weighted_spearman_of_many_resamples_equals_one_resample_at_a_time():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=40), rng.integers(0, 5, size=40).astype(float)
    w = rng.integers(0, 3, size=(600, 40))  # more rows than one block of resamples
    one_by_one = [weighted_spearman(x, y, row) for row in w]
    assert np.allclose(weighted_spearman(x, y, w), one_by_one, atol=1e-12, equal_nan=True)


def test_weighted_spearman_of_stacked_scores_equals_one_score_vector_at_a_time():
    rng = np.random.default_rng(9)
    xs, y = rng.normal(size=(4, 30)), rng.integers(0, 4, size=30).astype(float)
    w = rng.integers(0, 3, size=(300, 30))
    stacked = weighted_spearman(xs, y, w)
    assert stacked.shape == (4, 300)
    for x, row in zip(xs, stacked, strict=True):
        assert np.allclose(row, weighted_spearman(x, y, w), atol=1e-12, equal_nan=True)
    assert weighted_spearman(xs, y, np.ones(30)).shape == (4,)


def test_item_bootstrap_resamples_items_and_weights_pairs_by_the_product_of_counts():
    i, j = np.triu_indices(6, k=1)
    w = item_bootstrap_weights(i, j, 2000, seed=0)
    assert w.shape == (2000, 15) and w.dtype.kind == "i"
    assert item_bootstrap_weights(i, j, 2000, seed=0).tolist() == w.tolist()  # seeded
    assert w.mean() == pytest.approx(5 / 6, abs=0.03)  # E[c_a c_b] = n(n-1)/n^2 for a != b
    # Monte Carlo: every item is missing from a resample with probability (5/6)^6.
    item0_missing = (w[:, (i == 0) | (j == 0)] == 0).all(axis=1).mean()
    assert item0_missing == pytest.approx((5 / 6) ** 6, abs=0.03)


def test_item_bootstrap_weights_are_products_of_item_counts_and_a_self_pair_counts_once():
    i, j = np.array([10, 10, 20, 30]), np.array([20, 30, 30, 30])  # the last pair is a self pair
    w = item_bootstrap_weights(i, j, 500, seed=2)
    # Item counts recovered from the pairs: c10 c20, c10 c30, c20 c30 and c30.
    c30 = w[:, 3]
    assert np.array_equal(w[:, 1] * w[:, 2], w[:, 0] * c30**2)
    assert np.all(w.sum(axis=1) >= 0) and set(np.unique(c30)) <= set(range(4))


def test_item_bootstrap_interval_is_wider_than_a_pair_bootstrap_when_items_drive_the_score():
    # Scores and ratings share a per-item effect, so pairs of the same item are dependent.
    rng = np.random.default_rng(7)
    n = 30
    effect = rng.normal(size=n)
    i, j = np.triu_indices(n, k=1)
    ratings = effect[i] + effect[j] + 0.5 * rng.normal(size=len(i))
    scores = effect[i] + effect[j] + 0.5 * rng.normal(size=len(i))
    items = weighted_spearman(scores, ratings, item_bootstrap_weights(i, j, 400, seed=1))
    pairs = weighted_spearman(scores, ratings,
                              rng.multinomial(len(i), np.full(len(i), 1 / len(i)), size=400))
    assert np.std(items) > 2 * np.std(pairs)


def test_bootstrap_spearman_is_the_percentile_interval_of_resampled_repeated_samples():
    rng = np.random.default_rng(3)
    i, j = np.triu_indices(9, k=1)  # 36 pairs of 9 items
    ratings = rng.normal(size=36)
    scores, baseline = ratings + rng.normal(size=36), ratings + 2 * rng.normal(size=36)
    item_weights = item_bootstrap_weights(i, j, 300, seed=5)
    pair_weights = np.random.default_rng(5).multinomial(36, np.full(36, 1 / 36), size=300)
    for weights, items in ((item_weights, (i, j)), (pair_weights, None)):
        by_hand, difference = [], []
        for w in weights:  # the resampled data built pair by pair, scored with SciPy
            rho = spearmanr(np.repeat(scores, w), np.repeat(ratings, w)).statistic
            rho_base = spearmanr(np.repeat(baseline, w), np.repeat(ratings, w)).statistic
            by_hand.append(rho)
            difference.append(rho - rho_base)
        single = bootstrap_spearman(scores, ratings, items=items, n_boot=300, seed=5,
                                    unit="words")
        assert single.estimate == pytest.approx(spearmanr(scores, ratings).statistic,
                                                abs=1e-12)
        assert (single.low, single.high) == pytest.approx(
            tuple(np.quantile(by_hand, [0.025, 0.975])), abs=1e-12)
        assert single.n == (9 if items else 36) and single.unit == "words"
        paired = bootstrap_spearman(scores, ratings, items=items, baseline=baseline,
                                    n_boot=300, seed=5)
        assert (paired.low, paired.high) == pytest.approx(
            tuple(np.quantile(difference, [0.025, 0.975])), abs=1e-12)


def test_anisotropy_interval_equals_the_generic_bootstrap_on_the_same_draws():
    X = correlated_data(60, 5, seed=4)
    fast = anisotropy_interval(X, n_boot=300, seed=9, unit="sentences")
    slow = bootstrap_interval(anisotropy, X, n_resamples=300, seed=9, unit="sentences")
    assert fast.estimate == pytest.approx(anisotropy(X), abs=1e-12)
    assert (fast.low, fast.high, fast.n, fast.unit) == pytest.approx(
        (slow.low, slow.high, slow.n, slow.unit), abs=1e-12)
