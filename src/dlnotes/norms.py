"""Batch normalisation and layer normalisation written from their definitions.

:class:`BatchNorm` and :class:`LayerNorm` reproduce ``torch.nn.BatchNorm1d`` and
``torch.nn.LayerNorm`` (forward, gradients, running statistics, train and eval modes) without
calling them. The remaining helpers serve the chapter's experiments: MLPs with a normalisation
layer, the gap between train-mode and eval-mode predictions, and batch statistics of padded
sequences of different lengths. Used in chapter 6.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable
from torch.func import functional_call, stack_module_state, vmap

from dlnotes.validation import (
    check_choice,
    check_dim_size,
    check_finite,
    check_in_range,
    check_int_at_least,
    check_int_in_range,
    check_min_length,
    check_ndim,
    check_positive,
    check_same_rows,
    check_shape,
    check_tensor,
)

__all__ = [
    "normalize",
    "BatchNorm",
    "LayerNorm",
    "norm_mlp",
    "train_eval_disagreement",
    "mode_comparison",
    "train_mode_logits",
    "with_population_statistics",
    "variable_length_sequences",
    "pad_sequences",
    "batch_statistics",
    "normalisation_jitter",
    "ScaleInvarianceMonitor",
    "largest_rate_that_trains",
    "running_majority",
    "TokenTagger",
    "tagging_loss",
    "token_accuracy",
    "stacked_outputs",
    "normalisation_mismatch",
    "prefix_decoding_gap",
]


def normalize(
    x: torch.Tensor, dims: int | Sequence[int], eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Centre ``x`` and divide by its standard deviation along ``dims``.

    .. math:: \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \varepsilon}}, \qquad
              \mu = \frac1n\sum_i x_i, \quad \sigma^2 = \frac1n\sum_i (x_i - \mu)^2

    The variance is the biased one (divided by ``n``), computed in two passes (mean first, then
    the mean squared deviation, with the mean's rounding error removed), which stays accurate
    when the values share a large offset.
    Where the direct formula would fail (the squared deviations overflow, or with ε = 0 the
    variance underflows or is 0), ``x`` is first multiplied by the power of two
    :math:`2^{-e}` that brings its largest magnitude into [0.5, 1) (exact in floating point)
    and :math:`\hat x = c'/\sqrt{\sigma'^2 + \varepsilon\,4^{-e}}` is computed from the
    scaled deviations :math:`c'`: values near 1e200, and with ε = 0 near 1e-200 or subnormal
    (``[5e-324, 0]`` gives ``[1, -1]``), give the right answer. A group of equal values (zero
    variance) maps to 0, also for ε = 0. The returned statistics may still overflow or
    underflow.

    The backward pass applies the closed-form Jacobian
    :math:`J = \frac{1}{\sqrt{\sigma^2+\varepsilon}}\big(I - \tfrac1n \mathbf 1\mathbf 1^\top -
    \tfrac1n \hat x \hat x^\top\big)` (chapter 6 derives it) instead of differentiating
    the formula step by step; it supports first derivatives only.

    Parameters
    ----------
    x
        Floating tensor.
    dims
        Dimension or dimensions over which the statistics are taken.
    eps
        ε ≥ 0 added to the variance.

    Returns
    -------
    x_hat, mean, var
        The normalised tensor (shape of ``x``), and the mean and biased variance with the
        reduced dimensions kept (size 1). Gradients flow through ``x_hat`` only; the
        statistics are returned for bookkeeping (running averages).

    Raises
    ------
    ValueError
        If ``eps`` is negative or not finite.
    """
    check_in_range("eps", eps, 0.0, float("inf"))
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if _transformed(x):
        return _plain_normalize(x, dims, float(eps))
    return _Normalize.apply(x, dims, float(eps))


def _transformed(x: torch.Tensor) -> bool:
    """True inside a ``torch.func`` transform (``vmap``, as :func:`dlnotes.training.fit_replicas`
    uses it), where tensor values cannot be read and a custom backward has no batching rule."""
    return torch._C._functorch.is_functorch_wrapped_tensor(x)


