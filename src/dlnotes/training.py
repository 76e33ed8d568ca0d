"""Tiny building blocks for the book's small training experiments (MLPs, mini-batches)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.validation import (
    check_finite,
    check_int_at_least,
    check_nonnegative,
    check_positive,
    check_same_rows,
    check_same_shape,
)

__all__ = ["mlp", "minibatches", "accuracy", "loss_objective", "train_classifier",
           "first_epoch_reaching", "relu_activity", "permute_hidden_units", "Objective"]


def mlp(
    sizes: Sequence[int],
    activation: Callable[[], nn.Module] = nn.ReLU,
    *,
    bias_init: float | None = None,
    seed: int | None = None,
) -> nn.Sequential:
    """A fully connected network ``sizes[0] → … → sizes[-1]`` with ``activation`` between.

    Parameters
    ----------
    sizes
        Layer widths, at least two entries, each ≥ 1.
    activation
        Factory of the nonlinearity placed after every layer except the last.
    bias_init
        If given, every bias is set to this constant (PyTorch's default otherwise).
    seed
        If given, the initial weights are drawn from a generator seeded with it, so
        ``mlp(sizes, seed=s)`` is the same network wherever it is called; the global torch
        state is left untouched. If ``None``, the global torch generator is used.

    Raises
    ------
    ValueError
        If fewer than two sizes are given or a size is < 1.
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes must have at least 2 entries, got {list(sizes)}")
    for i, s in enumerate(sizes):
        check_int_at_least(f"sizes[{i}]", s, 1)
    if seed is not None:
        check_int_at_least("seed", seed, 0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return mlp(sizes, activation, bias_init=bias_init)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(n_in, n_out)
        if bias_init is not None:
            nn.init.constant_(linear.bias, bias_init)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Yield index tensors of a random permutation of ``range(n)``, ``batch_size`` at a time.

    The last batch may be smaller. The permutation is drawn from ``generator``.
    """
    check_int_at_least("n", n, 1)
    check_int_at_least("batch_size", batch_size, 1)
    order = torch.randperm(n, generator=generator)
    yield from order.split(batch_size)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max logit equals the label (binary: logit > 0 ⇔ label 1)."""
    if logits.ndim == 1:
        check_same_shape("logits", logits, "labels", labels)
        pred = (logits > 0).to(labels.dtype)
    else:
        check_same_rows("logits", logits, "labels", labels)
        pred = logits.argmax(dim=1)
    return float((pred == labels).float().mean())


#: ``objective(model, X_batch, y_batch) -> (to_minimise, to_record)``
Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def loss_objective(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Objective:
    """The objective that minimises and records ``loss_fn(model(X_batch), y_batch)``."""

    def objective(model: nn.Module, X: torch.Tensor, y: torch.Tensor):
        loss = loss_fn(model(X), y)
        return loss, loss

    return objective


def train_classifier(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    objective: Objective | None = None,
    seed: int = 0,
    on_epoch_end: Callable[[nn.Module], dict[str, float]] | None = None,
    max_steps: int | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` with mini-batch SGD and return per-epoch metrics.

    Parameters
    ----------
    model
        Maps a batch of ``X`` to logits.
    X, y
        Training features ``(n, d)`` and integer labels ``(n,)``.
    epochs, lr, batch_size, weight_decay
        Plain SGD hyper-parameters (``epochs`` ≥ 1, ``lr`` > 0, ``weight_decay`` ≥ 0).
    objective
        ``objective(model, X_batch, y_batch) -> (to_minimise, to_record)``; ``to_record`` is
        what ``"train_loss"`` averages. ``None`` means cross-entropy on the logits; wrap any
        other loss of the logits with :func:`loss_objective` (label smoothing in chapter 5),
        or write a regularised objective directly (chapter 3's weight noise).
    seed
        Seeds the mini-batch order (independent of the global torch state).
    on_epoch_end
        Optional ``callback(model) -> {name: value}`` whose values are recorded each epoch
        (called under ``torch.no_grad`` with the model in eval mode).
    max_steps
        If given (≥ 1), training stops after this many optimiser steps, cutting the last epoch
        short; runs with different batch sizes can so take the same number of steps.

    Returns
    -------
    dict
        ``"train_loss"`` (mean mini-batch loss of each epoch) and one list per callback key.
    """
    check_int_at_least("epochs", epochs, 1)
    check_positive("lr", lr)
    check_nonnegative("weight_decay", weight_decay)
    check_same_rows("X", X, "y", y)
    if max_steps is not None:
        check_int_at_least("max_steps", max_steps, 1)
    if objective is None:
        objective = loss_objective(F.cross_entropy)
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"train_loss": []}
    steps = 0
    for _ in range(epochs):
        if max_steps is not None and steps >= max_steps:
            break
        model.train()
        total, count = 0.0, 0
        for idx in minibatches(X.shape[0], batch_size, gen):
            if max_steps is not None and steps >= max_steps:
                break
            steps += 1
            opt.zero_grad()
            to_minimise, recorded = objective(model, X[idx], y[idx])
            to_minimise.backward()
            opt.step()
            total += recorded.item() * len(idx)
            count += len(idx)
        history["train_loss"].append(total / count)
        if on_epoch_end is not None:
            model.eval()
            with torch.no_grad():
                for key, value in on_epoch_end(model).items():
                    history.setdefault(key, []).append(float(value))
    return history


def first_epoch_reaching(curve: Sequence[float], target: float) -> int | None:
    """The first epoch (counted from 1) at which ``curve`` reaches ``target``, else ``None``.

    Used in chapter 6 for "epochs until the test accuracy first reaches 0.9".
    """
    check_finite("target", target)
    return next((i + 1 for i, value in enumerate(curve) if value >= target), None)


def relu_activity(model: nn.Sequential, X: torch.Tensor) -> list[torch.Tensor]:
    """For each ``nn.ReLU`` in ``model``, the fraction of rows of ``X`` on which each unit fires.

    A unit whose fraction is 0 never activates on ``X`` (a "dead" unit): it passes no
    gradient to the weights feeding it. Returns one tensor of shape ``(width,)`` per ReLU.
    """
    fractions = []
    h = X
    with torch.no_grad():
        for layer in model:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                fractions.append((h > 0).float().mean(dim=0))
    return fractions


def permute_hidden_units(net: nn.Sequential, perm: torch.Tensor) -> nn.Sequential:
    """A copy of a one-hidden-layer ``Linear → activation → Linear`` net with its hidden
    units reordered by ``perm``.

    The function the network computes is unchanged (the units are only relabelled), but the
    parameter vector is a different point: the reason a network's loss surface has many
    equivalent minima and cannot be convex (chapter 1).

    Raises
    ------
    ValueError
        If ``net`` is not ``[Linear, activation, Linear]`` or ``perm`` is not a permutation
        of its hidden units.
    """
    if len(net) != 3 or not isinstance(net[0], nn.Linear) or not isinstance(net[2], nn.Linear):
        raise ValueError("net must be nn.Sequential(Linear, activation, Linear)")
    width = net[0].out_features
    if sorted(perm.tolist()) != list(range(width)):
        raise ValueError(f"perm must be a permutation of range({width})")
    out = copy.deepcopy(net)
    with torch.no_grad():
        out[0].weight.copy_(net[0].weight[perm])
        out[0].bias.copy_(net[0].bias[perm])
        out[2].weight.copy_(net[2].weight[:, perm])
    return out
