"""Argument checks shared by every public function of ``dlnotes``.

Each check raises :class:`ValueError` whose message names the argument and the allowed range,
so that a reader who passes ``sigma=-1`` learns which argument was wrong and why. The
converters (:func:`as_float_array`, :func:`as_float_tensor`) check and return the argument in
the form the function computes with; the other checks return nothing. A chapter module keeps
only the rules of its own domain (a covariance is positive definite, a graph is undirected).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "check_finite",
    "check_in_range",
    "check_int_at_least",
    "check_int_in_range",
    "check_ndim",
    "check_positive",
    "check_nonnegative",
    "check_less",
    "check_same_shape",
    "check_same_rows",
    "check_same_length",
    "check_shape",
    "check_dim_size",
    "check_square",
    "check_symmetric",
    "check_length",
    "check_min_length",
    "check_choice",
    "check_type",
    "check_strings",
    "check_tensor",
    "check_float_tensor",
    "as_float_array",
    "as_float_tensor",
    "check_values_in",
    "check_labels_in",
    "check_integer_array",
    "check_distribution_rows",
    "check_nonzero_rows",
    "check_regression_data",
    "per_replica",
]


def _is_array(x: Any) -> bool:
    return isinstance(x, torch.Tensor | np.ndarray)


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape)


# ------------------------------------------------------------------------------ numbers


def check_finite(name: str, x: Any) -> None:
    """Raise ``ValueError`` if ``x`` (scalar, array or tensor) holds NaN or infinity.

    A tensor wrapped by a ``torch.func`` transform (inside ``vmap``, as in
    :func:`dlnotes.training.fit_replicas`) has no readable values and is not checked."""
    if isinstance(x, torch.Tensor):
        if torch._C._functorch.is_functorch_wrapped_tensor(x):
            return
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


def check_int_in_range(name: str, value: int, low: int, high: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer in ``[low, high]`` (both included)."""
    if (isinstance(value, bool) or not isinstance(value, int | np.integer)
            or not low <= value <= high):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def check_less(name_a: str, a: float, name_b: str, b: float) -> None:
    """Raise ``ValueError`` unless ``a < b`` (two bounds of an interval, say)."""
    if not a < b:
        raise ValueError(f"{name_a} must be < {name_b}, got {name_a}={a!r}, {name_b}={b!r}")


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)!r}, got {value!r}")


def per_replica(name: str, value: float | Sequence[float], replicas: int,
                check: Callable[[str, Any], None] | None = None) -> list[float]:
    """One hyper-parameter for each of ``replicas`` models: a number for all, or one each.

    Returns the ``replicas`` values as a list after ``check(f"{name}[r]", value_r)`` on each
    (e.g. :func:`check_nonnegative`).
    """
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        values = [value] * replicas
    else:
        values = list(value)
        if len(values) != replicas:
            raise ValueError(f"{name} must be one number or {replicas} numbers (one per "
                             f"replica), got {len(values)}")
    if check is not None:
        for r, v in enumerate(values):
            check(f"{name}[{r}]", v)
    return values


# ------------------------------------------------------------------------ types and sizes


def check_type(name: str, x: Any, types: type | tuple[type, ...]) -> None:
    """Raise ``ValueError`` unless ``x`` is an instance of ``types``."""
    if not isinstance(x, types):
        wanted = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise ValueError(f"{name} must be a {wanted}, got {type(x).__name__}")


def check_strings(name: str, texts: Any, *, nonempty: bool = False, min_count: int = 0) -> None:
    """Raise ``ValueError`` unless ``texts`` is a sequence (not one string) of strings.

    ``nonempty`` also rejects empty strings; ``min_count`` is the least number of strings.
    """
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise ValueError(f"{name} must be a sequence of strings (not one string), "
                         f"got {type(texts).__name__}")
    for i, t in enumerate(texts):
        if not isinstance(t, str) or (nonempty and not t):
            what = "a non-empty string" if nonempty else "a string"
            raise ValueError(f"{name}[{i}] must be {what}, got {t!r}")
    check_min_length(name, texts, min_count, "strings")


def _count(n: int, noun: str) -> str:
    """``"1 row"``, ``"2 rows"``: the first word of ``noun`` is given in the plural."""
    if n != 1:
        return f"{n} {noun}"
    word, _, rest = noun.partition(" ")
    word = word[:-3] + "y" if word.endswith("ies") else word.removesuffix("s")
    return f"1 {word}{' ' if rest else ''}{rest}"


def check_length(name: str, x: Any, n: int, what: str = "entries") -> None:
    """Raise ``ValueError`` unless ``len(x) == n`` (rows of an array); ``what`` names the
    entries in the plural, e.g. ``"seeds (one per replica)"``."""
    if len(x) != n:
        raise ValueError(f"{name} must hold {_count(n, what)}, got {len(x)}")


def check_min_length(name: str, x: Any, minimum: int, what: str = "entries") -> None:
    """Raise ``ValueError`` unless ``len(x) >= minimum`` (rows of an array)."""
    if len(x) < minimum:
        raise ValueError(f"{name} must hold at least {_count(minimum, what)}, got {len(x)}")


