r"""Dropout and data augmentation. Used in chapter 4, "Dropout and data augmentation".

Two halves:

* **Dropout.** :func:`dropout` is inverted dropout: every entry is kept with probability
  :math:`1-p` and divided by :math:`1-p`, so its expectation is unchanged and nothing needs
  rescaling at test time. :class:`Dropout` is the layer (with its own generator) and
  :func:`dropout_mlp` a :func:`dlnotes.training.mlp` with dropout on the hidden units and,
  optionally, on the inputs. For linear regression with dropout on the inputs the expected loss
  is a ridge penalty weighted by each feature's sum of squares (Wager et al., 2013):
  :func:`dropout_ridge_solution` is its minimiser and :func:`train_dropout_regression` the same
  problem solved by Monte Carlo dropout training.
* **Augmentation of small images.** :func:`shift_images` moves images by whole pixels,
  :func:`random_shifts` draws a shift per image, :func:`rotate_images` rotates about the image
  centre with bilinear interpolation, and :func:`augmented_objective` turns an augmentation
  into an objective hook for :func:`dlnotes.training.train_classifier`. Pixels moved out of the
  frame are lost and the pixels moved in are 0, so a shift keeps an image's pixel mass exactly
  when nothing leaves the frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.training import Objective, mlp
from dlnotes.validation import (
    check_finite,
    check_float_tensor,
    check_in_range,
    check_int_at_least,
    check_int_in_range,
    check_length,
    check_ndim,
    check_positive,
    check_regression_data,
    check_shape,
)

__all__ = [
    "dropout",
    "Dropout",
    "dropout_mlp",
    "dropout_ridge_solution",
    "train_dropout_regression",
    "shift_images",
    "random_shifts",
    "rotate_images",
    "augmented_objective",
]


# ----------------------------------------------------------------------------------- dropout


def dropout(
    x: torch.Tensor,
    p: float,
    *,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Inverted dropout: zero each entry with probability ``p``, scale the rest by 1/(1 − p).

    .. math::
        \tilde x_i = \frac{m_i}{1-p}\,x_i, \qquad m_i \sim \operatorname{Bernoulli}(1-p)
        \text{ independently}, \qquad \mathbb E[\tilde x_i] = x_i .

    The mask is drawn as ``torch.rand(...) < 1 - p`` (the same law as
    ``torch.nn.functional.dropout``, which draws ``bernoulli_``; the two do not consume random
    numbers identically, so equal seeds give different masks).

    Parameters
    ----------
    x
        A floating-point tensor of any shape.
    p
        Probability of dropping an entry, in ``[0, 1]``.
    training
        If false, ``x`` itself is returned (inverted dropout needs no test-time scaling).
    generator
        Optional ``torch.Generator`` for the mask; the global one otherwise.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``: ``x`` itself when not training or ``p = 0``, zeros when
        ``p = 1``.

    Raises
    ------
    ValueError
        If ``p`` is outside ``[0, 1]`` or not finite, or ``x`` is not a floating tensor.
    """
    check_in_range("p", p, 0.0, 1.0, high_inclusive=True)
    check_float_tensor("x", x, finite=False)
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) < 1 - p
    return x * keep / (1 - p)


