"""dlnotes.graph_autoencoders: the linear probe against scikit-learn's RidgeClassifier, and
GraphMAE training that lowers its loss and repeats exactly."""

import pytest
import torch
from sklearn.linear_model import RidgeClassifier

from dlnotes.data import contextual_sbm, per_class_split
from dlnotes.graph_autoencoders import (
    GraphAutoencoder,
    linear_probe_accuracy,
    train_graph_autoencoder,
)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_linear_probe_matches_sklearn_ridge_classifier(n_classes):
    A, X, y = contextual_sbm(30, n_classes, degree=3.0, homophily=0.8, n_features=6,
                             signal=1.0, seed=n_classes)
    train, test = per_class_split(y, 15, seed=0)
    Xt = X[train]
    std = Xt.std(0, unbiased=False)
    Z = ((X - Xt.mean(0)) / std).numpy()
    for alpha in (0.1, 1.0, 30.0):
        sk = RidgeClassifier(alpha=alpha).fit(Z[train], y[train].numpy())
        expected = float((sk.predict(Z[test]) == y[test].numpy()).mean())
        assert linear_probe_accuracy(X, y, train, test, alpha=alpha) == expected


def test_graph_autoencoder_training_lowers_its_loss_and_is_reproducible():
    A, X, _ = contextual_sbm(20, 3, degree=4.0, homophily=0.8, n_features=6, signal=1.0, seed=0)
    runs = {}
    for rate in (0.0, 0.5, 0.5):
        model = GraphAutoencoder(6, 12, seed=1).double()
        losses = train_graph_autoencoder(model, X, A, mask_rate=rate, epochs=40, seed=2)
        assert losses[-1] < losses[0]
        runs.setdefault(rate, []).append((losses, model.embed(X, A)))
    (l1, z1), (l2, z2) = runs[0.5]
    assert l1 == l2 and torch.equal(z1, z2) and z1.shape == (60, 12)
    assert not torch.equal(runs[0.0][0][1], z1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mask_rate": 1.0}, "mask_rate"),
    ({"epochs": 0}, "epochs"),
    ({"gamma": 0.0}, "gamma"),
    ({"lr": -1.0}, "lr"),
], ids=["mask-rate-one", "no-epochs", "gamma-zero", "negative-lr"])
def test_train_graph_autoencoder_rejects_bad_arguments(kwargs, message):
    A, X, _ = contextual_sbm(5, 2, degree=2.0, homophily=0.8, n_features=3, signal=1.0, seed=0)
    args = {"mask_rate": 0.5, "epochs": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        train_graph_autoencoder(GraphAutoencoder(3, 4).double(), X, A, **args)
