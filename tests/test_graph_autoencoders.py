"""dlnotes.graph_autoencoders: the linear probe against scikit-learn's RidgeClassifier, and
GraphMAE's variants trained side by side against separate runs of a loss written directly."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge, RidgeClassifier

from dlnotes.data import contextual_sbm, per_class_split
from dlnotes.graph_autoencoders import (
    GraphAutoencoder,
    linear_probe_accuracy,
    probe_with_validation,
    train_graph_autoencoders,
)
from dlnotes.graphs import normalized_adjacency
from dlnotes.losses import scaled_cosine_error
from dlnotes.training import fit

f64 = torch.float64


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


def reference_loss(model, keep, drawn, *, X, A_hat, masked, remask, decoder, loss, gamma):
    """GraphMAE's loss written directly, with dlnotes.losses.scaled_cosine_error."""
    keep = keep if masked else torch.ones_like(keep)
    Z = model.encode(X * keep + (1 - keep) * model.mask_token, A_hat)
    Z = Z * keep if remask else Z
    X_rec = model.decode(Z, A_hat if decoder == "gnn" else torch.eye(X.shape[0], dtype=X.dtype))
    if loss == "mse":
        return F.mse_loss(X_rec[drawn], X[drawn])
    return scaled_cosine_error(X[drawn], X_rec[drawn], gamma, eps=1e-12)


class Alone(torch.nn.Module):
    """One autoencoder with the call signature fit's loss expects."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *args):
        return self.model(*args)


VARIANTS = [
    {"masked": True, "remask": True, "decoder": "gnn", "loss": "sce", "gamma": 3.0},
    {"masked": False, "remask": True, "decoder": "gnn", "loss": "sce", "gamma": 3.0},
    {"masked": True, "remask": False, "decoder": "mlp", "loss": "sce", "gamma": 1.0},
    {"masked": True, "remask": True, "decoder": "gnn", "loss": "mse", "gamma": 2.0},
]


def test_side_by_side_variants_equal_separate_fit_runs_of_the_reference_loss():
    graphs = [contextual_sbm(5, 3, degree=3.0, homophily=0.8, n_features=6, signal=1.0,
                             seed=s)[:2] for s in range(len(VARIANTS))]
    models = [GraphAutoencoder(6, 8, seed=s).double() for s in range(len(VARIANTS))]
    alone = [GraphAutoencoder(6, 8, seed=s).double() for s in range(len(VARIANTS))]
    choices = {k: [v[k] for v in VARIANTS] for k in VARIANTS[0]}
    history = train_graph_autoencoders(models, [(X, A) for A, X in graphs], epochs=8,
                                       seeds=[3, 4, 5, 6], lr=0.05, **choices)
    assert history.loss.shape == (1, 4)
    for model, (A, X), variant, seed in zip(alone, graphs, VARIANTS, (3, 4, 5, 6), strict=True):
        def draw(g, n=X.shape[0]):
            drawn = torch.randperm(n, generator=g)[:round(0.5 * n)]
            keep = torch.ones(n, 1, dtype=f64)
            keep[drawn] = 0.0
            return keep, drawn

        def loss(wrapper, keep, drawn, variant=variant, X=X, A=A):
            return reference_loss(wrapper.model, keep, drawn, X=X.double(),
                                  A_hat=normalized_adjacency(A), **variant)

        fit(Alone(model), loss, draw, steps=8, optimizer="adam", lr=0.05,
            generator=torch.Generator().manual_seed(seed))
    for trained, reference in zip(models, alone, strict=True):
        for p, q in zip(trained.parameters(), reference.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-9)


def test_models_trained_in_groups_on_threads_equal_one_side_by_side_run():
    graphs = [contextual_sbm(5, 3, degree=3.0, homophily=0.8, n_features=6, signal=1.0,
                             seed=s)[:2] for s in range(len(VARIANTS))]
    choices = {k: [v[k] for v in VARIANTS] for k in VARIANTS[0]}
    runs = {}
    for threads in (1, 3):
        models = [GraphAutoencoder(6, 8, seed=s).double() for s in range(len(VARIANTS))]
        history = train_graph_autoencoders(models, [(X, A) for A, X in graphs], epochs=8,
                                           seeds=[3, 4, 5, 6], lr=0.05, threads=threads,
                                           **choices)
        runs[threads] = history, models
    (one, alone), (three, grouped) = runs[1], runs[3]
    assert three.loss.shape == (1, 4) and three.step == one.step
    np.testing.assert_allclose(three.loss, one.loss, rtol=1e-12)
    for trained, reference in zip(grouped, alone, strict=True):
        for p, q in zip(trained.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    assert not torch.equal(grouped[0].enc1.weight, grouped[1].enc1.weight)  # really trained


def test_re_masking_before_a_linear_decoder_leaves_the_encoder_untrained():
    A, X, _ = contextual_sbm(5, 3, degree=3.0, homophily=0.8, n_features=6, signal=1.0, seed=0)
    model = GraphAutoencoder(6, 8, seed=1).double()
    before = model.enc1.weight.detach().clone()
    train_graph_autoencoders([model], [(X, A)], epochs=5, seeds=[0], lr=0.05, decoder="mlp")
    assert torch.equal(model.enc1.weight.detach(), before)


def test_probe_with_validation_scores_the_test_nodes_with_the_best_validation_penalty():
    A, X, y = contextual_sbm(30, 3, degree=3.0, homophily=0.8, n_features=6, signal=1.0,
                             seed=2)
    train, rest = per_class_split(y, 8, seed=0)
    val, test = rest[:30], rest[30:]
    alphas = (0.01, 1.0, 100.0)
    acc, alpha = probe_with_validation(X, y, train, val, test, alphas=alphas)
    Xt = X[train]
    Z = ((X - Xt.mean(0)) / Xt.std(0, unbiased=False)).numpy()
    targets = 2 * np.eye(3)[y.numpy()] - 1
    errors = [((Ridge(alpha=a).fit(Z[train], targets[train]).predict(Z[val]) - targets[val])
               ** 2).mean() for a in alphas]
    assert alpha == alphas[int(np.argmin(errors))]
    assert acc == linear_probe_accuracy(X, y, train, test, alpha=alpha)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mask_rate": 1.0}, "mask_rate"),
    ({"epochs": 0}, "epochs"),
    ({"gamma": 0.0}, "gamma"),
    ({"lr": -1.0}, "lr"),
    ({"decoder": "transformer"}, "decoder"),
    ({"loss": ["sce", "mse"]}, "loss"),
    ({"threads": 0}, "threads"),
    ({"threads": 2}, "threads"),
], ids=["mask-rate-one", "no-epochs", "gamma-zero", "negative-lr", "decoder", "loss-count",
        "no-threads", "threads-over-models"])
def test_train_graph_autoencoders_rejects_bad_arguments(kwargs, message):
    A, X, _ = contextual_sbm(5, 2, degree=2.0, homophily=0.8, n_features=3, signal=1.0, seed=0)
    args = {"epochs": 2, "seeds": [0]} | kwargs
    with pytest.raises(ValueError, match=message):
        train_graph_autoencoders([GraphAutoencoder(3, 4).double()], [(X, A)], **args)
