r"""Regularisation as a prior. Used in chapter 2, "Regularisation as a prior".

Four groups of functions:

* **The lasso and its prior.** :func:`soft_threshold` is the minimiser of the one-dimensional
  lasso; :func:`lasso` minimises :math:`\frac1{2N}\lVert y - Xw\rVert^2 + \alpha\lVert w\rVert_1`
  by coordinate descent, stopping on the duality gap of :func:`lasso_duality_gap`;
  :func:`laplace_posterior_mean` is the posterior *mean* under a Laplace prior (the lasso is
  its *mode*), in closed form.
* **Margin losses.** :func:`logistic_loss` (stable :math:`\log(1 + e^{-m})`) and
  :func:`hinge_loss` (the soft-margin SVM's :math:`\max(0, 1 - m)`).
* **Kernel logistic regression.** :func:`kernel_logistic_regression` solves for the dual
  coefficients by Newton's method; :class:`KernelLogisticRegression` wraps it with an RBF
  kernel as a scikit-learn classifier; :func:`platt_scaling` turns SVM scores into
  probabilities.
* **Experiments.** :func:`sparse_logistic_data` (few relevant features, many irrelevant ones),
  :func:`select_on_validation` (choose a hyper-parameter on a validation split) and
  :func:`kernel_grid_log_losses` (kernel logistic regression and the SVM with Platt's sigmoid
  scored alike over one grid). Fits from many starts are in :mod:`dlnotes.multistart`.

Labels of the margin losses, of kernel logistic regression and of Platt scaling are
:math:`\pm 1`; :class:`KernelLogisticRegression` accepts any two classes, like scikit-learn.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from scipy.integrate import quad
from scipy.special import expit, log_ndtr, ndtr
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC

from dlnotes.validation import (
    as_float_array,
    check_finite,
    check_float_tensor,
    check_int_at_least,
    check_labels_in,
    check_min_length,
    check_ndim,
    check_nonnegative,
    check_positive,
    check_regression_data,
    check_same_rows,
    check_same_shape,
    check_shape,
    check_square,
    check_symmetric,
    check_values_in,
)

__all__ = [
    "soft_threshold",
    "lasso",
    "lasso_duality_gap",
    "laplace_posterior_mean",
    "logistic_loss",
    "hinge_loss",
    "kernel_logistic_objective",
    "kernel_logistic_regression",
    "KernelLogisticRegression",
    "platt_scaling",
    "sparse_logistic_data",
    "select_on_validation",
    "kernel_grid_log_losses",
    "laplace_prior_interval_probability",
]

Array = np.ndarray | torch.Tensor


# ------------------------------------------------------------------------------ the lasso


def soft_threshold(x: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    r"""The soft-thresholding operator :math:`S_t(x) = \operatorname{sign}(x)\max(|x| - t, 0)`.

    It is the minimiser of the one-dimensional lasso
    :math:`\tfrac12(w - x)^2 + t\lvert w\rvert`: values within :math:`t` of zero become exactly
    zero, the others move towards zero by :math:`t`.

    Parameters
    ----------
    x
        Floating torch tensor of any shape.
    threshold
        :math:`t \ge 0`, a number or a tensor broadcastable to ``x``.

    Returns
    -------
    torch.Tensor
        :math:`S_t(x)`, same shape and dtype as ``x`` (differentiable almost everywhere).

    Raises
    ------
    ValueError
        If ``x`` is not a finite floating tensor or ``threshold`` is negative or not finite.
    """
    check_float_tensor("x", x)
    if isinstance(threshold, torch.Tensor):
        check_finite("threshold", threshold)
        check_values_in("threshold", threshold, 0.0)
        t = threshold.to(x.dtype)
    else:
        check_nonnegative("threshold", threshold)
        t = float(threshold)
    return torch.sign(x) * torch.clamp(x.abs() - t, min=0.0)


def _gap(n: int, yy: float, c: np.ndarray, G: np.ndarray, w: np.ndarray,
         alpha: float) -> float:
    """Duality gap from the sufficient statistics ``yy = y'y/n``, ``c = X'y/n``, ``G = X'X/n``."""
    Gw = G @ w
    sq = max(yy - 2.0 * c @ w + w @ Gw, 0.0)  # ||r||^2 / n
    corr = np.abs(c - Gw).max()  # ||X'r||_inf / n
    s = 1.0 if corr <= alpha else alpha / corr
    primal = 0.5 * sq + alpha * np.abs(w).sum()
    dual = s * (yy - c @ w) - 0.5 * s * s * sq  # (theta'y - theta'theta/2)/n, theta = s r
    return float(primal - dual)


