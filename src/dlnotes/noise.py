r"""Noise injection as regularisation. Used in chapter 3, "Noise injection as regularisation".

Two halves:

* **Input noise on a linear model is ridge.** :func:`dlnotes.linear.ridge_solution` is the
  closed-form minimiser of :math:`\frac1N\lVert y - Xw\rVert^2 + \lambda\lVert w\rVert^2` and
  :func:`input_noise_solution` the least-squares fit to many noisy copies of ``X``; in
  expectation they coincide at :math:`\lambda = \sigma^2`.
* **Weight noise is a gradient-norm penalty.** :func:`output_jacobian` and
  :func:`output_hessian_trace` (``torch.func``) give the derivatives of a model's output with
  respect to all of its parameters; :func:`jacobian_gram` computes the per-example Gram matrix
  :math:`J_i J_i^\top` of that Jacobian cheaply for MLPs, from which
  :func:`gradient_norm_penalty` (squared error) and :func:`gauss_newton_penalty`
  (cross-entropy) follow. :func:`weight_noise_excess_loss` and
  :func:`weight_noise_excess_cross_entropy` measure the excess loss under weight noise by Monte
  Carlo (the latter also with the ReLU gates frozen, to separate kink crossings from higher
  orders), and :func:`sharpness` the loss increase under random weight perturbations of a
  fixed size.

Robustness to noise at test time, the chapter's last part, is in :mod:`dlnotes.robustness`.

Throughout, *weight noise* perturbs every parameter of the model (weights and biases) with
independent :math:`\mathcal N(0, \eta)` noise, so :math:`\eta` is a variance, as in the notes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev, vmap

from dlnotes.validation import (
    check_finite,
    check_int_at_least,
    check_int_in_range,
    check_min_length,
    check_ndim,
    check_nonnegative,
    check_positive,
    check_regression_data,
    check_same_rows,
    check_tensor,
    check_type,
)

__all__ = [
    "cross_validated_noise_level",
    "weight_noise_expansion",
    "ExpansionCheck",
    "add_gaussian_noise",
    "input_noise_solution",
    "perturbed_parameters",
    "output_jacobian",
    "output_hessian_trace",
    "jacobian_gram",
    "gradient_norm_penalty",
    "gauss_newton_penalty",
    "weight_noise_excess_loss",
    "weight_noise_excess_cross_entropy",
    "sharpness",
]

Array = np.ndarray | torch.Tensor


# --------------------------------------------------------------------------- input noise


def add_gaussian_noise(
    x: Array,
    std: float,
    generator: torch.Generator | np.random.Generator | None = None,
) -> Array:
    r"""Return ``x + std * ε`` with :math:`ε \sim \mathcal N(0, I)` of the shape of ``x``.

    Parameters
    ----------
    x
        A NumPy array or torch tensor of floats; the result has the same type and dtype.
    std
        Standard deviation of the noise, ≥ 0 (0 returns a copy of ``x``).
    generator
        A ``torch.Generator`` or a ``numpy.random.Generator`` to draw from; ``None`` uses
        torch's global generator (seeded by :func:`dlnotes.setup`).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        The noisy copy, same shape, type and dtype as ``x``.

    Raises
    ------
    ValueError
        For a negative ``std``, a non-floating ``x`` or an unknown kind of ``generator``.
    """
    check_nonnegative("std", std)
    is_tensor = isinstance(x, torch.Tensor)
    if not (is_tensor and x.is_floating_point()) and not (
        isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)
    ):
        raise ValueError(f"x must be a floating NumPy array or torch tensor, got {type(x)}")
    if generator is None or isinstance(generator, torch.Generator):
        noise = torch.randn(tuple(x.shape), generator=generator, dtype=torch.float64)
    elif isinstance(generator, np.random.Generator):
        noise = torch.from_numpy(generator.standard_normal(tuple(x.shape)))
    else:
        raise ValueError("generator must be a torch.Generator, a numpy.random.Generator or "
                         f"None, got {type(generator).__name__}")
    if is_tensor:
        return x + float(std) * noise.to(dtype=x.dtype, device=x.device)
    return x + float(std) * noise.numpy().astype(x.dtype, copy=False)


def cross_validated_noise_level(
    X: np.ndarray,
    y: np.ndarray,
    sigmas: Sequence[float],
    *,
    folds: int = 5,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    r"""Choose an input-noise level σ by K-fold cross-validation on the training data.

    For each σ, fits the expected noisy least squares, i.e. ridge with :math:`\lambda =
    \sigma^2` (the solution of :func:`dlnotes.linear.ridge_solution`, computed for all σ at once
    from one eigendecomposition per fold), on K−1 folds and measures the mean squared error on
    the held-out fold. The test data are never seen, so the chosen σ can be reported honestly.

    Parameters
    ----------
    X, y
        Training design ``(N, d)`` and targets ``(N,)``.
    sigmas
        Candidate noise standard deviations, each ≥ 0.
    folds
        Number of folds K, 2 ≤ K ≤ N.
    seed
        Seeds the random assignment of rows to folds.

    Returns
    -------
    best_sigma, cv_mse
        The σ with the smallest mean validation error (the first one on ties) and the mean
        validation error of every σ, shape ``(len(sigmas),)``.

    Raises
    ------
    ValueError
        For bad data, an empty ``sigmas``, a negative σ or a bad ``folds``.
    """
    X, y = check_regression_data(X, y)
    check_min_length("sigmas", sigmas, 1, "noise levels")
    for i, s in enumerate(sigmas):
        check_nonnegative(f"sigmas[{i}]", s)
    check_int_in_range("folds", folds, 2, X.shape[0])
    check_int_at_least("seed", seed, 0)
    assignment = np.random.default_rng(seed).permutation(X.shape[0]) % folds
    lams = np.asarray(sigmas, dtype=np.float64) ** 2
    cv_mse = np.zeros(len(sigmas))
    for k in range(folds):
        fit, held = assignment != k, assignment == k
        # One eigendecomposition of X^T X / n per fold serves every lambda: w(lambda) =
        # V diag(1 / (e + lambda)) V^T X^T y / n (a pseudo-inverse where e + lambda = 0).
        n = fit.sum()
        e, V = np.linalg.eigh(X[fit].T @ X[fit] / n)
        e = np.where(e > e.max() * X.shape[1] * np.finfo(float).eps, e, 0.0)
        projected = V.T @ (X[fit].T @ y[fit] / n)
        denom = e[None, :] + lams[:, None]
        inverse = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)
        W = (inverse * projected) @ V.T  # one row per lambda
        cv_mse += ((X[held] @ W.T - y[held][:, None]) ** 2).mean(axis=0) / folds
    return float(sigmas[int(np.argmin(cv_mse))]), cv_mse


def input_noise_solution(
    X: np.ndarray,
    y: np.ndarray,
    sigma: float,
    copies: int,
    seed: int = 0,
) -> np.ndarray:
    r"""Least squares over ``copies`` noisy replicas of ``X`` (input-noise training, solved).

    Each replica is :math:`\tilde X^{(c)} = X + \sigma E^{(c)}` with independent standard
    normal :math:`E^{(c)}`; the targets are repeated unchanged. The returned :math:`w`
    minimises :math:`\frac{1}{NC}\sum_c \lVert y - \tilde X^{(c)} w\rVert^2`. Since
    :math:`\mathbb E[\tilde X^\top \tilde X]/N = X^\top X/N + \sigma^2 I` and
    :math:`\mathbb E[\tilde X^\top y] = X^\top y`, the objective converges to the ridge
    objective of :func:`dlnotes.linear.ridge_solution` with ``lam = sigma**2`` as ``copies``
    grows; the difference of the solutions shrinks like :math:`1/\sqrt{\text{copies}}`.

    The Gram matrix is accumulated over blocks of replicas, so memory stays at a few
    megabytes for any ``copies``.

    Parameters
    ----------
    X
        Design matrix, shape ``(N, d)``.
    y
        Targets, shape ``(N,)``.
    sigma
        Standard deviation of the input noise, ≥ 0.
    copies
        Number of noisy replicas, ≥ 1.
    seed
        Seed of the NumPy generator that draws the noise, ≥ 0.

    Returns
    -------
    numpy.ndarray
        Coefficients, shape ``(d,)``, float64.

    Raises
    ------
    ValueError
        For wrong shapes, non-finite inputs, ``sigma`` < 0, ``copies`` < 1 or ``seed`` < 0.
    """
    X, y = check_regression_data(X, y)
    check_nonnegative("sigma", sigma)
    check_int_at_least("copies", copies, 1)
    check_int_at_least("seed", seed, 0)
    gen = np.random.default_rng(seed)
    n, d = X.shape
    block = max(1, min(copies, 250_000 // (n * d)))
    gram = np.zeros((d, d))
    rhs = np.zeros(d)
    done = 0
    while done < copies:
        c = min(block, copies - done)
        noisy = X[None] + float(sigma) * gen.standard_normal((c, n, d))
        gram += np.einsum("cni,cnj->ij", noisy, noisy)
        rhs += np.einsum("cni,n->i", noisy, y)
        done += c
    total = n * copies
    return np.linalg.lstsq(gram / total, rhs / total, rcond=None)[0]


# ------------------------------------------------------------------ weight noise: derivatives


def _check_model_input(model: nn.Module, X: torch.Tensor) -> None:
    check_type("model", model, nn.Module)
    check_tensor("X", X, 2, finite=True)
    if not any(True for _ in model.parameters()):
        raise ValueError("model must have parameters")


def perturbed_parameters(
    model: nn.Module,
    std: float,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    r"""The model's parameters plus independent :math:`\mathcal N(0, \text{std}^2)` noise.

    The result maps names to tensors for :func:`torch.func.functional_call`; gradients flow
    back to the original parameters (the noise is a constant), which is what training with
    weight noise needs.

    Parameters
    ----------
    model
        Any ``torch.nn.Module``.
    std
        Noise standard deviation √η, ≥ 0.
    generator
        Optional ``torch.Generator``; the global one otherwise.

    Returns
    -------
    dict
        ``{name: parameter + noise}`` in ``model.named_parameters()`` order.

    Raises
    ------
    ValueError
        If ``std`` is negative or not finite.
    """
    check_nonnegative("std", std)
    return {
        name: p + float(std) * torch.randn(p.shape, generator=generator, dtype=p.dtype)
        for name, p in model.named_parameters()
    }


def _flat_output_fn(model: nn.Module) -> tuple[torch.Tensor, Callable]:
    """The parameters as one flat vector and ``fn(theta, x_row) -> output vector``."""
    names, shapes, sizes = [], [], []
    for name, p in model.named_parameters():
        names.append(name)
        shapes.append(p.shape)
        sizes.append(p.numel())
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def fn(flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        pieces = flat.split(sizes)
        params = {n: t.reshape(s) for n, t, s in zip(names, pieces, shapes, strict=True)}
        return functional_call(model, params, (x[None],))[0].reshape(-1)

    return theta, fn


def output_jacobian(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    r"""Per-example Jacobian of the model's outputs with respect to all its parameters.

    Computed with ``torch.func``: ``vmap`` over the rows of ``X`` of ``jacrev`` of
    ``functional_call`` on the flattened parameter vector (in ``model.parameters()`` order).
    Row ``i`` holds :math:`J_i = \partial f(x_i) / \partial\theta`. General (any model that
    maps rows independently) but memory grows as ``n * outputs * parameters``: use
    :func:`jacobian_gram` inside training loops.

    Parameters
    ----------
    model
        Maps a batch ``(n, d)`` to outputs ``(n, k)`` (or ``(n,)``), row by row.
    X
        Inputs, shape ``(n, d)``.

    Returns
    -------
    torch.Tensor
        Shape ``(n, k, P)`` with ``P`` the number of parameters (``k = 1`` for a 1-D output),
        detached from the parameters.

    Raises
    ------
    ValueError
        If ``model`` has no parameters or ``X`` is not a finite 2-D tensor.
    """
    _check_model_input(model, X)
    theta, fn = _flat_output_fn(model)
    return vmap(jacrev(fn), in_dims=(None, 0))(theta, X)


def output_hessian_trace(model: nn.Module, X: torch.Tensor, output: int | None = None, *,
                         closed_form: bool = True) -> torch.Tensor:
    r"""Per-example trace of the Hessian of one output with respect to all parameters.

    :math:`\operatorname{tr}\nabla^2_\theta f_k(x_i)`: the term the weight-noise expansion
    multiplies by the residual. In general it comes from ``torch.func.jacrev`` applied twice
    (reverse over reverse mode) under ``vmap``, which forms the full ``P × P`` Hessian per
    example (small models only). For a network with one hidden layer,
    ``Sequential(Linear, activation, Linear)`` with an elementwise activation :math:`\phi`, only
    the first layer's parameters have non-zero second derivatives, and

    .. math::
        \operatorname{tr}\nabla^2_\theta f_k(x) = \sum_j V_{kj}\,\phi''(u_j)\,
        \bigl(\lVert x\rVert^2 + 1\bigr), \qquad u = Wx + b ,

    (the :math:`+1` is the bias; :math:`V` the output weights), which is used unless
    ``closed_form=False``. For ReLU, :math:`\phi'' = 0` away from the kinks: the trace is 0.

    Parameters
    ----------
    model
        Maps ``(n, d)`` to outputs ``(n, k)`` (or ``(n,)``), row by row.
    X
        Inputs, shape ``(n, d)``.
    output
        Which output ``k`` to differentiate; may be left out for a single-output model.
    closed_form
        Use the formula above when the model has that shape (the autograd route otherwise).

    Returns
    -------
    torch.Tensor
        Shape ``(n,)``, detached.

    Raises
    ------
    ValueError
        If ``output`` is missing for a model with several outputs or out of range, the model
        has no parameters, or ``X`` is not finite 2-D.
    """
    _check_model_input(model, X)
    theta, fn = _flat_output_fn(model)
    outputs = fn(theta, X[0]).numel()
    if output is None:
        if outputs != 1:
            raise ValueError(f"model has {outputs} outputs: give output for output_hessian_trace"
                             " (a single output may be left out)")
        output = 0
    check_int_in_range("output", output, 0, outputs - 1)
    if closed_form and _one_hidden_layer(model):
        return _one_hidden_layer_hessian_trace(model, X, output)

    def scalar(flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return fn(flat, x)[output]

    H = vmap(jacrev(jacrev(scalar)), in_dims=(None, 0))(theta, X)
    return H.diagonal(dim1=1, dim2=2).sum(dim=1)


def _one_hidden_layer(model: nn.Module) -> bool:
    return (isinstance(model, nn.Sequential) and len(model) == 3
            and isinstance(model[0], nn.Linear) and isinstance(model[2], nn.Linear)
            and model[0].bias is not None and not any(True for _ in model[1].parameters()))


def _one_hidden_layer_hessian_trace(model: nn.Sequential, X: torch.Tensor,
                                    output: int) -> torch.Tensor:
    first, activation, last = model
    with torch.no_grad():
        u = first(X)
        curvature = vmap(torch.func.grad(torch.func.grad(activation)))(u.reshape(-1))
        per_unit = curvature.reshape(u.shape) * last.weight[output]
        return per_unit.sum(dim=1) * ((X**2).sum(dim=1) + 1.0)


def jacobian_gram(model: nn.Sequential, X: torch.Tensor) -> torch.Tensor:
    r"""Per-example Gram matrix :math:`G_i = J_i J_i^\top` of the output Jacobian, for MLPs.

    For a linear layer :math:`z = W a + b` inside the network, the derivative of output
    :math:`k` with respect to :math:`W` on example :math:`i` is the outer product
    :math:`\delta^{(k)}_i a_i^\top`, where :math:`\delta^{(k)}_i = \partial f_k(x_i)/\partial z_i`
    is what back-propagation delivers. Hence

    .. math::
        (G_i)_{kl} = \langle \nabla_\theta f_k(x_i), \nabla_\theta f_l(x_i)\rangle
        = \sum_{\text{layers}} \langle\delta^{(k)}_i, \delta^{(l)}_i\rangle
          \big(\lVert a_i\rVert^2 + 1\big),

    (the :math:`+1` is the bias, dropped for layers without one). The :math:`\delta`s for all
    outputs come from one batched autograd call (``is_grads_batched``) with
    ``create_graph=True``, so the result can be differentiated again: this is how the
    gradient-norm penalties are trained. It equals ``J @ J.mT`` from :func:`output_jacobian`
    at a fraction of the cost.

    Parameters
    ----------
    model
        An ``nn.Sequential`` whose parameterised modules are all ``nn.Linear``; the modules
        between them must be parameter-free and act on each row separately (activations).
    X
        Inputs, shape ``(n, d)``.

    Returns
    -------
    torch.Tensor
        Shape ``(n, k, k)``, differentiable with respect to the model's parameters.

    Raises
    ------
    ValueError
        If ``model`` is not such a Sequential or ``X`` is not a finite 2-D tensor.
    """
    return _gram_and_output(model, X)[0]


def _gram_and_output(model: nn.Sequential, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`jacobian_gram` and the model's output ``(n, k)`` from the same forward pass."""
    _check_model_input(model, X)
    check_type("model", model, nn.Sequential)
    for layer in model:
        if not isinstance(layer, nn.Linear) and any(True for _ in layer.parameters()):
            raise ValueError("model must have parameters only in nn.Linear layers, found "
                             f"{type(layer).__name__}")
    inputs, outputs, has_bias = [], [], []
    h = X
    for layer in model:
        if isinstance(layer, nn.Linear):
            inputs.append(h)
            h = layer(h)
            outputs.append(h)
            has_bias.append(layer.bias is not None)
        else:
            h = layer(h)
    out = h if h.ndim == 2 else h.reshape(h.shape[0], -1)
    k = out.shape[1]
    basis = torch.eye(k, dtype=out.dtype)[:, None, :].expand(k, *out.shape)
    deltas = torch.autograd.grad(out, outputs, grad_outputs=basis, create_graph=True,
                                 is_grads_batched=True, allow_unused=True,
                                 materialize_grads=True)
    gram = out.new_zeros(out.shape[0], k, k)
    for a, delta, bias in zip(inputs, deltas, has_bias, strict=True):
        scale = (a**2).sum(dim=1) + (1.0 if bias else 0.0)
        gram = gram + torch.einsum("kni,lni->nkl", delta, delta) * scale[:, None, None]
    return gram, out


