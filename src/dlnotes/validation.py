"""Argument checks shared by every public function of ``dlnotes``.

Each check raises :class:`ValueError` whose message names the argument and the allowed range,
so that a reader who passes ``sigma=-1`` learns which argument was wrong and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "check_finite",
    "check_in_range",
    "check_int_at_least",
    "check_ndim",
    "check_positive",
    "check_nonnegative",
    "check_same_shape",
    "check_same_rows",
    "check_regression_data",
    "check_choice",
]


def _is_array(x: Any) -> bool:
    return isinstance(x, torch.Tensor | np.ndarray)


def check_finite(name: str, x: Any) -> None:
    """Raise ``ValueError`` if ``x`` (scalar, array or tensor) holds NaN or infinity."""
    if isinstance(x, torch.Tensor):
        ok = bool(torch.isfinite(x).all()) if x.is_floating_point() else True
    elif isinstance(x, np.ndarray):
        ok = bool(np.isfinite(x).all()) if np.issubdtype(x.dtype, np.inexact) else True
    else:
        try:
            ok = math.isfinite(float(x))
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a finite number, got {x!r}") from None
    if not ok:
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")


def check_positive(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number > 0."""
    check_finite(name, value)
    if not float(value) > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def check_nonnegative(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number >= 0."""
    check_finite(name, value)
    if not float(value) >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def check_in_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = False,
) -> None:
    """Raise ``ValueError`` unless ``value`` lies in the interval from ``low`` to ``high``.

    The default interval is half-open, ``[low, high)``, as for a smoothing ε in ``[0, 1)``.
    """
    check_finite(name, value)
    v = float(value)
    above = v >= low if low_inclusive else v > low
    below = v <= high if high_inclusive else v < high
    if not (above and below):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}, got {value!r}")


def check_int_at_least(name: str, value: int, minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_ndim(name: str, x: Any, ndim: int | Sequence[int]) -> None:
    """Raise ``ValueError`` unless the array or tensor ``x`` has one of the allowed ranks."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if not _is_array(x):
        raise ValueError(f"{name} must be an array or tensor, got {type(x).__name__}")
    if x.ndim not in allowed:
        wanted = " or ".join(str(a) for a in allowed)
        raise ValueError(f"{name} must have {wanted} dimension(s), got shape {tuple(x.shape)}")


def check_same_shape(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have identical shapes."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_same_rows(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same number of rows (first axis)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of rows, "
            f"got {a.shape[0]} and {b.shape[0]}"
        )


def check_regression_data(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``X`` (n × d) and ``y`` (n,) as float64 NumPy arrays, or raise ``ValueError``.

    Checks the ranks, that there is at least one row, that the rows match and that every value
    is finite: the common contract of the book's linear-regression solvers (chapters 3 and 4).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    check_ndim("X", X, 2)
    check_ndim("y", y, 1)
    check_same_rows("X", X, "y", y)
    if X.shape[0] < 1:
        raise ValueError("X must have at least one row")
    check_finite("X", X)
    check_finite("y", y)
    return X, y


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)!r}, got {value!r}")