def lasso_duality_gap(X: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> float:
    r"""Duality gap of ``w`` for the lasso objective of :func:`lasso`: a certificate of optimality.

    With the residual :math:`r = y - Xw`, the dual point :math:`\theta = s\,r` with
    :math:`s = \min\big(1, N\alpha / \lVert X^\top r\rVert_\infty\big)` is feasible for the
    dual problem
    :math:`\max_\theta \frac1N(\theta^\top y - \frac12\lVert\theta\rVert^2)` subject to
    :math:`\lVert X^\top\theta\rVert_\infty \le N\alpha`, so

    .. math::
        P(w) - P(w^\star) \le P(w) - \tfrac1N\big(\theta^\top y - \tfrac12\lVert\theta\rVert^2\big),

    the returned gap. It is :math:`\ge 0` and zero exactly at the minimiser.

    Parameters
    ----------
    X, y
        Design ``(N, d)`` and targets ``(N,)``.
    w
        Coefficients ``(d,)``.
    alpha
        Penalty weight α ≥ 0.

    Returns
    -------
    float
        The duality gap (an upper bound on the excess objective of ``w``).

    Raises
    ------
    ValueError
        For wrong shapes, non-finite values or ``alpha`` < 0.
    """
    X, y = check_regression_data(X, y, min_columns=1)
    w = as_float_array("w", w, 1)
    check_shape("w", w, X.shape[1:], "(one entry per column of X)")
    check_nonnegative("alpha", alpha)
    n = X.shape[0]
    return _gap(n, float(y @ y) / n, X.T @ y / n, X.T @ X / n, w, float(alpha))


def lasso(
    X: np.ndarray,
    y: np.ndarray,
    alpha: float,
    *,
    max_iter: int = 100_000,
    tol: float = 1e-10,
    w_init: np.ndarray | None = None,
) -> np.ndarray:
    r"""The lasso by cyclic coordinate descent (no intercept; scikit-learn's objective).

    Minimises

    .. math::
        P(w) = \frac1{2N}\lVert y - Xw\rVert^2 + \alpha\lVert w\rVert_1 .

    Holding all other coordinates fixed, the objective in :math:`w_j` is the one-dimensional
    lasso :math:`\frac{a_j}2 w_j^2 - \rho_j w_j + \alpha\lvert w_j\rvert` with
    :math:`a_j = \lVert x_j\rVert^2/N` and :math:`\rho_j = x_j^\top r_{-j}/N` (the partial
    residual without feature :math:`j`), minimised by :math:`w_j = S_\alpha(\rho_j)/a_j`
    (:func:`soft_threshold`). The updates use the Gram matrix :math:`X^\top X/N`, so a sweep
    costs :math:`O(d^2)`. Iteration stops when the duality gap (:func:`lasso_duality_gap`,
    checked every fifth sweep) is below ``tol`` times :math:`P(0) = \lVert y\rVert^2/(2N)`,
    which certifies the optimum.

    It equals ``sklearn.linear_model.Lasso(alpha, fit_intercept=False)``. Centre ``X`` and
    ``y`` first if an intercept is wanted.

    Parameters
    ----------
    X
        Design matrix ``(N, d)``.
    y
        Targets ``(N,)``.
    alpha
        Penalty weight α > 0 (for α = 0, least squares, use the closed form).
    max_iter
        Maximum number of sweeps over the coordinates, ≥ 1.
    tol
        Relative duality-gap tolerance, > 0.
    w_init
        Starting coefficients ``(d,)`` (a warm start along a path); zeros if ``None``.

    Returns
    -------
    numpy.ndarray
        Coefficients ``(d,)``, float64, with exact zeros where the lasso puts them.

    Raises
    ------
    ValueError
        For wrong shapes, non-finite values, ``alpha`` ≤ 0, ``max_iter`` < 1 or ``tol`` ≤ 0.

    Warns
    -----
    RuntimeWarning
        If the gap is still above the tolerance after ``max_iter`` sweeps.

    Notes
    -----
    Tibshirani (1996), "Regression shrinkage and selection via the lasso";
    coordinate descent as in Friedman, Hastie & Tibshirani (2010).
    """
    X, y = check_regression_data(X, y, min_columns=1)
    check_positive("alpha", alpha)
    check_int_at_least("max_iter", max_iter, 1)
    check_positive("tol", tol)
    n, d = X.shape
    if w_init is None:
        w = np.zeros(d)
    else:
        w = as_float_array("w_init", w_init, 1).copy()
        check_shape("w_init", w, (d,), "(one entry per column of X)")
    alpha = float(alpha)
    G = X.T @ X / n
    c = X.T @ y / n
    yy = float(y @ y) / n
    target = tol * max(0.5 * yy, np.finfo(float).tiny)
    diag = G.diagonal().tolist()
    G_rows = [G[j] for j in range(d)]
    q = G @ w  # maintained: q = G w, so rho_j = c_j - q_j + a_j w_j
    for sweep in range(max_iter):
        for j in range(d):
            a = diag[j]
            old = w[j]
            if a == 0.0:
                new = 0.0
            else:
                rho = c[j] - q[j] + a * old
                new = math.copysign(max(abs(rho) - alpha, 0.0), rho) / a
            if new != old:
                q += G_rows[j] * (new - old)
                w[j] = new
        # The gap costs about one sweep: check it every fifth sweep and after the last.
        if (sweep % 5 == 4 or sweep == max_iter - 1) and _gap(n, yy, c, G, w, alpha) <= target:
            return w
    warnings.warn(f"lasso: duality gap still above tol after max_iter={max_iter} sweeps",
                  RuntimeWarning, stacklevel=2)
    return w


def laplace_posterior_mean(z: Array, noise_std: float, scale: float) -> np.ndarray:
    r"""Posterior mean of :math:`w` under a Laplace prior and one Gaussian observation.

    For :math:`z \mid w \sim \mathcal N(w, s^2)` and :math:`w \sim \text{Laplace}(0, b)`,
    the posterior is :math:`\propto \exp\!\big(-\frac{(w - z)^2}{2s^2} - \frac{|w|}{b}\big)`: two
    truncated Gaussians with means :math:`\mu_\pm = z \mp s^2/b` on :math:`w > 0` and
    :math:`w < 0`. With masses :math:`c_+ \propto e^{-z/b}\,\Phi(\mu_+/s)` and
    :math:`c_- \propto e^{z/b}\,\Phi(-\mu_-/s)`,

    .. math::
        \mathbb E[w \mid z] = \frac{c_+\big(\mu_+ + s\,\frac{\varphi(\mu_+/s)}{\Phi(\mu_+/s)}\big)
        + c_-\big(\mu_- - s\,\frac{\varphi(\mu_-/s)}{\Phi(-\mu_-/s)}\big)}{c_+ + c_-}.

    Since :math:`e^{-z/b}\varphi(\mu_+/s) = e^{z/b}\varphi(\mu_-/s)`, the two
    :math:`\varphi` terms cancel exactly and

    .. math::
        \mathbb E[w \mid z] = z - \frac{s^2}{b}\tanh\frac{\log c_+ - \log c_-}{2},

    which is how it is computed: in logs (``scipy.special.log_ndtr``), so it is finite for any
    finite ``z``; near :math:`z = 0` by the Taylor series of :math:`\log\Phi`, which cancels
    nothing; and for :math:`|z|` times the sign of :math:`z`, so it is exactly odd (exactly 0
    at 0).
    The posterior *mode* (MAP) is :math:`S_{s^2/b}(z)`, exactly zero for
    :math:`|z| \le s^2/b`; the mean is zero only at :math:`z = 0`.

    Parameters
    ----------
    z
        Observations, any shape (NumPy array, tensor or number).
    noise_std
        :math:`s > 0`.
    scale
        Laplace scale :math:`b > 0` (prior variance :math:`2b^2`).

    Returns
    -------
    numpy.ndarray
        Posterior means, shape of ``z``, float64.

    Raises
    ------
    ValueError
        If ``z`` is not finite or ``noise_std`` or ``scale`` is not positive.

    Notes
    -----
    Park & Casella (2008), "The Bayesian lasso", treat the full
    posterior.
    """
    z = np.asarray(z.detach().cpu() if isinstance(z, torch.Tensor) else z, dtype=np.float64)
    check_finite("z", z)
    check_positive("noise_std", noise_std)
    check_positive("scale", scale)
    s, b = float(noise_std), float(scale)
    sign, z = np.sign(z), np.abs(z)  # the mean is odd in z: compute it for |z|
    mu_p, mu_m = z - s * s / b, z + s * s / b
    # log c+ - log c- = -2z/b + g(a + d) - g(a - d), g = log Phi, a = -s/b, d = z/s. For small
    # d the difference cancels two nearly equal numbers: use g's odd Taylor series instead.
    a, d = -s / b, z / s
    mills = math.exp(-0.5 * a * a - 0.5 * math.log(2 * math.pi) - float(log_ndtr(a)))  # g'(a)
    g2 = -mills * (a + mills)
    g3 = -g2 * (a + mills) - mills * (1.0 + g2)
    series = 2.0 * d * mills + d**3 * g3 / 3.0
    direct = log_ndtr(mu_p / s) - log_ndtr(-mu_m / s)
    log_ratio = -2.0 * z / b + np.where(d < 1e-2, series, direct)
    return sign * (z - s * s / b * np.tanh(log_ratio / 2.0))


def laplace_prior_interval_probability(t: float, noise_std: float, scale: float) -> float:
    r"""The probability that one observation lands in :math:`[-t, t]` under a Laplace prior.

    For :math:`w \sim \text{Laplace}(0, b)` and :math:`z \mid w \sim \mathcal N(w, s^2)`,

    .. math::
        P(|z| \le t) = \int_{-\infty}^{\infty} \frac{e^{-|w|/b}}{2b}
        \Big[\Phi\Big(\frac{t - w}{s}\Big) - \Phi\Big(\frac{-t - w}{s}\Big)\Big]\,dw ,

    computed by adaptive quadrature (``scipy.integrate.quad``) as
    :math:`\int_0^\infty e^{-u}[\Phi((t - bu)/s) - \Phi((-t - bu)/s)]\,du` (the integrand is
    even in :math:`w = bu`; the tail beyond :math:`u = 60` is below :math:`10^{-26}`). With
    :math:`t = s^2/b` it is the probability that the MAP estimate :math:`S_{s^2/b}(z)` is
    exactly zero.

    Raises
    ------
    ValueError
        If ``t`` is negative or ``noise_std`` or ``scale`` is not positive.
    """
    check_nonnegative("t", t)
    check_positive("noise_std", noise_std)
    check_positive("scale", scale)
    t, s, b = float(t), float(noise_std), float(scale)

    def integrand(u: float) -> float:
        return math.exp(-u) * (ndtr((t - b * u) / s) - ndtr((-t - b * u) / s))

    upper = 60.0
    kink = [t / b] if 0.0 < t / b < upper else None  # a near-step when s is tiny
    value, _ = quad(integrand, 0.0, upper, points=kink, epsabs=1e-13, epsrel=1e-12, limit=200)
    return float(value)


# --------------------------------------------------------------------------- margin losses


def logistic_loss(margins: np.ndarray) -> np.ndarray:
    r"""The logistic loss of margins :math:`m = y f(x)`: :math:`\log(1 + e^{-m})`, stably.

    Computed as ``np.logaddexp(0, -m)``, which is finite for margins of any size (the naive
    ``np.log(1 + np.exp(-m))`` overflows to ``inf`` for :math:`m < -709`).

    Parameters
    ----------
    margins
        Array of finite margins.

    Returns
    -------
    numpy.ndarray
        Element-wise loss, float64.

    Raises
    ------
    ValueError
        If ``margins`` holds NaN or infinity.
    """
    m = np.asarray(margins, dtype=np.float64)
    check_finite("margins", m)
    return np.logaddexp(0.0, -m)


def hinge_loss(scores: Array, labels: Array) -> Array:
    r"""Mean hinge loss :math:`\frac1N\sum_i \max(0, 1 - y_i s_i)` for labels :math:`y_i = \pm1`.

    At the optimum of the slack variables, the soft-margin SVM
    :math:`\min \frac12\lVert w\rVert^2 + C\sum_i\xi_i` subject to
    :math:`\xi_i \ge 0,\ \xi_i \ge 1 - y_i s_i` has :math:`\xi_i = \max(0, 1 - y_i s_i)`, so the
    SVM minimises :math:`C N\cdot` (this loss) :math:`+ \frac12\lVert w\rVert^2`.

    Parameters
    ----------
    scores
        Real scores :math:`s_i = w^\top x_i + b`, shape ``(N,)``; a NumPy array or a torch
        tensor (then the result is a differentiable scalar tensor).
    labels
        Labels in :math:`\{-1, +1\}`, same shape and type family as ``scores``.

    Returns
    -------
    float or torch.Tensor
        The mean hinge loss.

    Raises
    ------
    ValueError
        If shapes differ, ``scores`` is not finite or a label is not ±1.
    """
    if isinstance(scores, torch.Tensor):
        labels = torch.as_tensor(labels, dtype=scores.dtype)
    else:
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.float64)
    check_same_shape("scores", scores, "labels", labels)
    check_finite("scores", scores)
    check_labels_in("labels", labels, (-1, 1))
    if isinstance(scores, torch.Tensor):
        return torch.clamp(1.0 - labels * scores, min=0.0).mean()
    return float(np.maximum(0.0, 1.0 - labels * scores).mean())