def gradient_norm_penalty(model: nn.Sequential, X: torch.Tensor, eta: float) -> torch.Tensor:
    r"""The weight-noise penalty of squared error, η times the mean squared gradient norm.

    .. math::
        R(\theta) = \eta\,\frac1n\sum_i\lVert\nabla_\theta f(x_i)\rVert^2 .

    For a loss :math:`J = \mathbb E[(f(x) - y)^2]` (no ½) and weight noise of variance
    :math:`\eta`, this is the penalty of the notes; with :math:`J = \frac12\mathbb E[\cdot]`
    the penalty is half of it. For ``k`` outputs and the summed squared error
    :math:`\sum_k (f_k - y_k)^2` the squared norm is the Frobenius norm of the Jacobian,
    :math:`\operatorname{tr} G_i`.

    Parameters
    ----------
    model
        An MLP as accepted by :func:`jacobian_gram`.
    X
        Inputs, shape ``(n, d)``.
    eta
        Weight-noise variance η ≥ 0.

    Returns
    -------
    torch.Tensor
        Scalar, differentiable with respect to the parameters.

    Raises
    ------
    ValueError
        As :func:`jacobian_gram`, or if ``eta`` < 0.
    """
    check_nonnegative("eta", eta)
    gram = jacobian_gram(model, X)
    return float(eta) * gram.diagonal(dim1=1, dim2=2).sum(dim=1).mean()


