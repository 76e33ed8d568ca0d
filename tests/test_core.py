"""dlnotes.setup, the data loaders and the small training helpers."""

import matplotlib as mpl
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import dlnotes
from dlnotes.data import classification_split, diabetes, standardize
from dlnotes.plotting import PALETTE
from dlnotes.training import (
    accuracy,
    minibatches,
    mlp,
    permute_hidden_units,
    relu_activity,
    train_classifier,
)


def test_setup_makes_torch_numpy_and_generator_draws_repeat():
    # setup also seeds NumPy's legacy global state, which some libraries still read.
    first = (dlnotes.setup(3).normal(size=3), np.random.rand(2), torch.randn(2))  # noqa: NPY002
    second = (dlnotes.setup(3).normal(size=3), np.random.rand(2), torch.randn(2))  # noqa: NPY002
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_setup_limits_torch_and_blas_to_one_thread_deterministic_and_applies_style():
    dlnotes.setup(0)
    assert torch.get_num_threads() == 1
    assert torch.are_deterministic_algorithms_enabled()
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert blas and all(p["num_threads"] == 1 for p in blas)
    assert mpl.rcParams["axes.prop_cycle"].by_key()["color"][0] == PALETTE[0]


@pytest.mark.parametrize("bad", [-1, 1.5, "0"])
def test_setup_rejects_a_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        dlnotes.setup(bad)


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


def test_minibatches_cover_every_index_once():
    idx = torch.cat(list(minibatches(10, 3, torch.Generator().manual_seed(0))))
    assert sorted(idx.tolist()) == list(range(10))


def test_mlp_with_bias_init_and_relu_activity():
    net = mlp([4, 8, 3], bias_init=-100.0)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert all(float(m.bias.detach().unique()) == -100.0 for m in linears)
    (active,) = relu_activity(net, torch.randn(50, 4))
    assert active.shape == (8,) and float(active.max()) == 0.0
    with pytest.raises(ValueError, match="sizes"):
        mlp([4])


def test_train_classifier_learns_a_separable_problem():
    X = torch.randn(200, 2)
    y = (X[:, 0] + X[:, 1] > 0).long()
    net = mlp([2, 16, 2])
    hist = train_classifier(net, X, y, epochs=20, lr=0.5,
                            on_epoch_end=lambda m: {"acc": accuracy(m(X), y)})
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["acc"][-1] > 0.95


def test_permuting_hidden_units_keeps_the_function_but_moves_the_parameters():
    net = mlp([5, 7, 3])
    perm = torch.tensor([6, 0, 1, 2, 3, 4, 5])
    other = permute_hidden_units(net, perm)
    x = torch.randn(10, 5)
    assert torch.allclose(net(x), other(x), atol=1e-6)
    assert not torch.equal(net[0].weight, other[0].weight)
    with pytest.raises(ValueError, match="perm"):
        permute_hidden_units(net, torch.tensor([0, 0, 1, 2, 3, 4, 5]))


def test_train_classifier_minimises_the_objective_but_records_its_second_value():
    X = torch.randn(64, 3)
    y = (X[:, 0] > 0).long()
    calls = []

    def objective(model, xb, yb):
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        calls.append(len(xb))
        return loss + 100.0 * sum(p.pow(2).sum() for p in model.parameters()), loss

    net = mlp([3, 4, 2])
    hist = train_classifier(net, X, y, epochs=3, lr=0.001, batch_size=16, objective=objective)
    assert calls == [16] * 12
    assert max(hist["train_loss"]) < 2.0  # the recorded value excludes the large penalty