def check_same_length(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same length."""
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} must have the same length, "
                         f"got {len(a)} and {len(b)}")


def check_ndim(name: str, x: Any, ndim: int | Sequence[int]) -> None:
    """Raise ``ValueError`` unless the array or tensor ``x`` has one of the allowed ranks."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if not _is_array(x):
        raise ValueError(f"{name} must be an array or tensor, got {type(x).__name__}")
    if x.ndim not in allowed:
        wanted = " or ".join(str(a) for a in allowed)
        raise ValueError(f"{name} must have {wanted} dimension(s), got shape {_shape(x)}")


def check_shape(name: str, x: Any, shape: Sequence[int | None], what: str = "") -> None:
    """Raise ``ValueError`` unless ``x.shape`` matches ``shape`` (``None`` matches any size).

    ``what`` names the axes in the message, e.g. ``"(networks, examples, classes)"``.
    """
    got = _shape(x)
    if len(got) != len(shape) or any(
            s is not None and s != g for s, g in zip(shape, got, strict=True)):
        wanted = "(" + ", ".join("any" if s is None else str(s) for s in shape) + \
            ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{name} must have shape {wanted}{' ' + what if what else ''}, "
                         f"got {got}")


def check_dim_size(name: str, x: Any, dim: int, size: int, what: str = "entries") -> None:
    """Raise ``ValueError`` unless dimension ``dim`` of ``x`` has ``size`` entries.

    ``what`` names them in the plural, e.g. ``"columns (num_features)"``.
    """
    if x.ndim <= dim or x.ndim < -dim or x.shape[dim] != size:
        raise ValueError(f"{name} must have {_count(size, what)} in dimension {dim}, "
                         f"got shape {_shape(x)}")


def check_square(name: str, x: Any) -> None:
    """Raise ``ValueError`` unless ``x`` is a square matrix ``(n, n)``."""
    check_ndim(name, x, 2)
    if x.shape[0] != x.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {_shape(x)}")


def check_symmetric(name: str, x: Any, rtol: float) -> None:
    """Raise ``ValueError`` unless the matrix (or stack of matrices) ``x`` equals its transpose
    to within ``rtol`` times its largest absolute entry."""
    if _size(x) == 0:
        return
    if isinstance(x, torch.Tensor):
        x = x.detach()
        gap, scale = float((x - x.mT).abs().max()), float(x.abs().max())
    else:
        gap, scale = float(np.abs(x - np.swapaxes(x, -1, -2)).max()), float(np.abs(x).max())
    if gap > rtol * max(scale, np.finfo(np.float64).tiny):
        raise ValueError(f"{name} must be symmetric (to within {rtol:g} of its largest entry), "
                         f"got an asymmetry of {gap:.3g}")


def check_same_shape(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have identical shapes."""
    if _shape(a) != _shape(b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {_shape(a)} and {_shape(b)}"
        )


def check_same_rows(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same number of rows (first axis)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of rows, "
            f"got {a.shape[0]} and {b.shape[0]}"
        )


# --------------------------------------------------------------------- arrays and tensors


def check_tensor(name: str, x: Any, ndim: int | Sequence[int] | None = None, *,
                 min_ndim: int = 0, finite: bool = False, dtype: torch.dtype | None = None
                 ) -> None:
    """Raise ``ValueError`` unless ``x`` is a torch tensor of an allowed rank (and ``dtype``)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if dtype is not None and x.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {x.dtype}")
    if ndim is not None:
        check_ndim(name, x, ndim)
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), "
                         f"got shape {_shape(x)}")
    if finite:
        check_finite(name, x)


def check_float_tensor(name: str, x: Any, ndim: int | Sequence[int] | None = None, *,
                       min_ndim: int = 0, finite: bool = True) -> None:
    """Raise ``ValueError`` unless ``x`` is a floating torch tensor of an allowed rank with
    only finite values (``finite=False`` skips that check)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a floating-point torch.Tensor, got {got}")
    check_tensor(name, x, ndim, min_ndim=min_ndim, finite=finite)


def as_float_array(name: str, x: Any, ndim: int | Sequence[int] | None = None, *,
                   min_rows: int = 0, min_columns: int = 0) -> np.ndarray:
    """``x`` (array, tensor or nested sequence) as a float64 NumPy array with a checked rank,
    at least ``min_rows`` rows (and ``min_columns`` columns) and only finite values."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}") from None
    if ndim is not None:
        check_ndim(name, arr, ndim)
    if min_rows:
        check_min_length(name, arr, min_rows, "rows")
    if min_columns and arr.shape[1] < min_columns:
        raise ValueError(f"{name} must have at least {_count(min_columns, 'columns')}, "
                         f"got shape {arr.shape}")
    check_finite(name, arr)
    return arr