# ------------------------------------------------------------ kernel logistic regression


def _kernel_problem(K: Any, y: Any, lam: float) -> tuple[np.ndarray, np.ndarray]:
    K = as_float_array("K", K, 2)
    y = np.asarray(y, dtype=np.float64)
    check_ndim("y", y, 1)
    check_square("K", K)
    check_same_rows("K", K, "y", y)
    check_symmetric("K", K, 1e-10)
    check_labels_in("y", y, (-1, 1))
    check_positive("lam", lam)
    return K, y


def kernel_logistic_objective(K: np.ndarray, y: np.ndarray, lam: float,
                              alpha: np.ndarray) -> float:
    r"""The kernel logistic regression objective
    :math:`\frac1N\sum_i\log\big(1 + e^{-y_i (K\alpha)_i}\big) + \lambda\,\alpha^\top K\alpha`.

    Parameters
    ----------
    K
        Symmetric positive semi-definite kernel matrix ``(N, N)``.
    y
        Labels in {−1, +1}, shape ``(N,)``.
    lam
        λ > 0.
    alpha
        Dual coefficients ``(N,)``.

    Returns
    -------
    float
        The objective value.

    Raises
    ------
    ValueError
        For a non-symmetric ``K``, labels other than ±1, or a wrong shape or value.
    """
    K, y = _kernel_problem(K, y, lam)
    alpha = np.asarray(alpha, dtype=np.float64)
    check_same_shape("alpha", alpha, "y", y)
    check_finite("alpha", alpha)
    f = K @ alpha
    return float(logistic_loss(y * f).mean() + lam * alpha @ f)


