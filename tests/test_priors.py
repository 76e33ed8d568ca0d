"""dlnotes.priors against scikit-learn, torch, SciPy's optimisers and quadrature, closed forms."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import minimize
from sklearn.calibration import _sigmoid_calibration
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn.metrics import hinge_loss as sklearn_hinge_loss
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC

from dlnotes.data import diabetes
from dlnotes.priors import (
    KernelLogisticRegression,
    hinge_loss,
    kernel_grid_log_losses,
    kernel_logistic_objective,
    kernel_logistic_regression,
    laplace_posterior_mean,
    laplace_prior_interval_probability,
    lasso,
    lasso_duality_gap,
    logistic_loss,
    platt_scaling,
    select_on_validation,
    soft_threshold,
    sparse_logistic_data,
)


def lasso_objective(X, y, w, alpha):
    return ((y - X @ w) ** 2).sum() / (2 * len(y)) + alpha * np.abs(w).sum()


def random_regression(seed, n=30, d=8):
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((n, d))
    y = X[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.5 * gen.standard_normal(n)
    return X, y


def moons_like(seed, n=60):
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((n, 2))
    y = np.where(X[:, 0] * X[:, 1] + 0.3 * gen.standard_normal(n) > 0, 1.0, -1.0)
    return X, y


# ----------------------------------------------------------------------- soft threshold


@given(st.lists(st.floats(-50, 50), min_size=1, max_size=20), st.floats(0, 20))
@settings(max_examples=80, deadline=None)
def test_soft_threshold_equals_torch_softshrink(values, t):
    x = torch.tensor(values, dtype=torch.float64)
    assert torch.allclose(soft_threshold(x, t), F.softshrink(x, t), atol=1e-12)


@given(st.floats(-5, 5), st.floats(0, 3))
@settings(max_examples=60, deadline=None)
def test_soft_threshold_minimises_the_one_dimensional_lasso(z, t):
    grid = np.linspace(-8, 8, 160_001)
    brute = grid[np.argmin(0.5 * (grid - z) ** 2 + t * np.abs(grid))]
    got = float(soft_threshold(torch.tensor([z], dtype=torch.float64), t)[0])
    assert got == pytest.approx(brute, abs=2e-4)


def test_soft_threshold_broadcasts_a_tensor_threshold_and_zeroes_small_values():
    x = torch.tensor([[3.0, -0.5], [-3.0, 0.5]])
    t = torch.tensor([1.0, 2.0])
    expected = torch.tensor([[2.0, 0.0], [-2.0, 0.0]])
    assert torch.equal(soft_threshold(x, t), expected)


# ------------------------------------------------------------------------------ the lasso


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.01, 0.001])
def test_lasso_matches_scikit_learn_on_diabetes(fraction):
    X, y, _ = diabetes()
    alpha = fraction * np.abs(X.T @ y).max() / len(y)
    mine = lasso(X, y, alpha)
    ref = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=1_000_000).fit(X, y)
    assert np.allclose(mine, ref.coef_, atol=1e-5 * np.abs(ref.coef_).max())
    assert lasso_objective(X, y, mine, alpha) <= lasso_objective(X, y, ref.coef_, alpha) + 1e-9


@given(st.integers(0, 10_000), st.floats(0.01, 1.0))
@settings(max_examples=25, deadline=None)
def test_lasso_solution_satisfies_the_subgradient_conditions(seed, fraction):
    X, y = random_regression(seed, n=12, d=20)  # more features than rows
    alpha = fraction * np.abs(X.T @ y).max() / len(y)
    w = lasso(X, y, alpha)
    corr = X.T @ (y - X @ w) / len(y)
    active = w != 0
    assert np.all(np.abs(corr[~active]) <= alpha * (1 + 1e-6) + 1e-9)
    assert np.allclose(corr[active], alpha * np.sign(w[active]), atol=1e-5 * alpha + 1e-9)


def test_lasso_with_orthonormal_columns_is_soft_thresholding():
    gen = np.random.default_rng(3)
    n = 40
    Q, _ = np.linalg.qr(gen.standard_normal((n, 5)))
    X = math.sqrt(n) * Q  # X'X / n = I
    y = gen.standard_normal(n) * 3
    alpha = 0.4
    expected = F.softshrink(torch.as_tensor(X.T @ y / n), alpha).numpy()
    assert np.allclose(lasso(X, y, alpha), expected, atol=1e-8)


def test_lasso_is_zero_above_the_largest_correlation_and_least_squares_as_alpha_vanishes():
    X, y = random_regression(1)
    alpha_max = np.abs(X.T @ y).max() / len(y)
    assert np.all(lasso(X, y, alpha_max * 1.001) == 0)
    assert np.any(lasso(X, y, alpha_max * 0.99) != 0)
    assert np.allclose(lasso(X, y, 1e-9), np.linalg.lstsq(X, y, rcond=None)[0], atol=1e-6)


def test_lasso_warm_start_gives_the_same_solution():
    X, y = random_regression(2)
    cold = lasso(X, y, 0.05)
    warm = lasso(X, y, 0.05, w_init=lasso(X, y, 0.2))
    assert np.allclose(cold, warm, atol=1e-7)


def test_lasso_warns_when_it_runs_out_of_sweeps():
    X, y, _ = diabetes()
    with pytest.warns(RuntimeWarning, match="max_iter"):
        lasso(X, y, 1e-4, max_iter=2)


@given(st.integers(0, 10_000), st.floats(0.01, 1.0))
@settings(max_examples=40, deadline=None)
def test_duality_gap_bounds_the_excess_objective_and_vanishes_at_the_optimum(seed, fraction):
    X, y = random_regression(seed)
    alpha = fraction * np.abs(X.T @ y).max() / len(y)
    best = Lasso(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=1_000_000).fit(X, y).coef_
    w = best + np.random.default_rng(seed).standard_normal(X.shape[1])
    excess = lasso_objective(X, y, w, alpha) - lasso_objective(X, y, best, alpha)
    assert lasso_duality_gap(X, y, w, alpha) >= excess - 1e-9
    assert lasso_duality_gap(X, y, best, alpha) == pytest.approx(0.0, abs=1e-7)


# ----------------------------------------------------------- Laplace posterior mean


@pytest.mark.parametrize("z", [-6.0, -1.3, -0.2, 0.0, 0.4, 2.5, 9.0])
@pytest.mark.parametrize(("s", "b"), [(1.0, 1.0), (0.5, 2.0), (2.0, 0.3)])
def test_laplace_posterior_mean_matches_numerical_integration(z, s, b):
    def density(w):
        return math.exp(-((w - z) ** 2) / (2 * s * s) - abs(w) / b)

    lo, hi = z - 12 * s - 12 * b, z + 12 * s + 12 * b
    mass = quad(density, lo, 0)[0] + quad(density, 0, hi)[0]
    first = quad(lambda w: w * density(w), lo, 0)[0] + quad(lambda w: w * density(w), 0, hi)[0]
    assert float(laplace_posterior_mean(z, s, b)) == pytest.approx(first / mass, abs=1e-8)


@given(st.floats(-30, 30), st.floats(0.1, 5), st.floats(0.1, 5))
@settings(max_examples=80, deadline=None)
def test_laplace_posterior_mean_is_odd_shrinks_and_is_zero_only_at_zero(z, s, b):
    m = float(laplace_posterior_mean(z, s, b))
    assert float(laplace_posterior_mean(-z, s, b)) == -m
    assert float(laplace_posterior_mean(0.0, s, b)) == 0.0
    assert abs(m) <= abs(z) + 1e-12
    if abs(z) > 1e-6:
        assert m != 0.0 and np.sign(m) == np.sign(z)


def test_laplace_posterior_mean_is_finite_for_extreme_observations():
    z = np.array([-1e4, -50.0, 50.0, 1e4])
    m = laplace_posterior_mean(z, 1.0, 1.0)
    assert np.all(np.isfinite(m))
    # Far from zero the posterior is a Gaussian shifted by s^2/b towards zero.
    assert np.allclose(m, z - np.sign(z) * 1.0, rtol=1e-10)


# ------------------------------------------------------------------------ margin losses


def test_logistic_loss_is_stable_at_huge_margins_and_exact_at_moderate_ones():
    m = np.array([-1e4, -800.0, -3.0, 0.0, 3.0, 800.0, 1e4])
    loss = logistic_loss(m)
    assert np.all(np.isfinite(loss))
    assert loss[0] == pytest.approx(1e4) and loss[-1] == pytest.approx(0.0, abs=1e-300)
    assert np.allclose(loss[2:5], np.log1p(np.exp(-m[2:5])), rtol=1e-14)


@given(st.integers(2, 30), st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_hinge_loss_matches_scikit_learn_and_torch(n, seed):
    gen = np.random.default_rng(seed)
    scores = 3 * gen.standard_normal(n)
    labels = np.concatenate([[-1, 1], gen.choice([-1, 1], n - 2)])  # both classes present
    ref = sklearn_hinge_loss(labels, scores, labels=[-1, 1])
    assert hinge_loss(scores, labels) == pytest.approx(ref, rel=1e-12, abs=1e-15)
    torch_value = hinge_loss(torch.as_tensor(scores), torch.as_tensor(labels))
    assert float(torch_value) == pytest.approx(ref, rel=1e-12, abs=1e-15)
    assert hinge_loss(list(scores), list(labels)) == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_hinge_form_equals_the_constrained_soft_margin_svm():
    gen = np.random.default_rng(0)
    C, n, d = 0.7, 24, 2
    X = gen.standard_normal((n, d))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] + 0.8 * gen.standard_normal(n) > 0, 1.0, -1.0)

    def objective(v):  # v = (w, b, xi)
        return 0.5 * v[:d] @ v[:d] + C * v[d + 1:].sum()

    constraints = [
        {"type": "ineq", "fun": lambda v: v[d + 1:]},
        {"type": "ineq", "fun": lambda v: v[d + 1:] - 1 + y * (X @ v[:d] + v[d])},
    ]
    qp = minimize(objective, np.ones(d + 1 + n), constraints=constraints, method="SLSQP",
                  options={"ftol": 1e-12, "maxiter": 500})
    svc = SVC(kernel="linear", C=C, tol=1e-9).fit(X, y)
    w, b = svc.coef_[0], svc.intercept_[0]
    hinge_form = 0.5 * w @ w + C * n * hinge_loss(X @ w + b, y)
    assert hinge_form == pytest.approx(qp.fun, rel=1e-6)
    assert np.allclose(qp.x[:d], w, atol=1e-4)
    # At the optimum every slack equals the hinge of its margin.
    margins = y * (X @ qp.x[:d] + qp.x[d])
    assert np.allclose(qp.x[d + 1:], np.maximum(0, 1 - margins), atol=1e-5)


# ---------------------------------------------------------- kernel logistic regression


@pytest.mark.parametrize("lam", [1e-2, 1e-1])
def test_kernel_logistic_regression_matches_a_direct_optimiser(lam):
    X, y = moons_like(1, n=40)
    K = rbf_kernel(X, X, gamma=0.5)
    alpha = kernel_logistic_regression(K, y, lam)

    def value_and_grad(a):
        f = K @ a
        sig = 0.5 * (1 - np.tanh(y * f / 2))  # sigma(-y f), computed independently
        return (np.mean(np.log1p(np.exp(-y * f))) + lam * a @ f,
                K @ (-y * sig / len(y) + 2 * lam * a))

    ref = minimize(value_and_grad, np.zeros(len(y)), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 0, "maxiter": 20_000, "maxcor": 50})
    assert kernel_logistic_objective(K, y, lam, alpha) <= ref.fun + 1e-10
    assert np.allclose(K @ alpha, K @ ref.x, atol=1e-4)


def test_kernel_logistic_solution_has_the_representer_form():
    X, y = moons_like(2)
    K = rbf_kernel(X, X, gamma=2.0)
    lam = 1e-2
    alpha = kernel_logistic_regression(K, y, lam)
    m = y * (K @ alpha)
    assert np.allclose(alpha, y / (1 + np.exp(m)) / (2 * lam * len(y)), atol=1e-9)


def test_linear_kernel_gives_l2_logistic_regression_of_scikit_learn():
    gen = np.random.default_rng(4)
    X = gen.standard_normal((80, 3))
    y = np.where(X @ np.array([1.0, -2.0, 0.5]) + gen.standard_normal(80) > 0, 1.0, -1.0)
    lam = 0.01
    alpha = kernel_logistic_regression(X @ X.T, y, lam)
    # sklearn: 1/2 |w|^2 + C sum log(1 + exp(-y w'x)) = C N (mean loss + |w|^2 / (2 C N)).
    ref = LogisticRegression(C=1 / (2 * lam * len(y)), fit_intercept=False, tol=1e-12,
                             max_iter=10_000).fit(X, y)
    assert np.allclose(X.T @ alpha, ref.coef_[0], atol=1e-6)


def test_kernel_logistic_regression_is_finite_for_a_huge_kernel():
    X, y = moons_like(3, n=20)
    K = 1e4 * (X @ X.T)
    alpha = kernel_logistic_regression(K, y, 1e-6)
    assert np.all(np.isfinite(alpha))
    assert np.isfinite(kernel_logistic_objective(K, y, 1e-6, alpha))


def test_kernel_logistic_estimator_wraps_the_function_and_maps_labels():
    X, y = moons_like(5)
    labels = np.where(y > 0, "b", "a")
    model = KernelLogisticRegression(gamma=0.5, lam=1e-2).fit(X, labels)
    alpha = kernel_logistic_regression(rbf_kernel(X, X, gamma=0.5), y, 1e-2)
    assert np.allclose(model.dual_coef_, alpha)
    proba = model.predict_proba(X)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(model.predict(X), np.where(proba[:, 1] > 0.5, "b", "a"))
    assert model.score(X, labels) == pytest.approx(np.mean(model.predict(X) == labels))
    assert not hasattr(model, "set_score_request")  # nothing sklearn-generated to document


def test_platt_scaling_matches_scikit_learns_sigmoid_calibration():
    gen = np.random.default_rng(6)
    y = gen.choice([-1.0, 1.0], 200)
    scores = 1.5 * y + gen.standard_normal(200)
    a, b = platt_scaling(scores, y)
    a_ref, b_ref = _sigmoid_calibration(scores, y)  # P = 1 / (1 + exp(a_ref s + b_ref))
    assert a == pytest.approx(-a_ref, rel=1e-4)
    assert b == pytest.approx(-b_ref, rel=1e-4, abs=1e-5)
    assert a > 0


# -------------------------------------------------------------------------- experiments


def test_sparse_logistic_data_follows_its_logistic_model():
    X, y = sparse_logistic_data(40_000, 2, 3, signal=2.0, seed=0)
    assert X.shape == (40_000, 5) and set(np.unique(y)) == {-1, 1}
    fit = LogisticRegression(C=1e6, fit_intercept=False, max_iter=1000).fit(X, y)
    theta = np.array([2 / math.sqrt(2)] * 2 + [0.0] * 3)
    assert np.allclose(fit.coef_[0], theta, atol=0.06)


def test_select_on_validation_keeps_the_first_best_entry():
    class Constant:
        def __init__(self, p):
            self.p = p

        def fit(self, X, y):
            return self

        def score(self, X, y):
            return {1: 0.5, 2: 0.9, 3: 0.9}[self.p]

    model, p, scores = select_on_validation(Constant, [1, 2, 3], None, None, None, None)
    assert p == 2 and model.p == 2 and scores == [0.5, 0.9, 0.9]
    _, p_custom, _ = select_on_validation(Constant, [1, 2, 3], None, None, None, None,
                                          score=lambda m, X, y: -m.p)
    assert p_custom == 1


def test_kernel_grid_log_losses_equal_separately_fitted_models():
    gen = np.random.default_rng(9)
    X = gen.standard_normal((60, 2))
    y = (X[:, 0] * X[:, 1] + 0.3 * gen.standard_normal(60) > 0).astype(int)
    gammas, lams = (0.3, 2.0), (1e-1, 1e-3)
    got = kernel_grid_log_losses(X[:40], y[:40], X[40:], y[40:], gammas, lams)
    for i, lam in enumerate(lams):
        for g, gamma in enumerate(gammas):
            klr = KernelLogisticRegression(gamma=gamma, lam=lam).fit(X[:40], y[:40])
            ref_klr = -np.mean(np.log(klr.predict_proba(X[40:])[np.arange(20), y[40:]]))
            svc = SVC(gamma=gamma, C=1 / (2 * lam * 40)).fit(X[:40], y[:40])
            a, b = platt_scaling(svc.decision_function(X[40:]), 2 * y[40:] - 1)
            p1 = 1 / (1 + np.exp(-(a * svc.decision_function(X[40:]) + b)))
            ref_svc = -np.mean(np.where(y[40:] == 1, np.log(p1), np.log(1 - p1)))
            assert got["kernel LR"][i, g] == pytest.approx(ref_klr, rel=1e-6)
            assert got["SVC + Platt"][i, g] == pytest.approx(ref_svc, rel=1e-6)


def test_kernel_logistic_regression_warm_start_gives_the_same_solution():
    X, y = moons_like(7, n=40)
    K = rbf_kernel(X, X, gamma=1.0)
    cold = kernel_logistic_regression(K, y, 1e-3)
    warm = kernel_logistic_regression(K, y, 1e-3, alpha_init=kernel_logistic_regression(K, y, 1e-1))
    assert np.allclose(cold, warm, atol=1e-8)


@pytest.mark.parametrize(("t", "s", "b"), [(math.sqrt(2), 1.0, 1 / math.sqrt(2)), (0.5, 2.0, 3.0)])
def test_laplace_prior_interval_probability_matches_monte_carlo(t, s, b):
    gen = np.random.default_rng(0)
    z = gen.laplace(0.0, b, 400_000) + s * gen.standard_normal(400_000)
    mc = np.mean(np.abs(z) <= t)
    assert laplace_prior_interval_probability(t, s, b) == pytest.approx(mc, abs=4e-3)


def test_laplace_prior_interval_probability_limits():
    from scipy.special import ndtr
    # A very narrow prior: z is the noise alone; no noise: |w| <= t under the Laplace prior.
    assert laplace_prior_interval_probability(1.0, 1.0, 1e-6) == pytest.approx(
        2 * ndtr(1.0) - 1, abs=1e-6)
    assert laplace_prior_interval_probability(1.0, 1e-6, 2.0) == pytest.approx(
        1 - math.exp(-0.5), abs=1e-6)
    assert laplace_prior_interval_probability(0.0, 1.0, 1.0) == 0.0


# ------------------------------------------------------------------------------ bad input

X4, y4 = np.zeros((4, 2)), np.array([1.0, -1.0, 1.0, -1.0])

@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: soft_threshold(torch.zeros(3), -1.0), "threshold"),
        (lambda: soft_threshold(torch.zeros(3), torch.tensor([1.0, -1.0, 0.0])), "threshold"),
        (lambda: soft_threshold(np.zeros(3), 1.0), "x"),
        (lambda: soft_threshold(torch.tensor([math.nan]), 1.0), "x"),
        (lambda: lasso(X4, y4, -0.1), "alpha"),
        (lambda: lasso(X4, y4, 0.0), "alpha"),
        (lambda: lasso(X4, y4[:3], 0.1), "same number of rows"),
        (lambda: lasso(X4, y4, 0.1, max_iter=0), "max_iter"),
        (lambda: lasso(X4, y4, 0.1, tol=0.0), "tol"),
        (lambda: lasso(X4, y4, 0.1, w_init=np.zeros(3)), "w_init"),
        (lambda: lasso(np.full((4, 2), np.inf), y4, 0.1), "X"),
        (lambda: lasso_duality_gap(X4, y4, np.zeros(3), 0.1), "w"),
        (lambda: laplace_posterior_mean(1.0, 0.0, 1.0), "noise_std"),
        (lambda: laplace_posterior_mean(1.0, 1.0, -2.0), "scale"),
        (lambda: laplace_posterior_mean(np.nan, 1.0, 1.0), "z"),
        (lambda: logistic_loss(np.array([np.inf])), "margins"),
        (lambda: hinge_loss(np.zeros(4), np.array([0, 1, 1, 0])), "labels"),
        (lambda: hinge_loss(np.zeros(3), y4), "same shape"),
        (lambda: hinge_loss(np.full(4, np.nan), y4), "scores"),
        (lambda: kernel_logistic_regression(np.eye(4), y4, 0.0), "lam"),
        (lambda: kernel_logistic_regression(np.eye(4), np.array([0, 1, 1, 0]), 0.1), "y"),
        (lambda: kernel_logistic_regression(np.ones((4, 3)), y4, 0.1), "square"),
        (lambda: kernel_logistic_regression(np.triu(np.ones((4, 4))), y4, 0.1), "symmetric"),
        (lambda: kernel_logistic_regression(np.eye(3), y4, 0.1), "same number of rows"),
        (lambda: kernel_logistic_regression(np.eye(4), y4, 0.1, max_iter=0), "max_iter"),
        (lambda: kernel_logistic_objective(np.eye(4), y4, 0.1, np.zeros(3)), "same shape"),
        (lambda: KernelLogisticRegression(gamma=-1.0).fit(X4, y4), "gamma"),
        (lambda: KernelLogisticRegression().fit(X4, np.zeros(4)), "two classes"),
        (lambda: platt_scaling(np.zeros(4), np.array([0, 1, 1, 0])), "labels"),
        (lambda: platt_scaling(np.zeros((4, 1)), y4), "scores"),
        (lambda: sparse_logistic_data(10, 0, 5), "n_relevant"),
        (lambda: sparse_logistic_data(10, 1, -1), "n_irrelevant"),
        (lambda: sparse_logistic_data(10, 1, 1, signal=0.0), "signal"),
        (lambda: select_on_validation(SVC, [], X4, y4, X4, y4), "grid"),
        (lambda: kernel_logistic_regression(np.eye(4), y4, 0.1, alpha_init=np.zeros(3)),
         "alpha_init"),
        (lambda: laplace_prior_interval_probability(-1.0, 1.0, 1.0), "t"),
        (lambda: laplace_prior_interval_probability(1.0, 0.0, 1.0), "noise_std"),
        (lambda: kernel_grid_log_losses(X4, y4, X4, y4, (1.0,), (0.1,)), "y_train"),
        (lambda: kernel_grid_log_losses(X4, y4 > 0, X4, y4 > 0, (1.0,), (0.0,)), "lams"),
        (lambda: kernel_grid_log_losses(X4, y4 > 0, np.zeros((4, 3)), y4 > 0, (1.0,), (0.1,)),
         "X_val"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
