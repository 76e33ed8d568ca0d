r"""Robustness to noise at test time. Used in chapter 3, "Noise injection as regularisation".

Notes ``000`` and ``004`` say that noise in real data hurts a model's predictions and that
training with noise makes it robust; note ``003`` that a complex model's predictions change under
small changes of its input. :func:`digit_pixels` gives scikit-learn's digits in units of the
pixel spread, so that noise is measured in gray levels; :func:`noise_injection_loss` with
:func:`noise_injection_batches` trains plain, input-noise, weight-noise, dropout and
label-smoothing networks side by side (:func:`dlnotes.training.fit_replicas`);
:func:`accuracy_under_input_noise` scores them on noisy test images; :func:`input_sensitivity`
measures how much a prediction moves per unit change of the input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.data import Split, classification_data, stratified_split
from dlnotes.validation import (
    as_float_array,
    check_in_range,
    check_int_at_least,
    check_length,
    check_min_length,
    check_nonnegative,
    check_positive,
    check_same_rows,
    check_tensor,
)

#: Added to a replica's seed to seed its noise, kept apart from its batches.
_NOISE_SEED_OFFSET = 1_000_003

__all__ = [
    "digit_pixels",
    "noise_injection_batches",
    "noise_injection_loss",
    "accuracy_under_input_noise",
    "input_sensitivity",
]


def digit_pixels(test_size: float = 0.3, seed: int = 0) -> tuple[Split, float]:
    r"""scikit-learn's digits, split as :func:`dlnotes.data.classification_split` splits them,
    in units of the pixel spread.

    Every pixel (gray levels 0–16) is centred by the mean intensity of all training pixels and
    divided by their standard deviation :math:`s`: one number for all pixels, so that noise of
    :math:`\sigma` gray levels on an image is :math:`\sigma/s` in these units for every pixel
    alike. (Standardising each pixel separately would amplify noise on the nearly constant
    border pixels by their tiny spread.)

    Returns
    -------
    split, scale
        The split (float64 features, int64 labels) and :math:`s` in gray levels.

    Raises
    ------
    ValueError
        As :func:`dlnotes.data.classification_split`.
    """
    check_in_range("test_size", test_size, 0.0, 1.0, low_inclusive=False)
    check_int_at_least("seed", seed, 0)
    images, labels = classification_data("digits")  # scikit-learn's, read without importing it
    train, test = stratified_split(labels, test_size, seed)  # train_test_split's, draw for draw
    X_tr, X_te, y_tr, y_te = images[train], images[test], labels[train], labels[test]
    mean, scale = X_tr.mean(), X_tr.std()
    as_tensor = partial(torch.as_tensor, dtype=torch.float64)
    return Split(as_tensor((X_tr - mean) / scale), torch.as_tensor(y_tr),
                 as_tensor((X_te - mean) / scale), torch.as_tensor(y_te)), float(scale)


def noise_injection_batches(
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    generators: Sequence[torch.Generator],
    n_params: int,
    hidden: int,
    input_noise: Sequence[bool],
    weight_noise: Sequence[bool],
    dropout: Sequence[bool],
) -> Callable[[torch.Generator], tuple[torch.Tensor, ...]]:
    r"""A batch-drawing function for :func:`dlnotes.training.fit_replicas` that also draws each
    replica's noise.

    ``data(generator)`` draws ``batch_size`` rows with replacement from ``generator`` and, from a
    second generator seeded from it, only the noise that this replica's setting needs (drawing
    Gaussian noise for every replica would cost more than the training): standard-normal input
    noise ``(batch_size, d)``, uniform numbers for a dropout mask ``(batch_size, hidden)`` and
    standard-normal weight noise ``(n_params,)``; what a replica does not need is returned as
    zeros (ones for the uniforms, which keep every unit). The replica is recognised by its
    generator, the object ``fit_replicas`` passes. Replicas whose generators have the same seed
    draw the same batches, whatever noise they draw: a paired design across settings.

    Parameters
    ----------
    X, y
        Training inputs ``(n, d)`` and labels ``(n,)``.
    batch_size
        Rows per batch, ≥ 1.
    generators
        One generator per replica, the list given to ``fit_replicas``.
    n_params, hidden
        The network's number of parameters and hidden units.
    input_noise, weight_noise, dropout
        One flag per replica: does it need that kind of noise?

    Returns
    -------
    callable
        ``data(generator) -> (X_batch, y_batch, input_noise, uniforms, weight_noise)``.

    Raises
    ------
    ValueError
        For flags not one per generator, or bad sizes.
    """
    check_same_rows("X", X, "y", y)
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("n_params", n_params, 1)
    check_int_at_least("hidden", hidden, 1)
    for name, flags in (("input_noise", input_noise), ("weight_noise", weight_noise),
                        ("dropout", dropout)):
        check_length(name, flags, len(generators), "flags (one per generator)")
    needs = {id(g): flags for g, *flags in zip(generators, input_noise, weight_noise, dropout,
                                              strict=True)}
    noise_sources = {id(g): torch.Generator().manual_seed(g.initial_seed() + _NOISE_SEED_OFFSET)
                     for g in generators}
    n, d = X.shape
    # What a replica does not need is one shared constant (fit_replicas stacks copies of it).
    no_input, keep_all, no_weights = (X.new_zeros(batch_size, d), X.new_ones(batch_size, hidden),
                                      X.new_zeros(n_params))

    def draw(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        wants_input, wants_weight, wants_dropout = needs[id(generator)]
        idx = torch.randint(0, n, (batch_size,), generator=generator)
        noise = noise_sources[id(generator)]
        return (X[idx], y[idx],
                torch.randn(batch_size, d, generator=noise, dtype=X.dtype) if wants_input
                else no_input,
                torch.rand(batch_size, hidden, generator=noise, dtype=X.dtype) if wants_dropout
                else keep_all,
                torch.randn(n_params, generator=noise, dtype=X.dtype) if wants_weight
                else no_weights)

    return draw


def noise_injection_loss(
    model: Callable,
    X: torch.Tensor,
    y: torch.Tensor,
    input_noise: torch.Tensor,
    uniforms: torch.Tensor,
    weight_noise: torch.Tensor,
    *,
    input_std: torch.Tensor | float = 0.0,
    weight_std: torch.Tensor | float = 0.0,
    dropout: torch.Tensor | float = 0.0,
    smoothing: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    r"""Cross-entropy of a one-hidden-layer ReLU network with noise injected where asked.

    For ``Sequential(Linear, ReLU, Linear)`` with parameters :math:`\theta` (in
    ``named_parameters`` order) and the draws of :func:`noise_injection_batches`:

    .. math::
        h = \frac{m}{1-p}\odot\operatorname{relu}\bigl(W_1(x + \sigma_x z_x) + b_1\bigr),
        \quad z = W_2 h + b_2 \ \text{at}\ \theta + \sigma_w z_w ,
        \quad \ell = -(1-\varepsilon)\log p_y - \frac{\varepsilon}{k}\sum_j \log p_j ,

    with the dropout mask :math:`m = [u \ge p]` from the uniforms (inverted dropout, as
    :func:`dlnotes.dropout.dropout`) and label smoothing in PyTorch's convention. All four
    strengths 0 give the plain cross-entropy of the network. The strengths may be per-replica
    tensors (``replica_kwargs`` of :func:`dlnotes.training.fit_replicas`); nothing here reads a
    tensor's value, so it runs under :func:`torch.func.vmap`, and nothing is checked (the tests
    compare it with the network, :func:`torch.func.functional_call` and PyTorch's label
    smoothing).

    Parameters
    ----------
    model
        The network (or a replica of it), with parameters ``0.weight, 0.bias, 2.weight,
        2.bias``.
    X, y
        Inputs ``(B, d)`` and labels ``(B,)``.
    input_noise, uniforms, weight_noise
        Standard-normal ``(B, d)``, uniform ``(B, hidden)`` and standard-normal ``(P,)`` draws.
    input_std
        :math:`\sigma_x`, in the units of ``X``.
    weight_std
        :math:`\sigma_w = \sqrt\eta`.
    dropout
        :math:`p` in [0, 1), the probability of dropping a hidden unit.
    smoothing
        :math:`\varepsilon` in [0, 1).

    Returns
    -------
    torch.Tensor
        Scalar, the mean loss over the batch.
    """
    names = [name for name, _ in model.named_parameters()]
    flat = dict(zip(names, weight_noise.split([p.numel() for _, p in model.named_parameters()]),
                    strict=True))
    p = {name: param + weight_std * flat[name].reshape(param.shape)
         for name, param in model.named_parameters()}
    keep = (uniforms >= dropout).to(X.dtype) / (1.0 - dropout)
    hidden = keep * torch.relu(F.linear(X + input_std * input_noise, p["0.weight"], p["0.bias"]))
    log_probs = F.log_softmax(F.linear(hidden, p["2.weight"], p["2.bias"]), dim=-1)
    log_label = log_probs.gather(-1, y[..., None])[..., 0]
    return -((1.0 - smoothing) * log_label + smoothing * log_probs.mean(dim=-1)).mean()


def accuracy_under_input_noise(
    models: Sequence[nn.Module],
    X: torch.Tensor,
    y: torch.Tensor,
    stds: Sequence[float],
    *,
    draws: int = 4,
    seed: int = 0,
) -> np.ndarray:
    r"""Test accuracy of each model on inputs with Gaussian noise of each standard deviation.

    Noise :math:`\sigma z` with :math:`z \sim \mathcal N(0, I)` is added to ``X``; the same
    ``draws`` noise patterns serve every model and every :math:`\sigma` (scaled), so models
    are compared on identical noisy inputs, and the accuracy is averaged over the draws.

    Parameters
    ----------
    models
        Classifiers mapping ``X`` to logits.
    X, y
        Test inputs ``(n, d)`` and labels ``(n,)``.
    stds
        Noise standard deviations σ ≥ 0, in the units of ``X``.
    draws
        Number of noise patterns, ≥ 1.
    seed
        Seed of the noise, ≥ 0.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(models), len(stds))``.

    Raises
    ------
    ValueError
        For a negative σ, mismatched ``X`` and ``y``, or a bad ``draws`` or ``seed``.
    """
    check_tensor("X", X, 2, finite=True)
    check_same_rows("X", X, "y", y)
    check_min_length("stds", stds, 1, "noise levels")
    for i, s in enumerate(stds):
        check_nonnegative(f"stds[{i}]", s)
    check_int_at_least("draws", draws, 1)
    check_int_at_least("seed", seed, 0)
    z = torch.randn(draws, *X.shape, generator=torch.Generator().manual_seed(seed),
                    dtype=X.dtype)
    out = np.zeros((len(models), len(stds)))
    with torch.no_grad():
        for j, s in enumerate(stds):
            noisy = (X + float(s) * z).reshape(-1, X.shape[1])
            for i, model in enumerate(models):
                out[i, j] = float((model(noisy).argmax(dim=1) == y.repeat(draws)).double().mean())
    return out


def input_sensitivity(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, *,
                      step: float = 1e-4) -> np.ndarray:
    r"""The norm of each prediction's gradient in the input, by central differences.

    :math:`\lVert\nabla_x f(x_i)\rVert` with :math:`\partial_j f \approx
    [f(x + h e_j) - f(x - h e_j)]/2h`: how much a prediction moves, per unit of input, under a
    small change of the input. Exact for predictions quadratic in the input.

    Parameters
    ----------
    predict
        Maps inputs ``(n, d)`` to one prediction per row, ``(n,)``.
    X
        Inputs ``(n, d)``.
    step
        The difference step :math:`h` > 0, in the units of ``X``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``.

    Raises
    ------
    ValueError
        For a non-finite or non-2-D ``X`` or a step ≤ 0.
    """
    X = as_float_array("X", X, 2)
    check_positive("step", step)
    grads = np.empty_like(X)
    for j in range(X.shape[1]):
        shift = np.zeros(X.shape[1])
        shift[j] = step
        grads[:, j] = (np.asarray(predict(X + shift)) - np.asarray(predict(X - shift))) / (2 * step)
    return np.linalg.norm(grads, axis=1)