def kernel_logistic_regression(
    K: np.ndarray,
    y: np.ndarray,
    lam: float,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
    alpha_init: np.ndarray | None = None,
) -> np.ndarray:
    r"""Dual coefficients of kernel logistic regression, by Newton's method.

    Minimises :math:`F(\alpha) = \frac1N\sum_i\log(1 + e^{-y_i f_i}) + \lambda\,\alpha^\top
    K\alpha` with :math:`f = K\alpha` (:func:`kernel_logistic_objective`). Its gradient is
    :math:`K g` with

    .. math::
        g = -\tfrac1N\, y\odot\sigma(-y\odot f) + 2\lambda\alpha ,

    and its Hessian :math:`K\big(\tfrac1N WK + 2\lambda I\big)` with
    :math:`W = \operatorname{diag}\big(\sigma(m_i)\sigma(-m_i)\big)`, :math:`m = y\odot f`. The
    step :math:`\Delta = -\big(\tfrac1N WK + 2\lambda I\big)^{-1} g` solves the Newton system
    even when :math:`K` is singular; a backtracking line search keeps every step a descent
    step. The iteration stops when :math:`\lVert g\rVert_\infty \le` ``tol``: then
    :math:`\alpha_i = y_i\sigma(-m_i)/(2\lambda N)`, the representer form, which fixes
    :math:`\alpha` uniquely. All logistic terms use ``logaddexp`` and ``expit``, so huge
    margins do not overflow.

    Parameters
    ----------
    K
        Symmetric positive semi-definite kernel matrix ``(N, N)`` of the training inputs.
    y
        Labels in {−1, +1}, shape ``(N,)``.
    lam
        Penalty weight λ > 0.
    max_iter
        Maximum number of Newton steps, ≥ 1.
    tol
        Tolerance on :math:`\lVert g\rVert_\infty`, > 0.
    alpha_init
        Starting coefficients ``(N,)`` (a warm start along a path of λ); zeros if ``None``.

    Returns
    -------
    numpy.ndarray
        :math:`\alpha`, shape ``(N,)``; the decision function at a new point :math:`x` is
        :math:`\sum_i \alpha_i k(x_i, x)`.

    Raises
    ------
    ValueError
        For a non-symmetric ``K``, labels other than ±1, or a wrong shape or value.

    Warns
    -----
    RuntimeWarning
        If the tolerance is not reached in ``max_iter`` steps.

    Notes
    -----
    Zhu & Hastie (2005), "Kernel logistic regression and the import vector
    machine".
    """
    K, y = _kernel_problem(K, y, lam)
    check_int_at_least("max_iter", max_iter, 1)
    check_positive("tol", tol)
    n = y.shape[0]
    alpha = np.zeros(n) if alpha_init is None else as_float_array("alpha_init", alpha_init, 1)
    check_same_shape("alpha_init", alpha, "y", y)
    f = K @ alpha
    value = float(logistic_loss(y * f).mean() + lam * alpha @ f)
    eye = np.eye(n)
    for _ in range(max_iter):
        m = y * f
        g = -y * expit(-m) / n + 2.0 * lam * alpha
        if np.abs(g).max() <= tol:
            return alpha
        weights = expit(m) * expit(-m)
        step = -np.linalg.solve(weights[:, None] * K / n + 2.0 * lam * eye, g)
        df = K @ step
        slope = float(g @ df)  # directional derivative: grad F . step = (K g) . step
        t = 1.0
        while True:
            trial_f = f + t * df
            trial_alpha = alpha + t * step
            trial = float(logistic_loss(y * trial_f).mean() + lam * trial_alpha @ trial_f)
            if trial <= value + 1e-4 * t * slope or t < 1e-10:
                break
            t *= 0.5
        alpha, f, value = trial_alpha, trial_f, trial
    warnings.warn(f"kernel_logistic_regression: not converged in max_iter={max_iter} steps",
                  RuntimeWarning, stacklevel=2)
    return alpha


