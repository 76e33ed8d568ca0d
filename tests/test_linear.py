"""dlnotes.linear against the normal equations, scikit-learn's Ridge and the pseudo-inverse."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Ridge
from sklearn.preprocessing import PolynomialFeatures

from dlnotes.linear import polynomial_features, ridge_solution


def regression_data(n=50, d=4, seed=0):
    gen = np.random.default_rng(seed)
    X = gen.normal(size=(n, d))
    y = X @ gen.normal(size=d) + 0.5 * gen.normal(size=n)
    return X, y


def test_ridge_solution_solves_the_normal_equations_and_matches_sklearn_at_alpha_n_lam():
    X, y = regression_data()
    n, d = X.shape
    for lam in (0.01, 0.3, 5.0):
        w = ridge_solution(X, y, lam)
        normal = np.linalg.solve(X.T @ X / n + lam * np.eye(d), X.T @ y / n)
        sk = Ridge(alpha=n * lam, fit_intercept=False).fit(X, y).coef_
        assert np.allclose(w, normal, rtol=1e-10, atol=1e-12)
        assert np.allclose(w, sk, rtol=1e-8, atol=1e-10)


def test_ridge_solution_with_zero_lambda_is_the_minimum_norm_least_squares_solution():
    X, y = regression_data(n=5, d=8)  # more features than rows: many exact fits
    w = ridge_solution(X, y, 0.0)
    assert np.allclose(w, np.linalg.pinv(X) @ y, atol=1e-10)
    assert np.allclose(X @ w, y, atol=1e-10)


@given(st.floats(1e-4, 10.0), st.floats(1.01, 10.0), st.integers(0, 50))
@settings(max_examples=40, deadline=None)
def test_ridge_shrinks_the_coefficients_monotonically_in_lambda(lam, factor, seed):
    X, y = regression_data(n=20, d=5, seed=seed)
    small, large = ridge_solution(X, y, lam), ridge_solution(X, y, lam * factor)
    assert np.linalg.norm(large) <= np.linalg.norm(small) * (1 + 1e-12)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: ridge_solution(np.zeros((4, 2)), np.zeros(4), -1.0), "lam"),
        (lambda: ridge_solution(np.zeros((4, 2)), np.zeros(3), 1.0), "same number of rows"),
        (lambda: ridge_solution(np.zeros(4), np.zeros(4), 1.0), "X"),
        (lambda: ridge_solution(np.full((2, 2), np.nan), np.zeros(2), 1.0), "X"),
        (lambda: ridge_solution(np.zeros((0, 2)), np.zeros(0), 1.0), "X must hold at least 1 row"),
    ],
    ids=["negative-lam", "rows", "X-1d", "X-nan", "no-rows"],
)
def test_ridge_solution_rejects_bad_input_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


@pytest.mark.parametrize(("n", "d", "degree"),
                         [(7, 1, 1), (9, 3, 2), (12, 4, 3), (5, 10, 2), (6, 2, 4)])
def test_polynomial_features_equal_scikit_learns_bit_for_bit(n, d, degree):
    X = np.random.default_rng(n * d + degree).normal(size=(n, d))
    ours = polynomial_features(X, degree)
    reference = PolynomialFeatures(degree, include_bias=False).fit_transform(X)
    assert ours.shape == reference.shape and np.array_equal(ours, reference)


def test_polynomial_features_are_the_monomials():
    X = np.array([[2.0, 3.0], [-1.0, 5.0]])
    expected = [[2, 3, 4, 6, 9, 8, 12, 18, 27], [-1, 5, 1, -5, 25, -1, 5, -25, 125]]
    assert np.array_equal(polynomial_features(X, 3), np.array(expected, dtype=float))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: polynomial_features(np.ones(3), 2), "X"),
    (lambda: polynomial_features(np.ones((2, 2)), 0), "degree"),
    (lambda: polynomial_features(np.array([[1.0, np.nan]]), 2), "X"),
])
def test_polynomial_features_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
