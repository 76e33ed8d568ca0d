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


# --------------------------------------------------------- converters and array checks


def test_as_float_array_converts_lists_and_tensors_to_float64():
    a = v.as_float_array("x", [[1, 2], [3, 4]], 2)
    t = v.as_float_array("x", torch.tensor([[1.0, 2.0]], requires_grad=True), 2)
    assert a.dtype == np.float64 and t.dtype == np.float64 and t.shape == (1, 2)
    assert np.array_equal(a, np.array([[1.0, 2.0], [3.0, 4.0]]))


@pytest.mark.parametrize(
    ("x", "kwargs", "message"),
    [(np.ones(3), {"ndim": 2}, "x must have 2 dimension"),
     (np.ones((1, 3)), {"ndim": 2, "min_rows": 2}, "x must hold at least 2 rows, got 1"),
     (np.ones((2, 0)), {"ndim": 2, "min_columns": 1}, "x must have at least 1 column"),
     (np.array([1.0, np.inf]), {}, "x must contain only finite"),
     (["a", "b"], {}, "x must be an array of numbers")],
    ids=["rank", "rows", "columns", "inf", "strings"],
)
def test_as_float_array_rejects_planted_bad_input(x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        v.as_float_array("x", x, **kwargs)


def test_as_float_tensor_keeps_floating_dtypes_and_promotes_integers():
    assert v.as_float_tensor("A", torch.ones(2, dtype=torch.float32)).dtype == torch.float32
    assert v.as_float_tensor("A", np.eye(2, dtype=np.int64)).dtype == torch.float64
    assert v.as_float_tensor("A", torch.tensor([True, False])).dtype == torch.float64
    for bad, message in (([1.0], "A must be a torch.Tensor"),
                         (torch.ones(2, 2), "A must have 1 dimension"),
                         (torch.tensor([float("nan")]), "A must contain only finite")):
        with pytest.raises(ValueError, match=message):
            v.as_float_tensor("A", bad, 1)


def test_check_float_tensor_rejects_arrays_integer_tensors_and_low_rank():
    v.check_float_tensor("q", torch.zeros(2, 3), min_ndim=2)
    for bad, message in ((np.zeros(3), "q must be a floating-point torch.Tensor, got ndarray"),
                         (torch.zeros(3, dtype=torch.int64), "got dtype torch.int64"),
                         (torch.zeros(3), "q must have at least 2 dimension"),
                         (torch.tensor([[float("inf")]]), "q must contain only finite")):
        with pytest.raises(ValueError, match=message):
            v.check_float_tensor("q", bad, min_ndim=2)
    v.check_float_tensor("q", torch.tensor([float("nan")]), finite=False)


@pytest.mark.parametrize("library", [np.array, torch.tensor])
def test_check_distribution_rows_accepts_rows_summing_to_one_and_names_the_error(library):
    v.check_distribution_rows("p", library([[0.25, 0.75], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"p must hold distributions.*off by 0\.1"):
        v.check_distribution_rows("p", library([[0.25, 0.75], [0.5, 0.6]]))
    with pytest.raises(ValueError, match="smallest entry of -0.5"):
        v.check_distribution_rows("p", library([[-0.5, 1.5]]))
    with pytest.raises(ValueError, match="weights must be a distribution"):
        v.check_distribution_rows("weights", library([0.5, 0.4]))


def test_check_distribution_rows_tolerance_follows_the_dtype():
    off = torch.tensor([[0.5, 0.5 + 1e-6]])
    v.check_distribution_rows("p", off.float())  # float32: within 1e-5
    with pytest.raises(ValueError, match="within 1e-08"):
        v.check_distribution_rows("p", off.double())
    v.check_distribution_rows("p", off.double(), atol=1e-4)


def test_check_values_in_reports_the_range_and_the_offending_values():
    v.check_values_in("probs", torch.tensor([0.0, 1.0]), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\] everywhere, got values "
                                         r"from 0 to 1\.5"):
        v.check_values_in("probs", torch.tensor([0.0, 1.5]), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"counts must be non-negative \(>= 0\)"):
        v.check_values_in("counts", np.array([1, -1]), 0.0)
    with pytest.raises(ValueError, match=r"tosses must be positive \(> 0\)"):
        v.check_values_in("tosses", np.array([1.0, 0.0]), 0.0, low_inclusive=False)


def test_check_labels_in_names_a_value_outside_the_allowed_set():
    v.check_labels_in("y", torch.tensor([0, 1, 1]), (0, 1))
    with pytest.raises(ValueError, match=r"y must contain only the labels \[-1, 1\], got 0"):
        v.check_labels_in("y", np.array([1, 0, -1]), (-1, 1))


@pytest.mark.parametrize(
    ("x", "message"),
    [(np.array([0.0, 1.0]), "must be an array of integers, got float64"),
     (torch.tensor([True]), "must be an array of integers, got torch.bool"),
     (np.array([[0, 1]]), "must have 1 dimension"),
     (np.array([0, 3]), r"must hold integers in \[0, 3\), got values from 0 to 3"),
     (torch.tensor([-1, 2]), r"must hold integers in \[0, 3\), got values from -1 to 2")],
    ids=["float", "bool", "2-d", "too-large", "negative"],
)
def test_check_integer_array_rejects_planted_bad_indices(x, message):
    with pytest.raises(ValueError, match="idx " + message):
        v.check_integer_array("idx", x, 1, low=0, high=3)


def test_check_integer_array_accepts_empty_and_open_bounds():
    v.check_integer_array("idx", np.array([], dtype=np.int64), 1, low=0, high=3)
    v.check_integer_array("idx", torch.tensor([-5, 10**6]), 1)


def test_check_nonzero_rows_names_the_first_zero_row():
    v.check_nonzero_rows("X", np.array([[1e-200, 0.0]]) * 1e100)
    with pytest.raises(ValueError, match="X must have no all-zero rows.*row 1 is zero"):
        v.check_nonzero_rows("X", torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))


# ------------------------------------------------------------------- shapes and lengths


def test_shape_and_size_checks_say_what_was_expected_and_what_came():
    v.check_shape("cov", np.zeros((3, 2, 2)), (3, None, 2))
    with pytest.raises(ValueError, match=r"cov must have shape \(3, 2, 2\), got \(3, 2\)"):
        v.check_shape("cov", np.zeros((3, 2)), (3, 2, 2))
    with pytest.raises(ValueError, match=r"w must have shape \(4,\) \(one per column\)"):
        v.check_shape("w", np.zeros(3), (4,), "(one per column)")
    v.check_dim_size("x", torch.zeros(2, 5), -1, 5)
    with pytest.raises(ValueError, match=r"x must have 4 features \(num_features\) in dimension 1, "
                                         r"got shape \(2, 5\)"):
        v.check_dim_size("x", torch.zeros(2, 5), 1, 4, "features (num_features)")
    with pytest.raises(ValueError, match="x must have 1 entry in dimension 2"):
        v.check_dim_size("x", torch.zeros(2, 5), 2, 1)


def test_square_and_symmetric_checks():
    v.check_square("K", np.eye(3))
    with pytest.raises(ValueError, match=r"K must be a square \(n, n\) matrix, got shape \(2, 3\)"):
        v.check_square("K", np.zeros((2, 3)))
    v.check_symmetric("A", torch.tensor([[0.0, 1.0], [1.0 + 1e-9, 0.0]]), 1e-6)
    v.check_symmetric("C", np.stack([np.eye(2), np.eye(2)]), 1e-8)
    with pytest.raises(ValueError, match="A must be symmetric.*asymmetry of 0.1"):
        v.check_symmetric("A", torch.tensor([[0.0, 1.0], [0.9, 0.0]]), 1e-6)


def test_length_checks_count_in_words():
    v.check_length("seeds", [1, 2], 2)
    with pytest.raises(ValueError, match=r"seeds must hold 1 seed \(one per replica\), got 2"):
        v.check_length("seeds", [1, 2], 1, "seeds (one per replica)")
    with pytest.raises(ValueError, match="grid must hold at least 1 entry, got 0"):
        v.check_min_length("grid", [], 1)
    with pytest.raises(ValueError, match="words and vectors must have the same length, got 2 "
                                         "and 3"):
        v.check_same_length("words", ["a", "b"], "vectors", np.zeros((3, 4)))


def test_check_strings_rejects_one_string_non_strings_and_empty_strings():
    v.check_strings("texts", ["a", ""])
    for bad, kwargs, message in (("abc", {}, "texts must be a sequence of strings"),
                                 (["a", 3], {}, r"texts\[1\] must be a string, got 3"),
                                 (["a", ""], {"nonempty": True}, r"texts\[1\] must be a non-empty"),
                                 ([], {"min_count": 1}, "texts must hold at least 1 string")):
        with pytest.raises(ValueError, match=message):
            v.check_strings("texts", bad, **kwargs)


# ----------------------------------------------------------------- numbers and replicas


def test_check_int_in_range_includes_both_ends():
    v.check_int_in_range("k", 1, 1, 3)
    v.check_int_in_range("k", np.int64(3), 1, 3)
    for bad in (0, 4, 2.0, True):
        with pytest.raises(ValueError, match=r"k must be an integer in \[1, 3\]"):
            v.check_int_in_range("k", bad, 1, 3)


def test_check_less_and_check_type():
    v.check_less("low", 0.1, "high", 1.0)
    with pytest.raises(ValueError, match="low must be < high, got low=1.0, high=1.0"):
        v.check_less("low", 1.0, "high", 1.0)
    with pytest.raises(ValueError, match="generator must be a Generator, got int"):
        v.check_type("generator", 0, torch.Generator)


def test_per_replica_broadcasts_one_value_and_checks_each():
    assert v.per_replica("lr", 0.1, 3) == [0.1, 0.1, 0.1]
    assert v.per_replica("lr", (0.1, 0.2), 2, v.check_positive) == [0.1, 0.2]
    with pytest.raises(ValueError, match=r"weight_decay must be one number or 3 numbers \(one per "
                                         r"replica\), got 2"):
        v.per_replica("weight_decay", [0.0, 0.1], 3)
    with pytest.raises(ValueError, match=r"weight_decay\[1\] must be >= 0"):
        v.per_replica("weight_decay", [0.0, -0.1], 2, v.check_nonnegative)


def test_checks_of_tensors_that_require_grad_raise_value_errors_not_warnings():
    p = torch.tensor([[0.5, 0.5], [0.5, 0.5]], requires_grad=True)
    v.check_distribution_rows("p", p)
    v.check_symmetric("p", p, 1e-12)
    with pytest.raises(ValueError, match=r"p must lie in \[0, 0.4\]"):
        v.check_values_in("p", p, 0.0, 0.4)
    with pytest.raises(ValueError, match="p must hold distributions"):
        v.check_distribution_rows("p", 2 * p)


def test_check_tensor_checks_the_dtype_when_asked():
    v.check_tensor("mask", torch.ones(2, dtype=torch.bool), dtype=torch.bool)
    with pytest.raises(ValueError, match="mask must have dtype torch.bool, got torch.float32"):
        v.check_tensor("mask", torch.ones(2), dtype=torch.bool)
