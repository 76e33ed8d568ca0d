r"""A small Transformer encoder: layers that equal PyTorch's, three normalisations, tiny tasks.
Used in chapters 6, 9 and 12.

:class:`EncoderLayer` is ``torch.nn.TransformerEncoderLayer`` (batch first) written out:
multi-head self-attention and a two-layer feed-forward sublayer, each with a residual
connection and a normalisation, after the residual sum (post-norm, ``norm_first=False``, the
original Transformer) or before the sublayer (pre-norm). Its parameters have PyTorch's names
and shapes, so ``layer.load_state_dict(torch_layer.state_dict())`` works for
``norm="layer"`` and the two compute the same function. The normalisation can also be a batch
normalisation over the tokens of the batch, counting the padding (``"batch"``, the naive use)
or not (``"masked_batch"``): chapter 6 compares the three.

:class:`Encoder` adds token and position embeddings and stacks the layers;
:class:`SentenceEncoder` (masked mean pooling: one vector per sequence),
:class:`SequenceClassifier` (the same and a linear head) and :class:`TokenPredictor`
(per-token vocabulary logits, optionally tied to the token embedding, for a masked language
model) sit on top of it. Their ``forward(tokens, padding_mask=None, *, causal=False)`` takes
the mask positionally, as :func:`dlnotes.training.fit_replicas`'s callbacks call models.
:func:`sequence_task` generates the tiny variable-length classification tasks the book trains
in seconds; the inputs and targets of a masked language model come from
:func:`dlnotes.self_supervised.bert_mask`.

Conventions shared by everything here:

- Batch first: hidden states have shape ``(B, T, d_model)``, tokens ``(B, T)``.
- ``padding_mask`` is a boolean ``(B, T)`` tensor, ``True`` at **padded** positions (PyTorch's
  ``src_key_padding_mask`` convention; :mod:`dlnotes.attention` uses the opposite
  convention for its ``mask``). Every sequence must have at least one real token.
- ``allowed`` is an optional boolean ``(T, T)`` or ``(B, T, T)`` tensor, ``True`` where query
  ``i`` **may** attend to key ``j`` (the convention of :mod:`dlnotes.attention`), for example
  a graph's adjacency with self-loops. It is combined (logical and) with the padding mask and,
  if ``causal=True``, with the causal mask (``j <= i``).
- Padded positions are computed as PyTorch computes them: a padded position is a query like
  any other, attends to the real tokens of its sequence only, and goes through the
  feed-forward sublayer, so its output is finite and meaningless. No real position depends on
  it, except through the batch statistics of ``norm="batch"`` (which is the point of that
  variant). Pool with :func:`masked_mean`, never over all positions.
- A query with no key it may attend to (only possible when ``allowed`` or a causal mask meets
  padding at the start of a sequence) gets attention output 0 (PyTorch gives NaN there).
- Everything works under ``torch.func.vmap`` over stacked copies of a model
  (``torch.func.stack_module_state`` + ``functional_call``), as
  :func:`dlnotes.training.fit_replicas` uses it, in train mode too: the batch-norm running
  statistics are updated in place, so they must be stacked with the parameters (as
  ``stack_module_state`` does). Checks that need tensor *values* (token range, a sequence
  with no real token) run only outside such transforms; shape checks run always. Dropout
  (``dropout > 0``, training mode) draws random numbers, so it needs vmap's
  ``randomness="different"`` (independent masks per replica) or ``"same"``; with
  ``dropout=0`` no random number is drawn. Its masks come from
  :func:`dlnotes.dropout.dropout` (``torch.rand``), not ``bernoulli_``, whose random stream
  differs between Intel and other CPUs: a seeded run trains the same model on every CPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.dropout import Dropout
from dlnotes.dropout import dropout as inverted_dropout
from dlnotes.validation import (
    check_choice,
    check_dim_size,
    check_float_tensor,
    check_in_range,
    check_int_at_least,
    check_int_in_range,
    check_integer_array,
    check_ndim,
    check_positive,
    check_shape,
    check_tensor,
    check_type,
)

__all__ = [
    "NORMS",
    "SequenceBatchNorm",
    "SelfAttention",
    "EncoderLayer",
    "Encoder",
    "EncoderTrace",
    "SentenceEncoder",
    "SequenceClassifier",
    "TokenPredictor",
    "masked_mean",
    "sinusoidal_positions",
    "sequence_task",
]

NORMS = ("layer", "batch", "masked_batch")
_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}
_TASKS = ("majority", "repeat", "sorted")


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Draw initial weights from a generator seeded with ``seed``; the global state is kept."""
    if seed is None:
        yield
        return
    check_int_at_least("seed", seed, 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _concrete(t: torch.Tensor) -> bool:
    """True unless ``t`` is wrapped by a ``torch.func`` transform (vmap, grad): values readable."""
    return not torch._C._functorch.is_functorch_wrapped_tensor(t)


def _check_hidden(x: object, d_model: int | None, name: str = "x") -> None:
    check_float_tensor(name, x, 3, finite=False)  # no value checks: vmap-safe
    if d_model is not None:
        check_dim_size(name, x, -1, d_model, "features (d_model)")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have at least one position, got shape {tuple(x.shape)}")


def _check_padding_mask(padding_mask: object, batch_shape: tuple[int, int]) -> None:
    if padding_mask is None:
        return
    check_tensor("padding_mask", padding_mask, dtype=torch.bool)  # True at padded positions
    check_shape("padding_mask", padding_mask, batch_shape, "(B, T)")
    if _concrete(padding_mask) and bool(padding_mask.all(dim=1).any()):
        raise ValueError("padding_mask must leave at least one real (False) position in every "
                         "sequence")


def _check_allowed(allowed: object, batch_shape: tuple[int, int]) -> None:
    if allowed is None:
        return
    b, t = batch_shape
    check_tensor("allowed", allowed, dtype=torch.bool)  # True where a query may attend to a key
    check_ndim("allowed", allowed, (2, 3))
    check_shape("allowed", allowed, (b, t, t)[-allowed.ndim:], "((B,) T, T)")


def _attention_mask(
    batch_shape: tuple[int, int],
    padding_mask: torch.Tensor | None,
    causal: bool,
    allowed: torch.Tensor | None,
    device: torch.device,
) -> torch.Tensor | None:
    """Boolean mask broadcastable to ``(B, 1, T, T)``, True where query i may attend to key j."""
    t = batch_shape[1]
    mask = None
    if padding_mask is not None:
        mask = (~padding_mask)[:, None, None, :]
    if causal:
        tri = torch.ones(t, t, dtype=torch.bool, device=device).tril()
        mask = tri if mask is None else mask & tri
    if allowed is not None:
        extra = allowed if allowed.ndim == 2 else allowed[:, None]
        mask = extra if mask is None else mask & extra
    return mask


def masked_mean(h: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Mean of the hidden states over the real positions of each sequence.

    .. math:: \bar h_b = \frac{\sum_t m_{bt} h_{bt}}{\sum_t m_{bt}}, \qquad m_{bt} = 1 \text{ at
              real tokens, } 0 \text{ at padding}

    The pooled sentence vector of :class:`SequenceClassifier` (and of a SimCSE-style encoder).

    Parameters
    ----------
    h
        Hidden states ``(B, T, d)``.
    padding_mask
        Boolean ``(B, T)``, ``True`` at padded positions; ``None`` averages every position.

    Returns
    -------
    torch.Tensor
        Shape ``(B, d)``.

    Raises
    ------
    ValueError
        If ``h`` is not a 3-D floating tensor or ``padding_mask`` is malformed.
    """
    _check_hidden(h, None, "h")
    _check_padding_mask(padding_mask, tuple(h.shape[:2]))
    if padding_mask is None:
        return h.mean(dim=1)
    weights = (~padding_mask).to(h.dtype)[..., None]
    # clamp: under vmap an all-padded row cannot be rejected; it pools to 0 instead of NaN
    return (weights * h).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class SequenceBatchNorm(nn.Module):
    r"""Batch normalisation of every token of a padded batch ``(B, T, C)``, feature by feature.

    In training mode feature ``c`` is normalised with the mean and biased variance over a set
    :math:`S` of positions of the whole batch,

    .. math:: \mu_c = \frac1{|S|}\sum_{(b,t)\in S} x_{btc}, \qquad
              \sigma_c^2 = \frac1{|S|}\sum_{(b,t)\in S}(x_{btc}-\mu_c)^2, \qquad
              y_{btc} = \gamma_c\,\frac{x_{btc}-\mu_c}{\sqrt{\sigma_c^2+\varepsilon}} + \beta_c,

    at every position (padded ones included). With ``masked=False`` :math:`S` is every
    position, padding included: what ``torch.nn.BatchNorm1d`` computes on the padded tensor
    (the naive use in a Transformer), so the statistics change with how much padding the batch
    holds. With ``masked=True`` :math:`S` holds the real tokens only: the statistics of
    ``torch.nn.BatchNorm1d`` applied to the gathered real tokens. Shen et al. (2020, PowerNorm)
    study batch normalisation in Transformers and compute its statistics over the non-padded
    tokens (``MaskBatchNorm`` in their released code). The running estimates are updated as in
    PyTorch, :math:`\mu_{run} \leftarrow (1-m)\mu_{run} + m\mu`,
    :math:`\sigma^2_{run} \leftarrow (1-m)\sigma^2_{run} + m\frac{|S|}{|S|-1}\sigma^2`, and
    replace the batch statistics in eval mode. Parameter and buffer names are those of
    ``torch.nn.BatchNorm1d``.

    Parameters
    ----------
    num_features
        Number of features ``C`` (≥ 1).
    masked
        Whether the statistics skip padded positions.
    eps
        ε > 0 added to the variance.
    momentum
        Weight ``m`` in [0, 1] of the newest batch in the running estimates.

    Raises
    ------
    ValueError
        For an argument out of range or malformed, or fewer than two positions in :math:`S`.
    """

    def __init__(
        self, num_features: int, *, masked: bool = False, eps: float = 1e-5, momentum: float = 0.1
    ) -> None:
        super().__init__()
        check_int_at_least("num_features", num_features, 1)
        check_positive("eps", eps)
        check_in_range("momentum", momentum, 0.0, 1.0, high_inclusive=True)
        self.num_features = int(num_features)
        self.masked = bool(masked)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.weight = nn.Parameter(torch.ones(self.num_features))
        self.bias = nn.Parameter(torch.zeros(self.num_features))
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_var", torch.ones(self.num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def extra_repr(self) -> str:
        return (f"{self.num_features}, masked={self.masked}, eps={self.eps}, "
                f"momentum={self.momentum}")

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalise ``x`` ``(B, T, C)``; ``padding_mask`` (True = padded) matters if masked."""
        _check_hidden(x, self.num_features)
        _check_padding_mask(padding_mask, tuple(x.shape[:2]))
        if not self.training:
            mean, var = self.running_mean, self.running_var
        else:
            if self.masked and padding_mask is not None:
                weights = (~padding_mask).to(x.dtype)[..., None]
                n = weights.sum()
                if _concrete(n) and float(n) < 2:
                    raise ValueError("padding_mask must leave at least two real tokens in the "
                                     "batch to take batch statistics")
                mean = (weights * x).sum(dim=(0, 1)) / n
                var = (weights * (x - mean) ** 2).sum(dim=(0, 1)) / n
            else:
                n = x.shape[0] * x.shape[1]
                if n < 2:
                    raise ValueError("x must hold at least two positions in training mode, got "
                                     f"shape {tuple(x.shape)}")
                mean = x.mean(dim=(0, 1))
                var = ((x - mean) ** 2).mean(dim=(0, 1))
            with torch.no_grad():
                m = self.momentum
                # in place, so that functional_call/vmap write the stacked buffers back
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
                self.num_batches_tracked.add_(1)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class SelfAttention(nn.Module):
    r"""Multi-head self-attention with the parameters of ``torch.nn.MultiheadAttention``.

    For heads :math:`h = 1, \dots, H` of width :math:`d_h = d/H`,

    .. math:: [Q\;K\;V] = X W_{in}^\top + b_{in}, \qquad
              A_h = \operatorname{softmax}\Big(\frac{Q_h K_h^\top}{\sqrt{d_h}} + M\Big), \qquad
              \operatorname{out} = [A_1V_1 \cdots A_HV_H]\, W_{out}^\top + b_{out},

    with :math:`M_{ij} = -\infty` where query ``i`` may not attend to key ``j``. Parameters
    ``in_proj_weight`` ``(3d, d)``, ``in_proj_bias`` ``(3d,)`` and ``out_proj`` (a
    ``Linear(d, d)``) are initialised as PyTorch does (Xavier-uniform, zero biases).

    Parameters
    ----------
    d_model
        Width ``d`` (≥ 1), divisible by ``n_heads``.
    n_heads
        Number of heads ``H`` (≥ 1).
    dropout
        Dropout probability on the attention weights in training mode, in [0, 1).

    Raises
    ------
    ValueError
        If a size is < 1, ``d_model % n_heads != 0`` or ``dropout`` is outside [0, 1).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        check_int_at_least("d_model", d_model, 1)
        check_int_at_least("n_heads", n_heads, 1)
        if d_model % n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got d_model={d_model} and "
                             f"n_heads={n_heads}")
        check_in_range("dropout", dropout, 0.0, 1.0)
        self.d_model, self.n_heads, self.dropout = int(d_model), int(n_heads), float(dropout)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, dropout={self.dropout}"

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend within ``x`` ``(B, T, d)``; ``mask`` broadcasts to ``(B, H, T, T)``, True =
        may attend. Returns the output ``(B, T, d)`` and the weights ``(B, H, T, T)``."""
        _check_hidden(x, self.d_model)
        b, t, d = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (z.reshape(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)
                   for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.n_heads)
        if mask is not None:
            # a query with no allowed key is let attend everywhere, then its weights are zeroed
            empty = ~mask.any(dim=-1, keepdim=True)
            scores = scores.masked_fill(~(mask | empty), float("-inf"))
            weights = torch.softmax(scores, dim=-1).masked_fill(empty, 0.0)
        else:
            weights = torch.softmax(scores, dim=-1)
        dropped = weights
        if self.training and self.dropout > 0:
            dropped = inverted_dropout(weights, self.dropout)
        out = (dropped @ v).transpose(1, 2).reshape(b, t, d)
        return self.out_proj(out), weights


class EncoderLayer(nn.Module):
    r"""One Transformer encoder layer, equal to ``torch.nn.TransformerEncoderLayer``.

    With :math:`\mathrm{SA}` the self-attention (:class:`SelfAttention`),
    :math:`\mathrm{FF}(x) = W_2\,\phi(W_1x + b_1) + b_2` and :math:`N_1, N_2` the
    normalisations, post-norm (``norm_first=False``) computes

    .. math:: x \leftarrow N_1(x + \mathrm{SA}(x)), \qquad x \leftarrow N_2(x + \mathrm{FF}(x)),

    and pre-norm (``norm_first=True``)

    .. math:: x \leftarrow x + \mathrm{SA}(N_1(x)), \qquad x \leftarrow x + \mathrm{FF}(N_2(x)),

    with dropout (probability ``dropout``, training mode only) on the attention weights, after
    :math:`\phi` and on each sublayer's output, as PyTorch places it. Parameter names and shapes
    are PyTorch's (``self_attn.in_proj_weight``, ``self_attn.out_proj.weight``, ``linear1``,
    ``linear2``, ``norm1``, ``norm2``); with ``norm="layer"`` the layer loads a
    ``TransformerEncoderLayer(d_model, n_heads, d_ff, batch_first=True)``'s state dict and
    computes the same outputs (layer-norm ε = 1e-5). Padded positions: see the module notes.

    Parameters
    ----------
    d_model
        Width ``d`` (≥ 1), divisible by ``n_heads``.
    n_heads
        Number of attention heads (≥ 1).
    d_ff
        Hidden width of the feed-forward sublayer (≥ 1).
    norm
        ``"layer"`` (``torch.nn.LayerNorm`` over the features of each token), ``"batch"``
        (:class:`SequenceBatchNorm` counting padding) or ``"masked_batch"`` (real tokens only).
    norm_first
        Pre-norm if true, post-norm (the original Transformer, PyTorch's default) if false.
    dropout
        Dropout probability in [0, 1); 0 by default.
    activation
        ``"relu"`` or ``"gelu"`` (the exact, erf-based GELU, as PyTorch's ``"gelu"``).

    Raises
    ------
    ValueError
        For an argument out of range, ``d_model % n_heads != 0``, or a malformed input.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        *,
        norm: str = "layer",
        norm_first: bool = False,
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_int_at_least("d_ff", d_ff, 1)
        check_choice("norm", norm, NORMS)
        check_choice("activation", activation, list(_ACTIVATIONS))
        self.self_attn = SelfAttention(d_model, n_heads, dropout)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = _make_norm(norm, d_model)
        self.norm2 = _make_norm(norm, d_model)
        self.dropout = Dropout(dropout)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.d_model, self.norm, self.norm_first = int(d_model), norm, bool(norm_first)
        self.activation = activation

    def extra_repr(self) -> str:
        return (f"norm={self.norm!r}, norm_first={self.norm_first}, "
                f"activation={self.activation!r}")

    def forward(
        self,
        x: torch.Tensor,
        *,
        padding_mask: torch.Tensor | None = None,
        causal: bool = False,
        allowed: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Apply the layer to ``x`` ``(B, T, d_model)``.

        ``padding_mask`` (``(B, T)``, True at padding), ``causal`` and ``allowed`` (see the
        module notes) restrict attention. Returns the new hidden states ``(B, T, d_model)``,
        and with ``return_attention=True`` also the attention weights ``(B, H, T, T)``.
        """
        _check_hidden(x, self.d_model)
        shape = (x.shape[0], x.shape[1])
        _check_padding_mask(padding_mask, shape)
        _check_allowed(allowed, shape)
        mask = _attention_mask(shape, padding_mask, bool(causal), allowed, x.device)
        if self.norm_first:
            attended, weights = self._attention_block(self._norm1(x, padding_mask), mask)
            x = x + attended
            x = x + self._feed_forward_block(self._norm2(x, padding_mask))
        else:
            attended, weights = self._attention_block(x, mask)
            x = self._norm1(x + attended, padding_mask)
            x = self._norm2(x + self._feed_forward_block(x), padding_mask)
        return (x, weights) if return_attention else x

    def _norm1(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        return _apply_norm(self.norm1, x, padding_mask)

    def _norm2(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        return _apply_norm(self.norm2, x, padding_mask)

    def _attention_block(
        self, x: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, weights = self.self_attn(x, mask)
        return _dropout(self.dropout1, out), weights

    def _feed_forward_block(self, x: torch.Tensor) -> torch.Tensor:
        hidden = _dropout(self.dropout, _ACTIVATIONS[self.activation](self.linear1(x)))
        return _dropout(self.dropout2, self.linear2(hidden))


def _make_norm(norm: str, d_model: int) -> nn.Module:
    if norm == "layer":
        return nn.LayerNorm(d_model, eps=1e-5)
    return SequenceBatchNorm(d_model, masked=norm == "masked_batch")


def _apply_norm(module: nn.Module, x: torch.Tensor,
                padding_mask: torch.Tensor | None) -> torch.Tensor:
    if isinstance(module, SequenceBatchNorm):
        return module(x, padding_mask)
    return module(x)


def _dropout(module: Dropout, x: torch.Tensor) -> torch.Tensor:
    # skipped at p = 0, so that vmap's default randomness="error" is never triggered
    return module(x) if module.training and module.p > 0 else x


def sinusoidal_positions(
    length: int, d_model: int, *, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    r"""The fixed position encodings of Vaswani et al. (2017), shape ``(length, d_model)``.

    .. math:: P_{t,2i} = \sin\big(t / 10000^{2i/d}\big), \qquad
              P_{t,2i+1} = \cos\big(t / 10000^{2i/d}\big)

    Computed in float64 and rounded once to ``dtype``.

    Raises
    ------
    ValueError
        If ``length`` < 1 or ``d_model`` < 1.
    """
    check_int_at_least("length", length, 1)
    check_int_at_least("d_model", d_model, 1)
    position = torch.arange(length, dtype=torch.float64)[:, None]
    exponent = torch.arange(0, d_model, 2, dtype=torch.float64) / d_model
    angle = position / 10000.0 ** exponent
    table = torch.zeros(length, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)[:, : d_model // 2]
    return table.to(dtype)


class EncoderTrace(NamedTuple):
    """What :meth:`Encoder.trace` records: the input of every layer and every attention map.

    ``hidden_states[0]`` is the embedding, ``hidden_states[i]`` the output of layer ``i``
    (before the final normalisation of a pre-norm stack), each ``(B, T, d_model)``;
    ``attention[i]`` holds layer ``i + 1``'s weights ``(B, H, T, T)``; ``output`` is what
    :meth:`Encoder.forward` returns.
    """

    hidden_states: list[torch.Tensor]
    attention: list[torch.Tensor]
    output: torch.Tensor


class Encoder(nn.Module):
    r"""Token and position embeddings followed by a stack of :class:`EncoderLayer`.

    The input of the first layer is :math:`E_{tok}[x_t] + P_t` for token :math:`x_t` at
    position :math:`t` (no scaling by :math:`\sqrt d`), then dropout. Position embeddings
    :math:`P` are learned (``positions="learned"``: an ``nn.Embedding(max_len, d_model)``,
    drawn like the token embedding from N(0, ``embedding_std``²)) or the fixed sinusoids of
    Vaswani et al. (2017), :math:`P_{t,2i} = \sin(t/10000^{2i/d})`,
    :math:`P_{t,2i+1} = \cos(t/10000^{2i/d})` (``"sinusoidal"``, :func:`sinusoidal_positions`,
    computed in the embedding's dtype, not trained). A pre-norm stack ends with a final
    normalisation of the same kind (``final_norm``), as pre-norm Transformers do; a post-norm
    stack's last layer already ends with one.

    Parameters
    ----------
    vocab_size
        Number of token ids (≥ 1); tokens lie in ``[0, vocab_size)``.
    d_model, n_heads, d_ff, norm, norm_first, dropout, activation
        As for :class:`EncoderLayer`.
    n_layers
        Number of layers (≥ 1).
    max_len
        Longest sequence accepted (≥ 1).
    padding_idx
        Id of the padding token, or ``None``. Its embedding is 0 and receives no gradient
        (also under ``vmap``), so a padded position's input is its position embedding alone;
        when ``forward`` gets no ``padding_mask``, the mask is ``tokens == padding_idx``.
    positions
        ``"learned"`` (default) or ``"sinusoidal"``.
    embedding_std
        Standard deviation (> 0) of the initial token (and learned position) embeddings;
        1 is ``nn.Embedding``'s default. With a tied output head (:class:`TokenPredictor`) the
        initial logits have a standard deviation of about ``embedding_std·sqrt(d_model)``, so
        ``d_model ** -0.5`` starts a language model near the uniform prediction.
    seed
        If given, the initial weights come from a generator seeded with it (the global torch
        state is left untouched), so ``Encoder(..., seed=s)`` is the same network wherever it
        is built; ``None`` draws from the global generator.

    Raises
    ------
    ValueError
        For an argument out of range, or tokens or a mask of the wrong shape, type or range.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_heads: int,
        d_ff: int,
        n_layers: int,
        *,
        max_len: int,
        norm: str = "layer",
        norm_first: bool = False,
        dropout: float = 0.0,
        activation: str = "relu",
        padding_idx: int | None = None,
        positions: str = "learned",
        embedding_std: float = 1.0,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        check_int_at_least("vocab_size", vocab_size, 1)
        check_int_at_least("d_model", d_model, 1)
        check_int_at_least("n_layers", n_layers, 1)
        check_int_at_least("max_len", max_len, 1)
        check_choice("positions", positions, ["learned", "sinusoidal"])
        check_positive("embedding_std", embedding_std)
        if padding_idx is not None:
            check_int_in_range("padding_idx", padding_idx, 0, vocab_size - 1)
        self.vocab_size, self.d_model, self.max_len = int(vocab_size), int(d_model), int(max_len)
        self.padding_idx, self.positions, self.norm = padding_idx, positions, norm
        with _seeded(seed):
            self.token_embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
            if positions == "learned":
                self.position_embedding = nn.Embedding(max_len, d_model)
            if embedding_std != 1.0:
                with torch.no_grad():
                    for table in (self.token_embedding, getattr(self, "position_embedding",
                                                                None)):
                        if table is not None:
                            table.weight.mul_(embedding_std)
            self.embedding_dropout = Dropout(dropout)
            self.layers = nn.ModuleList(
                EncoderLayer(d_model, n_heads, d_ff, norm=norm, norm_first=norm_first,
                             dropout=dropout, activation=activation)
                for _ in range(n_layers)
            )
            self.final_norm = _make_norm(norm, d_model) if norm_first else None

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, max_len={self.max_len}, "
                f"padding_idx={self.padding_idx}, positions={self.positions!r}")

    def padding_mask_of(self, tokens: torch.Tensor,
                        padding_mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """``padding_mask`` if given, else ``tokens == padding_idx`` (``None`` without one)."""
        self._check_tokens(tokens)
        if padding_mask is None and self.padding_idx is not None:
            padding_mask = tokens == self.padding_idx
        _check_padding_mask(padding_mask, tuple(tokens.shape))
        return padding_mask

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token plus position embeddings, after dropout: ``(B, T, d_model)``."""
        self._check_tokens(tokens)
        t = tokens.shape[1]
        embedded = self.token_embedding(tokens)
        if self.padding_idx is not None:
            # The padding row is 0 and must get no gradient. nn.Embedding's padding_idx alone
            # does not ensure it under vmap with stacked weights *and* batched tokens (as in
            # fit_replicas): its batching rule shifts replica r's ids by r·vocab_size but not
            # padding_idx, so from the second replica on the padding row is trained (seen in
            # torch 2.13 with norm="batch", where padded positions reach the loss). Zeroing
            # the looked-up vectors blocks that gradient in every replica.
            embedded = embedded.masked_fill((tokens == self.padding_idx)[..., None], 0.0)
        if self.positions == "learned":
            pos = self.position_embedding.weight[:t]
        else:
            pos = sinusoidal_positions(t, self.d_model, dtype=embedded.dtype)
        return _dropout(self.embedding_dropout, embedded + pos)

    def forward(
        self,
        tokens: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        *,
        causal: bool = False,
        allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states ``(B, T, d_model)`` of ``tokens`` ``(B, T)`` after the last layer
        (and the final normalisation of a pre-norm stack)."""
        return self.trace(tokens, padding_mask, causal=causal, allowed=allowed,
                          record=False).output

    def trace(
        self,
        tokens: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        *,
        causal: bool = False,
        allowed: torch.Tensor | None = None,
        record: bool = True,
    ) -> EncoderTrace:
        """The forward pass, keeping every layer's input and attention weights
        (:class:`EncoderTrace`; empty lists with ``record=False``)."""
        padding_mask = self.padding_mask_of(tokens, padding_mask)
        x = self.embed(tokens)
        hidden, attention = [x], []
        for layer in self.layers:
            x, weights = layer(x, padding_mask=padding_mask, causal=causal, allowed=allowed,
                               return_attention=True)
            if record:
                hidden.append(x)
                attention.append(weights)
        out = x if self.final_norm is None else _apply_norm(self.final_norm, x, padding_mask)
        return EncoderTrace(hidden if record else [], attention, out)

    def _check_tokens(self, tokens: object) -> None:
        check_ndim("tokens", tokens, 2)
        if tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"tokens must be an integer tensor of token ids, got {tokens.dtype}")
        if not 1 <= tokens.shape[1] <= self.max_len:
            raise ValueError(f"tokens must have between 1 and max_len={self.max_len} positions, "
                             f"got shape {tuple(tokens.shape)}")
        if _concrete(tokens):  # the values of a vmapped tensor cannot be read
            check_integer_array("tokens", tokens, 2, low=0, high=self.vocab_size)


class SentenceEncoder(nn.Module):
    r"""An :class:`Encoder` whose output is one vector per sequence: the masked mean.

    :math:`\bar h_b` of :func:`masked_mean` over the encoder's outputs, shape ``(B, d_model)``;
    the sentence vector of a SimCSE-style contrastive encoder. Its parameters are the
    encoder's (``encoder.*``, the same names as in :class:`SequenceClassifier` and
    :class:`TokenPredictor`), so a pre-trained encoder's state loads with
    ``load_state_dict(..., strict=False)`` or by passing the same :class:`Encoder`.

    Raises
    ------
    ValueError
        If ``encoder`` is not an :class:`Encoder`.
    """

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        check_type("encoder", encoder, Encoder)
        self.encoder = encoder

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor | None = None,
                *, causal: bool = False) -> torch.Tensor:
        """Sentence vectors ``(B, d_model)`` of ``tokens`` ``(B, T)``."""
        padding_mask = self.encoder.padding_mask_of(tokens, padding_mask)
        h = self.encoder(tokens, padding_mask, causal=causal)
        return masked_mean(h, padding_mask)


class SequenceClassifier(nn.Module):
    r"""An :class:`Encoder`, masked mean pooling (:func:`masked_mean`) and a linear head.

    :math:`\mathrm{logits} = W \bar h + b`, with :math:`\bar h` the mean of the encoder's
    outputs over the real tokens.

    Parameters
    ----------
    encoder
        The :class:`Encoder` (its parameters become this model's ``encoder.*``).
    n_classes
        Number of classes (≥ 2).
    seed
        If given, the head's initial weights come from a generator seeded with it.

    Raises
    ------
    ValueError
        If ``encoder`` is not an :class:`Encoder`, ``n_classes`` < 2 or ``seed`` < 0.
    """

    def __init__(self, encoder: Encoder, n_classes: int, *, seed: int | None = None) -> None:
        super().__init__()
        check_type("encoder", encoder, Encoder)
        check_int_at_least("n_classes", n_classes, 2)
        self.encoder = encoder
        with _seeded(seed):
            self.head = nn.Linear(encoder.d_model, n_classes)

    def pooled(self, tokens: torch.Tensor, padding_mask: torch.Tensor | None = None,
               *, causal: bool = False) -> torch.Tensor:
        """Sentence vectors ``(B, d_model)``: the encoder's outputs averaged over real tokens."""
        padding_mask = self.encoder.padding_mask_of(tokens, padding_mask)
        return masked_mean(self.encoder(tokens, padding_mask, causal=causal), padding_mask)

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor | None = None,
                *, causal: bool = False) -> torch.Tensor:
        """Class logits ``(B, n_classes)`` of ``tokens`` ``(B, T)``."""
        return self.head(self.pooled(tokens, padding_mask, causal=causal))


class TokenPredictor(nn.Module):
    r"""An :class:`Encoder` and a per-token vocabulary head: masked (or causal) language model.

    :math:`\mathrm{logits}_{bt} = W h_{bt} + c`, shape ``(B, T, vocab_size)`` (or at chosen
    positions only, see :meth:`forward`). With
    ``tie_weights=True`` :math:`W` is the encoder's token embedding matrix :math:`E_{tok}`
    itself (Press & Wolf, 2017; BERT does the same), so the head adds only the bias ``c``;
    otherwise it is a separate ``Linear(d_model, vocab_size)``.

    Parameters
    ----------
    encoder
        The :class:`Encoder`.
    tie_weights
        Whether the output matrix is the token embedding.
    seed
        If given, the head's initial weights come from a generator seeded with it.

    Raises
    ------
    ValueError
        If ``encoder`` is not an :class:`Encoder` or ``seed`` < 0.
    """

    def __init__(self, encoder: Encoder, *, tie_weights: bool = True,
                 seed: int | None = None) -> None:
        super().__init__()
        check_type("encoder", encoder, Encoder)
        self.encoder = encoder
        self.tie_weights = bool(tie_weights)
        if self.tie_weights:
            self.output_bias = nn.Parameter(torch.zeros(encoder.vocab_size))
        else:
            with _seeded(seed):
                self.output = nn.Linear(encoder.d_model, encoder.vocab_size)

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor | None = None,
                *, causal: bool = False, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Vocabulary logits ``(B, T, vocab_size)`` at every position of ``tokens``, or
        ``(K, vocab_size)`` at the ``K`` flat (row-major) indices ``positions`` into the
        ``B·T`` positions only: a masked language model's loss needs them at the masked ones."""
        h = self.encoder(tokens, padding_mask, causal=causal)
        if positions is not None:
            check_tensor("positions", positions, 1)
            h = h.reshape(-1, h.shape[-1])[positions]
        if self.tie_weights:
            # the embedding matrix is used directly: no second parameter to keep tied
            return F.linear(h, self.encoder.token_embedding.weight, self.output_bias)
        return self.output(h)


def _lengths(n: int, min_len: int, max_len: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(min_len, max_len + 1, (n,), generator=generator)


def _distinct_tokens(n: int, max_len: int, low: int, high: int,
                     generator: torch.Generator) -> torch.Tensor:
    """``(n, max_len)`` rows of distinct ids from ``[low, high)`` (a random permutation's head)."""
    keys = torch.rand(n, high - low, generator=generator)
    return keys.argsort(dim=1)[:, :max_len] + low


def sequence_task(
    task: str,
    n: int,
    *,
    vocab_size: int,
    min_len: int,
    max_len: int,
    generator: torch.Generator,
    pad_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A balanced binary classification task on variable-length token sequences.

    Sequence ``b`` has a length drawn uniformly from ``[min_len, max_len]``, real tokens in
    ``[1, vocab_size)`` at its first positions and ``pad_id`` after them (padded to
    ``max_len``). Each label is a fair coin, drawn independently of the length, so neither the
    length nor the amount of padding predicts it:

    - ``"majority"``: tokens are ``1`` or ``2``, lengths odd; label 1 iff token 1 is the
      majority. Its count is drawn uniformly from the majority (or minority) counts, then the
      positions are shuffled. A bag of words suffices.
    - ``"repeat"``: label 1 iff some token occurs twice. Label-0 sequences hold distinct
      tokens; label-1 sequences copy one token over another position, so exactly one token
      occurs twice. Needs comparisons between positions: what attention does.
    - ``"sorted"``: label 1 iff the tokens increase strictly from left to right. Sequences
      hold distinct tokens, sorted for label 1 and shuffled for label 0 (a shuffle that comes
      out sorted, likely only for short sequences, has a random adjacent pair swapped). The
      two classes have the same token histogram, so order decides: it needs the positions.

    Parameters
    ----------
    task
        ``"majority"``, ``"repeat"`` or ``"sorted"``.
    n
        Number of sequences (≥ 1).
    vocab_size
        Number of token ids including the padding id 0 (≥ 3; for ``"repeat"`` and
        ``"sorted"`` at least ``max_len + 1``, for distinct tokens).
    min_len, max_len
        Range of lengths, ``1 <= min_len <= max_len`` (``min_len`` ≥ 2 for ``"repeat"`` and
        ``"sorted"``; ``"majority"`` uses the odd lengths in the range, so it must hold one).
    generator
        The ``torch.Generator`` every draw comes from.
    pad_id
        Id of the padding token; only 0 is accepted (real tokens start at 1).

    Returns
    -------
    tokens, padding_mask, labels
        ``(n, max_len)`` int64 ids, ``(n, max_len)`` boolean mask (True at padding) and ``(n,)``
        int64 labels in {0, 1}.

    Raises
    ------
    ValueError
        For an unknown ``task`` or a size, length or id outside the ranges above.
    """
    check_choice("task", task, _TASKS)
    check_int_at_least("n", n, 1)
    check_int_at_least("min_len", min_len, 2 if task != "majority" else 1)
    check_int_at_least("max_len", max_len, min_len)
    check_int_at_least("vocab_size", vocab_size, 3 if task == "majority" else max_len + 1)
    if pad_id != 0:
        raise ValueError(f"pad_id must be 0 (real tokens are 1, 2, ...), got {pad_id!r}")
    labels = torch.randint(0, 2, (n,), generator=generator)
    positions = torch.arange(max_len)
    if task == "majority":
        odd = torch.arange(min_len + (min_len % 2 == 0), max_len + 1, 2)
        if len(odd) == 0:
            raise ValueError(f"min_len and max_len must include an odd length for 'majority', "
                             f"got [{min_len}, {max_len}]")
        lengths = odd[torch.randint(0, len(odd), (n,), generator=generator)]
        half = lengths // 2  # the minority has at most `half` tokens
        minority = (torch.rand(n, generator=generator) * (half + 1)).floor().long()
        ones = torch.where(labels == 1, lengths - minority, minority)
        order = torch.rand(n, max_len, generator=generator)
        order = order.masked_fill(positions[None] >= lengths[:, None], 2.0).argsort(dim=1)
        rank = order.argsort(dim=1)  # position → its rank among the real positions
        tokens = torch.where(rank < ones[:, None], 1, 2)
    else:
        lengths = _lengths(n, min_len, max_len, generator)
        tokens = _distinct_tokens(n, max_len, 1, vocab_size, generator)
        if task == "sorted":
            real = positions[None] < lengths[:, None]
            tokens = tokens.masked_fill(~real, vocab_size).sort(dim=1).values
            # label 0: the same tokens shuffled; a shuffle that came out sorted (likely only
            # for short sequences) gets one random adjacent pair swapped
            keys = torch.rand(n, max_len, generator=generator).masked_fill(~real, 2.0)
            shuffled = tokens.gather(1, keys.argsort(dim=1))
            tokens = torch.where((labels == 0)[:, None], shuffled, tokens)
            rising = ((tokens[:, 1:] > tokens[:, :-1]) | ~real[:, 1:]).all(dim=1)
            i = (torch.rand(n, generator=generator) * (lengths - 1)).floor().long()
            rows = torch.arange(n)[(labels == 0) & rising]
            i = i[rows]
            a, b = tokens[rows, i].clone(), tokens[rows, i + 1].clone()
            tokens[rows, i], tokens[rows, i + 1] = b, a
        else:
            i = (torch.rand(n, generator=generator) * lengths).floor().long()
            j = (torch.rand(n, generator=generator) * (lengths - 1)).floor().long()
            j = j + (j >= i).long()  # a second position, different from i
            rows = torch.arange(n)[labels == 1]
            tokens[rows, j[labels == 1]] = tokens[rows, i[labels == 1]]
    padding_mask = positions[None] >= lengths[:, None]
    return tokens.masked_fill(padding_mask, pad_id).long(), padding_mask, labels.long()
