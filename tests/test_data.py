"""dlnotes.data: the bundled data sets, split and scaled without leaking test statistics."""

import numpy as np
import pytest
import torch

from dlnotes.data import classification_split, diabetes, standardize


def test_diabetes_is_standardised_and_centred():
    X, y, names = diabetes()
    assert X.shape == (442, 10) and len(names) == 10
    assert np.allclose(X.mean(0), 0) and np.allclose(X.std(0), 1)
    assert abs(y.mean()) < 1e-9


def test_classification_split_is_stratified_and_scaled_by_train_statistics():
    s = classification_split("digits", test_size=0.3, seed=0)
    assert s.X_train.shape[1] == 64 and s.X_train.shape[0] + s.X_test.shape[0] == 1797
    assert torch.allclose(s.X_train.mean(0), torch.zeros(64), atol=1e-5)
    train_freq = torch.bincount(s.y_train) / len(s.y_train)
    test_freq = torch.bincount(s.y_test) / len(s.y_test)
    assert (train_freq - test_freq).abs().max() < 0.02
    with pytest.raises(ValueError, match="name"):
        classification_split("mnist")


def test_standardize_keeps_constant_columns_at_zero():
    (a,) = standardize(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert np.array_equal(a[:, 1], [0.0, 0.0])
