r"""Fitting from many starting points: convex and non-convex objectives. Used in chapter 2,
"Regularisation as a prior".

:func:`fit_tanh_net` minimises the L2-regularised logistic loss of logistic regression or of a
one-hidden-layer tanh network (:func:`tanh_net_objective`) by full-batch L-BFGS from a random
start; :func:`tanh_net_hessian` is the Hessian there (by automatic differentiation in torch, an
independent computation of the same objective), which tells a strict local minimum from a
saddle or a flat valley; :func:`distinct_minima` groups end points by their loss; and
:func:`threshold_accuracy` scores a linear unit's threshold, the bias's other name.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize
from scipy.special import expit

from dlnotes.priors import logistic_loss
from dlnotes.validation import (
    as_float_array,
    check_choice,
    check_int_at_least,
    check_labels_in,
    check_ndim,
    check_nonnegative,
    check_positive,
    check_regression_data,
    check_same_shape,
    check_shape,
)

__all__ = [
    "tanh_net_objective",
    "tanh_net_scores",
    "fit_tanh_net",
    "tanh_net_hessian",
    "distinct_minima",
    "threshold_accuracy",
]


def tanh_net_objective(theta: np.ndarray, X: np.ndarray, y: np.ndarray, lam: float,
                       hidden: int) -> tuple[float, np.ndarray]:
    r"""L2-regularised logistic loss of a one-hidden-layer tanh network, and its gradient.

    The score is :math:`f(x) = w_2^\top\tanh(W_1 x + b_1) + b_2` for ``hidden`` :math:`= h
    \ge 1`, and :math:`f(x) = w^\top x + b` (logistic regression) for ``hidden = 0``. The
    objective is

    .. math::
        L(\theta) = \frac1N\sum_i \log\big(1 + e^{-y_i f(x_i)}\big)
        + \lambda\big(\lVert W_1\rVert_F^2 + \lVert w_2\rVert^2\big)

    (biases not penalised). For ``hidden = 0`` it is strictly convex in :math:`w`; for
    ``hidden`` ≥ 1 it is not convex. The gradient is back-propagated by hand in NumPy, which
    is much faster than torch for full-batch L-BFGS on a few hundred rows.

    Parameters
    ----------
    theta
        Flat parameters: :math:`(W_1, b_1, w_2, b_2)` row-major, :math:`h(d + 2) + 1` entries,
        or :math:`(w, b)`, :math:`d + 1` entries, for ``hidden = 0``.
    X
        Inputs ``(N, d)``.
    y
        Labels in {−1, +1}, shape ``(N,)``.
    lam
        λ ≥ 0.
    hidden
        Number of hidden units :math:`h \ge 0`.

    Returns
    -------
    loss, grad
        The objective and its gradient (shape of ``theta``).

    Raises
    ------
    ValueError
        For wrong shapes, non-finite values, labels other than ±1 or ``lam`` < 0.
    """
    X, y = check_regression_data(X, y, min_columns=1)
    check_labels_in("y", y, (-1, 1))
    check_nonnegative("lam", lam)
    check_int_at_least("hidden", hidden, 0)
    theta = as_float_array("theta", theta, 1)
    check_shape("theta", theta, (_net_size(X.shape[1], hidden),),
                f"(for d={X.shape[1]}, hidden={hidden})")
    return _tanh_net_loss(theta, X, y, float(lam), hidden)


def _net_size(d: int, hidden: int) -> int:
    return d + 1 if hidden == 0 else hidden * (d + 2) + 1


def _start(d: int, hidden: int, seed: int, init: str, init_std: float) -> np.ndarray:
    """A random starting point of :func:`fit_tanh_net`."""
    gen = np.random.default_rng(seed)
    if init == "normal":
        return init_std * gen.standard_normal(_net_size(d, hidden))
    if hidden == 0:
        return gen.uniform(-1.0, 1.0, d + 1) / math.sqrt(d)
    first = gen.uniform(-1.0, 1.0, hidden * (d + 1)) / math.sqrt(d)
    return np.concatenate([first, gen.uniform(-1.0, 1.0, hidden + 1) / math.sqrt(hidden)])


def _tanh_net_loss(theta: np.ndarray, X: np.ndarray, y: np.ndarray, lam: float,
                   hidden: int) -> tuple[float, np.ndarray]:
    """:func:`tanh_net_objective` without the argument checks (the L-BFGS inner loop)."""
    n, d = X.shape
    if hidden == 0:
        w, b = theta[:d], theta[d]
        f = X @ w + b
        df = -y * expit(-y * f) / n
        value = logistic_loss(y * f).mean() + lam * w @ w
        return float(value), np.concatenate([X.T @ df + 2 * lam * w, [df.sum()]])
    W1 = theta[: hidden * d].reshape(hidden, d)
    b1 = theta[hidden * d: hidden * (d + 1)]
    w2 = theta[hidden * (d + 1): hidden * (d + 2)]
    H = np.tanh(X @ W1.T + b1)
    f = H @ w2 + theta[-1]
    df = -y * expit(-y * f) / n
    dZ = np.outer(df, w2) * (1.0 - H * H)
    value = logistic_loss(y * f).mean() + lam * ((W1 * W1).sum() + w2 @ w2)
    grad = np.concatenate([(dZ.T @ X + 2 * lam * W1).ravel(), dZ.sum(axis=0),
                           H.T @ df + 2 * lam * w2, [df.sum()]])
    return float(value), grad


def tanh_net_scores(theta: np.ndarray, X: np.ndarray, hidden: int) -> np.ndarray:
    """The scores :math:`f(x)` of :func:`tanh_net_objective`'s model for the rows of ``X``.

    Parameters
    ----------
    theta
        Flat parameters, laid out as in :func:`tanh_net_objective`.
    X
        Inputs ``(n, d)``.
    hidden
        Number of hidden units, ≥ 0 (0: logistic regression).

    Returns
    -------
    numpy.ndarray
        Scores ``(n,)``; the predicted label is their sign.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, ``hidden`` < 0 or ``theta`` has the wrong size.
    """
    X = np.asarray(X, dtype=np.float64)
    check_ndim("X", X, 2)
    check_int_at_least("hidden", hidden, 0)
    d = X.shape[1]
    theta = np.asarray(theta, dtype=np.float64)
    check_shape("theta", theta, (_net_size(d, hidden),), f"(for d={d}, hidden={hidden})")
    if hidden == 0:
        return X @ theta[:d] + theta[d]
    W1 = theta[: hidden * d].reshape(hidden, d)
    H = np.tanh(X @ W1.T + theta[hidden * d: hidden * (d + 1)])
    return H @ theta[hidden * (d + 1): hidden * (d + 2)] + theta[-1]


def fit_tanh_net(
    X: np.ndarray,
    y: np.ndarray,
    hidden: int,
    lam: float,
    *,
    seed: int,
    init: str = "normal",
    init_std: float = 1.0,
    tol: float = 1e-7,
    max_iter: int = 20_000,
) -> dict[str, Any]:
    r"""Minimise :func:`tanh_net_objective` by L-BFGS from a random start.

    The start is drawn from ``numpy.random.default_rng(seed)``: with ``init="normal"``,
    :math:`\theta_0 \sim \mathcal N(0, \text{init\_std}^2 I)`; with ``init="pytorch"``, as
    PyTorch initialises ``nn.Linear`` layers, every weight and bias of a layer uniform on
    :math:`[-1/\sqrt{\text{fan-in}}, 1/\sqrt{\text{fan-in}}]` (fan-in :math:`d` for the first
    layer, :math:`h` for the second). ``scipy.optimize.minimize`` (``L-BFGS-B``, no bounds)
    runs until the largest gradient entry is below ``tol``.

    Parameters
    ----------
    X, y
        Inputs ``(N, d)`` and labels in {−1, +1}.
    hidden
        Hidden units (0: logistic regression).
    lam
        λ ≥ 0 (use λ > 0 for a minimiser to exist on separable data).
    seed
        Seed of the start, ≥ 0.
    init
        ``"normal"`` or ``"pytorch"``.
    init_std
        Standard deviation of a ``"normal"`` start, > 0.
    tol
        Gradient tolerance, > 0.
    max_iter
        Maximum number of L-BFGS iterations, ≥ 1.

    Returns
    -------
    dict
        ``"theta"`` (the parameters found), ``"loss"``, ``"grad_max"`` (largest absolute
        gradient entry there) and ``"iterations"``.

    Raises
    ------
    ValueError
        As :func:`tanh_net_objective`, or for out-of-range settings.
    """
    X, y = check_regression_data(X, y, min_columns=1)
    check_int_at_least("hidden", hidden, 0)
    check_int_at_least("seed", seed, 0)
    check_positive("init_std", init_std)
    check_positive("tol", tol)
    check_int_at_least("max_iter", max_iter, 1)
    check_labels_in("y", y, (-1, 1))
    check_nonnegative("lam", lam)
    check_choice("init", init, ["normal", "pytorch"])
    start = _start(X.shape[1], hidden, seed, init, float(init_std))
    result = minimize(_tanh_net_loss, start, args=(X, y, float(lam), hidden), jac=True,
                      method="L-BFGS-B",
                      options={"gtol": float(tol), "ftol": 0.0, "maxiter": max_iter,
                               "maxfun": 2 * max_iter, "maxcor": 30})
    loss, grad = tanh_net_objective(result.x, X, y, lam, hidden)
    return {"theta": result.x, "loss": loss, "grad_max": float(np.abs(grad).max()),
            "iterations": int(result.nit)}


def tanh_net_hessian(theta: np.ndarray, X: np.ndarray, y: np.ndarray, lam: float,
                     hidden: int) -> np.ndarray:
    r"""The Hessian of :func:`tanh_net_objective` at ``theta``, by torch's automatic
    differentiation (:func:`torch.autograd.functional.hessian`) of the same objective written
    in torch.

    At a stationary point, all eigenvalues > 0 make a strict local minimum; a negative one a
    saddle; zeros a flat direction (e.g. a saturated or unused hidden unit).

    Returns
    -------
    numpy.ndarray
        The symmetric Hessian, shape ``(P, P)`` for ``P = theta.size``.

    Raises
    ------
    ValueError
        As :func:`tanh_net_objective`.
    """
    tanh_net_objective(theta, X, y, lam, hidden)  # the argument checks
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float64))
    target = (torch.as_tensor(np.asarray(y, dtype=np.float64)) + 1) / 2
    d = Xt.shape[1]

    def objective(t: torch.Tensor) -> torch.Tensor:
        if hidden == 0:
            f, penalty = Xt @ t[:d] + t[d], t[:d] @ t[:d]
        else:
            W1 = t[: hidden * d].reshape(hidden, d)
            w2 = t[hidden * (d + 1): hidden * (d + 2)]
            f = torch.tanh(Xt @ W1.T + t[hidden * d: hidden * (d + 1)]) @ w2 + t[-1]
            penalty = (W1 * W1).sum() + w2 @ w2
        return F.binary_cross_entropy_with_logits(f, target) + lam * penalty

    H = torch.autograd.functional.hessian(objective,
                                         torch.as_tensor(np.asarray(theta, dtype=np.float64)))
    H = H.numpy()
    return (H + H.T) / 2


def distinct_minima(losses: np.ndarray, tol: float) -> np.ndarray:
    """Group end points by loss: sorted losses more than ``tol`` apart start a new group.

    Returns
    -------
    numpy.ndarray
        The group of each entry of ``losses`` (0 for the lowest), shape of ``losses``.

    Raises
    ------
    ValueError
        If ``losses`` is not a non-empty one-dimensional array of finite values or ``tol``
        is negative.
    """
    values = as_float_array("losses", losses, 1, min_rows=1)
    check_nonnegative("tol", tol)
    order = np.argsort(values, kind="stable")
    groups = np.concatenate([[0], np.cumsum(np.diff(values[order]) > tol)])
    out = np.empty_like(groups)
    out[order] = groups
    return out


def threshold_accuracy(scores: np.ndarray, labels: np.ndarray,
                       thresholds: np.ndarray) -> np.ndarray:
    r"""Accuracy of the unit that fires (predicts +1) when its score :math:`w^\top x \ge T`,
    for each threshold :math:`T` (equivalently, bias :math:`b = -T`).

    Parameters
    ----------
    scores
        :math:`w^\top x_i`, shape ``(N,)``.
    labels
        Labels in {−1, +1}, shape ``(N,)``.
    thresholds
        Thresholds :math:`T`, shape ``(M,)``.

    Returns
    -------
    numpy.ndarray
        Accuracy for each threshold, shape ``(M,)``.

    Raises
    ------
    ValueError
        For wrong shapes, non-finite values or labels other than ±1.
    """
    s = as_float_array("scores", scores, 1)
    y = np.asarray(labels, dtype=np.float64)
    check_same_shape("scores", s, "labels", y)
    check_labels_in("labels", y, (-1, 1))
    t = as_float_array("thresholds", thresholds, 1)
    fires = s[None, :] >= t[:, None]
    return (np.where(fires, 1.0, -1.0) == y[None, :]).mean(axis=1)