class KernelLogisticRegression(ClassifierMixin, BaseEstimator):
    r"""Kernel logistic regression with an RBF kernel, as a scikit-learn classifier.

    The kernel is :math:`k(x, x') = \exp(-\gamma\lVert x - x'\rVert^2)`
    (``sklearn.metrics.pairwise.rbf_kernel``); ``fit`` calls
    :func:`kernel_logistic_regression` with labels mapped to ±1 (second class = +1). There is
    no intercept, as in the objective of the notes.

    Parameters
    ----------
    gamma
        RBF width parameter γ > 0.
    lam
        Penalty weight λ > 0 of :func:`kernel_logistic_regression`.
    """

    def __init__(self, gamma: float = 1.0, lam: float = 1e-3) -> None:
        self.gamma = gamma
        self.lam = lam

    def fit(self, X: np.ndarray, y: np.ndarray) -> KernelLogisticRegression:
        """Fit on inputs ``(N, d)`` and labels of exactly two classes; returns ``self``."""
        check_positive("gamma", self.gamma)
        X = np.asarray(X, dtype=np.float64)
        check_ndim("X", X, 2)
        check_finite("X", X)
        self.classes_ = np.unique(y)
        if self.classes_.shape[0] != 2:
            raise ValueError(f"y must hold exactly two classes, got {self.classes_.tolist()}")
        signs = np.where(np.asarray(y) == self.classes_[1], 1.0, -1.0)
        self.X_fit_ = X
        self.dual_coef_ = kernel_logistic_regression(rbf_kernel(X, X, gamma=self.gamma), signs,
                                                     self.lam)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The score :math:`f(x) = \\sum_i\\alpha_i k(x_i, x)`, shape ``(n,)``."""
        return rbf_kernel(np.asarray(X, dtype=np.float64), self.X_fit_,
                          gamma=self.gamma) @ self.dual_coef_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities of the two classes, :math:`\\sigma(\\mp f(x))`, shape ``(n, 2)``."""
        f = self.decision_function(X)
        return np.column_stack([expit(-f), expit(f)])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The class with score sign: second class where :math:`f(x) > 0`."""
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)`` (no sample weights)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


def platt_scaling(scores: np.ndarray, labels: np.ndarray, *, max_iter: int = 100,
                  tol: float = 1e-10) -> tuple[float, float]:
    r"""Platt's sigmoid :math:`P(y = +1 \mid s) = \sigma(a s + b)` fitted to classifier scores.

    Minimises the cross-entropy of :math:`\sigma(a s_i + b)` against Platt's smoothed targets
    :math:`t_+ = \frac{N_+ + 1}{N_+ + 2}` for positives and :math:`t_- = \frac{1}{N_- + 2}`
    for negatives (a guard against over-confidence on small sets), by Newton's method with
    backtracking, starting at :math:`a = 0`, :math:`b = \log\frac{N_+ + 1}{N_- + 1}`. Fit it on
    scores of data the classifier was not trained on (a validation split).

    Parameters
    ----------
    scores
        Decision values :math:`s_i`, shape ``(N,)``.
    labels
        Labels in {−1, +1}, shape ``(N,)``.
    max_iter
        Maximum number of Newton steps, ≥ 1.
    tol
        Tolerance on the largest gradient entry divided by :math:`N`, > 0.

    Returns
    -------
    a, b
        Slope and intercept; :math:`a > 0` when larger scores mean class +1.

    Raises
    ------
    ValueError
        For wrong shapes, non-finite scores, labels other than ±1 or bad settings.

    Notes
    -----
    Platt (1999), "Probabilistic outputs for support vector machines"; the
    Newton iteration follows Lin, Lin & Weng (2007).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    check_ndim("scores", s, 1)
    check_same_shape("scores", s, "labels", y)
    check_finite("scores", s)
    check_labels_in("labels", y, (-1, 1))
    check_int_at_least("max_iter", max_iter, 1)
    check_positive("tol", tol)
    n_pos, n_neg = float((y > 0).sum()), float((y < 0).sum())
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    design = np.column_stack([s, np.ones_like(s)])
    params = np.array([0.0, math.log((n_pos + 1) / (n_neg + 1))])

    def loss(p: np.ndarray) -> float:
        z = design @ p
        return float((np.logaddexp(0.0, z) - t * z).sum())

    value = loss(params)
    for _ in range(max_iter):
        z = design @ params
        grad = design.T @ (expit(z) - t)
        if np.abs(grad).max() <= tol * s.shape[0]:
            break
        hess = (design * (expit(z) * expit(-z))[:, None]).T @ design + 1e-12 * np.eye(2)
        step = -np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-10:
            trial = loss(params + size * step)
            if trial <= value + 1e-4 * size * float(grad @ step):
                break
            size *= 0.5
        params, value = params + size * step, trial
    return float(params[0]), float(params[1])