class Dropout(nn.Module):
    """Inverted dropout as a layer (:func:`dropout`), active in ``train()`` mode only.

    Parameters
    ----------
    p
        Drop probability in ``[0, 1]``.
    generator
        Optional ``torch.Generator`` the masks are drawn from (shared between layers if the
        same generator is passed to several); the global one otherwise.

    Raises
    ------
    ValueError
        If ``p`` is outside ``[0, 1]``.
    """

    def __init__(self, p: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        check_in_range("p", p, 0.0, 1.0, high_inclusive=True)
        self.p = float(p)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inverted dropout of ``x`` in training mode, the identity in eval mode."""
        return dropout(x, self.p, training=self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def dropout_mlp(
    sizes: Sequence[int],
    p: float = 0.0,
    *,
    input_p: float = 0.0,
    seed: int = 0,
) -> nn.Sequential:
    """:func:`dlnotes.training.mlp` (ReLU) with :class:`Dropout` after every hidden activation.

    The weights are those of ``mlp(sizes, seed=seed)``, so networks that differ only in ``p``
    start from the same point; the masks come from one generator seeded with ``seed``. Layers
    with probability 0 are left out, so ``dropout_mlp(sizes, 0.0, seed=s)`` is exactly
    ``mlp(sizes, seed=s)``.

    Parameters
    ----------
    sizes
        Layer widths, as for :func:`dlnotes.training.mlp`.
    p
        Drop probability of the hidden units, in ``[0, 1)``.
    input_p
        Drop probability of the inputs, in ``[0, 1)``.
    seed
        Seed of the initial weights and of the masks, ≥ 0.

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError
        If ``p`` or ``input_p`` is outside ``[0, 1)``, or as :func:`dlnotes.training.mlp`.
    """
    check_in_range("p", p, 0.0, 1.0)
    check_in_range("input_p", input_p, 0.0, 1.0)
    check_int_at_least("seed", seed, 0)
    net = mlp(sizes, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = [Dropout(input_p, generator)] if input_p > 0 else []
    for layer in net:
        layers.append(layer)
        if isinstance(layer, nn.ReLU) and p > 0:
            layers.append(Dropout(p, generator))
    return nn.Sequential(*layers)


# ------------------------------------------------------------- dropout in linear regression


def dropout_ridge_solution(X: np.ndarray, y: np.ndarray, p: float) -> np.ndarray:
    r"""Minimiser of the expected squared error of linear regression with input dropout.

    With every input :math:`x_{ij}` replaced by :math:`m_{ij}x_{ij}/(1-p)`, independent
    :math:`m_{ij} \sim \operatorname{Bernoulli}(1-p)`, the expected loss is
    :math:`\lVert y - Xw\rVert^2 + \frac{p}{1-p}\sum_j \big(\sum_i x_{ij}^2\big) w_j^2`
    (Wager et al., 2013), a ridge penalty weighted by each feature's sum of squares, with
    minimiser

    .. math::
        \hat w = \Big(X^\top X + \tfrac{p}{1-p}\operatorname{diag}(X^\top X)\Big)^{-1} X^\top y .

    It is computed as the least-squares solution of the stacked system
    :math:`[X;\ \sqrt{\lambda}\,\operatorname{diag}(\lVert x_{\cdot j}\rVert)]\,w \approx [y;\ 0]`
    with :math:`\lambda = p/(1-p)`, which avoids forming :math:`X^\top X`. Rescaling a column of
    ``X`` by ``c`` divides its coefficient by ``c`` and leaves the predictions unchanged: unlike
    ridge, the penalty does not depend on the units of the features. An all-zero column gets
    coefficient 0; with ``p = 0`` the result is the minimum-norm least-squares solution.

    Parameters
    ----------
    X
        Design matrix, shape ``(N, d)``.
    y
        Targets, shape ``(N,)``.
    p
        Drop probability in ``[0, 1)`` (at ``p = 1`` every input is dropped and the penalty is
        infinite).

    Returns
    -------
    numpy.ndarray
        Coefficients, shape ``(d,)``, float64.

    Raises
    ------
    ValueError
        For wrong shapes, non-finite inputs or ``p`` outside ``[0, 1)``.
    """
    X, y = check_regression_data(X, y)
    check_in_range("p", p, 0.0, 1.0)
    lam = p / (1 - p)
    column_norms = np.sqrt((X**2).sum(axis=0))
    A = np.vstack([X, math.sqrt(lam) * np.diag(column_norms)])
    b = np.concatenate([y, np.zeros(X.shape[1])])
    return np.linalg.lstsq(A, b, rcond=None)[0]


def train_dropout_regression(
    X: np.ndarray,
    y: np.ndarray,
    p: float,
    *,
    steps: int,
    lr: float,
    seed: int = 0,
) -> np.ndarray:
    r"""Linear regression trained by gradient descent with a fresh input-dropout mask per step.

    Each step draws :math:`M` with independent :math:`\operatorname{Bernoulli}(1-p)` entries,
    forms :math:`\tilde X = M\odot X/(1-p)` and takes a step on
    :math:`\frac1N\lVert y - \tilde X w\rVert^2`, with each coordinate's step divided by the
    mean square of its feature (a diagonal preconditioner: the same as plain gradient descent
    on standardised features, and it does not move the minimiser). The gradient is linear in
    :math:`w` and the mask is independent of the current :math:`w`, so the mean of the
    iterates converges to the minimiser of the *expected* loss, :func:`dropout_ridge_solution`;
    the returned average over the second half of the steps estimates it by Monte Carlo.

    Parameters
    ----------
    X
        Design matrix, shape ``(N, d)``.
    y
        Targets, shape ``(N,)``.
    p
        Drop probability in ``[0, 1)``.
    steps
        Number of steps, ≥ 2.
    lr
        Step size (> 0) in the preconditioned coordinates; about 0.1 / (largest eigenvalue of
        the features' correlation matrix) is stable.
    seed
        Seed of the NumPy generator that draws the masks, ≥ 0.

    Returns
    -------
    numpy.ndarray
        Average of the iterates over the second half of training, shape ``(d,)``.

    Raises
    ------
    ValueError
        For wrong shapes, non-finite inputs or out-of-range arguments.
    """
    X, y = check_regression_data(X, y)
    check_in_range("p", p, 0.0, 1.0)
    check_int_at_least("steps", steps, 2)
    check_positive("lr", lr)
    check_int_at_least("seed", seed, 0)
    gen = np.random.default_rng(seed)
    n, d = X.shape
    scale = (X**2).mean(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    w = np.zeros(d)
    total = np.zeros(d)
    start = steps // 2
    for step in range(steps):
        noisy = X * (gen.random((n, d)) < 1 - p) / (1 - p)
        w = w - lr * (2 / n) * (noisy.T @ (noisy @ w - y)) / scale
        if step >= start:
            total += w
    return total / (steps - start)


# ------------------------------------------------------------------------------ augmentation


def _check_images(images: torch.Tensor) -> None:
    check_float_tensor("images", images, min_ndim=2, finite=False)


def shift_images(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Move images by whole pixels: ``dy`` rows down and ``dx`` columns right (negative: up/left).

    Pixels moved past the edge are lost and the uncovered ones are 0 (the background of the
    digits images), so the pixel mass is unchanged exactly when the rows and columns that
    leave the frame are empty.

    Parameters
    ----------
    images
        Floating tensor of shape ``(..., H, W)``.
    dy, dx
        Integer shifts with ``|dy| < H`` and ``|dx| < W``.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``images``.

    Raises
    ------
    ValueError
        If a shift is not an integer with ``|shift| <`` the image size, or for a bad ``images``.
    """
    _check_images(images)
    height, width = images.shape[-2:]
    for name, value, size in (("dy", dy, height), ("dx", dx, width)):
        check_int_in_range(name, value, -(size - 1), size - 1)
    out = torch.zeros_like(images)
    rows_out = slice(max(dy, 0), height + min(dy, 0))
    rows_in = slice(max(-dy, 0), height + min(-dy, 0))
    cols_out = slice(max(dx, 0), width + min(dx, 0))
    cols_in = slice(max(-dx, 0), width + min(-dx, 0))
    out[..., rows_out, cols_out] = images[..., rows_in, cols_in]
    return out


def random_shifts(
    images: torch.Tensor,
    max_dy: int,
    max_dx: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Shift every image by its own random whole-pixel offset (:func:`shift_images`).

    The offsets ``dy`` and ``dx`` are drawn independently and uniformly from
    ``{-max_dy, ..., max_dy}`` and ``{-max_dx, ..., max_dx}``.

    Parameters
    ----------
    images
        Floating tensor of shape ``(n, H, W)``.
    max_dy, max_dx
        Largest vertical and horizontal shift, integers ≥ 0 (0: no shift along that axis).
    generator
        Optional ``torch.Generator``; the global one otherwise.

    Returns
    -------
    torch.Tensor
        Shape ``(n, H, W)``.

    Raises
    ------
    ValueError
        If ``images`` is not ``(n, H, W)`` or a maximum shift is negative or too large.
    """
    _check_images(images)
    check_ndim("images", images, 3)
    n, height, width = images.shape
    check_int_in_range("max_dy", max_dy, 0, height - 1)
    check_int_in_range("max_dx", max_dx, 0, width - 1)
    dys = torch.randint(-max_dy, max_dy + 1, (n,), generator=generator)
    dxs = torch.randint(-max_dx, max_dx + 1, (n,), generator=generator)
    # Output pixel (r, c) of image k is padded pixel (r + max_dy - dy_k, c + max_dx - dx_k).
    padded = F.pad(images, (max_dx, max_dx, max_dy, max_dy))
    rows = torch.arange(height)[None, :] + (max_dy - dys)[:, None]
    cols = torch.arange(width)[None, :] + (max_dx - dxs)[:, None]
    return padded[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def rotate_images(images: torch.Tensor, degrees: float | torch.Tensor) -> torch.Tensor:
    r"""Rotate square images counter-clockwise (as displayed) about their centre.

    Output pixel :math:`o` takes the bilinear interpolation of the input at
    :math:`R(\theta)\,o` in coordinates centred on the image (``torch.nn.functional.affine_grid``
    and ``grid_sample`` with ``align_corners=False``, zeros outside the frame). Multiples of
    90° map pixel centres onto pixel centres and equal ``torch.rot90`` up to rounding; other
    angles interpolate, so the pixel mass is kept only approximately, and corners leave the
    frame.

    Parameters
    ----------
    images
        Floating tensor of shape ``(n, H, H)``.
    degrees
        One angle for all images or a tensor of ``n`` angles, in degrees.

    Returns
    -------
    torch.Tensor
        Shape ``(n, H, H)``.

    Raises
    ------
    ValueError
        If ``images`` is not ``(n, H, H)`` or the angles are not finite or of the wrong length.
    """
    _check_images(images)
    check_ndim("images", images, 3)
    n, height, width = images.shape
    check_shape("images", images, (n, height, height), "(n, H, H): square images")
    angles = torch.as_tensor(degrees, dtype=images.dtype)
    check_finite("degrees", angles)
    if angles.ndim == 0:
        angles = angles.expand(n)
    check_shape("degrees", angles, (n,), "(one angle per image, or one number)")
    radians = angles * (math.pi / 180)
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, height, width], align_corners=False)
    out = F.grid_sample(images[:, None], grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out[:, 0]


def augmented_objective(
    augment: Callable[[torch.Tensor], torch.Tensor],
    image_shape: tuple[int, int] = (8, 8),
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> Objective:
    """An objective for :func:`dlnotes.training.train_classifier` that augments every batch.

    The flat batch ``(b, H*W)`` is reshaped to images ``(b, H, W)``, passed through
    ``augment`` (for example ``lambda im: random_shifts(im, 0, 1, generator)``), flattened
    again and fed to the model; the loss of the augmented batch is minimised and recorded. A
    new augmentation is drawn at every step.

    Parameters
    ----------
    augment
        Maps images ``(b, H, W)`` to images of the same shape.
    image_shape
        ``(H, W)`` of one image.
    loss_fn
        Loss of the logits and labels.

    Returns
    -------
    callable
        ``objective(model, X_batch, y_batch) -> (loss, loss)``.

    Raises
    ------
    ValueError
        If ``image_shape`` does not hold two positive integers.
    """
    check_length("image_shape", image_shape, 2, "sizes (height, width)")
    for name, size in zip(("height", "width"), image_shape, strict=True):
        check_int_at_least(f"image_shape {name}", size, 1)

    def objective(model: nn.Module, X: torch.Tensor, y: torch.Tensor):
        images = augment(X.reshape(-1, *image_shape))
        loss = loss_fn(model(images.reshape(X.shape)), y)
        return loss, loss

    return objective