def as_float_tensor(name: str, x: Any, ndim: int | Sequence[int] | None = None) -> torch.Tensor:
    """``x`` (tensor or NumPy array) as a floating torch tensor (integer and boolean input
    become float64) with a checked rank and only finite values."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    check_tensor(name, x, ndim)
    if not x.is_floating_point():
        x = x.to(torch.float64)
    check_finite(name, x)
    return x


def _size(x: Any) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else np.asarray(x).size


def check_values_in(name: str, x: Any, low: float = -math.inf, high: float = math.inf, *,
                    low_inclusive: bool = True) -> None:
    """Raise ``ValueError`` unless every entry of ``x`` lies in ``[low, high]``
    (``(low, high]`` with ``low_inclusive=False``)."""
    values = x.detach() if isinstance(x, torch.Tensor) else np.asarray(x)
    too_low = (values < low) if low_inclusive else (values <= low)
    if bool(too_low.any()) or bool((values > high).any()):
        if high == math.inf and low == 0:
            rule = "be non-negative (>= 0)" if low_inclusive else "be positive (> 0)"
        else:
            rule = f"lie in {'[' if low_inclusive else '('}{low:g}, {high:g}]"
        raise ValueError(f"{name} must {rule} everywhere, got values from "
                         f"{float(values.min()):g} to {float(values.max()):g}")


def check_labels_in(name: str, y: Any, allowed: Sequence[int]) -> None:
    """Raise ``ValueError`` unless every entry of ``y`` is one of ``allowed`` (e.g. 0 and 1)."""
    values = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    ok = np.isin(values, allowed)
    if not ok.all():
        raise ValueError(f"{name} must contain only the labels {list(allowed)}, "
                         f"got {values[~ok].ravel()[0].item()!r}")


def check_integer_array(name: str, x: Any, ndim: int | Sequence[int] | None = 1, *,
                        low: int | None = None, high: int | None = None) -> None:
    """Raise ``ValueError`` unless ``x`` (array or tensor) holds integers (not booleans) in
    ``[low, high)`` (a bound of ``None`` is open)."""
    if isinstance(x, torch.Tensor):
        integer = not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)
    else:
        integer = isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.integer)
    if not integer:
        got = getattr(x, "dtype", type(x).__name__)
        raise ValueError(f"{name} must be an array of integers, got {got}")
    if ndim is not None:
        check_ndim(name, x, ndim)
    size = x.numel() if isinstance(x, torch.Tensor) else x.size
    if size and ((low is not None and int(x.min()) < low)
                 or (high is not None and int(x.max()) >= high)):
        raise ValueError(f"{name} must hold integers in [{'-inf' if low is None else low}, "
                         f"{'inf' if high is None else high}), got values from {int(x.min())} "
                         f"to {int(x.max())}")


def check_distribution_rows(name: str, p: Any, *, atol: float | None = None) -> None:
    """Raise ``ValueError`` unless every row of ``p`` (its last axis) is a probability
    distribution: entries >= 0 summing to 1 within ``atol``.

    The default tolerance is 1e-5 for float32 and lower precisions, 1e-8 otherwise.
    """
    if isinstance(p, torch.Tensor):
        p = p.detach()
        low_precision = p.dtype in (torch.float16, torch.bfloat16, torch.float32)
        error = (p.sum(-1) - 1).abs()
    else:
        p = np.asarray(p)
        low_precision = p.dtype in (np.float16, np.float32)
        error = np.abs(p.sum(-1) - 1)
    if atol is None:
        atol = 1e-5 if low_precision else 1e-8
    negative = bool((p < 0).any())
    off = float(error.max()) if _size(error) else 0.0
    if negative or off > atol:
        what = "be a distribution" if p.ndim == 1 else "hold distributions along its last axis"
        raise ValueError(f"{name} must {what}: entries >= 0 that sum to 1 within {atol:g}, "
                         f"got a smallest entry of {float(p.min()):.3g} and a sum off by "
                         f"{off:.3g}")


def check_nonzero_rows(name: str, x: Any) -> None:
    """Raise ``ValueError`` if a row of the matrix ``x`` has norm 0 (its direction, and so a
    cosine with it, is undefined)."""
    norms = x.norm(dim=-1) if isinstance(x, torch.Tensor) else np.linalg.norm(x, axis=-1)
    if not bool((norms > 0).all()):
        first = int(np.argmax(~(np.asarray(norms) > 0)))
        raise ValueError(f"{name} must have no all-zero rows (a cosine with a row of norm 0 is "
                         f"undefined), row {first} is zero")


def check_regression_data(X: Any, y: Any, *, min_columns: int = 0
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Return ``X`` (n × d) and ``y`` (n,) as float64 NumPy arrays, or raise ``ValueError``.

    Checks the ranks, that there is at least one row (and ``min_columns`` columns), that the
    rows match and that every value is finite: the common contract of the book's linear
    solvers (chapters 2 to 4).
    """
    X = as_float_array("X", X, 2, min_rows=1, min_columns=min_columns)
    y = as_float_array("y", y, 1)
    check_same_rows("X", X, "y", y)
    return X, y
