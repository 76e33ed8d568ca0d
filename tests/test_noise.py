"""dlnotes.noise against closed forms, finite differences, autograd Hessians and Monte Carlo."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import case_id
from sklearn.linear_model import Ridge
from torch import nn

from dlnotes.linear import ridge_solution
from dlnotes.noise import (
    add_gaussian_noise,
    cross_validated_noise_level,
    gauss_newton_penalty,
    gradient_norm_penalty,
    input_noise_solution,
    jacobian_gram,
    output_hessian_trace,
    output_jacobian,
    perturbed_parameters,
    sharpness,
    weight_noise_excess_cross_entropy,
    weight_noise_excess_loss,
    weight_noise_expansion,
)
from dlnotes.training import mlp


def tanh_net(sizes=(3, 5, 2), seed=0, bias=True):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers).double()


def flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def set_flat_params(model, flat):
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(flat, model.parameters())


def regression_data(n=50, d=4, seed=0):
    gen = np.random.default_rng(seed)
    X = gen.normal(size=(n, d))
    y = X @ gen.normal(size=d) + 0.5 * gen.normal(size=n)
    return X, y


# ----------------------------------------------------------------------------- input noise


def test_gaussian_noise_has_the_requested_mean_and_std_for_tensors_and_arrays():
    x = torch.zeros(200_000, dtype=torch.float64)
    noisy = add_gaussian_noise(x, 0.3, torch.Generator().manual_seed(1))
    assert abs(float(noisy.mean())) < 0.003 and float(noisy.std()) == pytest.approx(0.3, rel=0.01)
    arr = np.full(200_000, 2.0)
    noisy_arr = add_gaussian_noise(arr, 1.5, np.random.default_rng(1))
    assert isinstance(noisy_arr, np.ndarray) and noisy_arr.dtype == np.float64
    assert noisy_arr.mean() == pytest.approx(2.0, abs=0.02)
    assert noisy_arr.std() == pytest.approx(1.5, rel=0.01)


def test_gaussian_noise_is_reproducible_keeps_dtype_and_zero_std_is_a_copy():
    x = torch.randn(5, 3)
    a = add_gaussian_noise(x, 0.1, torch.Generator().manual_seed(7))
    b = add_gaussian_noise(x, 0.1, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.dtype == torch.float32 and not torch.equal(a, x)
    assert torch.equal(add_gaussian_noise(x, 0.0), x)


def test_input_noise_solution_approaches_ridge_with_lambda_sigma_squared():
    X, y = regression_data(n=60, d=4)
    sigma = 0.7
    ridge = ridge_solution(X, y, sigma**2)
    errors = [np.mean([np.abs(input_noise_solution(X, y, sigma, c, seed=s) - ridge).max()
                       for s in range(5)]) for c in (20, 2000)]
    # Monte Carlo error falls like 1/sqrt(copies): 100 times the copies, about 10 times less
    # (averaged over five seeds so that one lucky draw cannot decide).
    assert errors[1] < errors[0] / 4
    assert errors[1] < 0.02 * np.abs(ridge).max()


def test_input_noise_with_zero_sigma_is_ordinary_least_squares():
    X, y = regression_data()
    ls = np.linalg.lstsq(X, y, rcond=None)[0]
    assert np.allclose(input_noise_solution(X, y, 0.0, 3), ls, atol=1e-10)


def test_input_noise_solution_is_reproducible_given_the_seed():
    X, y = regression_data()
    a = input_noise_solution(X, y, 0.5, 10, seed=4)
    assert np.array_equal(a, input_noise_solution(X, y, 0.5, 10, seed=4))
    assert not np.array_equal(a, input_noise_solution(X, y, 0.5, 10, seed=5))


# ------------------------------------------------------------------- weight-noise derivatives


def central_differences(net, fn, h=1e-6):
    """d fn(net) / d theta by central differences, one flat parameter at a time.

    Returns a tensor of shape ``fn(net).shape + (number of parameters,)``; the parameters are
    restored afterwards.
    """
    theta = flat_params(net)
    columns = []
    for j in range(theta.numel()):
        step = torch.zeros_like(theta)
        step[j] = h
        set_flat_params(net, theta + step)
        up = fn(net).detach()  # fn may use autograd itself (the penalty does)
        set_flat_params(net, theta - step)
        down = fn(net).detach()
        columns.append((up - down) / (2 * h))
    set_flat_params(net, theta)
    return torch.stack(columns, dim=-1)


def test_output_jacobian_matches_central_finite_differences():
    net = tanh_net((3, 4, 2))
    X = torch.randn(6, 3, dtype=torch.float64)
    J = output_jacobian(net, X)
    assert torch.allclose(J, central_differences(net, lambda m: m(X)), atol=1e-8)


@pytest.mark.parametrize(
    "build",
    [
        lambda: tanh_net((3, 5, 2)),
        lambda: tanh_net((4, 6, 3, 1), seed=2),
        lambda: tanh_net((3, 5, 2), bias=False),
        lambda: mlp([5, 7, 4]).double(),  # ReLU
    ],
    ids=case_id,
)
def test_jacobian_gram_equals_j_jt_from_torch_func(build):
    net = build()
    X = torch.randn(9, net[0].in_features, dtype=torch.float64)
    J = output_jacobian(net, X)
    assert torch.allclose(jacobian_gram(net, X), J @ J.mT, rtol=1e-10, atol=1e-12)


def test_gradient_norm_penalty_of_a_linear_model_is_eta_times_mean_of_x_squared_plus_one():
    net = nn.Sequential(nn.Linear(4, 1)).double()
    X = torch.randn(30, 4, dtype=torch.float64)
    expected = 0.3 * ((X**2).sum(1) + 1).mean()
    assert torch.allclose(gradient_norm_penalty(net, X, 0.3), expected, rtol=1e-12)


def test_gradient_of_the_penalty_matches_finite_differences():
    net = tanh_net((2, 3, 1))
    X = torch.randn(5, 2, dtype=torch.float64)
    params = list(net.parameters())
    # The output bias does not enter the Jacobian, so its gradient is zero.
    grads = torch.autograd.grad(gradient_norm_penalty(net, X, 1.0), params, allow_unused=True,
                                materialize_grads=True)
    auto = torch.cat([g.reshape(-1) for g in grads])
    fd = central_differences(net, lambda m: gradient_norm_penalty(m, X, 1.0))
    assert torch.allclose(auto, fd, atol=1e-7)


def test_output_hessian_trace_matches_torch_autograd_hessian():
    net = tanh_net((3, 4, 1))
    X = torch.randn(4, 3, dtype=torch.float64)
    theta = flat_params(net)
    shapes = [p.shape for p in net.parameters()]

    def f_of(flat, x):
        pieces, start = [], 0
        for s in shapes:
            size = math.prod(s)
            pieces.append(flat[start:start + size].reshape(s))
            start += size
        w1, b1, w2, b2 = pieces
        return (torch.tanh(x @ w1.T + b1) @ w2.T + b2)[0]

    expected = torch.stack([
        torch.autograd.functional.hessian(lambda t, x=x: f_of(t, x), theta).trace()
        for x in X
    ])
    assert torch.allclose(output_hessian_trace(net, X), expected, rtol=1e-10, atol=1e-12)


def test_gauss_newton_penalty_uses_the_cross_entropy_hessian_in_the_logits():
    net = tanh_net((3, 5, 4))
    X = torch.randn(6, 3, dtype=torch.float64)
    J = output_jacobian(net, X)
    with torch.no_grad():
        logits = net(X)
    total = 0.0
    for i in range(X.shape[0]):
        # The Hessian of cross-entropy in the logits does not depend on the label.
        H = torch.autograd.functional.hessian(
            lambda z: F.cross_entropy(z[None], torch.tensor([1])), logits[i])
        total += float(torch.trace(J[i].T @ H @ J[i]))
    expected = 0.5 * 0.2 * total / X.shape[0]
    assert gauss_newton_penalty(net, X, 0.2).item() == pytest.approx(expected, rel=1e-10)


def test_perturbed_parameters_have_the_requested_spread_and_carry_gradients():
    net = nn.Sequential(nn.Linear(300, 300))
    noisy = perturbed_parameters(net, 0.05, torch.Generator().manual_seed(0))
    diff = noisy["0.weight"] - net[0].weight
    assert float(diff.detach().std()) == pytest.approx(0.05, rel=0.02)
    (g,) = torch.autograd.grad(noisy["0.weight"].sum(), [net[0].weight])
    assert torch.equal(g, torch.ones_like(g))


# ------------------------------------------------------------------ weight-noise measurements


def test_weight_noise_excess_of_a_linear_model_is_eta_times_mean_x_squared_plus_one():
    net = nn.Sequential(nn.Linear(3, 1)).double()
    X = torch.randn(40, 3, dtype=torch.float64)
    y = torch.randn(40, dtype=torch.float64)
    etas = [0.5, 0.01]
    means, ses = weight_noise_excess_loss(net, X, y, etas, samples=400)
    for eta, m, se in zip(etas, means, ses, strict=True):
        expected = eta * float(((X**2).sum(1) + 1).mean())
        assert abs(m - expected) < 5 * se


def test_weight_noise_excess_approaches_the_second_order_expansion_for_small_eta():
    net = tanh_net((3, 6, 1), seed=1)
    X = torch.randn(60, 3, dtype=torch.float64)
    y = torch.randn(60, dtype=torch.float64)
    with torch.no_grad():
        residual = net(X)[:, 0] - y
    grad_sq = gradient_norm_penalty(net, X, 1.0).item()
    hess_term = float((residual * output_hessian_trace(net, X)).mean())
    eta = 1e-3
    (m,), (se,) = weight_noise_excess_loss(net, X, y, [eta], samples=300)
    expected = eta * (grad_sq + hess_term)
    assert abs(m - expected) < 5 * se + 0.01 * abs(expected)


@pytest.mark.parametrize("activation", [nn.Tanh, nn.Sigmoid, nn.Softplus])
def test_one_hidden_layer_hessian_trace_closed_form_equals_autograd(activation):
    net = mlp([4, 6, 3], activation, seed=1).double()
    X = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for k in range(3):
        closed = output_hessian_trace(net, X, k)
        auto = output_hessian_trace(net, X, k, closed_form=False)
        assert torch.allclose(closed, auto, rtol=1e-10, atol=1e-12)


def test_relu_logits_have_zero_hessian_trace_in_the_parameters():
    net = mlp([5, 8, 4], seed=2).double()  # ReLU
    X = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for k in range(4):
        assert torch.equal(output_hessian_trace(net, X, k, closed_form=False),
                           torch.zeros(6, dtype=torch.float64))


def test_weight_noise_excess_cross_entropy_of_a_linear_model_is_the_gauss_newton_term():
    gen = torch.Generator().manual_seed(5)
    X = torch.randn(40, 3, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 4, (40,), generator=gen)
    net = nn.Sequential(nn.Linear(3, 4)).double()
    eta = 1e-5
    (m,), (se,) = weight_noise_excess_cross_entropy(net, X, y, [eta], samples=400)
    expected = gauss_newton_penalty(net, X, eta).item()
    assert abs(m - expected) < 4 * se + 0.02 * expected


def test_with_frozen_gates_a_relu_network_has_only_the_gauss_newton_term_to_first_order():
    gen = torch.Generator().manual_seed(6)
    X = torch.randn(60, 5, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 3, (60,), generator=gen)
    net = mlp([5, 12, 3], seed=3).double()
    eta = 1e-6
    (frozen,), (se,) = weight_noise_excess_cross_entropy(net, X, y, [eta], samples=400,
                                                         freeze_gates=True)
    expected = gauss_newton_penalty(net, X, eta).item()
    assert abs(frozen - expected) < 4 * se + 0.02 * expected
    # Real gates: kink crossings add a positive amount of the same order in eta.
    (free,), _ = weight_noise_excess_cross_entropy(net, X, y, [eta], samples=400)
    assert free != frozen


def test_sharpness_at_a_least_squares_minimum_is_exactly_quadratic_in_the_radius():
    X = torch.randn(50, 3, dtype=torch.float64)
    y = torch.randn(50, dtype=torch.float64)
    A = torch.cat([X, torch.ones(50, 1, dtype=torch.float64)], 1)
    solution = torch.linalg.lstsq(A, y[:, None]).solution[:, 0]
    net = nn.Sequential(nn.Linear(3, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(solution[:3][None])
        net[0].bias.copy_(solution[3:])

    def mse(out, target):
        return ((out[:, 0] - target) ** 2).mean()

    small = sharpness(net, X, y, 0.1, 200, seed=2, loss_fn=mse)
    large = sharpness(net, X, y, 0.2, 200, seed=2, loss_fn=mse)
    assert torch.allclose(large, 4 * small, rtol=1e-8)  # no linear term at the minimum
    # Mean over random directions: r^2 tr(H)/(2P), with H = 2 A^T A / n and P = 4.
    expected = 0.1**2 * 2 * float((A**2).sum(1).mean()) / (2 * 4)
    assert float(small.mean()) == pytest.approx(expected, rel=0.15)
    assert bool((small >= 0).all())


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: add_gaussian_noise(torch.zeros(3), -0.1), "std"),
        (lambda: add_gaussian_noise(torch.zeros(3, dtype=torch.long), 0.1), "x"),
        (lambda: add_gaussian_noise(torch.zeros(3), 0.1, generator=3), "generator"),
        (lambda: input_noise_solution(np.zeros((4, 2)), np.zeros(4), -0.5, 10), "sigma"),
        (lambda: input_noise_solution(np.zeros((4, 2)), np.zeros(4), 0.5, 0), "copies"),
        (lambda: input_noise_solution(np.zeros((4, 2)), np.zeros(4), 0.5, 2.5), "copies"),
        (lambda: input_noise_solution(np.zeros((4, 2)), np.zeros((4, 1)), 0.5, 10), "y"),
        (lambda: input_noise_solution(np.zeros((4, 2)), np.zeros(5), 0.5, 10),
         "same number of rows"),
        (lambda: input_noise_solution(np.zeros((4, 2)), np.array([0, 1, np.inf, 0]), 0.5, 2),
         "y"),
        (lambda: perturbed_parameters(nn.Linear(2, 1), -1.0), "std"),
        (lambda: output_jacobian(nn.Linear(2, 1), torch.zeros(3)), "X"),
        (lambda: output_hessian_trace(nn.Linear(2, 2), torch.zeros(3, 2)), "give output"),
        (lambda: output_hessian_trace(nn.Linear(2, 2), torch.zeros(3, 2), 2), "output"),
        (lambda: weight_noise_excess_cross_entropy(
            nn.Sequential(nn.Linear(2, 2), nn.Tanh()), torch.zeros(3, 2), torch.zeros(3).long(),
            [0.1], 2), "model layers"),
        (lambda: weight_noise_excess_cross_entropy(
            nn.Sequential(nn.Linear(2, 2)), torch.zeros(3, 2), torch.zeros(3).long(), [-0.1], 2),
         "eta"),
        (lambda: jacobian_gram(nn.Linear(2, 2), torch.zeros(3, 2)), "Sequential"),
        (lambda: jacobian_gram(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)),
                               torch.zeros(3, 2)), "LayerNorm"),
        (lambda: jacobian_gram(nn.Sequential(nn.ReLU()), torch.zeros(3, 2)), "parameters"),
        (lambda: gradient_norm_penalty(nn.Sequential(nn.Linear(2, 1)), torch.zeros(3, 2), -1.0),
         "eta"),
        (lambda: gauss_newton_penalty(nn.Sequential(nn.Linear(2, 2)),
                                      torch.full((3, 2), math.inf), 0.1), "X"),
        (lambda: weight_noise_excess_loss(nn.Linear(2, 1), torch.zeros(3, 2), torch.zeros(3),
                                          [0.0], 10), "eta"),
        (lambda: weight_noise_excess_loss(nn.Linear(2, 1), torch.zeros(3, 2), torch.zeros(3),
                                          [], 10), "etas"),
        (lambda: weight_noise_excess_loss(nn.Linear(2, 1), torch.zeros(3, 2), torch.zeros(3),
                                          [0.1], 1), "samples"),
        (lambda: weight_noise_excess_loss(nn.Linear(2, 1), torch.zeros(3, 2), torch.zeros(4),
                                          [0.1], 10), "same number of rows"),
        (lambda: weight_noise_excess_loss(nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3),
                                          [0.1], 10), "single output"),
        (lambda: sharpness(nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3).long(), 0.0, 5),
         "radius"),
        (lambda: sharpness(nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3).long(), 1.0, 0),
         "samples"),
    ],
    ids=case_id,
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_cross_validated_noise_level_matches_a_brute_force_k_fold_ridge_search():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    y = X @ rng.normal(size=6) + rng.normal(size=40)
    sigmas = [0.0, 0.3, 1.0, 3.0]
    best, cv = cross_validated_noise_level(X, y, sigmas, folds=4, seed=2)
    assignment = np.random.default_rng(2).permutation(40) % 4
    expected = []
    for s in sigmas:
        errors = []
        for k in range(4):
            fit, held = assignment != k, assignment == k
            # scikit-learn sums the loss: alpha = n_fit * lambda with lambda = sigma^2
            model = Ridge(alpha=fit.sum() * s**2, fit_intercept=False).fit(X[fit], y[fit])
            errors.append(((model.predict(X[held]) - y[held]) ** 2).mean())
        expected.append(np.mean(errors))
    assert np.allclose(cv, expected, rtol=1e-8)
    assert best == sigmas[int(np.argmin(expected))]


def test_cross_validated_noise_level_with_more_features_than_rows_uses_the_ridge_solutions():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 30))  # 16 rows per fit, 30 features: sigma = 0 is minimum-norm
    y = rng.normal(size=20)
    sigmas = [0.0, 0.1, 1.0]
    _, cv = cross_validated_noise_level(X, y, sigmas, folds=5, seed=3)
    assignment = np.random.default_rng(3).permutation(20) % 5
    expected = [np.mean([((X[a == k] @ ridge_solution(X[a != k], y[a != k], s**2) - y[a == k]) ** 2)
                         .mean() for k in range(5)]) for s in sigmas for a in [assignment]]
    assert np.allclose(cv, expected, rtol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"sigmas": []}, "sigmas"), ({"sigmas": [-1.0]}, "sigmas"), ({"folds": 1}, "folds"),
     ({"folds": 50}, "folds")],
    ids=["no-sigmas", "negative-sigma", "one-fold", "more-folds-than-rows"],
)
def test_cross_validated_noise_level_rejects_bad_arguments(kwargs, argument):
    X, y = np.ones((10, 2)), np.ones(10)
    args = {"sigmas": [0.1], "folds": 5} | kwargs
    with pytest.raises(ValueError, match=argument):
        cross_validated_noise_level(X, y, args["sigmas"], folds=args["folds"])


def test_weight_noise_expansion_first_order_term_is_exact_for_a_linear_model():
    X = torch.randn(30, 3, dtype=torch.float64)
    y = torch.randn(30, dtype=torch.float64)
    net = torch.nn.Sequential(torch.nn.Linear(3, 1)).double()
    check = weight_noise_expansion(net, X, y, [0.01, 0.001], samples=400)
    # linear in the weights: tr H = 0, and E|g|^2 = E|x|^2 + 1 (the bias)
    assert check.hess_term == pytest.approx(0.0, abs=1e-12)
    assert check.grad_sq == pytest.approx(float((X**2).sum(1).mean()) + 1.0, rel=1e-10)
    for eta, measured, se, rel_notes, rel_full in check.rows:
        assert abs(measured - eta * check.grad_sq) < 4 * se
        assert rel_notes == pytest.approx(rel_full)
