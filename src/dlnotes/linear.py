r"""Linear least squares with a ridge penalty. Used in chapters 2, 3 and 4: the closed form
that the lasso (chapter 2), input noise (chapter 3) and dropout (chapter 4) are compared with.
"""

from __future__ import annotations

import math

import numpy as np

from dlnotes.validation import check_nonnegative, check_regression_data

__all__ = ["ridge_solution"]


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
