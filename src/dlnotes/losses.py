"""Loss functions derived from likelihoods. Used in chapter 1, "Loss functions from maximum
likelihood".

Every loss is the *mean* over its elements. The Gaussian and Laplace losses keep their
constants, so they are true negative log-likelihoods (in nats), not just proportional to them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dlnotes.validation import (
    check_choice,
    check_finite,
    check_int_at_least,
    check_labels_in,
    check_ndim,
    check_nonnegative,
    check_nonzero_rows,
    check_positive,
    check_same_rows,
    check_same_shape,
    check_tensor,
    check_values_in,
)

__all__ = [
    "gaussian_nll",
    "laplace_nll",
    "binary_cross_entropy_with_logits",
    "scaled_cosine_error",
    "fit_linear",
    "saturated_sigmoid_training",
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
    nll,
    *,
    steps: int = 1000,
    lr: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``y ≈ X @ w + b`` by minimising ``nll(X @ w + b, y)`` with full-batch Adam.

    With :func:`gaussian_nll` this is least squares (the conditional mean); with
    :func:`laplace_nll` it is least absolute deviations (the conditional median). The fit
    runs on ``y`` shifted by its median and divided by its mean absolute deviation, which
    leaves the minimiser of these location losses unchanged and makes the step size
    independent of the units of ``y``; the learning rate decays linearly to zero so that
    the sub-gradient method for the absolute error settles (the chapter's robustness
    experiment).

    Parameters
    ----------
    X
        Features, shape ``(n, d)``.
    y
        Targets, shape ``(n,)``.
    nll
        A loss ``nll(pred, target) -> scalar`` such as :func:`gaussian_nll`.
    steps, lr
        Number of Adam steps (≥ 1) and the initial learning rate (> 0).

    Returns
    -------
    w, b
        Detached weights of shape ``(d,)`` and bias of shape ``()``, in the units of ``y``
        (the fit starts from ``w = 0`` and ``b`` = the median of ``y``).

    Raises
    ------
    ValueError
        For wrong shapes, non-finite inputs, ``steps`` < 1 or ``lr`` ≤ 0.
    """
    check_ndim("X", X, 2)
    check_ndim("y", y, 1)
    check_same_rows("X", X, "y", y)
    check_finite("X", X)
    check_finite("y", y)
    check_int_at_least("steps", steps, 1)
    check_positive("lr", lr)
    loc = y.median()
    scale = (y - loc).abs().mean()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    y_scaled = (y - loc) / scale
    w = torch.zeros(X.shape[1], dtype=X.dtype, requires_grad=True)
    b = torch.zeros((), dtype=X.dtype, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 - t / steps)
    for _ in range(steps):
        opt.zero_grad()
        nll(X @ w + b, y_scaled).backward()
        opt.step()
        sched.step()
    return (w * scale).detach(), (b * scale + loc).detach()


def saturated_sigmoid_training(
    X: torch.Tensor,
    y: torch.Tensor,
    loss: str,
    *,
    bias_init: float = -8.0,
    epochs: int = 100,
    lr: float = 0.5,
) -> list[float]:
    """Train one sigmoid unit by full-batch gradient descent from a saturated start.

    Weights start at zero and the bias at ``bias_init``, so every prediction starts near
    σ(bias_init). Returns the training accuracy after each epoch: it shows how squared error
    (``loss="mse"``) learns through a saturated sigmoid compared with cross-entropy
    (``loss="ce"``); ``loss="mae"`` trains on the absolute error.

    Parameters
    ----------
    X
        Features, shape ``(n, d)``.
    y
        Binary labels in {0, 1}, shape ``(n,)``.
    loss
        ``"ce"``, ``"mse"`` or ``"mae"``.
    bias_init
        Initial bias (finite).
    epochs, lr
        Number of gradient steps (≥ 1) and the step size (> 0).

    Raises
    ------
    ValueError
        For an unknown ``loss``, wrong shapes, labels outside {0, 1} or bad hyper-parameters.
    """
    check_choice("loss", loss, ["ce", "mse", "mae"])
    check_ndim("X", X, 2)
    check_ndim("y", y, 1)
    check_same_rows("X", X, "y", y)
    check_labels_in("y", y, (0, 1))
    check_finite("bias_init", bias_init)
    check_int_at_least("epochs", epochs, 1)
    check_positive("lr", lr)
    target = y.to(X.dtype)
    w = torch.zeros(X.shape[1], dtype=X.dtype, requires_grad=True)
    b = torch.tensor(float(bias_init), dtype=X.dtype, requires_grad=True)
    history = []
    for _ in range(epochs):
        z = X @ w + b
        if loss == "ce":
            value = binary_cross_entropy_with_logits(z, target)
        elif loss == "mse":
            value = ((torch.sigmoid(z) - target) ** 2).mean()
        else:
            value = (torch.sigmoid(z) - target).abs().mean()
        gw, gb = torch.autograd.grad(value, (w, b))
        with torch.no_grad():
            w -= lr * gw
            b -= lr * gb
            history.append(float(((X @ w + b > 0).to(y.dtype) == y).float().mean()))
    return history
