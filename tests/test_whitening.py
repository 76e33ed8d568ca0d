"""dlnotes.whitening against direct computations, an independent SVD reference and Monte Carlo."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import NearestNeighbors

from dlnotes.whitening import (
    anisotropy,
    apply_whitening,
    fit_whitening,
    knn_distance,
    paired_cosine,
    shared_mean_cosine,
)


def correlated_data(n, d, seed=0, shift=3.0):
    """Rows with a non-zero mean and a badly conditioned, non-diagonal covariance."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * np.logspace(0, -2, d)
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


def test_fit_whitening_rejects_not_more_samples_than_dimensions():
    with pytest.raises(ValueError, match=r"more samples than dimensions.*n=5, d=5"):
        fit_whitening(np.random.default_rng(0).normal(size=(5, 5)))


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
    ],
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
