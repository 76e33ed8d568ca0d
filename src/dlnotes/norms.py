"""Batch normalisation and layer normalisation written from their definitions.

:class:`BatchNorm` and :class:`LayerNorm` reproduce ``torch.nn.BatchNorm1d`` and
``torch.nn.LayerNorm`` (forward, gradients, running statistics, train and eval modes) without
calling them. The remaining helpers serve the chapter's experiments: MLPs with a normalisation
layer, the gap between train-mode and eval-mode predictions, and batch statistics of padded
sequences of different lengths. Used in chapter 6.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from dlnotes.validation import (
    check_choice,
    check_dim_size,
    check_finite,
    check_in_range,
    check_int_at_least,
    check_min_length,
    check_ndim,
    check_positive,
    check_shape,
    check_tensor,
)

__all__ = [
    "normalize",
    "BatchNorm",
    "LayerNorm",
    "norm_mlp",
    "train_eval_disagreement",
    "train_mode_logits",
    "variable_length_sequences",
    "pad_sequences",
    "batch_statistics",
    "normalisation_jitter",
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
    return _Normalize.apply(x, dims, float(eps))


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

    Raises
    ------
    ValueError
        For a bad setting, or in training mode a batch with one value per feature.
    """

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True
    ) -> None:
        super().__init__()
        check_int_at_least("num_features", num_features, 1)
        check_positive("eps", eps)
        check_in_range("momentum", momentum, 0.0, 1.0, high_inclusive=True)
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        _affine_parameters(self, (self.num_features,), self.affine)
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_var", torch.ones(self.num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape ``(N, C)`` or ``(N, C, L)`` feature by feature."""
        check_ndim("x", x, (2, 3))
        check_dim_size("x", x, 1, self.num_features, "features (num_features)")
        check_finite("x", x)
        dims = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, -1) if x.ndim == 2 else (1, -1, 1)
        if self.training:
            n = x.numel() // self.num_features
            if n < 2:
                raise ValueError("x must hold more than one value per feature in training "
                                 f"mode (a batch of one cannot be normalised), got shape "
                                 f"{tuple(x.shape)}")
            x_hat, mean, var = normalize(x, dims, self.eps)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.reshape(-1))
                self.running_var.mul_(1 - m).add_(m * var.reshape(-1) * n / (n - 1))
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

    Raises
    ------
    ValueError
        For fewer than two sizes, a size < 1, an unknown ``norm`` or a negative ``seed``.
    """
    if seed is not None:
        check_int_at_least("seed", seed, 0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return norm_mlp(sizes, norm, activation)
    check_min_length("sizes", sizes, 2, "layer sizes")
    for i, s in enumerate(sizes):
        check_int_at_least(f"sizes[{i}]", s, 1)
    check_choice("norm", norm, [None, "batch", "layer"])
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            if norm == "batch":
                layers.append(BatchNorm(n_out))
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
) -> dict[str, dict[str, float]]:
    """How much a fixed sequence's normalisation changes with the sequences batched beside it.

    ``probe`` (shape ``(T, C)``) is padded into a batch with each group of other sequences in
    turn. For three normalisations — batch statistics over all positions of the padded batch
    (``"batch, padding counted"``), batch statistics over real tokens only
    (``"batch, masked"``) and per-token statistics (``"layer"``) — it records the statistics
    used for the probe and the probe's normalised tokens, then summarises them across batches.

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
        For each normalisation: ``"sd of mean"`` (standard deviation across batches of the
        mean used, averaged over features, or over the probe's tokens for ``"layer"``),
        ``"cv of variance"`` (the same for the variance, divided by its average) and
        ``"output jitter"`` (standard deviation across batches of the probe's normalised
        values, averaged over its entries).

    Raises
    ------
    ValueError
        If ``probe`` is not 2-D, fewer than two batches are given or a sequence is malformed.
    """
    check_ndim("probe", probe, 2)
    check_in_range("eps", eps, 0.0, float("inf"))
    t = probe.shape[0]
    names = ("batch, padding counted", "batch, masked", "layer")
    stats: dict[str, dict[str, list[torch.Tensor]]] = {
        k: {"mean": [], "var": [], "out": []} for k in names
    }
    for others in batches:
        x, mask = pad_sequences([probe, *others])
        for name, m in ((names[0], None), (names[1], mask)):
            mean, var = batch_statistics(x, m)
            stats[name]["mean"].append(mean)
            stats[name]["var"].append(var)
            stats[name]["out"].append((probe - mean) / torch.sqrt(var + eps))
        out, mean, var = normalize(x[0, :t], -1, eps)
        for key, value in (("mean", mean[:, 0]), ("var", var[:, 0]), ("out", out)):
            stats[names[2]][key].append(value)
    if len(stats[names[0]]["mean"]) < 2:
        raise ValueError("batches must hold at least two groups of sequences")
    summary = {}
    for name in names:
        mean, var, out = (torch.stack(stats[name][k]) for k in ("mean", "var", "out"))
        summary[name] = {
            "sd of mean": float(mean.std(dim=0).mean()),
            "cv of variance": float((var.std(dim=0) / var.mean(dim=0)).mean()),
            "output jitter": float(out.std(dim=0).mean()),
        }
    return summary
