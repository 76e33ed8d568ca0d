"""Loss functions derived from likelihoods, and the chapter's experiments on them. Used in
chapter 1, "Loss functions from maximum likelihood".

Every loss is the *mean* over its elements. The Gaussian and Laplace losses keep their
constants, so they are true negative log-likelihoods (in nats), not just proportional to them.
The experiments fit a line by any likelihood (:func:`fit_linear`), train a sigmoid unit from a
saturated start with several losses, optimisers and step sizes side by side
(:func:`saturated_sigmoid_training`, :func:`steps_to_stay_above`, :func:`slowdown_at_best_step`)
and measure the loss barrier between a network and a relabelled copy
(:func:`permutation_barrier`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize
from torch import nn

from dlnotes.training import fit_replicas, permute_hidden_units
from dlnotes.validation import (
    as_float_tensor,
    check_choice,
    check_finite,
    check_in_range,
    check_int_at_least,
    check_int_in_range,
    check_labels_in,
    check_length,
    check_min_length,
    check_ndim,
    check_nonnegative,
    check_nonzero_rows,
    check_positive,
    check_same_rows,
    check_same_shape,
    check_shape,
    check_tensor,
    check_type,
    check_values_in,
)

__all__ = [
    "gaussian_nll",
    "laplace_nll",
    "binary_cross_entropy_with_logits",
    "scaled_cosine_error",
    "fit_linear",
    "saturated_sigmoid_training",
    "steps_to_stay_above",
    "slowdown_at_best_step",
    "average_parameters",
    "permutation_barrier",
]


def _check_pair(pred_name: str, pred: torch.Tensor, target_name: str,
                target: torch.Tensor) -> None:
    check_tensor(pred_name, pred, finite=True)
    check_tensor(target_name, target, finite=True)
    check_same_shape(pred_name, pred, target_name, target)


def gaussian_nll(pred: torch.Tensor, target: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    r"""Mean negative log-likelihood of ``target`` under :math:`\mathcal N(\text{pred}, \sigma^2)`.

    .. math::
        -\log \mathcal N(y; f, \sigma^2) = \frac{(y-f)^2}{2\sigma^2} + \log\sigma
        + \tfrac12 \log 2\pi

    The constant is included, so the result equals
    ``torch.nn.GaussianNLLLoss(full=True)`` with variance ``sigma**2``.

    Parameters
    ----------
    pred, target
        Tensors of the same shape (the model's mean and the observations).
    sigma
        Standard deviation of the noise, > 0.

    Returns
    -------
    torch.Tensor
        Scalar, the mean over all elements.

    Raises
    ------
    ValueError
        If ``sigma`` ≤ 0 or not finite, the shapes differ, or an input is not finite.
    """
    check_positive("sigma", sigma)
    _check_pair("pred", pred, "target", target)
    sq = (target - pred) ** 2
    return (sq / (2.0 * sigma**2)).mean() + math.log(sigma) + 0.5 * math.log(2.0 * math.pi)


def laplace_nll(pred: torch.Tensor, target: torch.Tensor, b: float = 1.0) -> torch.Tensor:
    r"""Mean negative log-likelihood of ``target`` under a Laplace distribution.

    .. math::
        -\log \text{Laplace}(y; f, b) = \frac{|y-f|}{b} + \log 2b

    Minimising it over ``pred`` is minimising the mean absolute error.

    Parameters
    ----------
    pred, target
        Tensors of the same shape (the model's location and the observations).
    b
        Scale of the Laplace distribution, > 0.

    Returns
    -------
    torch.Tensor
        Scalar, the mean over all elements.

    Raises
    ------
    ValueError
        If ``b`` ≤ 0 or not finite, the shapes differ, or an input is not finite.
    """
    check_positive("b", b)
    _check_pair("pred", pred, "target", target)
    return (target - pred).abs().mean() / b + math.log(2.0 * b)


def binary_cross_entropy_with_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Mean binary cross-entropy of targets in [0, 1] given logits, stable at any logit.

    Uses the softplus identity :math:`-\log\sigma(z) = \operatorname{softplus}(-z)`, so

    .. math::
        \ell(z, y) = y\,\operatorname{softplus}(-z) + (1-y)\,\operatorname{softplus}(z),
        \qquad \operatorname{softplus}(x) = \log(1 + e^{x}),

    evaluated without exponentiating a large positive number: logits of ±1e4 give finite
    results, and the gradient is :math:`\sigma(z) - y`.

    Parameters
    ----------
    logits
        Real-valued scores.
    target
        Same shape, values in [0, 1] (hard or soft labels).

    Returns
    -------
    torch.Tensor
        Scalar, the mean over all elements; equal to
        ``torch.nn.functional.binary_cross_entropy_with_logits``.

    Raises
    ------
    ValueError
        If the shapes differ, an input is not finite, or a target lies outside [0, 1].
    """
    _check_pair("logits", logits, "target", target)
    check_values_in("target", target, 0.0, 1.0)
    # softplus(x) = log(1 + e^x) is evaluated stably by torch: log1p(exp(x)) up to the
    # threshold, x itself above it (where they agree to float64 precision, so no overflow).
    # Its derivative is the sigmoid, so the gradient is sigma(z) - y everywhere, also at 0.
    t = 50.0
    per_element = (target * F.softplus(-logits, threshold=t)
                   + (1.0 - target) * F.softplus(logits, threshold=t))
    return per_element.mean()


def scaled_cosine_error(x: torch.Tensor, z: torch.Tensor, gamma: float = 1.0, *,
                        eps: float = 0.0) -> torch.Tensor:
    r"""GraphMAE's scaled cosine error, the mean of :math:`(1 - \cos(x_i, z_i))^\gamma`.

    Hou et al. (2022) use :math:`\gamma \ge 1` to down-weight pairs that are already nearly
    aligned (small :math:`1-\cos`) relative to badly aligned ones. Each row is normalised as
    :math:`x_i / \max(\lVert x_i\rVert, \epsilon)`.

    Parameters
    ----------
    x, z
        Tensors of shape ``(n, d)``: original and reconstructed feature vectors, row by row.
    gamma
        Scaling exponent, > 0 (GraphMAE uses γ ≥ 1).
    eps
        ≥ 0. With 0 a zero row is an error (its cosine is undefined); GraphMAE's code
        normalises with a tiny ε (1e-12), which counts a zero row as cosine 0.

    Returns
    -------
    torch.Tensor
        Scalar, the mean over the ``n`` rows.

    Raises
    ------
    ValueError
        If a row has zero norm and ``eps`` is 0, or for a wrong shape or value.
    """
    check_positive("gamma", gamma)
    check_nonnegative("eps", eps)
    _check_pair("x", x, "z", z)
    check_ndim("x", x, 2)
    if eps == 0:
        check_nonzero_rows("x", x)
        check_nonzero_rows("z", z)
    cos = (F.normalize(x, dim=1, eps=eps) * F.normalize(z, dim=1, eps=eps)).sum(dim=1)
    return ((1.0 - cos).clamp(min=0.0) ** gamma).mean()


def fit_linear(
    X: torch.Tensor,
    y: torch.Tensor,
    nll: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    tol: float = 1e-10,
    max_evals: int = 20_000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``y ≈ X @ w + b`` by minimising the negative log-likelihood ``nll(X @ w + b, y)``.

    Any likelihood will do: with :func:`gaussian_nll` the minimiser is least squares (the
    conditional mean), with :func:`laplace_nll` least absolute deviations (the conditional
    median). The minimiser is found without derivatives (SciPy's Nelder–Mead), so a loss with
    kinks, such as the absolute error, is minimised as exactly as a smooth one; that limits
    ``X`` to a handful of columns. The fit runs on ``y`` shifted by its median and divided by
    its mean absolute deviation, which leaves the minimiser of these location losses unchanged
    and makes the tolerance independent of the units of ``y``.

    Parameters
    ----------
    X
        Features, shape ``(n, d)`` with ``0 ≤ d ≤ 5`` (``d = 0`` fits a constant).
    y
        Targets, shape ``(n,)``.
    nll
        A loss ``nll(pred, target) -> scalar tensor`` such as :func:`gaussian_nll`.
    tol
        Tolerance on the parameters (in units of the scaled targets), > 0.
    max_evals
        Largest number of evaluations of ``nll``, ≥ 1.

    Returns
    -------
    w, b
        Weights of shape ``(d,)`` and bias of shape ``()``, in the units of ``y``.

    Raises
    ------
    ValueError
        For wrong shapes, more than five columns, non-finite inputs or bad settings.
    """
    X = as_float_tensor("X", X, 2)
    y = as_float_tensor("y", y, 1).to(X.dtype)
    check_same_rows("X", X, "y", y)
    check_int_in_range("number of columns of X", X.shape[1], 0, 5)
    check_positive("tol", tol)
    check_int_at_least("max_evals", max_evals, 1)
    loc = y.median()
    scale = (y - loc).abs().mean()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    y_scaled = (y - loc) / scale
    d = X.shape[1]

    def objective(theta: np.ndarray) -> float:
        t = torch.as_tensor(theta, dtype=X.dtype)
        return float(nll(X @ t[:d] + t[d], y_scaled))

    result = minimize(objective, np.zeros(d + 1), method="Nelder-Mead",
                      options={"xatol": tol, "fatol": tol * 1e-4, "maxiter": max_evals,
                               "maxfev": max_evals})
    theta = torch.as_tensor(result.x, dtype=X.dtype)
    return theta[:d] * scale, theta[d] * scale + loc


#: The losses of :func:`saturated_sigmoid_training`, in the order of its output.
SIGMOID_LOSSES = ("ce", "mse", "mae")


def _sigmoid_unit_loss(model: Callable, X: torch.Tensor, y: torch.Tensor,
                       which: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss selected by the one-hot ``which`` (cross-entropy, squared or absolute error of
    the sigmoid), and the training accuracy of the parameters it was computed at."""
    z = model(X).squeeze(-1)
    s = torch.sigmoid(z)
    per_example = torch.stack([F.softplus(-z) * y + F.softplus(z) * (1.0 - y),
                               (s - y) ** 2, (s - y).abs()])
    value = (which[:, None] * per_example).sum(0).mean()
    return value, ((z > 0).to(y.dtype) == y).to(y.dtype).mean()


def saturated_sigmoid_training(
    X: torch.Tensor,
    y: torch.Tensor,
    losses: Sequence[str] = SIGMOID_LOSSES,
    lrs: Sequence[float] = (0.5,),
    *,
    optimizer: str = "sgd",
    bias_init: float = -8.0,
    steps: int = 100,
) -> np.ndarray:
    r"""Train one sigmoid unit from a saturated start, for every data set, loss and step size
    side by side, and return its training accuracy after every step.

    Each run starts with zero weights and the bias at ``bias_init``, so every prediction
    starts at :math:`\sigma(\text{bias\_init})` (for −8, "label 0" with probability
    :math:`1 - 3.4\times10^{-4}`), and takes full-batch steps of ``optimizer`` on the mean
    cross-entropy (``"ce"``), squared error (``"mse"``) or absolute error (``"mae"``) of
    :math:`\sigma(w^\top x + b)`. All runs are replicas of one :func:`dlnotes.training.fit_replicas`
    call.

    Parameters
    ----------
    X
        Features of ``S`` data sets, shape ``(S, n, d)`` (or ``(n, d)`` for one).
    y
        Labels in {0, 1}, shape ``(S, n)`` (or ``(n,)``).
    losses
        Any of ``"ce"``, ``"mse"``, ``"mae"``, at least one.
    lrs
        Step sizes, each > 0.
    optimizer
        ``"sgd"`` (plain gradient descent) or ``"adam"``.
    bias_init
        The initial bias (finite).
    steps
        Number of full-batch steps, ≥ 1.

    Returns
    -------
    numpy.ndarray
        Training accuracy after each step, shape ``(steps, S, len(losses), len(lrs))``.

    Raises
    ------
    ValueError
        For wrong shapes, labels outside {0, 1}, an unknown loss or optimiser, or bad settings.
    """
    X = as_float_tensor("X", X, (2, 3))
    X = X[None] if X.ndim == 2 else X
    y = torch.as_tensor(y)
    y = y[None] if y.ndim == 1 else y
    check_shape("y", y, X.shape[:2], "(data sets, examples), as the first two axes of X")
    check_labels_in("y", y, (0, 1))
    check_min_length("losses", losses, 1, "losses")
    for i, name in enumerate(losses):
        check_choice(f"losses[{i}]", name, SIGMOID_LOSSES)
    check_min_length("lrs", lrs, 1, "step sizes")
    check_choice("optimizer", optimizer, ["sgd", "adam"])
    check_finite("bias_init", bias_init)
    check_int_at_least("steps", steps, 1)
    runs = [(s, k, r) for s in range(X.shape[0]) for k in range(len(losses))
            for r in range(len(lrs))]
    models = [_saturated_unit(X.shape[2], bias_init, X.dtype) for _ in runs]
    one_hot = torch.eye(len(SIGMOID_LOSSES), dtype=X.dtype)
    which = one_hot[[SIGMOID_LOSSES.index(losses[k]) for _, k, _ in runs]]
    sets = [s for s, _, _ in runs]
    # One step more than asked: each step records the accuracy *before* its update.
    history = fit_replicas(models, _sigmoid_unit_loss, (X[sets], y[sets].to(X.dtype)),
                           per_replica=(True, True), generators=[torch.Generator() for _ in runs],
                           steps=steps + 1, optimizer=optimizer,
                           lr=[float(lrs[r]) for _, _, r in runs],
                           replica_kwargs={"which": which}, record_every=1)
    return history.loss[1:].reshape(steps, X.shape[0], len(losses), len(lrs))


def _saturated_unit(d: int, bias_init: float, dtype: torch.dtype) -> nn.Linear:
    unit = nn.Linear(d, 1, dtype=dtype)
    with torch.no_grad():
        unit.weight.zero_()
        unit.bias.fill_(float(bias_init))
    return unit


def steps_to_stay_above(accuracy: np.ndarray, level: float) -> np.ndarray:
    """The first step from which a training curve stays at or above ``level`` to its end.

    Parameters
    ----------
    accuracy
        Curves along the first axis: ``accuracy[t - 1]`` is the value after step ``t``, shape
        ``(steps, ...)``.
    level
        The level, a number in [0, 1].

    Returns
    -------
    numpy.ndarray
        Integer steps of shape ``accuracy.shape[1:]``; ``steps + 1`` where a curve ends below
        ``level`` (it did not get there within the budget).

    Raises
    ------
    ValueError
        If ``accuracy`` is not an array with at least one step or ``level`` is outside [0, 1].
    """
    acc = np.asarray(accuracy, dtype=np.float64)
    check_ndim("accuracy", acc, tuple(range(1, 8)))
    check_min_length("accuracy", acc, 1, "steps")
    check_in_range("level", level, 0.0, 1.0, high_inclusive=True)
    stays = np.flip(np.cumprod(np.flip(acc >= level, 0), 0), 0).astype(bool)
    first = np.argmax(stays, axis=0) + 1
    return np.where(stays.any(axis=0), first, acc.shape[0] + 1)


def slowdown_at_best_step(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Each loss at its own best step size, and how many times as many steps it needs as the
    first loss, on a log₂ scale.

    Parameters
    ----------
    steps
        Steps needed, shape ``(S, L, R)``: ``S`` data sets (the replication unit), ``L``
        losses (the first is the reference), ``R`` step sizes; all ≥ 1.

    Returns
    -------
    best, slowdown
        ``best[l]``, the step-size index with the smallest mean of :math:`\log_2` steps over the
        data sets (ties to the smaller index), shape ``(L,)``; and
        ``slowdown[s, l]`` :math:`= \log_2(\text{steps}[s, l, \text{best}_l] /
        \text{steps}[s, 0, \text{best}_0])`, shape ``(S, L)`` (0 for the reference).

    Raises
    ------
    ValueError
        If ``steps`` is not three-dimensional or holds a value below 1.
    """
    steps = np.asarray(steps, dtype=np.float64)
    check_ndim("steps", steps, 3)
    check_values_in("steps", steps, 1.0)
    mean_log = np.log2(steps).mean(axis=0)  # (L, R)
    best = np.argmin(mean_log, axis=1)
    at_best = np.log2(steps[:, np.arange(steps.shape[1]), best])  # (S, L)
    return best, at_best - at_best[:, :1]


def average_parameters(a: nn.Module, b: nn.Module) -> nn.Module:
    """A copy of ``a`` whose parameters are the midpoint :math:`(\\theta_a + \\theta_b)/2`.

    Raises
    ------
    ValueError
        If the two modules' parameters differ in number or shape.
    """
    check_type("a", a, nn.Module)
    check_type("b", b, nn.Module)
    pa, pb = list(a.parameters()), list(b.parameters())
    check_length("b's parameters", pb, len(pa), "tensors (as many as a has)")
    for i, (p1, p2) in enumerate(zip(pa, pb, strict=True)):
        check_same_shape(f"a's parameter {i}", p1, f"b's parameter {i}", p2)
    mid = copy.deepcopy(a)
    with torch.no_grad():
        for pm, p1, p2 in zip(mid.parameters(), pa, pb, strict=True):
            pm.copy_((p1 + p2) / 2)
    return mid


def permutation_barrier(net: nn.Sequential, perm: torch.Tensor, X: torch.Tensor,
                        y: torch.Tensor) -> float:
    r"""The loss barrier between a network and a copy with relabelled hidden units.

    For a one-hidden-layer network ``[Linear, activation, Linear]`` with parameters
    :math:`\theta`, the copy :math:`\theta'` has its hidden units permuted by ``perm``
    (:func:`dlnotes.training.permute_hidden_units`): the same function, so the same
    cross-entropy :math:`L` on ``(X, y)``. Returns

    .. math::
        L\Big(\frac{\theta + \theta'}2\Big) - \frac{L(\theta) + L(\theta')}2 ,

    which a convex :math:`L` keeps :math:`\le 0`; a positive value proves the loss is not
    convex in the parameters.

    Raises
    ------
    ValueError
        As :func:`dlnotes.training.permute_hidden_units`, or if ``X`` and ``y`` differ in rows.
    """
    check_same_rows("X", X, "y", y)
    twin = permute_hidden_units(net, perm)
    mid = average_parameters(net, twin)
    with torch.no_grad():
        ends = [float(F.cross_entropy(m(X), y)) for m in (net, twin)]
        return float(F.cross_entropy(mid(X), y)) - sum(ends) / 2
