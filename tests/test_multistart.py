"""dlnotes.multistart against torch's autograd, scikit-learn and brute force."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from dlnotes.multistart import (
    distinct_minima,
    fit_tanh_net,
    tanh_net_hessian,
    tanh_net_objective,
    tanh_net_scores,
    threshold_accuracy,
)


def moons_like(seed, n=60):
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((n, 2))
    y = np.where(X[:, 0] * X[:, 1] + 0.3 * gen.standard_normal(n) > 0, 1.0, -1.0)
    return X, y


@pytest.mark.parametrize("hidden", [0, 3])
def test_tanh_net_objective_and_gradient_match_torch_autograd(hidden):
    gen = np.random.default_rng(7)
    X = gen.standard_normal((15, 4))
    y = gen.choice([-1.0, 1.0], 15)
    size = 5 if hidden == 0 else hidden * 6 + 1
    theta = gen.standard_normal(size)
    value, grad = tanh_net_objective(theta, X, y, 0.1, hidden)
    t = torch.tensor(theta, requires_grad=True)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    if hidden == 0:
        f, penalty = Xt @ t[:4] + t[4], (t[:4] ** 2).sum()
    else:
        W1 = t[:12].reshape(3, 4)
        f = torch.tanh(Xt @ W1.T + t[12:15]) @ t[15:18] + t[18]
        penalty = (W1**2).sum() + (t[15:18] ** 2).sum()
    ref = F.binary_cross_entropy_with_logits(f, (yt + 1) / 2) + 0.1 * penalty
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-12)
    assert np.allclose(grad, t.grad.numpy(), atol=1e-12)
    assert np.allclose(tanh_net_scores(theta, X, hidden), f.detach().numpy())


def test_fit_tanh_net_without_hidden_units_is_scikit_learns_logistic_regression():
    X, y = moons_like(8, n=100)
    lam = 0.01
    run = fit_tanh_net(X, y, 0, lam, seed=0, init_std=5.0, tol=1e-10)
    ref = LogisticRegression(C=1 / (2 * lam * len(y)), tol=1e-12, max_iter=10_000).fit(X, y)
    assert np.allclose(run["theta"], [*ref.coef_[0], ref.intercept_[0]], atol=1e-6)
    assert run["grad_max"] <= 1e-10


def test_fit_tanh_net_from_a_pytorch_start_reaches_the_same_convex_optimum():
    X, y = moons_like(8, n=100)
    runs = [fit_tanh_net(X, y, 0, 0.01, seed=s, init="pytorch", tol=1e-10) for s in range(3)]
    assert all(np.allclose(r["theta"], runs[0]["theta"], atol=1e-7) for r in runs)


def test_pytorch_start_lies_within_each_layers_fan_in_bound():
    X, y = moons_like(3, n=50)
    X = np.hstack([X, X ** 2, X[:, :1] * X[:, 1:]])  # d = 5
    run = fit_tanh_net(X, y, 4, 0.1, seed=0, init="pytorch", max_iter=1)
    start = np.random.default_rng(0)
    first = start.uniform(-1, 1, 4 * 6) / np.sqrt(5)
    second = start.uniform(-1, 1, 5) / np.sqrt(4)
    assert np.abs(first).max() <= 1 / np.sqrt(5) and np.abs(second).max() <= 0.5
    assert run["iterations"] <= 1


@pytest.mark.parametrize("hidden", [0, 3])
def test_tanh_net_hessian_matches_finite_differences_of_the_gradient(hidden):
    gen = np.random.default_rng(11)
    X = gen.standard_normal((25, 4))
    y = gen.choice([-1.0, 1.0], 25)
    theta = 0.5 * gen.standard_normal(5 if hidden == 0 else hidden * 6 + 1)
    H = tanh_net_hessian(theta, X, y, 0.05, hidden)
    eps = 1e-6
    fd = np.array([(tanh_net_objective(theta + eps * e, X, y, 0.05, hidden)[1]
                    - tanh_net_objective(theta - eps * e, X, y, 0.05, hidden)[1]) / (2 * eps)
                   for e in np.eye(theta.size)])
    assert np.allclose(H, H.T)
    assert np.allclose(H, fd, atol=1e-6)


def test_distinct_minima_groups_losses_closer_than_the_tolerance():
    groups = distinct_minima(np.array([0.5, 0.1, 0.1 + 1e-9, 0.3, 0.5 + 2e-9]), 1e-6)
    assert groups.tolist() == [2, 0, 0, 1, 2]


def test_threshold_accuracy_matches_a_loop():
    gen = np.random.default_rng(2)
    scores, labels = gen.standard_normal(30), gen.choice([-1, 1], 30)
    thresholds = np.linspace(-2, 2, 9)
    expected = [np.mean(np.where(scores >= t, 1, -1) == labels) for t in thresholds]
    assert np.allclose(threshold_accuracy(scores, labels, thresholds), expected)


X4, y4 = np.zeros((4, 2)), np.array([1.0, -1.0, 1.0, -1.0])


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: tanh_net_objective(np.zeros(4), X4, y4, 0.1, 0), "theta"),
        (lambda: tanh_net_objective(np.zeros(3), X4, y4, -0.1, 0), "lam"),
        (lambda: tanh_net_objective(np.zeros(3), X4, np.zeros(4), 0.1, 0), "y"),
        (lambda: tanh_net_scores(np.zeros(4), X4, 1), "theta"),
        (lambda: fit_tanh_net(X4, y4, -1, 0.1, seed=0), "hidden"),
        (lambda: fit_tanh_net(X4, y4, 1, 0.1, seed=0, init_std=0.0), "init_std"),
        (lambda: fit_tanh_net(X4, y4, 1, 0.1, seed=0, init="xavier"), "init"),
        (lambda: tanh_net_hessian(np.zeros(4), X4, y4, 0.1, 0), "theta"),
        (lambda: distinct_minima(np.array([]), 1e-6), "losses"),
        (lambda: distinct_minima(np.array([1.0]), -1.0), "tol"),
        (lambda: threshold_accuracy(np.zeros(4), np.zeros(4), np.zeros(2)), "labels"),
        (lambda: threshold_accuracy(np.zeros(3), y4, np.zeros(2)), "same shape"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
