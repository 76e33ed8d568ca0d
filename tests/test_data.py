"""dlnotes.data: the bundled data sets, split and scaled without leaking test statistics."""

import networkx as nx
import numpy as np
import pytest
import torch

import dlnotes.data as bundled
from dlnotes.data import (
    adjacency_matrix,
    classification_split,
    contextual_sbm,
    diabetes,
    karate_club,
    per_class_split,
    standardize,
)

f64 = torch.float64


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


# ------------------------------------------------------------------------- graphs


def test_karate_club_has_34_members_78_friendships_and_two_factions_of_17():
    A, y = karate_club()
    assert A.shape == (34, 34) and int(A.sum()) == 2 * 78 and torch.equal(A, A.T)
    assert torch.equal(torch.bincount(y), torch.tensor([17, 17]))
    assert int(y[0]) == 0 and int(y[33]) == 1  # Mr. Hi and the officer lead the two sides


def test_contextual_sbm_has_the_requested_degree_homophily_and_class_means():
    degree, same = [], []
    for seed in range(5):
        A, X, y = contextual_sbm(100, 3, degree=6.0, homophily=0.75, n_features=5,
                                 signal=2.0, seed=seed)
        assert A.shape == (300, 300) and torch.equal(A, A.T) and X.shape == (300, 5)
        degree.append(float(A.sum()) / 300)
        same.append(float((A * (y[:, None] == y[None, :])).sum() / A.sum()))
        means = torch.stack([X[y == c].mean(0) for c in range(3)])
        assert torch.allclose(means[:, :3], 2.0 * torch.eye(3, dtype=f64), atol=0.45)
    assert np.mean(degree) == pytest.approx(6.0, rel=0.05)
    assert np.mean(same) == pytest.approx(0.75, abs=0.03)
    a, b = contextual_sbm(10, 2, degree=2, homophily=0.5, n_features=2, signal=1, seed=3)[:2], \
        contextual_sbm(10, 2, degree=2, homophily=0.5, n_features=2, signal=1, seed=3)[:2]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"degree": 50.0}, "too large"),
    ({"homophily": 1.5}, "homophily"),
    ({"n_features": 1}, "n_features"),
    ({"signal": -1.0}, "signal"),
], ids=["probability-above-one", "homophily", "too-few-features", "negative-signal"])
def test_contextual_sbm_rejects_bad_arguments(kwargs, message):
    args = {"degree": 3.0, "homophily": 0.8, "n_features": 4, "signal": 1.0, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        contextual_sbm(10, 3, **args)


def test_per_class_split_picks_n_of_every_class_and_returns_the_rest():
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0])
    picked, rest = per_class_split(y, 2, seed=4)
    assert torch.equal(torch.bincount(y[picked]), torch.tensor([2, 2, 2]))
    assert sorted(picked.tolist() + rest.tolist()) == list(range(11))
    assert torch.equal(picked, per_class_split(y, 2, seed=4)[0])
    with pytest.raises(ValueError, match="class 1 has 3 nodes"):
        per_class_split(y, 4, seed=0)


def test_adjacency_matrix_ignores_weights_and_rejects_non_graphs():
    graph = nx.Graph()
    graph.add_edge(0, 1, weight=5.0)
    graph.add_node(2)
    assert torch.equal(adjacency_matrix(graph),
                       torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=f64))
    for bad, message in ((np.eye(2), "graph must be a Graph"), (nx.Graph(), "at least 1 node")):
        with pytest.raises(ValueError, match=message):
            adjacency_matrix(bad)


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "iris", "wine"])
def test_bundled_classification_data_equal_scikit_learns_loaders(name):
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    X, y = bundled.classification_data(name)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert np.array_equal(X, bunch.data) and np.array_equal(y, bunch.target)


def test_diabetes_equals_scikit_learns_raw_data():
    from sklearn import datasets

    bunch = datasets.load_diabetes(scaled=False)
    X, y, names = bundled.diabetes(standardized=False)
    assert np.array_equal(X, bunch.data) and np.array_equal(y, bunch.target)
    assert names == list(bunch.feature_names)


@pytest.mark.parametrize(("name", "test_size", "seed"), [
    ("digits", 0.3, 0), ("digits", 797, 0), ("digits", 0.25, 7), ("breast_cancer", 0.3, 3),
    ("iris", 0.2, 11), ("wine", 0.5, 2), ("iris", 7, 5), ("wine", 0.33, 123)])
def test_stratified_split_is_scikit_learns_draw_for_draw(name, test_size, seed):
    from sklearn.model_selection import train_test_split

    _, y = bundled.classification_data(name)
    ours = bundled.stratified_split(y, test_size, seed)
    theirs = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed,
                              stratify=y)
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(a, b)


def test_stratified_split_rejects_what_scikit_learn_rejects():
    y = np.array([0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="two samples"):
        bundled.stratified_split(y, 0.4, 0)
    with pytest.raises(ValueError, match="test_size"):
        bundled.stratified_split(np.array([0, 1] * 5), 1.0, 0)
    with pytest.raises(ValueError, match="test_size"):
        bundled.stratified_split(np.array([0, 1] * 5), 10, 0)
