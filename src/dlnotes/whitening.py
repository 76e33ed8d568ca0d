r"""Anisotropy of embedding vectors and the whitening transform that removes it.

Used in chapter 11 ("Anisotropy and whitening"). Rows of every matrix are samples (sentence or
token vectors), columns are dimensions, as in Su et al. (2021): the whitened vectors
are :math:`\tilde x = (x - \mu) W` with :math:`W = U \Lambda^{-1/2}` from the eigendecomposition
:math:`\Sigma = U \Lambda U^\top` of the sample covariance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlnotes.evidence import Interval, percentile_interval
from dlnotes.validation import (
    as_float_array,
    check_dim_size,
    check_finite,
    check_int_at_least,
    check_int_in_range,
    check_integer_array,
    check_ndim,
    check_nonnegative,
    check_nonzero_rows,
    check_positive,
    check_same_length,
    check_same_shape,
    check_shape,
    check_values_in,
)

__all__ = [
    "fit_whitening",
    "apply_whitening",
    "anisotropy",
    "anisotropy_interval",
    "paired_cosine",
    "shared_mean_cosine",
    "knn_distance",
    "alignment",
    "uniformity",
    "weighted_spearman",
    "item_bootstrap_weights",
    "bootstrap_spearman",
]


def _unit_rows(name: str, X: np.ndarray) -> np.ndarray:
    r"""Rows of ``X`` divided by their Euclidean norms; a zero row is an error."""
    check_nonzero_rows(name, X)
    return X / np.linalg.norm(X, axis=1)[:, None]


def fit_whitening(
    X: Any, k: int | None = None, *, rtol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray]:
    r"""Fit the whitening transform of Su et al. (2021) to the rows of ``X``.

    With the sample mean :math:`\mu`, the covariance
    :math:`\Sigma = \frac{1}{n-1}\sum_i (x_i-\mu)^\top (x_i-\mu) = U\Lambda U^\top`
    (eigenvalues in decreasing order) and :math:`W = U_{:, :k}\Lambda_{:k}^{-1/2}`, the
    transformed rows :math:`(x_i - \mu)W` have zero mean and identity covariance
    :math:`I_k`. Keeping :math:`k < d` columns drops the directions of smallest variance.

    Parameters
    ----------
    X
        Array or tensor of shape ``(n, d)`` with finite values.
    k
        Number of output dimensions, an integer in ``[1, d]`` and below ``n`` (the covariance
        of ``n`` samples has rank at most ``n - 1``); ``None`` keeps all ``d``.
    rtol
        A kept eigenvalue must exceed ``rtol`` times the largest one; smaller ones are
        numerically zero and cannot be divided by.

    Returns
    -------
    mu, W
        ``mu`` of shape ``(d,)`` and ``W`` of shape ``(d, k)``, float64. The sign of each
        column of ``W`` is fixed so that its largest-magnitude entry is positive (the
        eigendecomposition is unique only up to sign).

    Raises
    ------
    ValueError
        If ``k >= n`` or a kept eigenvalue is numerically zero, or for a bad argument.
    """
    X = as_float_array("X", X, 2)
    n, d = X.shape
    k = d if k is None else k
    check_int_in_range("k", k, 1, d)
    if k >= n:
        raise ValueError(f"k must be smaller than the number of samples (the covariance of n "
                         f"samples has rank at most n - 1), got k={k}, n={n}")
    check_positive("rtol", rtol)
    mu = X.mean(axis=0)
    cov = np.atleast_2d(np.cov(X - mu, rowvar=False))  # a 1 × 1 matrix when d = 1
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = eigvals[order][:k], eigvecs[:, order][:, :k]
    tiny = eigvals <= rtol * max(eigvals[0], 0.0)
    if eigvals[0] <= 0 or tiny.any():
        first = int(np.argmax(tiny)) if eigvals[0] > 0 else 0
        raise ValueError(
            f"k={k} keeps eigenvalue number {first + 1} of the covariance, {eigvals[first]:.3g}, "
            f"which is numerically zero (<= rtol * largest = {rtol * max(eigvals[0], 0.0):.3g}); "
            "choose a smaller k or use more, less collinear samples"
        )
    pivot = np.abs(eigvecs).argmax(axis=0)
    signs = np.sign(eigvecs[pivot, np.arange(k)])
    W = eigvecs * signs / np.sqrt(eigvals)
    return mu, W


def apply_whitening(X: Any, mu: Any, W: Any) -> np.ndarray:
    r"""Whiten the rows of ``X``: :math:`(x - \mu) W`.

    Parameters
    ----------
    X
        Array or tensor of shape ``(n, d)``.
    mu
        Mean of shape ``(d,)`` from :func:`fit_whitening`.
    W
        Matrix of shape ``(d, k)`` from :func:`fit_whitening`.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, k)``, float64.

    Raises
    ------
    ValueError
        If an argument has the wrong rank, holds non-finite values, or the shapes do not match.
    """
    X = as_float_array("X", X, 2)
    mu = as_float_array("mu", mu, 1)
    W = as_float_array("W", W, 2)
    check_shape("mu", mu, X.shape[1:], "(the columns of X)")
    check_dim_size("W", W, 0, X.shape[1], "rows (one per column of X)")
    return (X - mu) @ W


def anisotropy(X: Any) -> float:
    r"""Mean cosine similarity over all distinct pairs of rows of ``X``.

    Computed exactly in :math:`O(nd)` from the unit rows :math:`u_i`:
    :math:`\frac{1}{n(n-1)}\sum_{i \ne j} u_i^\top u_j
    = \frac{\lVert \sum_i u_i\rVert^2 - n}{n(n-1)}`. Zero on average for directions drawn
    uniformly on the sphere, 1 when all rows point the same way.

    Parameters
    ----------
    X
        Array or tensor of shape ``(n, d)``, ``n >= 2``, finite, with no all-zero row.

    Returns
    -------
    float
        A number in ``[-1/(n-1), 1]``.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, has fewer than two rows, non-finite values or an all-zero row.
    """
    X = as_float_array("X", X, 2, min_rows=2)
    n = X.shape[0]
    U = _unit_rows("X", X)
    total = U.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def anisotropy_interval(X: Any, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                        unit: str = "rows") -> Interval:
    r""":func:`anisotropy` of the rows of ``X`` with a percentile bootstrap interval over rows.

    Each resample draws ``n`` rows with replacement; its anisotropy is
    :math:`(\lVert \sum_i c_i u_i\rVert^2 - n) / (n(n-1))` with :math:`c_i` the number of copies
    of row :math:`i`, all resamples in one matrix product. The draws are those of
    :func:`dlnotes.evidence.bootstrap_interval` with the same ``seed``, so the two give the same
    interval.

    Parameters
    ----------
    X
        ``(n, d)`` rows (sentences, tokens), as :func:`anisotropy`.
    n_boot, seed
        Number of resamples (>= 100) and their seed.
    level
        Confidence level in (0, 1).
    unit
        What a row is, for the evidence line.

    Returns
    -------
    dlnotes.evidence.Interval

    Raises
    ------
    ValueError
        As :func:`anisotropy`, or for out-of-range settings.
    """
    X = as_float_array("X", X, 2, min_rows=2)
    check_int_at_least("n_boot", n_boot, 100)
    n = X.shape[0]
    U = _unit_rows("X", X)
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    copies = np.zeros((n_boot, n))
    np.add.at(copies, (np.arange(n_boot)[:, None], draws), 1.0)
    totals = copies @ U
    replicates = ((totals**2).sum(axis=1) - n) / (n * (n - 1))
    return percentile_interval(anisotropy(X), replicates, n=n, unit=unit, level=level)


def paired_cosine(A: Any, B: Any) -> np.ndarray:
    r"""Cosine similarity of each row of ``A`` with the same row of ``B``.

    Parameters
    ----------
    A, B
        Arrays or tensors of the same shape ``(n, d)``, finite, without all-zero rows.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, values in ``[-1, 1]``.

    Raises
    ------
    ValueError
        If the shapes differ, an input is not 2-D, not finite, or has an all-zero row.
    """
    A = as_float_array("A", A, 2)
    B = as_float_array("B", B, 2)
    check_same_shape("A", A, "B", B)
    cos = (_unit_rows("A", A) * _unit_rows("B", B)).sum(axis=1)
    return np.clip(cos, -1.0, 1.0)


def shared_mean_cosine(mean_norm_sq: float, noise_var: float, dim: int) -> float:
    r"""Expected cosine of two vectors sharing a mean, in the limit of large dimension.

    For :math:`x_{1,2} = m + z_{1,2}` with independent :math:`z \sim N(0, \sigma^2 I_d)`,

    .. math::

        \frac{E[x_1^\top x_2]}{E\lVert x\rVert^2}
        = \frac{\lVert m\rVert^2}{\lVert m\rVert^2 + d\sigma^2},

    and the cosine concentrates at this value as :math:`d` grows. Zero for :math:`m = 0`.

    Parameters
    ----------
    mean_norm_sq
        :math:`\lVert m\rVert^2 \ge 0`.
    noise_var
        :math:`\sigma^2 > 0`.
    dim
        :math:`d \ge 1`.

    Returns
    -------
    float
        A number in ``[0, 1)``.

    Raises
    ------
    ValueError
        If ``mean_norm_sq`` is negative, ``noise_var`` not positive or ``dim`` < 1.
    """
    check_nonnegative("mean_norm_sq", mean_norm_sq)
    check_positive("noise_var", noise_var)
    check_int_at_least("dim", dim, 1)
    return float(mean_norm_sq / (mean_norm_sq + dim * noise_var))


def knn_distance(X: Any, k: int = 5, *, queries: Any = None, chunk: int = 1024) -> np.ndarray:
    r"""Mean Euclidean distance of rows of ``X`` to their ``k`` nearest other rows of ``X``.

    A measure of how sparsely the space around a point is populated (used with word frequency
    by Li et al. (2020), Table 1). Exact (brute force), computed in chunks of query rows.

    Parameters
    ----------
    X
        Array or tensor of shape ``(n, d)``, finite, ``n > k``.
    k
        Number of neighbours, an integer in ``[1, n - 1]``.
    queries
        Integer indices of the rows whose distances are wanted (neighbours are still searched
        among all ``n`` rows); all rows if ``None``.
    chunk
        Query rows processed at once (memory ``chunk * n`` floats), an integer >= 1.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(queries),)`` or ``(n,)``, float64.

    Raises
    ------
    ValueError
        If an argument is outside the range given above.
    """
    X = as_float_array("X", X, 2)
    n = X.shape[0]
    check_int_in_range("k", k, 1, n - 1)
    check_int_at_least("chunk", chunk, 1)
    queries = np.arange(n) if queries is None else np.asarray(queries)
    check_integer_array("queries", queries, 1, low=0, high=n)
    sq = (X**2).sum(axis=1)
    out = np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        rows = queries[start:start + chunk]
        d2 = sq[rows, None] + sq[None, :] - 2.0 * X[rows] @ X.T
        d2[np.arange(len(rows)), rows] = np.inf  # a row is not its own neighbour
        nearest = np.partition(d2, k - 1, axis=1)[:, :k]
        out[start:start + len(rows)] = np.sqrt(np.maximum(nearest, 0.0)).mean(axis=1)
    return out


def alignment(x: Any, y: Any, alpha: float = 2.0) -> float:
    r"""Alignment loss of Wang & Isola (2020): how far apart positive pairs are on the sphere.

    .. math::

        \ell_{\text{align}} = \frac1n \sum_{i=1}^n \lVert \hat x_i - \hat y_i\rVert^\alpha,
        \qquad \hat x = x / \lVert x\rVert,

    where row :math:`i` of ``x`` and row :math:`i` of ``y`` form a positive pair. Smaller is
    better aligned: 0 when every pair points the same way, :math:`2^\alpha` when every pair
    points in opposite directions.

    Parameters
    ----------
    x, y
        Arrays or tensors of the same shape ``(n, d)``, ``n >= 1``, finite, without all-zero
        rows.
    alpha
        Exponent :math:`\alpha > 0` (2 in the paper's experiments).

    Returns
    -------
    float
        A number in ``[0, 2**alpha]``.

    Raises
    ------
    ValueError
        If a row is all zeros, or for a wrong shape or value.
    """
    x = as_float_array("x", x, 2, min_rows=1)
    y = as_float_array("y", y, 2)
    check_same_shape("x", x, "y", y)
    check_positive("alpha", alpha)
    # |u - v|^2 = 2 - 2 u.v for unit vectors; clip rounding below zero.
    sq = np.maximum(2.0 - 2.0 * (_unit_rows("x", x) * _unit_rows("y", y)).sum(axis=1), 0.0)
    return float(np.mean(sq ** (alpha / 2.0)))


def uniformity(x: Any, t: float = 2.0, *, chunk: int = 1024) -> float:
    r"""Uniformity loss of Wang & Isola (2020): log of the mean Gaussian potential of all pairs.

    .. math::

        \ell_{\text{uniform}} = \log \frac{2}{n(n-1)} \sum_{i<j}
        e^{-t \lVert \hat x_i - \hat x_j\rVert^2}, \qquad \hat x = x / \lVert x\rVert .

    Smaller (more negative) is more uniform on the sphere; 0 when all rows point the same way.
    Since :math:`\lVert \hat x_i - \hat x_j\rVert^2 = 2 - 2\cos_{ij}`, it is computed as
    :math:`-2t + \log \operatorname{mean}_{i<j} e^{2t\cos_{ij}}` with a log-sum-exp, in
    chunks of rows, so that large ``t`` neither overflows nor underflows.

    Parameters
    ----------
    x
        Array or tensor of shape ``(n, d)``, ``n >= 2``, finite, without all-zero rows.
    t
        Scale :math:`t > 0` of the Gaussian potential (2 in the paper's experiments).
    chunk
        Rows processed at once (memory ``chunk * n`` floats), an integer >= 1.

    Returns
    -------
    float
        A number in ``[-4t, 0]``.

    Raises
    ------
    ValueError
        If a row is all zeros, or for a wrong shape or value.
    """
    x = as_float_array("x", x, 2, min_rows=2)
    n = x.shape[0]
    check_positive("t", t)
    check_int_at_least("chunk", chunk, 1)
    U = _unit_rows("x", x)
    logs = []
    for start in range(0, n - 1, chunk):
        rows = np.arange(start, min(start + chunk, n - 1))
        cos = U[rows] @ U.T
        exponent = np.where(np.arange(n)[None, :] > rows[:, None], 2.0 * t * cos, -np.inf)
        top = exponent.max()
        logs.append(top + np.log(np.exp(exponent - top).sum()))
    logs = np.array(logs)
    log_total = logs.max() + np.log(np.exp(logs - logs.max()).sum())
    return float(min(-2.0 * t + log_total - np.log(n * (n - 1) / 2), 0.0))


def _running_sum(w: np.ndarray) -> np.ndarray:
    """Cumulative sum of the rows of ``w`` (shape ``(n, b)``), one vectorised add per row.

    As fast as it gets for many columns: ``np.cumsum(w, axis=0)`` is several times slower.
    """
    out = np.empty_like(w)
    out[0] = w[0]
    for k in range(1, w.shape[0]):
        np.add(out[k - 1], w[k], out=out[k])
    return out


def _mid_ranks(sorted_values: np.ndarray, sorted_weights: np.ndarray) -> np.ndarray:
    r"""Mid-ranks of sorted values in the sample that repeats value ``k`` ``weights[k]`` times.

    ``sorted_weights`` has shape ``(n, b)``, one column per resample, rows in the order of
    ``sorted_values``; so has the result. Tied values share the mean of the ranks they occupy,
    as :func:`scipy.stats.rankdata` gives on the repeated sample.
    """
    new = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    w = sorted_weights
    if not new.all():
        w = np.add.reduceat(w, np.flatnonzero(new), axis=0)  # one row per group of ties
    mid = _running_sum(w)
    mid -= 0.5 * w
    mid += 0.5
    return mid if new.all() else mid[np.cumsum(new) - 1]


def _spearman_block(xs: np.ndarray, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """Weighted Spearman correlations of each row of ``xs`` with ``y``, for the resamples in the
    columns of ``wt`` (shape ``(n, b)``); the result has shape ``(len(xs), b)``."""
    oy = np.argsort(y, kind="stable")
    ry_all = np.empty_like(wt)
    ry_all[oy] = _mid_ranks(y[oy], wt[oy])  # ranks of y, computed once for every row of xs
    total = wt.sum(axis=0)
    # Weighted moments about the mean rank, which is (T + 1) / 2 for T repeated values:
    # sum w (r - m)(s - m) = sum w r s - T m^2, and likewise for the variances.
    offset = total * ((total + 1.0) / 2.0) ** 2
    var_y = np.einsum("ij,ij->j", wt * ry_all, ry_all) - offset
    out = np.empty((len(xs), wt.shape[1]))
    for row, x in enumerate(xs):
        ox = np.argsort(x, kind="stable")
        wx = wt[ox]
        rx = _mid_ranks(x[ox], wx)  # rows in the sorted order of x
        wrx = wx * rx
        cov = np.einsum("ij,ij->j", wrx, ry_all[ox]) - offset
        var_x = np.einsum("ij,ij->j", wrx, rx) - offset
        with np.errstate(invalid="ignore", divide="ignore"):
            out[row] = np.where(np.minimum(var_x, var_y) > 1e-9 * total**3,
                                cov / np.sqrt(var_x * var_y), np.nan)
    return out


def weighted_spearman(x: Any, y: Any, weights: Any) -> np.ndarray:
    r"""Spearman correlation of ``x`` and ``y`` in the sample that repeats pair ``k`` ``w_k`` times.

    With integer weights this equals :func:`scipy.stats.spearmanr` on ``np.repeat(x, w)`` and
    ``np.repeat(y, w)`` (ties get mid-ranks): the Pearson correlation of the mid-ranks,
    weighted by :math:`w`. One row of ``weights`` per resample, so that a whole bootstrap is
    one vectorised call; several score vectors ``x`` (one per row) against the same ``y`` and
    resamples share the ranking of ``y``.

    Parameters
    ----------
    x
        Scores: a 1-D array of length ``n >= 2``, or ``(m, n)`` for ``m`` score vectors; finite.
    y
        1-D array of length ``n``, finite.
    weights
        Non-negative finite weights (integers or floats) of shape ``(n,)`` or ``(b, n)``.

    Returns
    -------
    numpy.ndarray
        Shape ``x.shape[:-1] + weights.shape[:-1]``: ``()`` for 1-D ``x`` and ``weights``,
        ``(b,)`` for 1-D ``x`` and ``b`` resamples, ``(m, b)`` for both 2-D. NaN for a
        resample in which ``x`` or ``y`` is constant (the correlation is undefined).

    Raises
    ------
    ValueError
        If the inputs have the wrong rank or length, or non-finite or negative values.
    """
    xs = np.atleast_2d(as_float_array("x", x, (1, 2)))
    y = as_float_array("y", y, 1, min_rows=2)
    check_same_length("x", xs[0], "y", y)
    check_ndim("weights", weights, (1, 2))
    w = np.asarray(weights)
    if not (np.issubdtype(w.dtype, np.integer) or np.issubdtype(w.dtype, np.floating)):
        raise ValueError(f"weights must be integers or floats, got dtype {w.dtype}")
    check_finite("weights", w)
    check_dim_size("weights", w, -1, y.shape[0], "columns (one per pair)")
    check_values_in("weights", w, 0.0)
    W = np.atleast_2d(w)
    # Blocks of 256 resamples keep the (n, block) work arrays in cache: faster than all at once.
    rho = np.concatenate([
        _spearman_block(xs, y, np.ascontiguousarray(W[start:start + 256].T, dtype=np.float64))
        for start in range(0, W.shape[0], 256)
    ], axis=1)
    return rho.reshape(np.shape(x)[:-1] + w.shape[:-1])


def item_bootstrap_weights(i: Any, j: Any, n_boot: int, *, seed: int = 0) -> np.ndarray:
    r"""Bootstrap weights for pairs of items that resample the *items*, not the pairs.

    When every pair ``(i[k], j[k])`` is built from two items (documents, words), pairs that
    share an item are not independent, and resampling pairs understates the uncertainty. Here
    each resample draws the distinct items with replacement, and a pair ``(a, b)`` of items
    drawn :math:`c_a` and :math:`c_b` times enters :math:`c_a c_b` times (once for every copy of
    each end; a pair of an item with itself, such as WordSim-353's "tiger"–"tiger", enters
    :math:`c_a` times). Pairs not in the data are never formed. Passed to
    :func:`weighted_spearman`, the weights give the bootstrap distribution of a rank
    correlation over pairs.

    Parameters
    ----------
    i, j
        Integer item labels of the two ends of each pair, 1-D of the same length.
    n_boot
        Number of resamples, an integer >= 1.
    seed
        Seed of the resampling, an integer >= 0.

    Returns
    -------
    numpy.ndarray
        Integer array of shape ``(n_boot, len(i))``.

    Raises
    ------
    ValueError
        If an argument is outside the range given above.
    """
    i, j = np.asarray(i), np.asarray(j)
    check_integer_array("i", i, 1)
    check_integer_array("j", j, 1)
    check_same_shape("i", i, "j", j)
    check_int_at_least("n_boot", n_boot, 1)
    check_int_at_least("seed", seed, 0)
    items, codes = np.unique(np.concatenate([i, j]), return_inverse=True)
    n_items = len(items)
    counts = np.random.default_rng(seed).multinomial(n_items, np.full(n_items, 1.0 / n_items),
                                                     size=n_boot)
    ends_i, ends_j = counts[:, codes[: len(i)]], counts[:, codes[len(i):]]
    return np.where(i == j, ends_i, ends_i * ends_j)


def bootstrap_spearman(
    scores: Any,
    ratings: Any,
    *,
    items: tuple[Any, Any] | None = None,
    baseline: Any = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    unit: str = "pairs",
) -> Interval:
    r"""Spearman correlation of pair ``scores`` with ``ratings``, with a bootstrap percentile
    interval (:func:`weighted_spearman` on resampling weights).

    Without ``items`` the rated pairs are the units: each resample draws ``n`` pairs with
    replacement (right when pairs rarely share an item, as in word-similarity sets). With
    ``items = (i, j)``, the labels of the two items of each pair, the items are the units
    (:func:`item_bootstrap_weights`: right when every item takes part in many pairs, as all
    pairs of 50 documents). With ``baseline`` (scores of the same pairs by another method),
    the estimate and interval are those of the paired difference
    :math:`\rho(\text{scores}) - \rho(\text{baseline})` on the same resamples, so that what the
    two share cancels.

    Parameters
    ----------
    scores, baseline
        Finite scores of the ``n`` pairs (e.g. cosines), 1-D.
    ratings
        The ``n`` human ratings.
    items
        Optional integer labels ``(i, j)`` of the two items of each pair.
    n_boot, seed
        Number of resamples (>= 1) and their seed (>= 0).
    level
        Confidence level in (0, 1).
    unit
        What a unit is, for the evidence line ("word pairs", "documents").

    Returns
    -------
    dlnotes.evidence.Interval
        Estimate, interval, and ``n`` = the number of units (pairs, or distinct items).

    Raises
    ------
    ValueError
        For inputs of different lengths or out-of-range settings.
    """
    x = as_float_array("scores", scores, 1)
    rows = x[None] if baseline is None else np.stack([x, as_float_array("baseline", baseline, 1)])
    check_int_at_least("n_boot", n_boot, 1)
    check_int_at_least("seed", seed, 0)
    if items is None:
        n = len(x)
        weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    else:
        weights = item_bootstrap_weights(*items, n_boot, seed=seed)
        n = len(np.unique(np.concatenate([np.asarray(items[0]), np.asarray(items[1])])))
    reps = weighted_spearman(rows, ratings, weights)
    rho = weighted_spearman(rows, ratings, np.ones(len(x)))
    estimate, replicates = (rho[0], reps[0]) if baseline is None else (
        rho[0] - rho[1], reps[0] - reps[1])
    return percentile_interval(float(estimate), replicates[np.isfinite(replicates)], n=n,
                               unit=unit, level=level)
