"""Small data sets that ship with installed packages (nothing is downloaded).

Loaders return float arrays standardised with the *training* split's statistics, so no test
information leaks into the scaling.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from sklearn import datasets
from sklearn.model_selection import train_test_split

from dlnotes.validation import check_choice, check_in_range, check_int_at_least

__all__ = ["Split", "standardize", "diabetes", "classification_split"]

_CLASSIFICATION = {
    "digits": datasets.load_digits,
    "breast_cancer": datasets.load_breast_cancer,
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
}


class Split(NamedTuple):
    """A train/test split as torch tensors (features float, labels int64)."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor


def standardize(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Centre and scale columns by the mean and std of ``train``; constant columns stay 0.

    Returns the standardised ``train`` followed by each of ``others``.
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple((a - mean) / std for a in (train, *others))


def diabetes(standardized: bool = True) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's bundled diabetes regression data (442 patients, 10 features).

    Parameters
    ----------
    standardized
        If true, features (the *raw* ones, ``scaled=False``) are standardised to mean 0 and
        variance 1, and the target is centred.

    Returns
    -------
    X, y, feature_names
        ``X`` of shape (442, 10), ``y`` of shape (442,), both float64.
    """
    bunch = datasets.load_diabetes(scaled=False)
    X = bunch.data.astype(np.float64)
    y = bunch.target.astype(np.float64)
    if standardized:
        (X,) = standardize(X)
        y = y - y.mean()
    return X, y, list(bunch.feature_names)


def classification_split(
    name: str = "digits",
    test_size: float = 0.3,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Split:
    """A stratified, standardised train/test split of a bundled classification data set.

    Parameters
    ----------
    name
        ``"digits"`` (1,797 8×8 images, 10 classes), ``"breast_cancer"`` (569 × 30, 2 classes),
        ``"iris"`` or ``"wine"``.
    test_size
        Fraction held out, in (0, 1).
    seed
        Seed of the split.
    dtype
        Floating dtype of the features.

    Returns
    -------
    Split
        ``(X_train, y_train, X_test, y_test)`` as tensors.

    Raises
    ------
    ValueError
        For an unknown ``name``, ``test_size`` outside (0, 1) or a negative ``seed``.
    """
    check_choice("name", name, sorted(_CLASSIFICATION))
    check_in_range("test_size", test_size, 0.0, 1.0, low_inclusive=False)
    check_int_at_least("seed", seed, 0)
    bunch = _CLASSIFICATION[name]()
    X_tr, X_te, y_tr, y_te = train_test_split(
        bunch.data.astype(np.float64), bunch.target, test_size=test_size,
        random_state=seed, stratify=bunch.target,
    )
    X_tr, X_te = standardize(X_tr, X_te)
    return Split(
        torch.as_tensor(X_tr, dtype=dtype), torch.as_tensor(y_tr, dtype=torch.int64),
        torch.as_tensor(X_te, dtype=dtype), torch.as_tensor(y_te, dtype=torch.int64),
    )