def _plain_normalize(
    x: torch.Tensor, dims: tuple[int, ...], eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The corrected two-pass formula of :func:`normalize` at ordinary magnitudes, left to
    autograd: the path taken under ``vmap`` (same values; tested)."""
    mean = x.mean(dim=dims, keepdim=True)
    centred = x - mean
    correction = centred.mean(dim=dims, keepdim=True)
    centred, mean = centred - correction, mean + correction
    var = (centred * centred).mean(dim=dims, keepdim=True)
    return centred * torch.rsqrt(var + eps), mean.detach(), var.detach()


def _forward_statistics(
    x: torch.Tensor, dims: tuple[int, ...], eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x_hat``, the inverse scale ``r = 1/sqrt(var + eps)``, the mean and the variance."""
    mean = x.mean(dim=dims, keepdim=True)
    centred = x - mean
    # corrected two-pass: removes the rounding error of the mean (equal values give exactly 0)
    correction = centred.mean(dim=dims, keepdim=True)
    centred = centred - correction
    mean = mean + correction
    var = (centred * centred).mean(dim=dims, keepdim=True)
    if bool(torch.isfinite(var).all()) and (eps > 0 or bool((var > 1e-280).all())):
        inv_std = torch.rsqrt(var + eps)  # ordinary magnitudes: the direct formula is exact
        return centred * inv_std, inv_std, mean, var
    # Rescaled path: deviations near 1e200 (their squares overflow), or eps = 0 with a
    # variance that underflows or is 0. Multiplying x by a power of two is exact, so the
    # statistics are taken again on x·2^-e with max |x·2^-e| in [0.5, 1): no square overflows,
    # and two subnormal values (x = [5e-324, 0]) become ordinary numbers whose mean exists.
    largest = x.abs().amax(dim=dims, keepdim=True)
    exponent = torch.frexp(torch.where(largest > 0, largest, torch.ones_like(largest)))[1]
    # 2^-e in two halves: for subnormal x, 2^-e itself (up to 2^1074) is not a double
    half = torch.ldexp(torch.ones_like(largest), torch.div(-exponent, 2, rounding_mode="floor"))
    rest = torch.ldexp(torch.ones_like(largest), -exponent - torch.div(-exponent, 2,
                                                                       rounding_mode="floor"))
    y = x * half * rest
    mean_y = y.mean(dim=dims, keepdim=True)
    centred = y - mean_y
    correction = centred.mean(dim=dims, keepdim=True)
    centred, mean_y = centred - correction, mean_y + correction
    var_y = (centred * centred).mean(dim=dims, keepdim=True)
    # ε in the units of y; ε·4^e may overflow (tiny x: then x_hat → 0) or underflow (huge x).
    denom = var_y + eps * half * half * rest * rest
    equal = denom == 0  # a group of equal values with eps = 0
    root = torch.sqrt(torch.where(equal, torch.ones_like(denom), denom))
    x_hat = torch.where(equal, torch.zeros_like(centred), centred / root)
    inv_std = torch.where(equal, torch.zeros_like(root), half * rest / root)
    return x_hat, inv_std, mean_y / half / rest, var_y / half / half / rest / rest


class _Normalize(torch.autograd.Function):
    """Normalisation whose backward pass is the closed-form Jacobian (chapter 6)."""

    @staticmethod
    def forward(ctx, x, dims, eps):
        x_hat, inv_std, mean, var = _forward_statistics(x, dims, eps)
        ctx.save_for_backward(x_hat, inv_std)
        ctx.dims = dims
        ctx.mark_non_differentiable(mean, var)
        return x_hat, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, _grad_mean, _grad_var):
        # J g = r (g - mean(g) - x_hat * mean(g * x_hat)),  J = r (I - 11^T/n - x_hat x_hat^T/n)
        x_hat, inv_std = ctx.saved_tensors
        dims = ctx.dims
        centred_grad = grad - grad.mean(dim=dims, keepdim=True)
        along_x_hat = (grad * x_hat).mean(dim=dims, keepdim=True)
        return inv_std * (centred_grad - x_hat * along_x_hat), None, None


def _affine_parameters(module: nn.Module, shape: tuple[int, ...], affine: bool) -> None:
    """Give ``module`` a learnable scale ``weight`` (ones) and shift ``bias`` (zeros) of
    ``shape``, or register both as ``None`` (no affine step)."""
    if affine:
        module.weight = nn.Parameter(torch.ones(shape))
        module.bias = nn.Parameter(torch.zeros(shape))
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


