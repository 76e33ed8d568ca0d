r"""Linear least squares with a ridge penalty. Used in chapters 2, 3 and 4: the closed form
that the lasso (chapter 2), input noise (chapter 3) and dropout (chapter 4) are compared with;
and the polynomial features of chapter 3's models of growing capacity.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from dlnotes.validation import (
    as_float_array,
    check_int_at_least,
    check_nonnegative,
    check_regression_data,
)

__all__ = ["ridge_solution", "polynomial_features"]


def ridge_solution(X: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    r"""The minimiser of the mean-loss ridge objective (no intercept).

    .. math::
        \hat w_\lambda = \arg\min_w \frac1N\lVert y - Xw\rVert^2 + \lambda\lVert w\rVert^2
        = \Big(\tfrac1N X^\top X + \lambda I\Big)^{-1} \tfrac1N X^\top y .

    It is computed as the least-squares solution of the stacked system
    :math:`[X/\sqrt N;\ \sqrt\lambda I]\,w \approx [y/\sqrt N;\ 0]`, which avoids forming
    :math:`X^\top X` (whose condition number is the square of that of :math:`X`). With
    ``lam = 0`` and a rank-deficient ``X`` it returns the minimum-norm least-squares solution.
    scikit-learn's ``Ridge(alpha, fit_intercept=False)`` minimises the *summed* loss, so it
    equals this function at ``alpha = N * lam``.

    Parameters
    ----------
    X
        Design matrix, shape ``(N, d)``; centre it (and ``y``) first if an intercept is wanted.
    y
        Targets, shape ``(N,)``.
    lam
        Penalty weight λ ≥ 0 in the mean-loss convention above.

    Returns
    -------
    numpy.ndarray
        Coefficients, shape ``(d,)``, float64.

    Raises
    ------
    ValueError
        For a wrong shape, a non-finite value or ``lam`` < 0.
    """
    X, y = check_regression_data(X, y)
    check_nonnegative("lam", lam)
    n, d = X.shape
    A = np.vstack([X / math.sqrt(n), math.sqrt(float(lam)) * np.eye(d)])
    b = np.concatenate([y / math.sqrt(n), np.zeros(d)])
    return np.linalg.lstsq(A, b, rcond=None)[0]


def polynomial_features(X: np.ndarray, degree: int) -> np.ndarray:
    r"""Every monomial of the columns of ``X`` of degree 1 to ``degree`` (no constant column).

    For :math:`d` columns there are :math:`\binom{d + \text{degree}}{\text{degree}} - 1` of them:
    first the columns themselves, then the products :math:`x_a x_b` with :math:`a \le b`, then
    :math:`x_a x_b x_c` with :math:`a \le b \le c`, each degree in lexicographic order of the
    indices. That is scikit-learn's ``PolynomialFeatures(degree, include_bias=False)``, and each
    product is formed in the same order, :math:`x_a (x_b (x_c))`, so that the two agree
    bit for bit (tested).

    Parameters
    ----------
    X
        Shape ``(n, d)``, finite.
    degree
        The highest degree, an integer >= 1.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, number of monomials)``, float64.

    Raises
    ------
    ValueError
        If ``X`` is not a finite 2-D array or ``degree`` < 1.
    """
    A = as_float_array("X", X, 2)
    check_int_at_least("degree", degree, 1)
    columns = []
    for k in range(1, degree + 1):
        for indices in itertools.combinations_with_replacement(range(A.shape[1]), k):
            column = A[:, indices[-1]]
            for index in reversed(indices[:-1]):
                column = column * A[:, index]
            columns.append(column)
    return np.stack(columns, axis=1) if columns else np.empty((A.shape[0], 0))
