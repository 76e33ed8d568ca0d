r"""Masked graph autoencoders (GraphMAE) and the linear probe that scores their embeddings.
Used in chapter 9, "Graph neural networks".

:class:`GraphAutoencoder` encodes node features with two GCN layers
(:class:`dlnotes.graphs.GCNLayer`) and decodes them with a third;
:func:`train_graph_autoencoder` trains it by reconstructing the features of masked nodes
(Hou et al. 2022) or of all nodes; :func:`linear_probe_accuracy` measures how linearly
separable the classes are in the embeddings.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.graphs import GCNLayer, normalized_adjacency
from dlnotes.losses import scaled_cosine_error
from dlnotes.validation import (
    as_float_tensor,
    check_dim_size,
    check_in_range,
    check_int_at_least,
    check_length,
    check_positive,
)

__all__ = ["GraphAutoencoder", "train_graph_autoencoder", "linear_probe_accuracy"]


def _check_features(X: Any, n_nodes: int, n_features: int) -> torch.Tensor:
    """``X`` as a floating ``(n_nodes, n_features)`` tensor, one row per node."""
    X = as_float_tensor("X", X, 2)
    check_length("X", X, n_nodes, "rows (one per node)")
    check_dim_size("X", X, 1, n_features, "columns (in_features)")
    return X


class GraphAutoencoder(nn.Module):
    r"""A GraphMAE-style feature autoencoder: two GCN layers encode, one GCN layer decodes.

    :meth:`encode` is :math:`Z = \operatorname{ReLU}(\hat A\,\operatorname{ReLU}(\hat A X
    W_1^\top)W_2^\top)` (biases omitted here), :meth:`decode` is
    :math:`\hat A Z W_3^\top + b_3`; both take an already normalised, already checked
    :math:`\hat A` (the training loop's fast path); :meth:`embed` is the checked entry point.
    ``mask_token`` is the learned vector that replaces the features of masked nodes
    (GraphMAE's [MASK]); it is only used by :func:`train_graph_autoencoder` with a mask rate
    > 0. Parameters are float32 as built; call ``.double()`` for float64 features.

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

    def decode(self, Z: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:
        """Reconstructed features ``(N, in_features)`` (no argument checks)."""
        return self.dec.propagate(Z, A_hat)

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


def train_graph_autoencoder(
    model: GraphAutoencoder,
    X: torch.Tensor,
    A: Any,
    *,
    mask_rate: float,
    epochs: int,
    lr: float = 0.01,
    gamma: float = 3.0,
    seed: int = 0,
) -> list[float]:
    r"""Train a :class:`GraphAutoencoder` by feature reconstruction, masked or not.

    With ``mask_rate`` > 0 (GraphMAE, Hou et al. 2022): each epoch a random fraction
    ``mask_rate`` of the nodes has its features replaced by ``mask_token``; the embeddings of
    those nodes are zeroed again before decoding (GraphMAE's re-mask); the loss is the scaled
    cosine error (:func:`dlnotes.losses.scaled_cosine_error`, exponent ``gamma``, with
    GraphMAE's ε = 1e-12, so that a masked node without neighbours, whose reconstruction is
    zero before the decoder's bias has learned anything, counts as cosine 0) on the masked
    nodes only. With ``mask_rate`` = 0: a plain autoencoder, the same loss on every
    node of the uncorrupted input. Full-batch Adam.

    Parameters
    ----------
    model
        The autoencoder.
    X, A
        Features ``(N, F)`` and symmetric adjacency ``(N, N)``.
    mask_rate
        Fraction of nodes masked per epoch, in [0, 1).
    epochs
        Number of full-batch steps, ≥ 1.
    lr
        Adam step size, > 0.
    gamma
        Exponent of the scaled cosine error, > 0.
    seed
        Seeds the masks, non-negative.

    Returns
    -------
    list of float
        The loss at each epoch.

    Raises
    ------
    ValueError
        If an argument is out of range or the shapes do not match.
    """
    check_in_range("mask_rate", mask_rate, 0.0, 1.0)
    check_int_at_least("epochs", epochs, 1)
    check_positive("lr", lr)
    check_positive("gamma", gamma)
    check_int_at_least("seed", seed, 0)
    A_hat = normalized_adjacency(A).to(model.enc1.weight.dtype)
    X = _check_features(X, A_hat.shape[0], model.dec.out_features)
    n = X.shape[0]
    n_masked = max(1, round(mask_rate * n)) if mask_rate > 0 else 0
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    losses = []
    for _ in range(epochs):
        opt.zero_grad()
        if n_masked:
            masked = torch.randperm(n, generator=gen)[:n_masked]
            keep = torch.ones(n, 1, dtype=X.dtype)
            keep[masked] = 0.0
            Z = model.encode(X * keep + (1 - keep) * model.mask_token, A_hat)
            X_rec = model.decode(Z * keep, A_hat)
            loss = scaled_cosine_error(X[masked], X_rec[masked], gamma, eps=1e-12)
        else:
            loss = scaled_cosine_error(X, model.decode(model.encode(X, A_hat), A_hat), gamma,
                                       eps=1e-12)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


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
    check_positive("alpha", alpha)
    Z = as_float_tensor("Z", Z, 2).detach().to(torch.float64)
    check_length("Z", Z, y.shape[0], "rows (one per label)")
    Zt = Z[train_idx]
    std = Zt.std(dim=0, unbiased=False)
    Z = (Z - Zt.mean(dim=0)) / torch.where(std > 0, std, torch.ones_like(std))
    Zt = Z[train_idx]
    targets = 2.0 * F.one_hot(y[train_idx], int(y.max()) + 1).to(torch.float64) - 1.0
    t_mean = targets.mean(dim=0)
    B = torch.linalg.solve(Zt.T @ Zt + alpha * torch.eye(Z.shape[1], dtype=torch.float64),
                           Zt.T @ (targets - t_mean))
    pred = (Z[test_idx] @ B + t_mean).argmax(dim=1)
    return float((pred == y[test_idx]).double().mean())
