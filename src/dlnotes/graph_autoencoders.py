r"""Masked graph autoencoders (GraphMAE) and the linear probe that scores their embeddings.
Used in chapter 9, "Graph neural networks".

:class:`GraphAutoencoder` encodes node features with two GCN layers
(:class:`dlnotes.graphs.GCNLayer`) and decodes them with a third (or a linear layer);
:func:`train_graph_autoencoders` trains several side by side by reconstructing the features
of masked nodes (Hou et al. 2022) or of all nodes, with GraphMAE's design choices (re-mask,
GNN or MLP decoder, scaled cosine error or squared error) switchable per model for ablations;
:func:`linear_probe_accuracy` measures how linearly separable the classes are in the
embeddings, and :func:`probe_with_validation` chooses its penalty on validation nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.graphs import GCNLayer, normalized_adjacency
from dlnotes.training import History, fit_replicas, run_in_threads
from dlnotes.validation import (
    as_float_tensor,
    check_choice,
    check_dim_size,
    check_in_range,
    check_int_at_least,
    check_int_in_range,
    check_length,
    check_min_length,
    check_positive,
    per_replica,
)

__all__ = ["GraphAutoencoder", "train_graph_autoencoders", "linear_probe_accuracy",
           "probe_with_validation"]


def _check_features(X: Any, n_nodes: int, n_features: int) -> torch.Tensor:
    """``X`` as a floating ``(n_nodes, n_features)`` tensor, one row per node."""
    X = as_float_tensor("X", X, 2)
    check_length("X", X, n_nodes, "rows (one per node)")
    check_dim_size("X", X, 1, n_features, "columns (in_features)")
    return X


class GraphAutoencoder(nn.Module):
    r"""A GraphMAE-style feature autoencoder: two GCN layers encode, one layer decodes.

    :meth:`encode` is :math:`Z = \operatorname{ReLU}(\hat A\,\operatorname{ReLU}(\hat A X
    W_1^\top)W_2^\top)` (biases omitted here); :meth:`decode` is :math:`S Z W_3^\top + b_3`
    with the decoder's operator :math:`S`: :math:`\hat A` for a GNN decoder (GraphMAE's choice),
    the identity for a linear (single-layer MLP) decoder, the decoder of earlier feature
    autoencoders. Both take an already normalised, already checked operator (the training
    loop's fast path); :meth:`embed` is the checked entry point. ``mask_token`` is the learned
    vector that replaces the features of masked nodes (GraphMAE's [MASK]). Parameters are
    float32 as built; call ``.double()`` for float64 features.

    Parameters
    ----------
    in_features, hidden
        Feature and embedding sizes, ≥ 1.
    seed
        Seeds the three layers (``seed``, ``seed + 1``, ``seed + 2``), non-negative.
    """

    def __init__(self, in_features: int, hidden: int, *, seed: int = 0):
        super().__init__()
        check_int_at_least("seed", seed, 0)
        self.enc1 = GCNLayer(in_features, hidden, seed=seed)
        self.enc2 = GCNLayer(hidden, hidden, seed=seed + 1)
        self.dec = GCNLayer(hidden, in_features, seed=seed + 2)
        self.mask_token = nn.Parameter(torch.zeros(in_features))

    def encode(self, X: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:
        """Node embeddings ``(N, hidden)`` (no argument checks)."""
        return torch.relu(self.enc2.propagate(torch.relu(self.enc1.propagate(X, A_hat)),
                                              A_hat))

    def decode(self, Z: torch.Tensor, operator: torch.Tensor) -> torch.Tensor:
        """Reconstructed features ``(N, in_features)``: ``operator @ Z @ W3.T + b3``."""
        return self.dec.propagate(Z, operator)

    def forward(self, X: torch.Tensor, A_hat: torch.Tensor, keep: torch.Tensor,
                remask: torch.Tensor | float, decoder_operator: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``X`` ``(N, F)`` with the nodes where ``keep`` ``(N, 1)`` is 0
        masked: their input replaced by ``mask_token`` and, if ``remask`` is 1, their
        embedding zeroed before decoding (GraphMAE's re-mask). No argument checks."""
        Z = self.encode(X * keep + (1 - keep) * self.mask_token, A_hat)
        return self.decode(Z * (1 - remask * (1 - keep)), decoder_operator)

    def embed(self, X: Any, A: Any) -> torch.Tensor:
        """Embeddings of the uncorrupted graph, ``(N, hidden)``, without gradients.

        Raises
        ------
        ValueError
            If ``A`` is not a valid symmetric adjacency or ``X`` does not match it.
        """
        A_hat = normalized_adjacency(A).to(self.enc1.weight.dtype)
        X = _check_features(X, A_hat.shape[0], self.enc1.in_features)
        with torch.no_grad():
            return self.encode(X, A_hat)


def _reconstruction_loss(model, keep, scored, *, X, A_hat, decoder_operator, masked, remask,
                         mse, gamma):
    """One replica's loss, its design choices given as numbers (vmap-friendly): reconstruct
    from the input masked where ``keep`` is 0 (if ``masked``), score the rows ``scored`` by the
    scaled cosine error with exponent ``gamma`` (``mse`` = 0) or the squared error (1)."""
    keep = 1 - masked * (1 - keep)
    rec, target = model(X, A_hat, keep, remask, decoder_operator)[scored], X[scored]
    cos = (F.normalize(target, dim=1, eps=1e-12) * F.normalize(rec, dim=1, eps=1e-12)).sum(1)
    sce = ((1.0 - cos).clamp(min=0.0) ** gamma).mean()  # losses.scaled_cosine_error (tested)
    return mse * ((rec - target) ** 2).mean() + (1 - mse) * sce


def _one_per_model(name: str, value, n: int, choices) -> list:
    values = list(value) if isinstance(value, list | tuple) else [value] * n
    check_length(name, values, n, "values (one per model)")
    for v in values:
        check_choice(name, v, choices)
    return values


def train_graph_autoencoders(
    models: Sequence[GraphAutoencoder],
    graphs: Sequence[tuple[Any, Any]],
    *,
    epochs: int,
    seeds: Sequence[int],
    mask_rate: float = 0.5,
    lr: float = 0.01,
    masked: bool | Sequence[bool] = True,
    remask: bool | Sequence[bool] = True,
    decoder: str | Sequence[str] = "gnn",
    loss: str | Sequence[str] = "sce",
    gamma: float | Sequence[float] = 3.0,
    threads: int = 1,
) -> History:
    r"""Train graph autoencoders side by side (:func:`dlnotes.training.fit_replicas`), each on
    its own graph and with its own design choices: GraphMAE (Hou et al. 2022) and its ablations.

    Each epoch (one full-batch Adam step) model :math:`r` draws, from a generator seeded with
    ``seeds[r]``, a random set of ``round(mask_rate · N)`` nodes (at least one), and is scored
    on those nodes only. If ``masked[r]`` (GraphMAE) their features are replaced by
    ``mask_token`` and, if ``remask[r]``, their embeddings are zeroed again before decoding; if
    not (a plain autoencoder), nothing is masked and the drawn nodes are an unbiased sample of
    the loss over all nodes. The decoder is a GCN layer (``"gnn"``) or the same layer without
    propagation (``"mlp"``); the score is the scaled cosine error with exponent ``gamma[r]``
    (``"sce"``, :func:`dlnotes.losses.scaled_cosine_error` with GraphMAE's ε = 1e-12, so that a
    zero reconstruction counts as cosine 0) or the mean squared error (``"mse"``). Each model
    equals its own :func:`dlnotes.training.fit` run (tested), so models with the same seed see
    the same masks: a paired design. With ``threads`` > 1 the models are split into that many
    consecutive groups, trained side by side on their own threads at once
    (:func:`dlnotes.training.run_in_threads`): the same models, sooner on as many cores.

    Parameters
    ----------
    models
        Autoencoders of one architecture.
    graphs
        One ``(X, A)`` per model: features ``(N, F)`` and symmetric adjacency ``(N, N)``, the
        same ``N`` for all.
    epochs
        Number of full-batch steps, ≥ 1.
    seeds
        One non-negative seed per model for its masks.
    mask_rate
        Fraction of nodes drawn per epoch, in (0, 1).
    lr
        Adam step size, > 0.
    masked, remask, decoder, loss, gamma
        GraphMAE's design choices: one value for all models or one per model (``gamma`` > 0).
    threads
        How many groups of models train at the same time, 1 ≤ ``threads`` ≤ ``len(models)``.

    Returns
    -------
    History
        ``history.loss`` ``(1, R)``: the mean loss over the epochs.

    Raises
    ------
    ValueError
        If an argument is out of range or the shapes do not match.
    """
    check_min_length("models", models, 1, "autoencoders")
    R = len(models)
    check_length("graphs", graphs, R, "graphs (one per model)")
    check_length("seeds", seeds, R, "seeds (one per model)")
    check_in_range("mask_rate", mask_rate, 0.0, 1.0, low_inclusive=False)
    check_int_at_least("epochs", epochs, 1)
    flags = {name: _one_per_model(name, value, R, choices) for name, value, choices in (
        ("masked", masked, [True, False]), ("remask", remask, [True, False]),
        ("decoder", decoder, ["gnn", "mlp"]), ("loss", loss, ["sce", "mse"]))}
    gammas = per_replica("gamma", gamma, R, check_positive)
    check_int_in_range("threads", threads, 1, R)
    dtype = models[0].enc1.weight.dtype
    A_hats = torch.stack([normalized_adjacency(A).to(dtype) for _, A in graphs])
    n = A_hats.shape[1]
    X = torch.stack([_check_features(X, n, models[0].dec.out_features).to(dtype)
                     for X, _ in graphs])
    eye = torch.eye(n, dtype=dtype)
    kwargs = {"X": X, "A_hat": A_hats,
              "decoder_operator": torch.stack([A_hats[r] if d == "gnn" else eye
                                               for r, d in enumerate(flags["decoder"])]),
              "masked": torch.tensor(flags["masked"], dtype=dtype),
              "remask": torch.tensor(flags["remask"], dtype=dtype),
              "mse": torch.tensor([v == "mse" for v in flags["loss"]], dtype=dtype),
              "gamma": torch.tensor(gammas, dtype=dtype)}
    n_drawn = max(1, round(mask_rate * n))

    def draw(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        drawn = torch.randperm(n, generator=generator)[:n_drawn]
        keep = torch.ones(n, 1, dtype=dtype)
        keep[drawn] = 0.0
        return keep, drawn

    def train(group: range) -> History:
        return fit_replicas([models[r] for r in group], _reconstruction_loss, draw,
                            generators=[torch.Generator().manual_seed(seeds[r]) for r in group],
                            steps=epochs, optimizer="adam", lr=lr,
                            replica_kwargs={k: v[group.start:group.stop]
                                            for k, v in kwargs.items()})

    bounds = [round(i * R / threads) for i in range(threads + 1)]
    groups = [range(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    if threads == 1:
        return train(groups[0])
    return History.side_by_side(list(run_in_threads(
        {i: partial(train, group) for i, group in enumerate(groups)}, threads=threads).values()))


def _ridge_scores(Z: Any, y: torch.Tensor, train_idx: torch.Tensor,
                  alphas: Sequence[float]) -> list[torch.Tensor]:
    """The ridge classifier's scores ``(N, k)`` for every row of ``Z``, one tensor per penalty
    (see :func:`linear_probe_accuracy`); one eigendecomposition serves every penalty."""
    for i, alpha in enumerate(alphas):
        check_positive(f"alphas[{i}]", alpha)
    Z = as_float_tensor("Z", Z, 2).detach().to(torch.float64)
    check_length("Z", Z, y.shape[0], "rows (one per label)")
    Zt = Z[train_idx]
    std = Zt.std(dim=0, unbiased=False)
    Z = (Z - Zt.mean(dim=0)) / torch.where(std > 0, std, torch.ones_like(std))
    Zt = Z[train_idx]
    targets = _targets(y, train_idx, int(y.max()) + 1)
    t_mean = targets.mean(dim=0)
    eigenvalues, V = torch.linalg.eigh(Zt.T @ Zt)
    projected = V.T @ (Zt.T @ (targets - t_mean))
    return [Z @ (V @ (projected / (eigenvalues + alpha)[:, None])) + t_mean for alpha in alphas]


def _targets(y: torch.Tensor, idx: torch.Tensor, k: int) -> torch.Tensor:
    return 2.0 * F.one_hot(y[idx], k).to(torch.float64) - 1.0


def linear_probe_accuracy(
    Z: Any,
    y: torch.Tensor,
    train_idx: torch.Tensor,
    test_idx: torch.Tensor,
    *,
    alpha: float = 1.0,
) -> float:
    r"""Accuracy on ``test_idx`` of a ridge classifier fitted on ``train_idx``.

    The embeddings are standardised with the training rows' mean and standard deviation
    (constant columns stay 0); targets are ±1 one-vs-rest indicators; the weights solve
    :math:`(Z^\top Z + \alpha I)B = Z^\top T` with an unpenalised intercept (columns and targets
    centred on the training rows); the prediction is the arg-max. This is scikit-learn's
    ``RidgeClassifier(alpha)`` (tested), a closed form that needs no iterations: a cheap,
    deterministic way to score how linearly separable the classes are in ``Z``.

    Parameters
    ----------
    Z
        Embeddings ``(N, d)``.
    y
        Labels ``(N,)``, int64, classes ``0 … k-1``.
    train_idx, test_idx
        Index tensors of the rows to fit and to score.
    alpha
        Ridge penalty, > 0.

    Returns
    -------
    float
        Fraction of ``test_idx`` classified correctly.

    Raises
    ------
    ValueError
        If ``Z`` is not a finite 2-D array with one row per label, or ``alpha`` ≤ 0.
    """
    pred = _ridge_scores(Z, y, train_idx, [alpha])[0][test_idx].argmax(dim=1)
    return float((pred == y[test_idx]).double().mean())


def probe_with_validation(
    Z: Any,
    y: torch.Tensor,
    train_idx: torch.Tensor,
    val_idx: torch.Tensor,
    test_idx: torch.Tensor,
    *,
    alphas: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0),
) -> tuple[float, float]:
    """Test accuracy of the ridge probe (:func:`linear_probe_accuracy`) whose penalty fits the
    validation nodes best, and that penalty.

    The penalty minimises the ridge classifier's own loss on ``val_idx``, the mean squared
    error of its scores against the ±1 targets: a continuous criterion, so that the choice
    does not hang on ties between validation accuracies (which a change of arithmetic in the
    last digits of the embeddings could break either way).

    Raises
    ------
    ValueError
        If ``alphas`` is empty or as :func:`linear_probe_accuracy`.
    """
    check_min_length("alphas", alphas, 1, "penalties")
    k = int(y.max()) + 1
    scores = _ridge_scores(Z, y, train_idx, alphas)
    errors = [float(((s[val_idx] - _targets(y, val_idx, k)) ** 2).mean()) for s in scores]
    best = min(range(len(alphas)), key=errors.__getitem__)
    pred = scores[best][test_idx].argmax(dim=1)
    return float((pred == y[test_idx]).double().mean()), alphas[best]