class BatchNorm(nn.Module):
    r"""Batch normalisation of ``(N, C)`` or ``(N, C, L)`` inputs, as ``torch.nn.BatchNorm1d``.

    In training mode each feature (channel) ``c`` is normalised with the mean and biased
    variance of the current mini-batch (over ``N``, and ``L`` if present), then scaled and
    shifted, :math:`y = \gamma_c \hat x + \beta_c`. The running estimates are updated as

    .. math:: \mu_{run} \leftarrow (1-m)\,\mu_{run} + m\,\mu_B, \qquad
              \sigma^2_{run} \leftarrow (1-m)\,\sigma^2_{run} + m\,\tfrac{n}{n-1}\sigma^2_B,

    with the *unbiased* batch variance (``n`` values per feature), as PyTorch does. In eval
    mode the running estimates replace the batch statistics.

    With ``ghost_batch=g`` a training batch of ``N`` rows is normalised in ``N/g`` consecutive
    groups of ``g`` rows, each with its own statistics ("ghost" batches, Hoffer et al. 2017):
    what data-parallel training computes when each of ``N/g`` workers normalises its own
    ``g`` samples while the gradient is averaged over all ``N``. The running estimates are then
    updated with the mean over the groups of their means and unbiased variances.

    Parameters
    ----------
    num_features
        Number of features ``C`` (≥ 1).
    eps
        ε > 0 added to the variance.
    momentum
        Weight ``m`` in [0, 1] of the newest batch in the running estimates.
    affine
        If true, learn the scale ``weight`` (γ, initially 1) and shift ``bias`` (β, initially 0).
    ghost_batch
        Rows per normalisation group in training mode (≥ 2; ``N`` must be a multiple), or
        ``None`` for the whole batch.

    Raises
    ------
    ValueError
        For a bad setting, or in training mode a batch with one value per feature (or not a
        multiple of ``ghost_batch``).
    """

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
        *, ghost_batch: int | None = None,
    ) -> None:
        super().__init__()
        check_int_at_least("num_features", num_features, 1)
        check_positive("eps", eps)
        check_in_range("momentum", momentum, 0.0, 1.0, high_inclusive=True)
        if ghost_batch is not None:
            check_int_at_least("ghost_batch", ghost_batch, 2)
        self.ghost_batch = ghost_batch
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        _affine_parameters(self, (self.num_features,), self.affine)
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_var", torch.ones(self.num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def extra_repr(self) -> str:
        ghost = "" if self.ghost_batch is None else f", ghost_batch={self.ghost_batch}"
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}{ghost}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape ``(N, C)`` or ``(N, C, L)`` feature by feature."""
        check_ndim("x", x, (2, 3))
        check_dim_size("x", x, 1, self.num_features, "features (num_features)")
        if not _transformed(x):
            check_finite("x", x)
        dims = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, -1) if x.ndim == 2 else (1, -1, 1)
        if self.training:
            group = x.shape[0] if self.ghost_batch is None else self.ghost_batch
            n = group * math.prod(x.shape[2:])
            if n < 2:
                raise ValueError("x must hold more than one value per feature in training "
                                 f"mode (a batch of one cannot be normalised), got shape "
                                 f"{tuple(x.shape)}")
            if x.shape[0] % group:
                raise ValueError(f"x must have a multiple of ghost_batch={group} rows, got "
                                 f"shape {tuple(x.shape)}")
            groups = x.reshape(-1, group, *x.shape[1:])  # (N/g, g, C[, L])
            x_hat, mean, var = normalize(groups, tuple(d + 1 for d in dims), self.eps)
            x_hat = x_hat.reshape(x.shape)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.mean(0).reshape(-1))
                self.running_var.mul_(1 - m).add_(m * var.mean(0).reshape(-1) * n / (n - 1))
                self.num_batches_tracked.add_(1)
        else:
            mean = self.running_mean.reshape(shape)
            var = self.running_var.reshape(shape)
            x_hat = (x - mean) / torch.sqrt(var + self.eps)
        if self.affine:
            return x_hat * self.weight.reshape(shape) + self.bias.reshape(shape)
        return x_hat


class LayerNorm(nn.Module):
    r"""Layer normalisation over the trailing ``normalized_shape`` dims, as ``torch.nn.LayerNorm``.

    Every sample (every token, for sequences) is normalised with its own mean and biased
    variance over the last ``len(normalized_shape)`` dimensions, then scaled and shifted
    elementwise, :math:`y = \gamma \odot \hat x + \beta`. Nothing depends on the other samples
    of the batch, so training and eval modes compute the same function.

    Parameters
    ----------
    normalized_shape
        Size (int) or sizes of the trailing dimensions to normalise over, each ≥ 1.
    eps
        ε > 0 added to the variance.
    elementwise_affine
        If true, learn ``weight`` (γ, initially 1) and ``bias`` (β, initially 0) of shape
        ``normalized_shape``.

    Raises
    ------
    ValueError
        For a bad setting, or an input that does not end in ``normalized_shape``.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
    ) -> None:
        super().__init__()
        shape = ((normalized_shape,) if isinstance(normalized_shape, int)
                 else tuple(normalized_shape))
        check_min_length("normalized_shape", shape, 1, "dimensions")
        for i, s in enumerate(shape):
            check_int_at_least(f"normalized_shape[{i}]", s, 1)
        check_positive("eps", eps)
        self.normalized_shape = tuple(int(s) for s in shape)
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        _affine_parameters(self, self.normalized_shape, self.elementwise_affine)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each sample of ``x`` over its trailing ``normalized_shape`` dimensions."""
        k = len(self.normalized_shape)
        check_tensor("x", x, min_ndim=k)
        check_shape("x", x, (None,) * (x.ndim - k) + self.normalized_shape,
                    f"(..., *normalized_shape={self.normalized_shape})")
        if not _transformed(x):
            check_finite("x", x)
        x_hat, _, _ = normalize(x, tuple(range(-k, 0)), self.eps)
        if self.elementwise_affine:
            return x_hat * self.weight + self.bias
        return x_hat


def norm_mlp(
    sizes: Sequence[int],
    norm: str | None = None,
    activation: Callable[[], nn.Module] = nn.Sigmoid,
    *,
    seed: int | None = None,
    ghost_batch: int | None = None,
) -> nn.Sequential:
    """An MLP ``sizes[0] → … → sizes[-1]`` with a normalisation layer before each nonlinearity.

    Each hidden layer is ``Linear → norm → activation`` (the placement of Ioffe & Szegedy);
    the output layer is a plain ``Linear``.

    Parameters
    ----------
    sizes
        Layer widths, at least two entries, each ≥ 1.
    norm
        ``None``, ``"batch"`` (:class:`BatchNorm`) or ``"layer"`` (:class:`LayerNorm`).
    activation
        Factory of the nonlinearity (sigmoid by default).
    seed
        If given, the initial weights come from a generator seeded with it (the global torch
        state is left untouched), as in :func:`dlnotes.training.mlp`.
    ghost_batch
        With ``norm="batch"``: rows per normalisation group in training (:class:`BatchNorm`).

    Raises
    ------
    ValueError
        For fewer than two sizes, a size < 1, an unknown ``norm`` or a negative ``seed``.
    """
    if seed is not None:
        check_int_at_least("seed", seed, 0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return norm_mlp(sizes, norm, activation, ghost_batch=ghost_batch)
    check_min_length("sizes", sizes, 2, "layer sizes")
    for i, s in enumerate(sizes):
        check_int_at_least(f"sizes[{i}]", s, 1)
    check_choice("norm", norm, [None, "batch", "layer"])
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            if norm == "batch":
                layers.append(BatchNorm(n_out, ghost_batch=ghost_batch))
            elif norm == "layer":
                layers.append(LayerNorm(n_out))
            layers.append(activation())
    return nn.Sequential(*layers)


def train_mode_logits(model: nn.Module, X: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logits of ``X`` computed in train mode, in consecutive batches of ``batch_size`` rows.

    Each batch is normalised with its own statistics, as during training. The computation runs
    on a copy of ``model``: a train-mode forward pass updates BatchNorm's running statistics,
    and doing that with test data would leak it into every later eval-mode measurement. A last,
    partial batch is dropped (one row cannot be normalised in train mode, and a smaller batch
    would be normalised differently), so the result has ``(len(X) // batch_size) *
    batch_size`` rows.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D or ``batch_size`` < 2.
    """
    check_ndim("X", X, 2)
    check_int_at_least("batch_size", batch_size, 2)
    twin = copy.deepcopy(model)
    twin.train()
    n_full = (X.shape[0] // batch_size) * batch_size
    with torch.no_grad():
        return torch.cat([twin(b) for b in X[:n_full].split(batch_size)])


def train_eval_disagreement(model: nn.Module, X: torch.Tensor, batch_size: int) -> float:
    """Fraction of rows of ``X`` whose predicted class differs between train and eval mode.

    Train-mode predictions are made on consecutive batches of ``batch_size`` rows of ``X``
    (batch statistics); eval-mode predictions use the stored running statistics. The model is
    copied, so its running statistics are not changed.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D or ``batch_size`` < 2.
    """
    train_pred = train_mode_logits(model, X, batch_size).argmax(dim=1)
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        eval_pred = twin(X[: len(train_pred)]).argmax(dim=1)
    return float((train_pred != eval_pred).float().mean())


def with_population_statistics(model: nn.Sequential, X: torch.Tensor) -> nn.Sequential:
    """A copy of ``model`` whose :class:`BatchNorm` layers hold the population statistics of
    ``X`` instead of their moving averages (Ioffe & Szegedy's Algorithm 2).

    Layer by layer, each BatchNorm's running mean and variance become the mean and the
    *unbiased* variance of its input over all rows of ``X``, the earlier layers already
    normalised with their population statistics.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D with at least two rows.
    """
    check_ndim("X", X, 2)
    check_int_at_least("len(X)", X.shape[0], 2)
    twin = copy.deepcopy(model).eval()
    h = X
    with torch.no_grad():
        for layer in twin:
            if isinstance(layer, BatchNorm):
                layer.running_mean.copy_(h.mean(dim=0))
                layer.running_var.copy_(h.var(dim=0))
            h = layer(h)
    return twin


def mode_comparison(model: nn.Module, X: torch.Tensor, y: torch.Tensor,
                    batch_size: int) -> tuple[float, float, float]:
    """Accuracy in eval mode, accuracy in train mode (consecutive batches of ``batch_size``
    rows, :func:`train_mode_logits`) and the share of rows whose predicted class differs between
    the two (:func:`train_eval_disagreement`), from one pass in each mode; on a copy of the
    model. Rows beyond the last full batch are left out of all three.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, ``y`` does not match it, or ``batch_size`` < 2.
    """
    check_same_rows("X", X, "y", y)
    train_pred = train_mode_logits(model, X, batch_size).argmax(dim=1)
    n = len(train_pred)
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        eval_pred = twin(X[:n]).argmax(dim=1)
    hits = [(pred == y[:n]).double().mean() for pred in (eval_pred, train_pred)]
    return float(hits[0]), float(hits[1]), float((train_pred != eval_pred).double().mean())


def variable_length_sequences(
    lengths: Sequence[int],
    dim: int,
    generator: torch.Generator,
    offset_scale: float = 1.0,
) -> list[torch.Tensor]:
    """Synthetic sequences of token vectors: a per-sequence offset plus per-token noise.

    Token ``t`` of sequence ``s`` is ``offset_s + noise_st``, with ``offset_s`` drawn once per
    sequence from a normal distribution with standard deviation ``offset_scale`` in every
    coordinate and the noise from N(0, I); the offset stands for what a whole sentence shares
    (topic, speaker).

    Returns
    -------
    list of torch.Tensor
        One float64 tensor of shape ``(lengths[s], dim)`` per sequence.

    Raises
    ------
    ValueError
        For an empty ``lengths``, a length or ``dim`` < 1, or a negative ``offset_scale``.
    """
    check_min_length("lengths", lengths, 1, "lengths")
    for i, n in enumerate(lengths):
        check_int_at_least(f"lengths[{i}]", n, 1)
    check_int_at_least("dim", dim, 1)
    check_in_range("offset_scale", offset_scale, 0.0, float("inf"))
    out = []
    for n in lengths:
        offset = offset_scale * torch.randn(1, dim, generator=generator, dtype=torch.float64)
        out.append(offset + torch.randn(int(n), dim, generator=generator, dtype=torch.float64))
    return out


def pad_sequences(sequences: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack sequences of shape ``(T_s, C)`` into ``(B, T_max, C)``, padding with zeros.

    Returns
    -------
    padded, mask
        The padded batch and a boolean ``(B, T_max)`` mask, true at real tokens.

    Raises
    ------
    ValueError
        If ``sequences`` is empty, a sequence is not 2-D or the feature sizes differ.
    """
    check_min_length("sequences", sequences, 1, "sequences")
    for i, s in enumerate(sequences):
        check_ndim(f"sequences[{i}]", s, 2)
        check_dim_size(f"sequences[{i}]", s, 1, sequences[0].shape[1],
                       "features (the feature size of sequences[0])")
    t_max = max(s.shape[0] for s in sequences)
    padded = sequences[0].new_zeros(len(sequences), t_max, sequences[0].shape[1])
    mask = torch.zeros(len(sequences), t_max, dtype=torch.bool)
    for i, s in enumerate(sequences):
        padded[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = True
    return padded, mask


def _check_padded(x: torch.Tensor, mask: torch.Tensor | None) -> None:
    check_ndim("x", x, 3)
    if mask is not None:
        check_tensor("mask", mask, dtype=torch.bool)
        check_shape("mask", mask, x.shape[:2], "(batch, tokens)")
        if int(mask.sum()) < 2:
            raise ValueError("mask must mark at least two real tokens")


def batch_statistics(
    x: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and biased variance of a padded batch ``(B, T, C)``, as BatchNorm sees it.

    Without ``mask`` every position counts, padding included (what a BatchNorm layer applied
    to the padded tensor computes); with ``mask`` only the real tokens count.

    Returns
    -------
    mean, var
        Tensors of shape ``(C,)``.

    Raises
    ------
    ValueError
        If ``mask`` marks fewer than two real tokens, or for a wrong shape or dtype.
    """
    _check_padded(x, mask)
    tokens = x.reshape(-1, x.shape[2]) if mask is None else x[mask]
    mean = tokens.mean(dim=0)
    return mean, ((tokens - mean) ** 2).mean(dim=0)


def normalisation_jitter(
    probe: torch.Tensor, batches: Iterable[Sequence[torch.Tensor]], eps: float = 1e-5
) -> dict[str, dict[str, float | np.ndarray]]:
    """How much a fixed sequence's batch normalisation changes with the sequences batched
    beside it.

    ``probe`` (shape ``(T, C)``) is padded into a batch with each group of other sequences in
    turn. For two batch normalisations of the padded batch — statistics over all positions
    (``"batch, padding counted"``, what a BatchNorm layer applied to the padded tensor
    computes) and over the real tokens only (``"batch, masked"``) — it records the statistics
    used for the probe and the probe's normalised tokens, then summarises them across batches.
    (LayerNorm is not measured: a token's statistics come from the token alone, so they cannot
    change with the batch.)

    Parameters
    ----------
    probe
        The sequence followed from batch to batch, ``(T, C)``.
    batches
        Groups of other sequences, each ``(T_s, C)``; at least two groups.
    eps
        ε ≥ 0 added to the variance.

    Returns
    -------
    dict
        For each normalisation: ``"sd of mean"`` (standard deviation across batches of the mean
        used, averaged over features), ``"cv of variance"`` (the same for the variance,
        divided by its average), ``"output jitter"`` (root mean square over the probe's
        entries of their standard deviation across batches) and ``"deviations"``, one number
        per batch: the mean squared deviation of the probe's normalised entries from their
        average over the batches (``output jitter`` squared is their mean times
        ``n/(n-1)``), the unit a bootstrap resamples.

    Raises
    ------
    ValueError
        If ``probe`` is not 2-D, fewer than two batches are given or a sequence is malformed.
    """
    check_ndim("probe", probe, 2)
    check_in_range("eps", eps, 0.0, float("inf"))
    names = ("batch, padding counted", "batch, masked")
    stats: dict[str, dict[str, list[torch.Tensor]]] = {
        k: {"mean": [], "var": [], "out": []} for k in names
    }
    for others in batches:
        x, mask = pad_sequences([probe, *others])
        for name, m in zip(names, (None, mask), strict=True):
            mean, var = batch_statistics(x, m)
            stats[name]["mean"].append(mean)
            stats[name]["var"].append(var)
            stats[name]["out"].append((probe - mean) / torch.sqrt(var + eps))
    if len(stats[names[0]]["mean"]) < 2:
        raise ValueError("batches must hold at least two groups of sequences")
    summary = {}
    for name in names:
        mean, var, out = (torch.stack(stats[name][k]) for k in ("mean", "var", "out"))
        deviations = ((out - out.mean(dim=0)) ** 2).flatten(1).mean(dim=1)
        summary[name] = {
            "sd of mean": float(mean.std(dim=0).mean()),
            "cv of variance": float((var.std(dim=0) / var.mean(dim=0)).mean()),
            "output jitter": float(out.var(dim=0).mean().sqrt()),
            "deviations": deviations.numpy(),
        }
    return summary


# ------------------------------------------------------------ scale invariance (learning rate)
class ScaleInvarianceMonitor:
    r"""An ``after_backward`` hook for :func:`dlnotes.training.fit_replicas` that follows the
    weight matrices feeding a batch normalisation.

    Each row :math:`w` of such a matrix is scale-invariant: the normalised pre-activation of
    :math:`a w` equals that of :math:`w` for :math:`a > 0` (up to ε). So its gradient
    :math:`g` is orthogonal to it, and a plain SGD step with rate :math:`\eta` gives
    :math:`\lVert w - \eta g\rVert^2 = \lVert w\rVert^2 + \eta^2\lVert g\rVert^2`: the squared
    norm grows by exactly :math:`\eta^2\sum_t \lVert g_t\rVert^2` (chapter 6 derives it). For each
    named stacked weight of shape ``(R, rows, columns)`` the monitor records, per replica and
    row, the squared norm before the first step (``start[name]``), the running sum of
    :math:`\lVert g\rVert^2` (``grad_sq[name]``) and the largest :math:`|\cos(w, g)|` over the
    steps (``max_cos[name]``), each a tensor ``(R, rows)``.

    Parameters
    ----------
    names
        Names of the stacked parameters to follow (as in ``model.named_parameters()``).
    """

    def __init__(self, names: Sequence[str]) -> None:
        check_min_length("names", names, 1, "parameter names")
        self.names = list(names)
        self.start: dict[str, torch.Tensor] = {}
        self.grad_sq: dict[str, torch.Tensor] = {}
        self.max_cos: dict[str, torch.Tensor] = {}

    def __call__(self, params: dict[str, torch.Tensor]) -> None:
        """Record one step's gradients (called by ``fit_replicas`` before the update)."""
        with torch.no_grad():
            for name in self.names:
                w, g = params[name].detach(), params[name].grad
                if name not in self.start:
                    self.start[name] = (w * w).sum(-1)
                    self.grad_sq[name] = torch.zeros_like(self.start[name])
                    self.max_cos[name] = torch.zeros_like(self.start[name])
                self.grad_sq[name] += (g * g).sum(-1)
                norms = (w.norm(dim=-1) * g.norm(dim=-1)).clamp(min=torch.finfo(w.dtype).tiny)
                self.max_cos[name] = torch.maximum(self.max_cos[name],
                                                   ((w * g).sum(-1) / norms).abs())


def largest_rate_that_trains(final: np.ndarray, rates: Sequence[float], *,
                             threshold: float = 0.9) -> np.ndarray:
    """Per seed, the largest learning rate at which a run reaches ``threshold``.

    ``final`` holds the final accuracy of each run, shape ``(len(rates), seeds)`` (row ``r`` at
    ``rates[r]``). A seed whose runs all stay below ``threshold`` gets half the smallest rate
    (below the grid). Used for chapter 6's "largest rate that trains" on a grid of rates.

    Raises
    ------
    ValueError
        If ``final`` does not have one row per rate.
    """
    final = np.asarray(final, dtype=np.float64)
    check_ndim("final", final, 2)
    check_dim_size("final", final, 0, len(rates), "rows (one per rate)")
    below = min(rates) / 2
    return np.array([max((lr for lr, acc in zip(rates, column, strict=True) if acc >= threshold),
                         default=below) for column in final.T])


# --------------------------------------------------------- a Transformer on varied lengths
def running_majority(
    n: int, *, min_len: int, max_len: int, generator: torch.Generator,
    length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sequences of tokens 1 and 2 labelled at every position: is token 1 ahead so far?

    Sequence ``b`` has a length drawn uniformly from ``[min_len, max_len]`` and fair random
    tokens in {1, 2}, padded with 0 to ``length`` positions (``max_len`` by default). The
    label at position ``t`` is 1 if the prefix ``0..t`` holds more 1s than 2s, 0 if fewer, and
    -100 (ignored by ``F.cross_entropy``) at a tie or a padded position. A causal model that
    averages its prefix solves it, so it suits token-by-token decoding.

    Returns
    -------
    tokens, padding_mask, labels
        ``(n, length)`` int64 ids, boolean mask (True at padding) and int64 labels.

    Raises
    ------
    ValueError
        If ``n`` < 1 or the lengths are not ``1 <= min_len <= max_len <= length``.
    """
    check_int_at_least("n", n, 1)
    check_int_at_least("min_len", min_len, 1)
    check_int_at_least("max_len", max_len, min_len)
    length = max_len if length is None else length
    check_int_at_least("length", length, max_len)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator)
    tokens = torch.randint(1, 3, (n, length), generator=generator)
    padding = torch.arange(length)[None] >= lengths[:, None]
    tokens = tokens.masked_fill(padding, 0)
    lead = ((tokens == 1).long() - (tokens == 2).long()).cumsum(dim=1)
    labels = (lead > 0).long().masked_fill((lead == 0) | padding, -100)
    return tokens, padding, labels


class TokenTagger(nn.Module):
    """A :class:`dlnotes.transformer.Encoder` and a linear head that labels every position.

    Parameters
    ----------
    encoder
        The encoder (its parameters become this model's ``encoder.*``).
    n_classes
        Number of labels per position (≥ 2).
    seed
        If given, the head's initial weights come from a generator seeded with it.
    """

    def __init__(self, encoder: nn.Module, n_classes: int = 2, *,
                 seed: int | None = None) -> None:
        super().__init__()
        check_int_at_least("n_classes", n_classes, 2)
        self.encoder = encoder
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                check_int_at_least("seed", seed, 0)
                torch.manual_seed(seed)
            self.head = nn.Linear(encoder.d_model, n_classes)

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor | None = None,
                *, causal: bool = False) -> torch.Tensor:
        """Logits ``(B, T, n_classes)`` at every position of ``tokens`` ``(B, T)``."""
        return self.head(self.encoder(tokens, padding_mask, causal=causal))


def tagging_loss(model: nn.Module, tokens: torch.Tensor, padding_mask: torch.Tensor,
                 labels: torch.Tensor, *, causal: bool = True) -> torch.Tensor:
    """Mean cross-entropy over the labelled positions (labels ≥ 0) of a :class:`TokenTagger`."""
    logits = model(tokens, padding_mask, causal=causal)
    return F.cross_entropy(logits.flatten(0, -2), labels.flatten(), ignore_index=-100)


def token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of labelled positions (labels ≥ 0) whose arg-max logit is the label; logits
    ``(..., B, T, C)`` and labels ``(B, T)`` give a tensor of shape ``(...)``."""
    labelled = (labels >= 0).to(logits.dtype)
    right = (logits.argmax(-1) == labels).to(logits.dtype) * labelled
    return right.sum(dim=(-2, -1)) / labelled.sum()


def stacked_outputs(models: Sequence[nn.Module], *, train: bool = False) -> Callable:
    """A function that maps shared inputs to the outputs ``(R, ...)`` of models of one
    architecture, computed side by side (``vmap``), in train or eval mode. Train mode runs on
    stacked *copies* of the buffers, so the models' running statistics are left untouched
    (each call starts again from them)."""
    params, buffers = stack_module_state(list(models))
    params = {k: v.detach() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")

    def run(*inputs: torch.Tensor, **kwargs) -> torch.Tensor:
        base.train(train)
        fresh = {k: v.clone() for k, v in buffers.items()} if train else buffers
        return vmap(lambda p, b: functional_call(base, (p, b), inputs, kwargs))(params, fresh)

    return run


def normalisation_mismatch(
    models: Sequence[nn.Module], tokens: torch.Tensor, padding_mask: torch.Tensor,
    labels: torch.Tensor, *, batch_size: int, extra_padding: int, split: int,
) -> dict[str, np.ndarray]:
    """Train/inference mismatch of causal :class:`TokenTagger` replicas, one value per model.

    - ``"eval accuracy"``: token accuracy in eval mode (running statistics), which is what
      token-by-token decoding computes (see :func:`prefix_decoding_gap`);
    - ``"batch-statistics accuracy"``: in train mode on consecutive batches of ``batch_size``
      sequences, as in training;
    - ``"with extra padding"``: the same with ``extra_padding`` more padded positions per
      sequence;
    - ``"future leak"``: in train mode, the largest change of a logit at a real position before
      ``split`` when every token from ``split`` on is flipped (1 ↔ 2); 0 for a causal model
      whose positions depend on their prefix only.

    Raises
    ------
    ValueError
        If the number of sequences is not a multiple of ``batch_size`` or ``split`` is not
        inside the sequences.
    """
    check_int_at_least("batch_size", batch_size, 2)
    check_int_at_least("extra_padding", extra_padding, 0)
    check_int_in_range("split", split, 1, tokens.shape[1] - 1)
    if tokens.shape[0] % batch_size:
        raise ValueError(f"tokens must hold a multiple of batch_size={batch_size} sequences, "
                         f"got {tokens.shape[0]}")
    padded = (F.pad(tokens, (0, extra_padding)),
              torch.cat([padding_mask, padding_mask.new_ones(len(tokens), extra_padding)], 1))
    flipped = torch.where(~padding_mask & (torch.arange(tokens.shape[1]) >= split),
                          3 - tokens, tokens)
    in_train, in_eval = stacked_outputs(models, train=True), stacked_outputs(models)
    runs: dict[str, list] = {"plain": [], "padded": [], "flipped": []}
    with torch.no_grad():
        evaluated = in_eval(tokens, padding_mask, causal=True)
        for rows in torch.arange(tokens.shape[0]).split(batch_size):
            for name, (t, m) in zip(runs, ((tokens, padding_mask), padded,
                                           (flipped, padding_mask)), strict=True):
                runs[name].append(in_train(t[rows], m[rows], causal=True))
    plain, flip = torch.cat(runs["plain"], 1), torch.cat(runs["flipped"], 1)
    change = (flip[:, :, :split] - plain[:, :, :split]).abs().amax(-1)
    return {
        "eval accuracy": token_accuracy(evaluated, labels).numpy(),
        "batch-statistics accuracy": token_accuracy(plain, labels).numpy(),
        "with extra padding": token_accuracy(torch.cat(runs["padded"], 1),
                                             F.pad(labels, (0, extra_padding), value=-100)
                                             ).numpy(),
        "future leak": (change * ~padding_mask[:, :split]).flatten(1).amax(1).numpy(),
    }


def prefix_decoding_gap(model: nn.Module, tokens: torch.Tensor,
                        padding_mask: torch.Tensor) -> float:
    """Largest difference between decoding token by token — position ``t`` computed from the
    prefix ``0..t`` alone, in eval mode — and one causal eval-mode pass over whole sequences,
    over the real positions. 0 up to rounding for any normalisation in eval mode."""
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        full = model(tokens, padding_mask, causal=True)
        gap = 0.0
        for t in range(1, tokens.shape[1] + 1):
            step = model(tokens[:, :t], padding_mask[:, :t], causal=True)[:, -1]
            real = (~padding_mask[:, t - 1]).to(step.dtype)
            gap = max(gap, float(((step - full[:, t - 1]).abs().amax(-1) * real).max()))
    return gap