# ---------------------------------------------------------------------------- experiments


def sparse_logistic_data(
    n: int,
    n_relevant: int,
    n_irrelevant: int,
    *,
    signal: float = 10.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Inputs with a few relevant and many irrelevant features, labels from a logistic model.

    :math:`x \sim \mathcal N(0, I_{r + k})` and
    :math:`P(y = +1\mid x) = \sigma(\theta^\top x)` with
    :math:`\theta = \frac{\text{signal}}{\sqrt r}(1, \dots, 1, 0, \dots, 0)` (:math:`r` relevant
    entries, :math:`k` zeros), so :math:`\lVert\theta\rVert` = ``signal`` whatever :math:`r`:
    the set-up of the irrelevant-features experiments of Ng (2004), "Feature selection,
    L1 vs. L2 regularization, and rotational invariance".

    Parameters
    ----------
    n
        Number of examples, ≥ 1.
    n_relevant
        :math:`r \ge 1`.
    n_irrelevant
        :math:`k \ge 0`.
    signal
        :math:`\lVert\theta\rVert > 0`.
    seed
        Seed of the NumPy generator, ≥ 0.

    Returns
    -------
    X, y
        ``X`` of shape ``(n, r + k)`` (relevant columns first) and labels ``y`` in {−1, +1}.

    Raises
    ------
    ValueError
        If an argument is out of range.
    """
    check_int_at_least("n", n, 1)
    check_int_at_least("n_relevant", n_relevant, 1)
    check_int_at_least("n_irrelevant", n_irrelevant, 0)
    check_positive("signal", signal)
    check_int_at_least("seed", seed, 0)
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((n, n_relevant + n_irrelevant))
    logits = float(signal) / math.sqrt(n_relevant) * X[:, :n_relevant].sum(axis=1)
    y = np.where(gen.random(n) < expit(logits), 1, -1)
    return X, y


def select_on_validation(
    make_model: Callable[[Any], Any],
    grid: Sequence[Any],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    score: Callable[[Any, np.ndarray, np.ndarray], float] | None = None,
) -> tuple[Any, Any, list[float]]:
    """Fit ``make_model(p)`` on the training split for every ``p`` in ``grid``; keep the best
    on the validation split.

    Higher scores are better. Ties go to the earliest entry of ``grid``, so list the strongest
    regularisation first to prefer the simpler model. The test split is never seen.

    Parameters
    ----------
    make_model
        ``make_model(p)`` returns an unfitted estimator with ``fit`` and ``score``.
    grid
        Hyper-parameter values, at least one.
    X_train, y_train, X_val, y_val
        The two splits.
    score
        ``score(model, X_val, y_val)``; ``None`` uses ``model.score`` (accuracy for
        scikit-learn classifiers, :math:`R^2` for regressors).

    Returns
    -------
    model, p, scores
        The fitted best model, its hyper-parameter and the validation score of every entry.

    Raises
    ------
    ValueError
        If ``grid`` is empty.
    """
    check_min_length("grid", grid, 1, "values")
    best, best_p, scores = None, None, []
    for p in grid:
        model = make_model(p).fit(X_train, y_train)
        value = model.score(X_val, y_val) if score is None else score(model, X_val, y_val)
        scores.append(float(value))
        if scores[-1] > max(scores[:-1], default=-math.inf):
            best, best_p = model, p
    return best, best_p, scores


def kernel_grid_log_losses(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    gammas: Sequence[float],
    lams: Sequence[float],
) -> dict[str, np.ndarray]:
    r"""Validation log loss of kernel logistic regression and of the SVM with Platt's sigmoid,
    over one grid of RBF widths γ and penalties λ, scored alike.

    For each γ the RBF kernels :math:`k(x, x') = e^{-\gamma\lVert x - x'\rVert^2}` are computed
    once. Kernel logistic regression (:func:`kernel_logistic_regression`, warm-started along
    ``lams`` in the given order) gives probabilities :math:`\sigma(f)`; scikit-learn's ``SVC``
    on the same kernel, with :math:`C = 1/(2\lambda N)` (the same penalty, by the hinge form of
    the SVM), gives scores whose probabilities are Platt's sigmoid (:func:`platt_scaling`)
    fitted on the validation scores. Both are scored by the mean validation log loss.

    Parameters
    ----------
    X_train, y_train
        Training inputs ``(N, d)`` and labels in {0, 1}.
    X_val, y_val
        Validation inputs ``(M, d)`` and labels in {0, 1}.
    gammas, lams
        The grid: widths γ > 0 and penalties λ > 0 (list the strongest penalty first).

    Returns
    -------
    dict
        ``"kernel LR"`` and ``"SVC + Platt"``: log losses of shape ``(len(lams), len(gammas))``.

    Raises
    ------
    ValueError
        For wrong shapes, labels other than 0 and 1, or grids with a non-positive value.
    """
    X_train, y_train = check_regression_data(X_train, y_train, min_columns=1)
    X_val, y_val = check_regression_data(X_val, y_val, min_columns=1)
    check_shape("X_val", X_val, (None, X_train.shape[1]), "(as many columns as X_train)")
    check_labels_in("y_train", y_train, (0, 1))
    check_labels_in("y_val", y_val, (0, 1))
    check_min_length("gammas", gammas, 1, "values")
    check_min_length("lams", lams, 1, "values")
    for name, grid in (("gammas", gammas), ("lams", lams)):
        for i, v in enumerate(grid):
            check_positive(f"{name}[{i}]", v)
    signs, signs_val = 2 * y_train - 1, 2 * y_val - 1
    n = y_train.shape[0]
    out = {"kernel LR": np.zeros((len(lams), len(gammas))),
           "SVC + Platt": np.zeros((len(lams), len(gammas)))}
    for g, gamma in enumerate(gammas):
        K = rbf_kernel(X_train, X_train, gamma=gamma)
        K_val = rbf_kernel(X_val, X_train, gamma=gamma)
        alpha = None
        for i, lam in enumerate(lams):
            alpha = kernel_logistic_regression(K, signs, lam, alpha_init=alpha)
            out["kernel LR"][i, g] = logistic_loss(signs_val * (K_val @ alpha)).mean()
            svc = SVC(kernel="precomputed", C=1.0 / (2.0 * lam * n)).fit(K, y_train)
            scores = svc.decision_function(K_val)
            a, b = platt_scaling(scores, signs_val)
            out["SVC + Platt"][i, g] = logistic_loss(signs_val * (a * scores + b)).mean()
    return out
