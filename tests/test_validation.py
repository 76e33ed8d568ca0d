"""The shared argument checks name the argument and the allowed range."""

import numpy as np
import pytest
import torch

from dlnotes import validation as v


def test_check_in_range_is_half_open_by_default():
    v.check_in_range("eps", 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"eps must lie in \[0.0, 1.0\)"):
        v.check_in_range("eps", 1.0, 0.0, 1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "a"])
def test_check_positive_rejects_non_positive_and_non_finite(bad):
    with pytest.raises(ValueError, match="sigma"):
        v.check_positive("sigma", bad)


def test_check_finite_accepts_integer_arrays_and_rejects_nan_tensors():
    v.check_finite("x", np.arange(3))
    v.check_finite("x", torch.arange(3))
    with pytest.raises(ValueError, match="x must contain only finite"):
        v.check_finite("x", torch.tensor([1.0, float("nan")]))


def test_check_int_at_least_rejects_bools_floats_and_small_values():
    for bad in (True, 1.5, 0):
        with pytest.raises(ValueError, match="copies"):
            v.check_int_at_least("copies", bad, 1)


def test_shape_checks_report_both_shapes():
    with pytest.raises(ValueError, match=r"\(2,\) and \(3,\)"):
        v.check_same_shape("a", np.zeros(2), "b", np.zeros(3))
    with pytest.raises(ValueError, match="q must have 2 or 3"):
        v.check_ndim("q", torch.zeros(2), (2, 3))
    with pytest.raises(ValueError, match="mode must be one of"):
        v.check_choice("mode", "x", ["a", "b"])


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [(np.ones(3), np.ones(3), "X must have 2"), (np.ones((3, 2)), np.ones((3, 1)), "y must have 1"),
     (np.ones((3, 2)), np.ones(4), "same number of rows"), (np.ones((0, 2)), np.ones(0), "row"),
     (np.full((2, 2), np.nan), np.ones(2), "X must contain only finite")],
    ids=["X-1d", "y-2d", "rows", "empty", "nan"],
)
def test_check_regression_data_rejects_bad_data(X, y, message):
    with pytest.raises(ValueError, match=message):
        v.check_regression_data(X, y)


def test_check_regression_data_returns_float64_arrays():
    X, y = v.check_regression_data([[1, 2], [3, 4]], [5, 6])
    assert X.dtype == np.float64 and y.dtype == np.float64 and X.shape == (2, 2)
