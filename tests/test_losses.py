"""dlnotes.losses against torch's built-ins, closed forms and independent solvers."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import case_id
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import QuantileRegressor

from dlnotes.losses import (
    average_parameters,
    binary_cross_entropy_with_logits,
    fit_linear,
    gaussian_nll,
    laplace_nll,
    permutation_barrier,
    saturated_sigmoid_training,
    scaled_cosine_error,
    slowdown_at_best_step,
    steps_to_stay_above,
)
from dlnotes.training import fit

floats = st.floats(-50, 50, allow_nan=False, width=64)


@pytest.mark.parametrize("sigma", [0.1, 1.0, 3.7])
def test_gaussian_nll_matches_torch_full_gaussian_nll(sigma):
    pred = torch.randn(40, dtype=torch.float64)
    target = torch.randn(40, dtype=torch.float64)
    var = torch.full_like(pred, sigma**2)
    expected = torch.nn.GaussianNLLLoss(full=True, eps=0.0)(pred, target, var)
    assert torch.allclose(gaussian_nll(pred, target, sigma), expected, rtol=1e-12)


def test_gaussian_nll_is_minus_log_of_the_normal_density():
    pred, target, sigma = torch.tensor([0.3]), torch.tensor([1.1]), 0.7
    density = torch.distributions.Normal(pred, sigma).log_prob(target)
    assert torch.allclose(gaussian_nll(pred, target, sigma), -density.mean())


@pytest.mark.parametrize("b", [0.2, 1.0, 5.0])
def test_laplace_nll_matches_torch_distribution(b):
    pred = torch.randn(30, dtype=torch.float64)
    target = torch.randn(30, dtype=torch.float64)
    expected = -torch.distributions.Laplace(pred, b).log_prob(target).mean()
    assert torch.allclose(laplace_nll(pred, target, b), expected, rtol=1e-12)


@given(st.lists(st.tuples(floats, st.floats(0, 1)), min_size=1, max_size=20))
@settings(max_examples=60, deadline=None)
def test_bce_with_logits_and_its_gradient_match_torch_for_any_logits_and_targets(pairs):
    logits = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    target = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    mine_logits = logits.clone().requires_grad_(True)
    ref_logits = logits.clone().requires_grad_(True)
    mine = binary_cross_entropy_with_logits(mine_logits, target)
    expected = F.binary_cross_entropy_with_logits(ref_logits, target)
    assert torch.allclose(mine, expected, rtol=1e-10, atol=1e-12)
    mine.backward()
    expected.backward()
    assert torch.allclose(mine_logits.grad, ref_logits.grad, rtol=1e-10, atol=1e-12)


def test_bce_gradient_at_zero_logit_is_sigmoid_minus_target():
    z = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    binary_cross_entropy_with_logits(z, torch.ones(1, dtype=torch.float64)).backward()
    assert float(z.grad[0]) == pytest.approx(-0.5)


def test_bce_with_logits_is_finite_and_exact_at_extreme_logits():
    logits = torch.tensor([1e4, -1e4, 1e4, -1e4], requires_grad=True)
    target = torch.tensor([1.0, 0.0, 0.0, 1.0])
    loss = binary_cross_entropy_with_logits(logits, target)
    loss.backward()
    # Two confident right answers cost 0, two confident wrong ones cost 1e4 each.
    assert torch.isfinite(loss) and math.isclose(float(loss.detach()), 2e4 / 4, rel_tol=1e-6)
    assert torch.isfinite(logits.grad).all()
    assert torch.allclose(logits.grad, torch.tensor([0.0, 0.0, 0.25, -0.25]))


@given(st.integers(1, 6), st.floats(0.5, 4.0))
@settings(max_examples=30, deadline=None)
def test_scaled_cosine_error_with_gamma_one_is_mean_one_minus_cosine(n, gamma):
    x = torch.randn(n, 5, dtype=torch.float64)
    z = torch.randn(n, 5, dtype=torch.float64)
    cos = (x * z).sum(1) / (x.norm(dim=1) * z.norm(dim=1))
    assert torch.allclose(scaled_cosine_error(x, z, 1.0), (1 - cos).mean())
    assert torch.allclose(scaled_cosine_error(x, z, gamma), ((1 - cos) ** gamma).mean())


def test_scaled_cosine_error_matches_torch_cosine_and_with_eps_counts_zero_rows_as_orthogonal():
    gen = torch.Generator().manual_seed(0)
    x, z = (torch.randn(6, 3, dtype=torch.float64, generator=gen) for _ in range(2))
    for gamma in (1.0, 2.0, 3.0):
        reference = ((1 - F.cosine_similarity(x, z, dim=1)) ** gamma).mean()
        assert torch.allclose(scaled_cosine_error(x, z, gamma), reference, rtol=1e-12)
        assert torch.allclose(scaled_cosine_error(x, z, gamma, eps=1e-12), reference, rtol=1e-12)
    z[2] = 0.0
    assert float(scaled_cosine_error(x[2:3], z[2:3], 2.0, eps=1e-12)) == 1.0
    with pytest.raises(ValueError, match="z must have no all-zero rows"):
        scaled_cosine_error(x, z, 2.0)


def test_scaled_cosine_error_is_zero_for_aligned_and_scale_invariant():
    x = torch.randn(4, 3, dtype=torch.float64)
    assert float(scaled_cosine_error(x, 3.0 * x, 2.0)) == pytest.approx(0.0, abs=1e-12)
    z = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(scaled_cosine_error(x, z, 2.0), scaled_cosine_error(5 * x, z, 2.0))


def test_larger_gamma_shrinks_gradient_of_nearly_aligned_pairs_relative_to_bad_ones():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    z = torch.tensor([[1.0, 0.2], [-1.0, 0.5]], dtype=torch.float64, requires_grad=True)
    ratios = []
    for gamma in (1.0, 2.0, 3.0):
        (g,) = torch.autograd.grad(scaled_cosine_error(x, z, gamma), z)
        ratios.append(float(g[0].norm() / g[1].norm()))
    assert ratios[0] > ratios[1] > ratios[2]


def test_fit_linear_with_gaussian_nll_is_least_squares():
    X = torch.randn(80, 2, dtype=torch.float64)
    y = X @ torch.tensor([1.5, -2.0], dtype=torch.float64) + 0.3 + 0.1 * torch.randn(
        80, dtype=torch.float64)
    w, b = fit_linear(X, y, gaussian_nll)
    A = torch.cat([X, torch.ones(80, 1, dtype=torch.float64)], 1)
    ref = torch.linalg.lstsq(A, y).solution
    assert torch.allclose(torch.cat([w, b[None]]), ref, atol=1e-7)


def test_fit_linear_with_laplace_nll_is_least_absolute_deviations():
    gen = np.random.default_rng(1)
    X = gen.normal(size=(60, 1))
    y = 2 * X[:, 0] + gen.standard_cauchy(60)
    w, b = fit_linear(torch.as_tensor(X), torch.as_tensor(y), laplace_nll)
    ref = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(X, y)
    mine = np.abs(y - X[:, 0] * float(w[0]) - float(b)).mean()
    best = np.abs(y - ref.predict(X)).mean()
    assert mine == pytest.approx(best, rel=1e-9)
    assert float(w[0]) == pytest.approx(ref.coef_[0], abs=1e-6)


def test_fit_linear_without_features_gives_the_mean_and_a_median():
    y = torch.tensor([1.0, 2.0, 4.0, 10.0, 50.0], dtype=torch.float64)
    none = torch.zeros(5, 0, dtype=torch.float64)
    assert float(fit_linear(none, y, gaussian_nll)[1]) == pytest.approx(13.4, abs=1e-6)
    assert float(fit_linear(none, y, laplace_nll)[1]) == pytest.approx(4.0, abs=1e-6)


def _reference_sigmoid_gd(X, y, loss, lr, steps, bias):
    """Plain gradient descent with the closed-form gradients, in NumPy."""
    X, y = X.numpy(), y.numpy().astype(float)
    w, b, acc = np.zeros(X.shape[1]), bias, []
    for _ in range(steps):
        s = 1 / (1 + np.exp(-(X @ w + b)))
        factor = {"ce": s - y, "mse": 2 * (s - y) * s * (1 - s),
                  "mae": np.sign(s - y) * s * (1 - s)}[loss] / len(y)
        w, b = w - lr * X.T @ factor, b - lr * factor.sum()
        acc.append(np.mean(((X @ w + b) > 0) == y))
    return np.array(acc)


def test_saturated_sigmoid_training_equals_closed_form_gradient_descent():
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(2, 50, 3, dtype=torch.float64, generator=gen)
    y = (X[..., 0] + 0.5 * torch.randn(2, 50, generator=gen, dtype=torch.float64) > 0).long()
    curves = saturated_sigmoid_training(X, y, ("ce", "mse", "mae"), (0.5, 40.0), steps=30,
                                        bias_init=-4.0)
    assert curves.shape == (30, 2, 3, 2)
    for s in range(2):
        for k, loss in enumerate(("ce", "mse", "mae")):
            for r, lr in enumerate((0.5, 40.0)):
                ref = _reference_sigmoid_gd(X[s], y[s], loss, lr, 30, -4.0)
                assert np.array_equal(curves[:, s, k, r], ref)


def test_saturated_sigmoid_training_with_adam_equals_separate_fit_runs():
    X = torch.randn(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = (X[:, 1] > 0).long()
    curves = saturated_sigmoid_training(X, y, ("mse",), (0.3,), optimizer="adam", steps=12)
    unit = torch.nn.Linear(2, 1, dtype=torch.float64)
    with torch.no_grad():
        unit.weight.zero_()
        unit.bias.fill_(-8.0)
    target = y.double()

    def mse(model, X, y):
        return ((torch.sigmoid(model(X).squeeze(-1)) - y) ** 2).mean()

    def acc(m, _):
        return {"acc": float(((m(X).squeeze(-1) > 0).double() == target).double().mean())}

    history = fit(unit, mse, (X, target), steps=12, optimizer="adam", lr=0.3, callback=acc,
                  record_every=1)
    assert np.array_equal(curves[:, 0, 0, 0], history["acc"])


def test_squared_error_learns_slower_than_cross_entropy_at_a_common_step_size():
    X = torch.randn(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = (X[:, 0] > 0).long()
    curves = saturated_sigmoid_training(X, y, ("ce", "mse"), (0.5,), steps=80)
    assert curves[-1, 0, 0, 0] > 0.9 and curves[-1, 0, 1, 0] < 0.7


def test_steps_to_stay_above_matches_a_brute_force_search():
    gen = np.random.default_rng(0)
    acc = gen.random((15, 4, 3))
    got = steps_to_stay_above(acc, 0.3)
    for idx in np.ndindex(4, 3):
        curve = acc[(slice(None), *idx)]
        expected = next((t for t in range(1, 16) if (curve[t - 1:] >= 0.3).all()), 16)
        assert got[idx] == expected


def test_slowdown_at_best_step_picks_each_losss_best_and_compares_with_the_first():
    steps = np.array([[[4, 2, 8], [16, 8, 64]], [[4, 2, 2], [32, 16, 64]]], dtype=float)
    best, slowdown = slowdown_at_best_step(steps)
    assert best.tolist() == [1, 1]  # mean log2: loss 0 [2, 1, 2], loss 1 [4.5, 3.5, 6]
    assert np.allclose(slowdown, [[0, 2], [0, 3]])


def test_permutation_barrier_is_zero_for_the_identity_and_positive_for_a_trained_relu_net():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, dtype=torch.float64, generator=gen)
    y = (X[:, 0] * X[:, 1] > 0).long()
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    net = net.double()
    fit(net, lambda m, a, b: F.cross_entropy(m(a), b), (X, y), steps=300, lr=0.5)
    assert permutation_barrier(net, torch.arange(8), X, y) == pytest.approx(0.0, abs=1e-12)
    assert permutation_barrier(net, torch.arange(8).flip(0), X, y) > 0.01


def test_average_parameters_is_the_midpoint():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    mid = average_parameters(a, b)
    assert torch.allclose(mid.weight, (a.weight + b.weight) / 2)
    assert torch.allclose(mid.bias, (a.bias + b.bias) / 2)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: gaussian_nll(torch.zeros(3), torch.zeros(3), sigma=0.0), "sigma"),
        (lambda: gaussian_nll(torch.zeros(3), torch.zeros(3), sigma=-1.0), "sigma"),
        (lambda: gaussian_nll(torch.zeros(3), torch.zeros(4)), "shape"),
        (lambda: gaussian_nll(torch.tensor([float("nan")]), torch.zeros(1)), "pred"),
        (lambda: laplace_nll(torch.zeros(3), torch.zeros(3), b=0.0), "b"),
        (lambda: laplace_nll(torch.zeros(3), torch.tensor([0.0, float("inf"), 1.0])), "target"),
        (lambda: binary_cross_entropy_with_logits(torch.zeros(2), torch.tensor([0.0, 2.0])),
         "target"),
        (lambda: binary_cross_entropy_with_logits(torch.zeros(2), torch.zeros(3)), "shape"),
        (lambda: scaled_cosine_error(torch.ones(2, 3), torch.ones(2, 3), gamma=0.0), "gamma"),
        (lambda: scaled_cosine_error(torch.zeros(2, 3), torch.ones(2, 3)), "zero"),
        (lambda: scaled_cosine_error(torch.ones(3), torch.ones(3)), "shape"),
        (lambda: saturated_sigmoid_training(torch.zeros(2, 1), torch.tensor([0, 2])),
         "labels"),
        (lambda: saturated_sigmoid_training(torch.zeros(2, 1), torch.tensor([0, 1]),
                                            ("hinge",)), "losses"),
        (lambda: saturated_sigmoid_training(torch.zeros(2, 1), torch.tensor([0, 1, 1])), "y"),
        (lambda: saturated_sigmoid_training(torch.zeros(2, 1), torch.tensor([0, 1]),
                                            optimizer="lbfgs"), "optimizer"),
        (lambda: fit_linear(torch.zeros(3), torch.zeros(3), gaussian_nll), "X"),
        (lambda: fit_linear(torch.zeros(3, 6), torch.zeros(3), gaussian_nll), "columns"),
        (lambda: steps_to_stay_above(np.zeros((3, 2)), 1.5), "level"),
        (lambda: slowdown_at_best_step(np.zeros((2, 2, 2))), "steps"),
        (lambda: average_parameters(torch.nn.Linear(2, 1), torch.nn.Linear(3, 1)), "parameter"),
    ],
    ids=case_id,
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
