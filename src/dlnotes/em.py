r"""The EM algorithm for mixtures. Used in chapter 14, "The EM algorithm".

With observed data :math:`x`, hidden data :math:`z` and parameters :math:`\theta`, EM repeats

* **E step**: :math:`q(z) = p(z \mid x, \theta^{(t)})`, the posterior of the hidden data
  (for a mixture: the *responsibility* of each component for each sample);
* **M step**: :math:`\theta^{(t+1)} = \arg\max_\theta \mathbb E_q[\log p(x, z \mid \theta)]`,
  the complete-data log-likelihood with the hidden data replaced by its expectation;

and the log-likelihood :math:`\log p(x \mid \theta^{(t)})` never decreases (Dempster, Laird
& Rubin 1977). The module holds:

* :func:`two_coin_log_likelihood` and :func:`two_coin_em`: the two-coin example of Do &
  Batzoglou (2008), a mixture of two binomials with equal, fixed mixing weights;
* :func:`gaussian_mixture_posterior`, :func:`gaussian_mixture_elbo` and
  :func:`gaussian_mixture_em`: Gaussian mixtures with full covariances, computed in log space
  (Cholesky factors and log-sum-exp) so that far-away points do not underflow;
* :func:`kmeans` (Lloyd's algorithm, "hard EM") and :func:`fixed_variance_em` (soft EM for
  equal-weight spherical components of a fixed variance), whose small-variance limit is
  k-means (Bishop 2006, §9.3.2);
* :func:`gaussian_mixture_em_jacobian`: the Jacobian of one EM iteration, whose largest
  eigenvalue is EM's linear rate (the fraction of missing information);
* :func:`hmm_log_likelihood` (the forward algorithm) and :func:`baum_welch`: EM for a
  discrete hidden Markov model (Baum et al. 1970).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import logsumexp, xlogy

from dlnotes.validation import (
    as_float_array,
    check_dim_size,
    check_distribution_rows,
    check_in_range,
    check_int_at_least,
    check_integer_array,
    check_min_length,
    check_nonnegative,
    check_positive,
    check_same_shape,
    check_shape,
    check_symmetric,
    check_values_in,
)

__all__ = [
    "two_coin_log_likelihood",
    "two_coin_em",
    "gaussian_mixture_posterior",
    "gaussian_mixture_elbo",
    "gaussian_mixture_em",
    "kmeans",
    "fixed_variance_em",
    "pack_mixture",
    "gaussian_mixture_em_jacobian",
    "hmm_log_likelihood",
    "baum_welch",
]

#: Relative tolerance for "the weights sum to 1" and "the covariance is symmetric".
_SUM_TOL = 1e-8


# ------------------------------------------------------------------------------ two coins


def _check_coin_data(heads: Any, tosses: Any) -> tuple[np.ndarray, np.ndarray]:
    h = as_float_array("heads", heads, 1, min_rows=1)
    n = as_float_array("tosses", tosses, 1)
    check_same_shape("heads", h, "tosses", n)
    check_values_in("tosses", n, 0.0, low_inclusive=False)
    if not ((h >= 0).all() and (h <= n).all()):
        raise ValueError("heads must lie in [0, tosses] in every set")
    return h, n


def _coin_log_likelihoods(h: np.ndarray, n: np.ndarray, theta: Any) -> np.ndarray:
    r""":math:`h_i\log\theta + (n_i-h_i)\log(1-\theta)`, shape ``theta.shape + (sets,)``."""
    theta = np.asarray(theta, dtype=np.float64)[..., None]
    return xlogy(h, theta) + xlogy(n - h, 1.0 - theta)


def two_coin_log_likelihood(heads: Any, tosses: Any, theta_a: Any, theta_b: Any) -> np.ndarray:
    r"""Log-likelihood of the observed toss sequences when the coin of each set is hidden.

    Each set :math:`i` of :math:`n_i` tosses is made with coin A or coin B, chosen with
    probability :math:`\tfrac12` each (as in Do & Batzoglou 2008), so

    .. math::
        \ell(\theta_A, \theta_B) = \sum_i \log\Big(\tfrac12\,\theta_A^{h_i}(1-\theta_A)^{n_i-h_i}
        + \tfrac12\,\theta_B^{h_i}(1-\theta_B)^{n_i-h_i}\Big),

    the probability of the *sequences* (no binomial coefficient; it would add a constant).
    ``theta_a`` and ``theta_b`` broadcast against each other, so a grid of values gives the
    whole likelihood surface at once.

    Parameters
    ----------
    heads, tosses
        Numbers of heads and of tosses in each set, shape ``(sets,)``,
        ``0 <= heads <= tosses``, ``tosses > 0``.
    theta_a, theta_b
        Head probabilities of the two coins in ``[0, 1]``, scalars or broadcastable arrays.

    Returns
    -------
    numpy.ndarray
        :math:`\ell` with the broadcast shape of ``theta_a`` and ``theta_b`` (0-d for scalars).

    Raises
    ------
    ValueError
        If ``heads`` is not in ``[0, tosses]``, or for a wrong shape or value.
    """
    h, n = _check_coin_data(heads, tosses)
    ta, tb = np.broadcast_arrays(np.asarray(theta_a, dtype=np.float64),
                                 np.asarray(theta_b, dtype=np.float64))
    for name, t in (("theta_a", ta), ("theta_b", tb)):
        check_values_in(name, as_float_array(name, t), 0.0, 1.0)
    both = np.stack([_coin_log_likelihoods(h, n, ta), _coin_log_likelihoods(h, n, tb)])
    return np.sum(logsumexp(both, axis=0) + math.log(0.5), axis=-1)


def two_coin_em(
    heads: Any, tosses: Any, theta_a: float, theta_b: float, n_iter: int, *, hard: bool = False
) -> list[tuple[float, float]]:
    r"""EM for the two-coin mixture of Do & Batzoglou (2008): the path of the two biases.

    E step: the posterior probability that set :math:`i` was tossed with coin A,

    .. math::
        w_i = \frac{\theta_A^{h_i}(1-\theta_A)^{n_i-h_i}}
        {\theta_A^{h_i}(1-\theta_A)^{n_i-h_i} + \theta_B^{h_i}(1-\theta_B)^{n_i-h_i}},

    computed from log-likelihoods with log-sum-exp. M step: the fraction of heads among the
    expected tosses of each coin,

    .. math::
        \theta_A \leftarrow \frac{\sum_i w_i h_i}{\sum_i w_i n_i}, \qquad
        \theta_B \leftarrow \frac{\sum_i (1-w_i) h_i}{\sum_i (1-w_i) n_i}.

    The mixing weights stay fixed at :math:`\tfrac12`. If a coin's expected number of tosses
    is exactly 0 (its posterior underflowed for every set), the expected complete-data
    log-likelihood does not depend on its :math:`\theta`, and the old value is kept.

    With ``hard=True`` the E step is replaced by a single guess, each set's more likely coin
    (:math:`w_i \in \{0, 1\}`, :math:`\tfrac12` for a tie): "hard EM", which maximises the
    likelihood of the completed data rather than of the observed data.

    Parameters
    ----------
    heads, tosses
        Numbers of heads and of tosses in each set, shape ``(sets,)``,
        ``0 <= heads <= tosses``, ``tosses > 0``.
    theta_a, theta_b
        Starting head probabilities, in the open interval ``(0, 1)``.
    n_iter
        Number of EM iterations, ≥ 0.
    hard
        Assign each set wholly to its more likely coin instead of weighting it by the
        posterior.

    Returns
    -------
    list of (float, float)
        ``n_iter + 1`` pairs :math:`(\theta_A^{(t)}, \theta_B^{(t)})`, the start first.

    Raises
    ------
    ValueError
        If a starting value lies outside ``(0, 1)``, or for a wrong shape or value.
    """
    h, n = _check_coin_data(heads, tosses)
    check_in_range("theta_a", theta_a, 0.0, 1.0, low_inclusive=False)
    check_in_range("theta_b", theta_b, 0.0, 1.0, low_inclusive=False)
    check_int_at_least("n_iter", n_iter, 0)
    path = [(float(theta_a), float(theta_b))]
    for _ in range(n_iter):
        ta, tb = path[-1]
        log_a, log_b = _coin_log_likelihoods(h, n, ta), _coin_log_likelihoods(h, n, tb)
        if hard:
            w_a = (log_a > log_b) + 0.5 * (log_a == log_b)
        else:
            w_a = np.exp(log_a - logsumexp(np.stack([log_a, log_b]), axis=0))
        w_b = 1.0 - w_a
        new = []
        for w, old in ((w_a, ta), (w_b, tb)):
            expected_tosses = float(w @ n)
            new.append(float(w @ h) / expected_tosses if expected_tosses > 0 else old)
        path.append((new[0], new[1]))
    return path


# ------------------------------------------------------------------------ Gaussian mixtures


def _check_mixture(
    X: Any, means: Any, covariances: Any, weights: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a Gaussian mixture and return float64 arrays plus the Cholesky factors."""
    X, means = _check_centres(X, means)
    k, d = means.shape
    covariances = as_float_array("covariances", covariances, 3)
    check_shape("covariances", covariances, (k, d, d))
    weights = as_float_array("weights", weights, 1)
    check_shape("weights", weights, (k,))
    check_values_in("weights", weights, 0.0, low_inclusive=False)
    check_distribution_rows("weights", weights, atol=_SUM_TOL)
    check_symmetric("covariances", covariances, _SUM_TOL)
    try:
        chol = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise ValueError("covariances must be positive definite") from None
    return X, means, covariances, weights, chol