def gauss_newton_penalty(model: nn.Sequential, X: torch.Tensor, eta: float) -> torch.Tensor:
    r"""The weight-noise penalty of softmax cross-entropy (Gauss–Newton part).

    For a loss :math:`\ell(z)` of the outputs :math:`z = f_\theta(x)`, weight noise of variance
    :math:`\eta` adds, to second order,
    :math:`\frac\eta2\operatorname{tr}(J^\top \nabla_z^2\ell\, J) + \frac\eta2\sum_k
    \partial_{z_k}\ell\,\operatorname{tr}\nabla^2_\theta z_k`. This function returns the first
    term, averaged over the rows of ``X``, for cross-entropy, where
    :math:`\nabla_z^2\ell = \operatorname{diag}(p) - pp^\top` with
    :math:`p = \operatorname{softmax}(z)` (independent of the label):

    .. math::
        R(\theta) = \frac\eta2\,\frac1n\sum_i \big\langle \operatorname{diag}(p_i) - p_ip_i^\top,
        \ J_iJ_i^\top\big\rangle .

    For squared error :math:`\ell = (z - y)^2` the output Hessian is :math:`2I` and the same
    formula gives :func:`gradient_norm_penalty`. The dropped second term is the analogue of
    the Hessian term the notes drop.

    Parameters
    ----------
    model
        An MLP as accepted by :func:`jacobian_gram`, returning logits ``(n, k)``.
    X
        Inputs, shape ``(n, d)``.
    eta
        Weight-noise variance η ≥ 0.

    Returns
    -------
    torch.Tensor
        Scalar, differentiable with respect to the parameters.

    Raises
    ------
    ValueError
        As :func:`jacobian_gram`, or if ``eta`` < 0.
    """
    check_nonnegative("eta", eta)
    gram, logits = _gram_and_output(model, X)
    # The Hessian of cross-entropy in the logits: diag(p) - pp^T.
    p = logits.softmax(dim=1)
    out_hessian = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return 0.5 * float(eta) * (out_hessian * gram).sum(dim=(1, 2)).mean()