def _log_gaussians(X: np.ndarray, means: np.ndarray, chol: np.ndarray) -> np.ndarray:
    r""":math:`\log\mathcal N(x_i \mid \mu_k, L_kL_k^\top)`, shape ``(n, k)``."""
    d = X.shape[1]
    diff = X[None, :, :] - means[:, None, :]  # (k, n, d)
    z = np.linalg.solve(chol, np.swapaxes(diff, 1, 2))  # L_k z = x - mu_k: |z|^2 is Mahalanobis
    log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return -0.5 * (d * math.log(2.0 * math.pi) + log_det[None, :] + (z * z).sum(axis=1).T)


def _e_step(
    X: np.ndarray, means: np.ndarray, chol: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    log_joint = _log_gaussians(X, means, chol) + np.log(weights)
    log_lik = logsumexp(log_joint, axis=1)
    return np.exp(log_joint - log_lik[:, None]), log_lik


def gaussian_mixture_posterior(
    X: Any, means: Any, covariances: Any, weights: Any
) -> tuple[np.ndarray, np.ndarray]:
    r"""The E step of a Gaussian mixture: responsibilities and per-sample log-likelihoods.

    .. math::
        r_{ik} = p(z_i = k \mid x_i) = \frac{\pi_k\,\mathcal N(x_i\mid\mu_k,\Sigma_k)}
        {\sum_j \pi_j\,\mathcal N(x_i\mid\mu_j,\Sigma_j)}, \qquad
        \log p(x_i) = \log\sum_k \pi_k\,\mathcal N(x_i\mid\mu_k,\Sigma_k),

    both from the log densities (Cholesky factors) with log-sum-exp, so a sample far from every
    component still gets finite values.

    Parameters
    ----------
    X
        Samples, shape ``(n, d)``.
    means
        Component means, shape ``(k, d)``.
    covariances
        Symmetric positive-definite component covariances, shape ``(k, d, d)``.
    weights
        Mixing weights, shape ``(k,)``, all > 0, summing to 1.

    Returns
    -------
    responsibilities, log_likelihoods
        Arrays of shape ``(n, k)`` (rows sum to 1) and ``(n,)``.

    Raises
    ------
    ValueError
        If a covariance is not symmetric positive definite, or for a wrong shape or value.
    """
    X, means, _, weights, chol = _check_mixture(X, means, covariances, weights)
    return _e_step(X, means, chol, weights)


def gaussian_mixture_elbo(
    X: Any, means: Any, covariances: Any, weights: Any, responsibilities: Any
) -> float:
    r"""The evidence lower bound of a Gaussian mixture for a given :math:`q(z)`, per sample.

    .. math::
        \mathcal L(q, \theta) = \frac1n\sum_i\sum_k q_{ik}\big(\log\pi_k
        + \log\mathcal N(x_i\mid\mu_k,\Sigma_k) - \log q_{ik}\big)
        = \frac1n\sum_i \Big(\log p(x_i) - \mathrm{KL}\big(q_i \,\|\, p(z_i\mid x_i)\big)\Big),

    with :math:`0\log 0 = 0`. It equals the mean log-likelihood when ``responsibilities`` is
    the posterior (:func:`gaussian_mixture_posterior`) and is smaller otherwise.

    Parameters
    ----------
    X, means, covariances, weights
        As in :func:`gaussian_mixture_posterior`.
    responsibilities
        :math:`q`, shape ``(n, k)``, non-negative rows that sum to 1.

    Returns
    -------
    float
        :math:`\mathcal L(q, \theta)`.

    Raises
    ------
    ValueError
        If ``responsibilities`` rows are not distributions, or as the posterior.
    """
    X, means, _, weights, chol = _check_mixture(X, means, covariances, weights)
    q = as_float_array("responsibilities", responsibilities, 2)
    check_shape("responsibilities", q, X.shape[:1] + means.shape[:1])
    check_distribution_rows("responsibilities", q, atol=_SUM_TOL)
    log_joint = _log_gaussians(X, means, chol) + np.log(weights)
    expected_log_joint = np.where(q > 0, q * log_joint, 0.0)
    return float((expected_log_joint - xlogy(q, q)).sum(axis=1).mean())


def _m_step(
    X: np.ndarray, resp: np.ndarray, reg_covar: float, iteration: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = resp.sum(axis=0)
    if not (counts > 0).all():
        k = int(np.argmin(counts))
        raise FloatingPointError(f"component {k} lost all its responsibility at iteration "
                                 f"{iteration}; start elsewhere or use fewer components")
    means = resp.T @ X / counts[:, None]
    diff = X[None, :, :] - means[:, None, :]  # (k, n, d)
    weighted = resp.T[:, :, None] * diff
    covariances = np.swapaxes(weighted, 1, 2) @ diff / counts[:, None, None]
    covariances = 0.5 * (covariances + np.swapaxes(covariances, 1, 2))
    covariances += reg_covar * np.eye(X.shape[1])
    return means, covariances, counts / X.shape[0]


def gaussian_mixture_em(
    X: Any,
    means: Any,
    covariances: Any,
    weights: Any,
    n_iter: int,
    *,
    reg_covar: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""EM for a Gaussian mixture with full covariances, from a given start.

    Each iteration is an E step (:func:`gaussian_mixture_posterior`) followed by the M step,
    the closed-form maximiser of the expected complete-data log-likelihood:

    .. math::
        N_k = \sum_i r_{ik},\quad
        \mu_k = \frac{1}{N_k}\sum_i r_{ik}x_i,\quad
        \Sigma_k = \frac{1}{N_k}\sum_i r_{ik}(x_i-\mu_k)(x_i-\mu_k)^\top,\quad
        \pi_k = \frac{N_k}{n}.

    With ``reg_covar = 0`` this is exact EM, and ``log_likelihoods`` never decreases (up to
    rounding). scikit-learn's ``GaussianMixture(covariance_type="full", reg_covar=r,
    tol=0, max_iter=n_iter)`` started from the same ``means_init``, ``weights_init`` and
    ``precisions_init`` (the inverse covariances) runs the same iterations. The likelihood of
    a Gaussian mixture is unbounded: a component can collapse onto a point, and then the
    iteration stops with ``FloatingPointError``; ``reg_covar > 0`` keeps every covariance
    positive definite.

    Parameters
    ----------
    X, means, covariances, weights
        The data and the starting parameters, as in :func:`gaussian_mixture_posterior`.
    n_iter
        Number of EM iterations, ≥ 0.
    reg_covar
        Non-negative number added to the diagonal of every covariance in the M step
        (scikit-learn's regulariser against collapsing components; 0 for exact EM).

    Returns
    -------
    means, covariances, weights, log_likelihoods
        The parameters after ``n_iter`` iterations, shapes ``(k, d)``, ``(k, d, d)``, ``(k,)``,
        and the mean log-likelihood per sample :math:`\frac1n\sum_i\log p(x_i)` at the start
        and after each iteration, shape ``(n_iter + 1,)``.

    Raises
    ------
    ValueError
        As :func:`gaussian_mixture_posterior`, or for a bad ``n_iter`` or ``reg_covar``.
    FloatingPointError
        If a component collapses (no responsibility, or a singular covariance).
    """
    X, means, covariances, weights, chol = _check_mixture(X, means, covariances, weights)
    check_int_at_least("n_iter", n_iter, 0)
    check_nonnegative("reg_covar", reg_covar)
    resp, log_lik = _e_step(X, means, chol, weights)
    history = [float(log_lik.mean())]
    for t in range(1, n_iter + 1):
        means, covariances, weights = _m_step(X, resp, float(reg_covar), t)
        try:
            chol = np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError:
            raise FloatingPointError(f"a covariance stopped being positive definite at "
                                     f"iteration {t}; use reg_covar > 0") from None
        resp, log_lik = _e_step(X, means, chol, weights)
        history.append(float(log_lik.mean()))
    return means, covariances, weights, np.asarray(history)


# ------------------------------------------------------------------- hard EM and k-means


def _check_centres(X: Any, means: Any) -> tuple[np.ndarray, np.ndarray]:
    X = as_float_array("X", X, 2, min_rows=1, min_columns=1)
    means = as_float_array("means", means, 2)
    check_min_length("means", means, 1, "rows (one per component)")
    check_dim_size("means", means, 1, X.shape[1], "columns (as many as X)")
    return X, means


def _squared_distances(X: np.ndarray, means: np.ndarray) -> np.ndarray:
    return ((X[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)


def _spherical_responsibilities(X: np.ndarray, means: np.ndarray, variance: float) -> np.ndarray:
    logits = -_squared_distances(X, means) / (2.0 * variance)
    return np.exp(logits - logsumexp(logits, axis=1)[:, None])


def kmeans(X: Any, means: Any, n_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Lloyd's k-means algorithm from given centres: EM with hard assignments.

    Each iteration assigns every sample to its nearest centre (ties to the lowest index) and
    moves each centre to the mean of its samples; a centre with no samples stays where it is.
    The objective :math:`J = \sum_i \min_k \lVert x_i - \mu_k\rVert^2` never increases.
    scikit-learn's ``KMeans(init=means, n_init=1, tol=0, algorithm="lloyd")`` runs the same
    iterations as long as no cluster empties.

    Parameters
    ----------
    X
        Samples, shape ``(n, d)``.
    means
        Starting centres, shape ``(k, d)``.
    n_iter
        Number of iterations, ≥ 0.

    Returns
    -------
    means, labels, objective
        The final centres ``(k, d)``, each sample's nearest final centre ``(n,)``, and
        :math:`J` at the start and after each iteration, shape ``(n_iter + 1,)``.

    Raises
    ------
    ValueError
        On wrong shapes, non-finite values or ``n_iter`` not an integer ≥ 0.
    """
    X, means = _check_centres(X, means)
    check_int_at_least("n_iter", n_iter, 0)
    means = means.copy()
    dist = _squared_distances(X, means)
    objective = [float(dist.min(axis=1).sum())]
    for _ in range(n_iter):
        labels = dist.argmin(axis=1)
        for k in range(means.shape[0]):
            if (labels == k).any():
                means[k] = X[labels == k].mean(axis=0)
        dist = _squared_distances(X, means)
        objective.append(float(dist.min(axis=1).sum()))
    return means, dist.argmin(axis=1), np.asarray(objective)


def fixed_variance_em(
    X: Any, means: Any, variance: float, n_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Soft EM for equal-weight spherical Gaussians of a fixed variance: only the means move.

    E step :math:`r_{ik} \propto \exp\!\big(-\lVert x_i-\mu_k\rVert^2 / (2\sigma^2)\big)`
    (log-sum-exp, so tiny :math:`\sigma^2` is safe); M step
    :math:`\mu_k = \sum_i r_{ik}x_i / \sum_i r_{ik}` (a centre with zero total responsibility
    stays where it is). As :math:`\sigma^2 \to 0` the responsibilities become the nearest-centre
    indicators and each iteration becomes a k-means iteration (:func:`kmeans`).

    Parameters
    ----------
    X
        Samples, shape ``(n, d)``.
    means
        Starting means, shape ``(k, d)``.
    variance
        The shared variance :math:`\sigma^2 > 0` of every coordinate.
    n_iter
        Number of iterations, ≥ 0.

    Returns
    -------
    means, responsibilities
        The final means ``(k, d)`` and the responsibilities under them ``(n, k)``.

    Raises
    ------
    ValueError
        On wrong shapes, non-finite values, ``variance`` ≤ 0 or ``n_iter`` not an integer ≥ 0.
    """
    X, means = _check_centres(X, means)
    check_positive("variance", variance)
    check_int_at_least("n_iter", n_iter, 0)
    means = means.copy()
    resp = _spherical_responsibilities(X, means, float(variance))
    for _ in range(n_iter):
        counts = resp.sum(axis=0)
        moved = counts > 0
        means[moved] = (resp.T @ X)[moved] / counts[moved, None]
        resp = _spherical_responsibilities(X, means, float(variance))
    return means, resp


# ------------------------------------------------------------- the rate of EM, numerically


def pack_mixture(means: Any, covariances: Any, weights: Any) -> np.ndarray:
    r"""The free parameters of a Gaussian mixture as one vector.

    The means, the upper triangle (diagonal included) of each covariance, and the first
    :math:`k-1` weights (the last is :math:`1 - \sum` of the others): :math:`kd + kd(d+1)/2
    + k - 1` numbers, a parametrisation without constraints other than positive definiteness,
    in which the EM map is a smooth map of a vector (:func:`gaussian_mixture_em_jacobian`).
    """
    means, covariances = np.asarray(means, dtype=np.float64), np.asarray(covariances, np.float64)
    upper = np.triu_indices(means.shape[1])
    return np.concatenate([means.ravel(), covariances[:, upper[0], upper[1]].ravel(),
                           np.asarray(weights, dtype=np.float64)[:-1]])


def _unpack_mixture(vector: np.ndarray, k: int, d: int):
    upper = np.triu_indices(d)
    n_cov = len(upper[0])
    means = vector[:k * d].reshape(k, d)
    covariances = np.zeros((k, d, d))
    covariances[:, upper[0], upper[1]] = vector[k * d:k * d + k * n_cov].reshape(k, n_cov)
    covariances = covariances + np.triu(covariances, 1).transpose(0, 2, 1)
    weights = np.append(vector[k * d + k * n_cov:], 1.0 - vector[k * d + k * n_cov:].sum())
    return means, covariances, weights


def gaussian_mixture_em_jacobian(
    X: Any, means: Any, covariances: Any, weights: Any, *, step: float = 1e-6
) -> np.ndarray:
    r"""The Jacobian of one EM iteration :math:`\theta \mapsto M(\theta)` of a Gaussian mixture.

    By central differences in the packed parameters of :func:`pack_mixture`. At a fixed point
    :math:`\theta^*` of EM, Dempster, Laird & Rubin (1977) show that

    .. math::
        DM(\theta^*) = I_c^{-1} I_{\mathrm{mis}} = I - I_c^{-1} I_{\mathrm{obs}},

    the *fraction of missing information* (:math:`I_c` the expected complete-data
    information, :math:`I_{\mathrm{obs}}` the observed one): its eigenvalues lie in
    :math:`[0, 1)` at a strict local maximum, and the largest one is the rate at which EM
    approaches :math:`\theta^*`, :math:`\lVert\theta_{t+1}-\theta^*\rVert \approx
    \lambda_{\max}\lVert\theta_t-\theta^*\rVert`.

    Parameters
    ----------
    X, means, covariances, weights
        As in :func:`gaussian_mixture_posterior`; the point at which to differentiate.
    step
        The finite-difference step (> 0), relative to each parameter's scale (at least 1).

    Returns
    -------
    numpy.ndarray
        Shape ``(p, p)`` with ``p = len(pack_mixture(means, covariances, weights))``: entry
        ``(i, j)`` is :math:`\partial M_i / \partial\theta_j`.

    Raises
    ------
    ValueError
        As :func:`gaussian_mixture_posterior`, or for a non-positive ``step``.
    """
    X, means, covariances, weights, _ = _check_mixture(X, means, covariances, weights)
    check_positive("step", step)
    k, d = means.shape
    theta = pack_mixture(means, covariances, weights)

    def em_map(vector: np.ndarray) -> np.ndarray:
        return pack_mixture(*gaussian_mixture_em(X, *_unpack_mixture(vector, k, d), 1)[:3])

    columns = []
    for j in range(theta.size):
        h = step * max(1.0, abs(theta[j]))
        shift = np.zeros_like(theta)
        shift[j] = h
        columns.append((em_map(theta + shift) - em_map(theta - shift)) / (2 * h))
    return np.stack(columns, axis=1)


# ------------------------------------------------------------------- hidden Markov models


def _check_hmm(
    start: Any, transition: Any, emission: Any, observations: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    start = as_float_array("start", start, 1, min_rows=1)
    k = start.shape[0]
    transition = as_float_array("transition", transition, 2)
    check_shape("transition", transition, (k, k))
    emission = as_float_array("emission", emission, 2)
    check_shape("emission", emission, (k, None), "(one row per state)")
    for name, p in (("start", start), ("transition", transition), ("emission", emission)):
        check_distribution_rows(name, p, atol=_SUM_TOL)
    obs = np.asarray(observations)
    check_integer_array("observations", obs, 1, low=0, high=emission.shape[1])
    check_min_length("observations", obs, 1, "symbols")
    return start, transition, emission, obs


def _forward_backward(start, transition, emission, obs):
    """Scaled forward and backward variables (Rabiner 1989): ``alpha[t]`` is
    :math:`p(z_t \\mid x_{1..t})`, ``scale[t]`` is :math:`p(x_t \\mid x_{1..t-1})`, and
    ``alpha * beta`` is the posterior :math:`p(z_t \\mid x_{1..T})`."""
    T, k = obs.shape[0], start.shape[0]
    likelihood = emission[:, obs].T  # (T, k): p(x_t | z_t = j)
    alpha, beta, scale = np.empty((T, k)), np.ones((T, k)), np.empty(T)
    a = start * likelihood[0]
    for t in range(T):
        if t:
            a = (alpha[t - 1] @ transition) * likelihood[t]
        scale[t] = a.sum()
        if scale[t] == 0:
            return alpha, beta, scale, likelihood
        alpha[t] = a / scale[t]
    for t in range(T - 2, -1, -1):
        beta[t] = transition @ (likelihood[t + 1] * beta[t + 1]) / scale[t + 1]
    return alpha, beta, scale, likelihood


def hmm_log_likelihood(start: Any, transition: Any, emission: Any, observations: Any) -> float:
    r"""The log-likelihood of a sequence under a discrete hidden Markov model (forward algorithm).

    .. math::
        \log p(x_{1..T}) = \log\sum_{z_1,\dots,z_T}\pi_{z_1}B_{z_1x_1}\prod_{t=2}^T
        A_{z_{t-1}z_t}B_{z_tx_t} = \sum_{t=1}^T \log p(x_t \mid x_{1..t-1}),

    computed by the forward recursion :math:`\alpha_t = (\alpha_{t-1}A)\odot B_{\cdot x_t}`
    in :math:`O(Tk^2)` operations instead of the :math:`k^T` paths, with each
    :math:`\alpha_t` normalised (its sum is :math:`p(x_t\mid x_{1..t-1})`), so long sequences
    do not underflow.

    Parameters
    ----------
    start
        Initial state distribution :math:`\pi`, shape ``(k,)``.
    transition
        :math:`A_{ij} = p(z_{t+1} = j \mid z_t = i)`, shape ``(k, k)``, rows summing to 1.
    emission
        :math:`B_{jm} = p(x_t = m \mid z_t = j)`, shape ``(k, m)``, rows summing to 1.
    observations
        Integer symbols in ``[0, m)``, shape ``(T,)``, T ≥ 1.

    Returns
    -------
    float
        :math:`\log p(x_{1..T})`; ``-inf`` if the sequence is impossible.

    Raises
    ------
    ValueError
        For shapes that do not fit together, rows that are not distributions, or symbols out
        of range.
    """
    start, transition, emission, obs = _check_hmm(start, transition, emission, observations)
    scale = _forward_backward(start, transition, emission, obs)[2]
    with np.errstate(divide="ignore"):
        return float(np.log(scale).sum()) if (scale > 0).all() else -math.inf


def baum_welch(
    observations: Any, start: Any, transition: Any, emission: Any, n_iter: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""EM for a discrete hidden Markov model (the Baum–Welch algorithm), from a given start.

    E step (forward–backward): the posteriors of the hidden states,
    :math:`\gamma_t(i) = p(z_t = i \mid x)`, and of consecutive pairs,
    :math:`\xi_t(i, j) = p(z_t = i, z_{t+1} = j \mid x)`. M step: the expected counts,
    normalised,

    .. math::
        \pi_i = \gamma_1(i), \qquad
        A_{ij} = \frac{\sum_{t<T}\xi_t(i, j)}{\sum_{t<T}\gamma_t(i)}, \qquad
        B_{im} = \frac{\sum_{t:\,x_t = m}\gamma_t(i)}{\sum_t\gamma_t(i)} .

    As for every EM, the log-likelihood never decreases (up to rounding). hmmlearn's
    ``CategoricalHMM(init_params="", tol=-inf, n_iter=n_iter)`` with the same
    ``startprob_``, ``transmat_`` and ``emissionprob_`` runs the same iterations. A state
    that receives no expected visits keeps its old rows.

    Parameters
    ----------
    observations
        Integer symbols, shape ``(T,)``, T ≥ 2.
    start, transition, emission
        The starting parameters, as in :func:`hmm_log_likelihood`.
    n_iter
        Number of iterations, ≥ 0.

    Returns
    -------
    start, transition, emission, log_likelihoods
        The parameters after ``n_iter`` iterations, and :math:`\log p(x)` at the start and
        after each iteration, shape ``(n_iter + 1,)``.

    Raises
    ------
    ValueError
        As :func:`hmm_log_likelihood`, for fewer than two observations, or if the sequence
        is impossible under the starting parameters.
    """
    start, transition, emission, obs = _check_hmm(start, transition, emission, observations)
    check_min_length("observations", obs, 2, "symbols")
    check_int_at_least("n_iter", n_iter, 0)
    history = []
    symbols = np.arange(emission.shape[1])[:, None] == obs[None, :]  # (m, T)
    for t in range(n_iter + 1):
        alpha, beta, scale, likelihood = _forward_backward(start, transition, emission, obs)
        if not (scale > 0).all():
            raise ValueError("observations are impossible under the starting parameters")
        history.append(float(np.log(scale).sum()))
        if t == n_iter:
            break
        gamma = alpha * beta  # (T, k), rows sum to 1
        xi = transition * (alpha[:-1].T @ (likelihood[1:] * beta[1:] / scale[1:, None]))
        visits, leaving = gamma.sum(axis=0), xi.sum(axis=1)
        start = gamma[0]
        transition = np.where(leaving[:, None] > 0, xi / np.where(leaving > 0, leaving, 1.0)
                              [:, None], transition)
        emission = np.where(visits[:, None] > 0, (symbols @ gamma).T / np.where(
            visits > 0, visits, 1.0)[:, None], emission)
    return start, transition, emission, np.asarray(history)