# ------------------------------------------------------------- weight noise: measurements


def _check_noise_settings(etas: Sequence[float], samples: int, seed: int) -> list[float]:
    """The Monte Carlo settings shared by the weight-noise estimators; the variances as floats."""
    etas = [float(e) for e in etas]
    check_min_length("etas", etas, 1, "variances")
    for e in etas:
        check_positive("eta", e)
    check_int_at_least("samples", samples, 2)
    check_int_at_least("seed", seed, 0)
    return etas


def weight_noise_excess_loss(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    etas: Sequence[float],
    samples: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Monte Carlo estimate of the excess squared error caused by weight noise, per η.

    Estimates :math:`\frac1n\sum_i \mathbb E_\epsilon[(f_{\theta+\epsilon}(x_i) - y_i)^2]
    - (f_\theta(x_i) - y_i)^2` with :math:`\epsilon\sim\mathcal N(0, \eta I)` on all
    parameters, using ``samples`` antithetic pairs :math:`\pm\epsilon` (the pair average
    cancels the term linear in :math:`\epsilon`, whose mean is zero but whose variance would
    swamp the :math:`O(\eta)` signal). Every row of ``X`` gets its own independent draw in
    each sample, so the average over rows also averages the noise. The same standard-normal
    draws, scaled by :math:`\sqrt\eta`, serve every η (common random numbers), so the
    estimates for different η are directly comparable.

    Parameters
    ----------
    model
        A model with a single output per row.
    X, y
        Inputs ``(n, d)`` and targets ``(n,)``.
    etas
        Noise variances η > 0.
    samples
        Number of antithetic pairs per row, ≥ 2.
    seed
        Seed of the noise, ≥ 0.

    Returns
    -------
    means, standard_errors
        Arrays of shape ``(len(etas),)``: the estimates and their Monte Carlo standard errors
        (over the samples).

    Raises
    ------
    ValueError
        For bad shapes, non-finite inputs, an η ≤ 0, ``samples`` < 2 or ``seed`` < 0.
    """
    _check_model_input(model, X)
    check_ndim("y", y, 1)
    check_same_rows("X", X, "y", y)
    check_finite("y", y)
    etas = _check_noise_settings(etas, samples, seed)
    theta, fn = _flat_output_fn(model)
    n, n_params = X.shape[0], theta.numel()
    per_row = vmap(vmap(fn, in_dims=(0, 0)), in_dims=(0, None))  # (draws, n, outputs)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out = vmap(fn, in_dims=(None, 0))(theta, X)
        if out.shape[1] != 1:
            raise ValueError("model must have a single output for weight_noise_excess_loss")
        clean = (out[:, 0] - y) ** 2
        values: list[list[torch.Tensor]] = [[] for _ in etas]
        chunk = max(1, 1_000_000 // (n * n_params))
        done = 0
        while done < samples:
            c = min(chunk, samples - done)
            z = torch.randn(c, n, n_params, generator=gen, dtype=theta.dtype)
            for j, eta in enumerate(etas):
                eps = math.sqrt(eta) * z
                plus = per_row(theta + eps, X)[..., 0]
                minus = per_row(theta - eps, X)[..., 0]
                pair = 0.5 * ((plus - y) ** 2 + (minus - y) ** 2) - clean
                values[j].append(pair.mean(dim=1))
            done += c
        stacked = torch.stack([torch.cat(v) for v in values])  # (len(etas), samples)
    means = stacked.mean(dim=1).numpy()
    ses = (stacked.std(dim=1) / math.sqrt(samples)).numpy()
    return means, ses


class ExpansionCheck(NamedTuple):
    """Measured weight-noise excess loss against the two truncations of its expansion."""

    mse: float
    grad_sq: float
    hess_term: float
    rows: list[tuple[float, float, float, float, float]]


def weight_noise_expansion(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, etas: Sequence[float], samples: int = 100
) -> ExpansionCheck:
    r"""Compare the measured excess squared error under weight noise with its expansion.

    The expansion :math:`\mathbb E[(f_{W+\epsilon}-y)^2] - (f-y)^2 = \eta\,\mathbb E\lVert
    g\rVert^2 + \eta\,\mathbb E[r\operatorname{tr}H] + O(\eta^2)` is truncated after the
    notes' term :math:`\eta\,\mathbb E\lVert g\rVert^2` and after the full first order;
    the excess itself is measured by :func:`weight_noise_excess_loss`.

    Returns
    -------
    ExpansionCheck
        ``mse`` (the unperturbed mean squared error), ``grad_sq`` (:math:`\mathbb E\lVert
        g\rVert^2`), ``hess_term`` (:math:`\mathbb E[r\operatorname{tr}H]`) and one row per η:
        ``(eta, measured, standard error, relative error of the notes' term, relative error
        of the first-order term)``.

    Raises
    ------
    ValueError
        As :func:`weight_noise_excess_loss`.
    """
    with torch.no_grad():
        residual = model(X)[:, 0] - y
    grad_sq = gradient_norm_penalty(model, X, 1.0).item()
    hess_term = float((residual * output_hessian_trace(model, X)).mean())
    means, ses = weight_noise_excess_loss(model, X, y, etas, samples=samples)
    rows = []
    for eta, m, se in zip(etas, means, ses, strict=True):
        notes, full = eta * grad_sq, eta * (grad_sq + hess_term)
        rows.append((float(eta), float(m), float(se), (notes - m) / m, (full - m) / m))
    return ExpansionCheck(float((residual**2).mean()), grad_sq, hess_term, rows)


def sharpness(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    radius: float,
    samples: int,
    seed: int = 0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> torch.Tensor:
    r"""Loss increases under random parameter perturbations of a fixed Euclidean norm.

    Draws ``samples`` directions :math:`u` uniformly on the unit sphere of the full parameter
    space and returns :math:`L(\theta + r u) - L(\theta)` for each, with :math:`r` =
    ``radius``. Their mean is a sharpness measure: to second order it is
    :math:`\frac{r^2}{2P}\operatorname{tr}\nabla^2_\theta L` for :math:`P` parameters. The
    measure is not invariant to reparametrisations that leave the function unchanged (for a
    ReLU network, scaling one layer up and the next down), so compare it between models of the
    same architecture and similar weight norms only.

    Parameters
    ----------
    model
        Any model; ``loss_fn(model(X), y)`` must be a scalar.
    X, y
        Data on which the loss is evaluated.
    radius
        Norm of the perturbation, > 0.
    samples
        Number of random directions, ≥ 1.
    seed
        Seed of the directions, ≥ 0.
    loss_fn
        Loss of outputs and targets; cross-entropy by default.

    Returns
    -------
    torch.Tensor
        Shape ``(samples,)``, the loss increase for each direction.

    Raises
    ------
    ValueError
        For ``radius`` ≤ 0, ``samples`` < 1, ``seed`` < 0 or a bad ``X``.
    """
    _check_model_input(model, X)
    check_positive("radius", radius)
    check_int_at_least("samples", samples, 1)
    check_int_at_least("seed", seed, 0)
    gen = torch.Generator().manual_seed(seed)
    named = dict(model.named_parameters())
    n_params = sum(p.numel() for p in named.values())
    increases = []
    with torch.no_grad():
        base = loss_fn(model(X), y)
        for _ in range(samples):
            noise = {k: torch.randn(p.shape, generator=gen, dtype=p.dtype)
                     for k, p in named.items()}
            norm = torch.sqrt(sum((e**2).sum() for e in noise.values()))
            scale = float(radius) / float(norm) if n_params else 0.0
            params = {k: p + scale * noise[k] for k, p in named.items()}
            increases.append(loss_fn(functional_call(model, params, (X,)), y) - base)
    return torch.stack(increases)


def weight_noise_excess_cross_entropy(
    model: nn.Sequential,
    X: torch.Tensor,
    y: torch.Tensor,
    etas: Sequence[float],
    samples: int,
    *,
    freeze_gates: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Monte Carlo estimate of the excess cross-entropy of a ReLU MLP under weight noise.

    As :func:`weight_noise_excess_loss` (antithetic pairs :math:`\pm\epsilon`,
    :math:`\epsilon\sim\mathcal N(0,\eta I)` on every parameter, the same standard-normal draws
    scaled to every η), for the mean cross-entropy of a classifier. One draw per sample serves
    all rows. With ``freeze_gates=True`` every ReLU keeps the on/off pattern of the unperturbed
    network, so the perturbed network is multilinear in the parameters and has no kinks: the
    difference between the two estimates is what kink crossings contribute.

    Parameters
    ----------
    model
        ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU`` layers, returning logits.
    X, y
        Inputs ``(n, d)`` and integer labels ``(n,)``.
    etas
        Noise variances η > 0.
    samples
        Number of antithetic pairs, ≥ 2.
    freeze_gates
        Keep every ReLU's pattern fixed at the unperturbed one.
    seed
        Seed of the noise, ≥ 0.

    Returns
    -------
    means, standard_errors
        Arrays of shape ``(len(etas),)``.

    Raises
    ------
    ValueError
        For a model with other layers, bad shapes, an η ≤ 0, ``samples`` < 2 or ``seed`` < 0.
    """
    _check_model_input(model, X)
    check_type("model", model, nn.Sequential)
    for layer in model:
        check_type("model layers", layer, (nn.Linear, nn.ReLU))
    check_same_rows("X", X, "y", y)
    etas = _check_noise_settings(etas, samples, seed)
    gen = torch.Generator().manual_seed(seed)
    params = {k: p.detach() for k, p in model.named_parameters()}

    def loss(values: dict[str, torch.Tensor], gates: list | None) -> torch.Tensor:
        h, relus = X, iter(gates or [])
        for i, layer in enumerate(model):
            if isinstance(layer, nn.Linear):
                h = F.linear(h, values[f"{i}.weight"], values.get(f"{i}.bias"))
            else:
                h = h * next(relus) if gates is not None else torch.relu(h)
        return F.cross_entropy(h, y)

    with torch.no_grad():
        gates, h = [], X
        for layer in model:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                gates.append((h > 0).to(X.dtype))
        base = loss(params, None)
        z = {k: torch.randn(samples, *p.shape, generator=gen, dtype=p.dtype)
             for k, p in params.items()}  # one draw per sample, in the order of the parameters
        batched = vmap(lambda values: loss(values, gates if freeze_gates else None))
        values = np.zeros((len(etas), samples))
        for j, eta in enumerate(etas):
            pair = [batched({k: p + sign * math.sqrt(eta) * z[k] for k, p in params.items()})
                    for sign in (1.0, -1.0)]
            values[j] = (0.5 * (pair[0] + pair[1]) - base).numpy()
    return values.mean(axis=1), values.std(axis=1, ddof=1) / math.sqrt(samples)
