r"""Scaled dot-product and additive attention, masks and softmax temperature. Used in chapter 7,
"Attention: why divide by √d_k".

Conventions shared by every function here:

- Queries have shape ``(..., L, d_q)``, keys ``(..., S, d_k)``, values ``(..., S, d_v)``; the
  leading (batch) dimensions broadcast. Attention weights have shape ``(..., L, S)``, one
  probability distribution over the ``S`` keys per query.
- A mask is a *boolean* tensor broadcastable to ``(..., L, S)`` that is ``True`` where a query
  **may** attend to a key (the convention of
  ``torch.nn.functional.scaled_dot_product_attention``). Masked weights are exactly 0.
- A query whose mask row is all ``False`` has nothing to attend to. In PyTorch 2.13,
  ``torch.nn.functional.scaled_dot_product_attention`` silently returns a zero output for such
  a row, while ``torch.softmax`` and ``nn.MultiheadAttention`` give NaN (and earlier releases
  of the former did too); here it raises ``ValueError``, because a fully masked row is almost
  always a bug (for example a padded *query* position combined with a mask that also hides
  every key).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from dlnotes.training import fit_replicas
from dlnotes.validation import (
    check_dim_size,
    check_distribution_rows,
    check_float_tensor,
    check_int_at_least,
    check_integer_array,
    check_length,
    check_nonnegative,
    check_positive,
    check_tensor,
)

__all__ = [
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "softmax_with_temperature",
    "softmax_jacobian",
    "AdditiveAttention",
    "Saturation",
    "attention_saturation",
    "RetrievalBatch",
    "retrieval_batch",
    "DotProductRetriever",
    "retrieval_loss",
    "score_gradient_norms",
    "RetrievalRun",
    "train_retrieval",
]


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_float_tensor(name, t, min_ndim=2)
    check_dim_size("v", v, -2, k.shape[-2], "positions S (as many as k)")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(f"the batch dimensions of q, k and v must broadcast, got "
                         f"{tuple(q.shape)}, {tuple(k.shape)} and {tuple(v.shape)}") from None


def _attend(scores: torch.Tensor, v: torch.Tensor,
            mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked softmax over the last dimension of ``scores``, then the weighted sum of ``v``."""
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("the attention scores overflowed (inf or NaN); rescale q and k")
    if mask is not None:
        check_tensor("mask", mask, dtype=torch.bool)
        try:
            shape = torch.broadcast_shapes(mask.shape, scores.shape)
        except RuntimeError:
            shape = None
        if shape != scores.shape:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the "
                             f"scores' shape (..., L, S) = {tuple(scores.shape)}")
        if not bool(mask.expand(scores.shape).any(dim=-1).all()):
            raise ValueError("mask leaves a query with no key to attend to (a fully masked "
                             "row); every query needs at least one True entry")
        scores = scores.masked_fill(~mask, float("-inf"))
    # torch.softmax subtracts the row maximum before exponentiating, so large finite scores
    # cannot overflow; exp(-inf) = 0 makes masked weights exactly 0.
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Scaled dot-product attention, returning the output and the attention weights.

    .. math::
        \operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{QK^\top}
        {\sqrt{d_k}}\Big) V

    with the weights of masked (``False``) query–key pairs set to exactly 0. The output equals
    ``torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)``
    wherever the latter is defined.

    Parameters
    ----------
    q
        Queries, shape ``(..., L, d_k)``.
    k
        Keys, shape ``(..., S, d_k)``.
    v
        Values, shape ``(..., S, d_v)``.
    mask
        Optional boolean tensor broadcastable to ``(..., L, S)``; ``True`` where attending is
        allowed. Every query must be allowed at least one key.
    scale
        Factor multiplying the scores, > 0; ``None`` means :math:`1/\sqrt{d_k}`. Pass
        ``scale=1.0`` for unscaled dot-product attention.

    Returns
    -------
    output, weights
        ``output`` of shape ``(..., L, d_v)`` and ``weights`` of shape ``(..., L, S)``, each row
        of ``weights`` a probability distribution.

    Raises
    ------
    ValueError
        If a mask row is all ``False``, the scores overflow, or for a wrong shape or value.
    """
    _check_qkv(q, k, v)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same size d_k (last dimension) for a dot "
                         f"product, got {q.shape[-1]} and {k.shape[-1]}; additive attention "
                         f"accepts different sizes")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    else:
        check_positive("scale", scale)
    scores = (q @ k.transpose(-2, -1)) * scale
    return _attend(scores, v, mask)


def causal_mask(n: int) -> torch.Tensor:
    """The decoder's causal mask: position ``t`` may attend to positions ``0, …, t`` only.

    Parameters
    ----------
    n
        Sequence length, ≥ 1.

    Returns
    -------
    torch.Tensor
        Boolean ``(n, n)``, lower triangular (``mask[t, s]`` is ``True`` iff ``s <= t``); the
        same as ``is_causal=True`` in PyTorch's attention.

    Raises
    ------
    ValueError
        If ``n`` is not an integer ≥ 1.
    """
    check_int_at_least("n", n, 1)
    return torch.ones(n, n, dtype=torch.bool).tril()


def padding_mask(lengths: list[int] | torch.Tensor, max_len: int) -> torch.Tensor:
    """A key-padding mask: sequence ``b`` has ``lengths[b]`` real tokens, then padding.

    Parameters
    ----------
    lengths
        True lengths of the ``B`` sequences, each in ``[1, max_len]``.
    max_len
        Padded length ``S``, ≥ 1.

    Returns
    -------
    torch.Tensor
        Boolean ``(B, 1, S)``, ``True`` at real key positions; it broadcasts over the queries,
        and combines with :func:`causal_mask` by ``&``.

    Raises
    ------
    ValueError
        If a length lies outside ``[1, max_len]`` (a length of 0 attends to nothing).
    """
    check_int_at_least("max_len", max_len, 1)
    lengths_t = torch.as_tensor(lengths)
    check_integer_array("lengths", lengths_t, 1, low=1, high=max_len + 1)
    positions = torch.arange(max_len)
    return (positions[None, :] < lengths_t[:, None])[:, None, :]


def softmax_with_temperature(logits: torch.Tensor, tau: float, dim: int = -1) -> torch.Tensor:
    r"""The tempered softmax :math:`p_i = e^{z_i/\tau} / \sum_j e^{z_j/\tau}`.

    :math:`\tau \to 0^+` tends to the arg-max (ties share equally), :math:`\tau = 1` is the
    plain softmax and :math:`\tau \to \infty` the uniform distribution. The maximum is
    subtracted *before* dividing by τ, so a tiny τ gives an exact one-hot vector rather than
    ``inf / inf``.

    Parameters
    ----------
    logits
        Finite scores :math:`z`, any shape.
    tau
        Temperature, > 0.
    dim
        Dimension over which the probabilities sum to 1.

    Returns
    -------
    torch.Tensor
        Probabilities of the same shape as ``logits``.

    Raises
    ------
    ValueError
        If ``tau`` ≤ 0 or is not finite, or ``logits`` is not a finite floating tensor.
    """
    check_positive("tau", tau)
    check_float_tensor("logits", logits, min_ndim=1)
    shifted = logits - logits.amax(dim=dim, keepdim=True)
    return torch.softmax(shifted / tau, dim=dim)


def softmax_jacobian(p: torch.Tensor) -> torch.Tensor:
    r"""The Jacobian :math:`\partial p / \partial z = \operatorname{diag}(p) - pp^\top` of
    :math:`p = \operatorname{softmax}(z)`, from the probabilities.

    Parameters
    ----------
    p
        Probabilities, shape ``(..., n)``, non-negative, summing to 1 over the last dimension.

    Returns
    -------
    torch.Tensor
        Shape ``(..., n, n)``; symmetric, and 0 when ``p`` is one-hot.

    Raises
    ------
    ValueError
        If ``p`` is not a finite floating tensor of non-negative rows summing to 1.
    """
    check_float_tensor("p", p, min_ndim=1)
    low_precision = p.dtype in (torch.float16, torch.bfloat16, torch.float32)
    check_distribution_rows("p", p, atol=1e-5 if low_precision else 1e-10)
    return torch.diag_embed(p) - p[..., :, None] * p[..., None, :]


class AdditiveAttention(nn.Module):
    r"""Additive (Bahdanau) attention, for queries and keys of different sizes.

    .. math::
        e_{ts} = w^\top \tanh(W_q q_t + W_k k_s), \qquad
        a_{t\cdot} = \operatorname{softmax}(e_{t\cdot}), \qquad o_t = \sum_s a_{ts} v_s

    :math:`W_q` maps the ``d_q``-dimensional query and :math:`W_k` the ``d_k``-dimensional key
    into a common ``d_hidden``-dimensional space, so ``d_q`` and ``d_k`` may differ. Because
    :math:`|\tanh| < 1`, every score is bounded by :math:`\lVert w \rVert_1` whatever the input
    size. The layers have no bias, as in Bahdanau et al. (2015).

    Every weight starts as :math:`\mathcal N(0, 1/\text{fan-in})`, as in
    :class:`DotProductRetriever`: for inputs with unit-variance components the projections
    :math:`W_q q` and :math:`W_k k` have unit-variance components, so the same matrices can
    feed a dot-product score for a like-for-like comparison.

    Parameters
    ----------
    d_q, d_k, d_hidden
        Query size, key size and hidden size, each ≥ 1.
    generator
        Source of the initial weights (PyTorch's global generator if ``None``).

    Raises
    ------
    ValueError
        If a size is not an integer ≥ 1.
    """

    def __init__(self, d_q: int, d_k: int, d_hidden: int, *,
                 generator: torch.Generator | None = None) -> None:
        for name, value in (("d_q", d_q), ("d_k", d_k), ("d_hidden", d_hidden)):
            check_int_at_least(name, value, 1)
        super().__init__()
        self.W_q = nn.Linear(d_q, d_hidden, bias=False)
        self.W_k = nn.Linear(d_k, d_hidden, bias=False)
        self.w = nn.Linear(d_hidden, 1, bias=False)
        with torch.no_grad():
            for layer in (self.W_q, self.W_k, self.w):
                fan_in = layer.in_features
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator)
                                   / math.sqrt(fan_in))

    def scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores ``e`` of shape ``(..., L, S)`` for queries and keys."""
        d_q, d_k = self.W_q.in_features, self.W_k.in_features
        dtype = self.W_q.weight.dtype
        if q.dtype != dtype or k.dtype != dtype:
            raise ValueError(f"q and k must have the module's dtype {dtype}, got {q.dtype} and "
                             f"{k.dtype} (convert the module with .double() or the inputs)")
        check_dim_size("q", q, -1, d_q, "features (d_q)")
        check_dim_size("k", k, -1, d_k, "features (d_k)")
        hidden = self.W_q(q).unsqueeze(-2) + self.W_k(k).unsqueeze(-3)  # (..., L, S, h)
        return self.w(torch.tanh(hidden)).squeeze(-1)

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from queries ``(..., L, d_q)`` to keys ``(..., S, d_k)`` with values
        ``(..., S, d_v)``.

        Parameters
        ----------
        q, k, v
            Queries, keys and values (floating tensors of the module's dtype).
        mask
            Optional boolean mask broadcastable to ``(..., L, S)``, ``True`` = may attend.

        Returns
        -------
        output, weights
            Shapes ``(..., L, d_v)`` and ``(..., L, S)``.

        Raises
        ------
        ValueError
            If ``q`` or ``k`` does not fit the module, or as :func:`scaled_dot_product_attention`.
        """
        _check_qkv(q, k, v)
        return _attend(self.scores(q, k), v, mask)


class Saturation(NamedTuple):
    """How peaked softmax attention is over random queries and keys: per query, or summarised
    (the mean largest weight and the median Jacobian norm)."""

    max_weight: torch.Tensor
    jacobian_norm: torch.Tensor

    @property
    def mean_max_weight(self) -> float:
        """The mean over queries of the largest attention weight."""
        return float(self.max_weight.mean())

    @property
    def median_jacobian_norm(self) -> float:
        """The median over queries of the Frobenius norm of the softmax Jacobian."""
        return float(self.jacobian_norm.median())


def attention_saturation(
    d_k: int,
    *,
    n_keys: int = 16,
    n_samples: int = 1000,
    scale: float | None = None,
    generator: torch.Generator | None = None,
) -> Saturation:
    r"""Monte Carlo: how close softmax attention over random keys is to one-hot.

    Draws ``n_samples`` queries and ``n_keys`` keys per query with independent standard normal
    components (Vaswani et al.'s assumption) in float64, computes the weights
    :math:`p = \operatorname{softmax}(\text{scale}\cdot q^\top k_s)` and records, per query,
    :math:`\max_s p_s` and the Frobenius norm of the softmax Jacobian
    :math:`\operatorname{diag}(p) - pp^\top` (:func:`softmax_jacobian`). The norm is 0 for a
    one-hot ``p``, 1/2 for two keys sharing the weight equally and :math:`\sqrt{n-1}/n` for
    uniform weights over ``n`` keys.

    Parameters
    ----------
    d_k
        Size of queries and keys, ≥ 1.
    n_keys
        Keys per query, ≥ 2.
    n_samples
        Number of queries, ≥ 1.
    scale
        Score factor, > 0; ``None`` means :math:`1/\sqrt{d_k}`, ``1.0`` unscaled.
    generator
        Source of randomness (a fresh unseeded one if ``None``). Calls with equally seeded
        generators and different ``scale`` see the same queries and keys.

    Returns
    -------
    Saturation
        ``max_weight`` and ``jacobian_norm``, tensors of shape ``(n_samples,)``, and their
        summaries ``mean_max_weight`` and ``median_jacobian_norm``.

    Raises
    ------
    ValueError
        If a size is out of range or ``scale`` is not > 0.
    """
    check_int_at_least("d_k", d_k, 1)
    check_int_at_least("n_keys", n_keys, 2)
    check_int_at_least("n_samples", n_samples, 1)
    scale = 1.0 / math.sqrt(d_k) if scale is None else scale
    check_positive("scale", scale)
    max_weight, jac_norm = [], []
    for start in range(0, n_samples, 250):  # chunks keep memory small at large d_k
        m = min(250, n_samples - start)
        q = torch.randn(m, 1, d_k, generator=generator, dtype=torch.float64)
        k = torch.randn(m, n_keys, d_k, generator=generator, dtype=torch.float64)
        p = torch.softmax(scale * (q @ k.transpose(-2, -1))[:, 0], dim=-1)
        max_weight.append(p.amax(dim=-1))
        jac_norm.append(torch.linalg.matrix_norm(softmax_jacobian(p)))
    return Saturation(torch.cat(max_weight), torch.cat(jac_norm))


class RetrievalBatch(NamedTuple):
    """One batch of the key–value retrieval task (see :func:`retrieval_batch`)."""

    query: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor
    target: torch.Tensor


def retrieval_batch(
    batch_size: int,
    n_pairs: int,
    d_in: int,
    d_v: int,
    noise: float,
    generator: torch.Generator,
    *,
    dtype: torch.dtype = torch.float64,
) -> RetrievalBatch:
    """A batch of the retrieval task: find the value whose key the query is a noisy copy of.

    Each example holds ``n_pairs`` keys and values with independent standard normal components;
    the query is key ``target`` plus Gaussian noise of standard deviation ``noise``. A model
    solves the task by putting its attention weight on key ``target`` and returning its value.

    Parameters
    ----------
    batch_size, n_pairs, d_in, d_v
        Examples (≥ 1), key–value pairs per example (≥ 2), key size (≥ 1), value size (≥ 1).
    noise
        Standard deviation of the query noise, ≥ 0.
    generator
        Source of randomness.
    dtype
        Floating dtype of the query, keys and values.

    Returns
    -------
    RetrievalBatch
        ``query`` ``(B, 1, d_in)``, ``keys`` ``(B, n, d_in)``, ``values`` ``(B, n, d_v)``,
        ``target`` ``(B,)`` (int64 index of the matching key).

    Raises
    ------
    ValueError
        If a size is out of range or ``noise`` < 0.
    """
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("n_pairs", n_pairs, 2)
    check_int_at_least("d_in", d_in, 1)
    check_int_at_least("d_v", d_v, 1)
    check_nonnegative("noise", noise)
    keys = torch.randn(batch_size, n_pairs, d_in, generator=generator, dtype=dtype)
    values = torch.randn(batch_size, n_pairs, d_v, generator=generator, dtype=dtype)
    target = torch.randint(n_pairs, (batch_size,), generator=generator)
    query = keys[torch.arange(batch_size), target] + noise * torch.randn(
        batch_size, d_in, generator=generator, dtype=dtype)
    return RetrievalBatch(query[:, None, :], keys, values, target)


class DotProductRetriever(nn.Module):
    r"""One dot-product attention layer with learned query and key projections.

    Queries and keys of size ``d_in`` are projected to size ``d_k`` by bias-free linear maps
    whose weights start as :math:`\mathcal N(0, 1/d_\text{in})`, so for inputs with unit-variance
    components the projected components have variance 1 (the assumption behind the
    :math:`1/\sqrt{d_k}` factor). The values are passed through unchanged. The score factor is
    a buffer (``scale``), so scaled and unscaled models stack side by side
    (:func:`dlnotes.training.fit_replicas`).

    Parameters
    ----------
    d_in, d_k
        Input size and projected size, each ≥ 1.
    scaled
        Multiply the scores by :math:`1/\sqrt{d_k}` (``True``) or not (``False``).
    generator
        Source of the initial weights.
    dtype
        Floating dtype of the weights.

    Raises
    ------
    ValueError
        If a size is not an integer ≥ 1.
    """

    def __init__(self, d_in: int, d_k: int, *, scaled: bool,
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        check_int_at_least("d_in", d_in, 1)
        check_int_at_least("d_k", d_k, 1)
        super().__init__()
        std = 1.0 / math.sqrt(d_in)
        self.W_q = nn.Parameter(std * torch.randn(d_k, d_in, generator=generator, dtype=dtype))
        self.W_k = nn.Parameter(std * torch.randn(d_k, d_in, generator=generator, dtype=dtype))
        self.register_buffer("scale", torch.tensor(1.0 / math.sqrt(d_k) if scaled else 1.0,
                                                   dtype=dtype))

    def forward(self, query: torch.Tensor, keys: torch.Tensor,
                values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(output, weights)`` for a query ``(B, 1, d_in)``, keys ``(B, S, d_in)`` and
        values ``(B, S, d_v)``: the softmax of ``scale · (W_q x)·(W_k k_s)`` and the weighted
        values. No value checks, so that it runs under ``vmap``."""
        # (W_q x)·(W_k k) = x^T (W_q^T W_k) k: the d_in × d_in bilinear form costs d_in²·d_k
        # once per batch, then d_in² per example, instead of (S + 1)·d_k·d_in per example.
        pulled_back = query[..., 0, :] @ (self.W_q.T @ self.W_k)  # (B, d_in)
        scores = (keys @ pulled_back[..., None]).transpose(-2, -1)  # (B, 1, S)
        weights = torch.softmax(self.scale * scores, dim=-1)
        return weights @ values, weights


def _target_values(values: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The value of each example's matching key, ``(..., B, 1, d_v)`` (vmap-safe gather)."""
    index = target[..., None, None].expand(*target.shape, 1, values.shape[-1])
    return values.gather(-2, index)


def retrieval_loss(model: nn.Module, query: torch.Tensor, keys: torch.Tensor,
                   values: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""The retrieval loss: squared error between the attention output and the target value,
    summed over the value's components and averaged over the batch,
    :math:`\frac1B\sum_b \lVert o_b - v_{b,t_b}\rVert^2`. It reaches the scores only through
    the softmax Jacobian, so a saturated softmax passes back little gradient."""
    output, _ = model(query, keys, values)
    return ((output - _target_values(values, target)) ** 2).sum(-1).mean()


def score_gradient_norms(output: torch.Tensor, weights: torch.Tensor, values: torch.Tensor,
                         target: torch.Tensor) -> torch.Tensor:
    r"""Per example, the norm of the gradient of its loss at the softmax input.

    For :math:`\ell = \lVert o - v_t\rVert^2` with :math:`o = \sum_s p_s v_s` and
    :math:`p = \operatorname{softmax}(z)`: :math:`g_s = \partial\ell/\partial p_s =
    2(o - v_t)\cdot v_s` and :math:`\partial \ell/\partial z = J^\top g = p\odot(g - p^\top g)`
    (:func:`softmax_jacobian`). The gradient at the softmax input does not depend on how the
    scores are parametrised (a factor in the forward pass or in the weights), unlike the
    gradient at the weights.

    Parameters
    ----------
    output, weights
        What :class:`DotProductRetriever` returns, ``(..., B, 1, d_v)`` and ``(..., B, 1, S)``.
    values, target
        The batch's values ``(..., B, S, d_v)`` and matching indices ``(..., B)``.

    Returns
    -------
    torch.Tensor
        Shape ``(..., B)``.
    """
    residual = output - _target_values(values, target)  # (..., B, 1, d_v)
    g = 2 * (residual @ values.transpose(-2, -1))  # (..., B, 1, S)
    grad = weights * (g - (weights * g).sum(-1, keepdim=True))
    return grad[..., 0, :].norm(dim=-1)


class _SharedDraws:
    """A batch-drawing function for :func:`dlnotes.training.fit_replicas` whose replicas with
    equal seeds share each step's batch: it is drawn once, from the first such replica's
    generator, whose state equals the others' (same seed, same draws so far), and handed to
    the rest. The batches are those of separate runs; only the drawing is not repeated."""

    def __init__(self, draw, generators: Sequence[torch.Generator], seeds: Sequence[int]):
        self.draw, self.seed_of = draw, {id(g): s for g, s in zip(generators, seeds,
                                                                  strict=True)}
        self.source: dict[int, torch.Generator] = {}
        for g, s in zip(generators, seeds, strict=True):
            self.source.setdefault(s, g)
        self.users = {s: list(seeds).count(s) for s in self.source}
        self.count = {id(g): 0 for g in generators}
        self.cache: dict[tuple[int, int], list] = {}

    def __call__(self, generator: torch.Generator):
        seed = self.seed_of[id(generator)]
        key = (seed, self.count[id(generator)])
        self.count[id(generator)] += 1
        if key not in self.cache:
            self.cache[key] = [self.draw(self.source[seed]), self.users[seed]]
        entry = self.cache[key]
        entry[1] -= 1
        if entry[1] == 0:
            del self.cache[key]
        return entry[0]


class RetrievalRun(NamedTuple):
    """What :func:`train_retrieval` returns: the trained models and their measurements."""

    models: list[DotProductRetriever]
    history: dict[str, np.ndarray]


def _retrieval_measures(output, weights, batch: RetrievalBatch,
                        threshold: float) -> dict[str, torch.Tensor]:
    """Evaluation metrics of stacked outputs ``(R, B, 1, ·)`` on a shared batch."""
    residual = output - _target_values(batch.values, batch.target)
    norms = score_gradient_norms(output, weights, batch.values, batch.target)  # (R, B)
    active, wrong = norms > threshold, weights[..., 0, :].argmax(-1) != batch.target
    return {
        "eval_loss": (residual ** 2).sum(-1).mean(dim=(-2, -1)),
        "eval_accuracy": 1.0 - wrong.double().mean(-1),
        "active_share": active.double().mean(-1),
        "wrong_active_share": (active & wrong).double().sum(-1) / wrong.double().sum(-1),
        "median_score_grad": norms.median(dim=-1).values,
    }


def train_retrieval(
    d_k: int,
    *,
    scaled: bool | Sequence[bool],
    seeds: Sequence[int] = (0,),
    lr: float | Sequence[float] = 3e-3,
    steps: int = 300,
    optimizer: str = "adam",
    batch_size: int = 64,
    n_pairs: int = 16,
    d_in: int = 16,
    d_v: int = 8,
    noise: float = 0.5,
    record_every: int = 10,
    eval_size: int = 256,
    eval_seed: int = 2**20,
    threshold: float = 0.01,
) -> RetrievalRun:
    r"""Train :class:`DotProductRetriever` replicas side by side on fresh
    :func:`retrieval_batch` batches (:func:`dlnotes.training.fit_replicas`, float64).

    Replica ``r`` draws its initial weights and then its batches from
    ``torch.Generator().manual_seed(seeds[r])``, so replicas with the same seed (scaled or not,
    at any step size) start from the same projections and see the same batches: a paired
    design. The loss is :func:`retrieval_loss`.

    Parameters
    ----------
    d_k
        Projected size of queries and keys, ≥ 1.
    scaled
        Whether each replica multiplies its scores by :math:`1/\sqrt{d_k}`: one value for all
        or one per replica.
    seeds
        One seed per replica (at least one; a seed may repeat across conditions).
    lr
        Step size, one for all or one per replica.
    steps, optimizer
        Training steps (≥ 1) and ``"adam"`` or ``"sgd"`` (plain gradient descent).
    batch_size, n_pairs, d_in, d_v, noise
        Task parameters, see :func:`retrieval_batch`.
    record_every
        Measure every this many steps (and at step 0 and after the last).
    eval_size, eval_seed
        Size and seed of the held-out evaluation batch, the same for every replica.
    threshold
        An example counts as *active* when the norm of its loss's gradient at the softmax
        input (:func:`score_gradient_norms`) exceeds it.

    Returns
    -------
    RetrievalRun
        The trained models and a history of NumPy arrays: ``"step"`` ``(K,)`` (0 first);
        ``"eval_loss"``, ``"eval_accuracy"`` (share of evaluation examples whose largest
        weight is on the matching key), ``"active_share"`` (share of active examples),
        ``"wrong_active_share"`` (the same among the examples retrieved wrongly; NaN when
        there are none) and ``"median_score_grad"``, each ``(K, R)`` on the evaluation batch;
        ``"train_loss"`` ``(K, R)``, the mean loss on the training batches since the previous
        record (NaN at step 0); ``"W_q_grad_norm"`` and
        ``"W_k_grad_norm"`` ``(steps, R)``, the norms of the batch loss's gradient at the
        weights at every step.

    Raises
    ------
    ValueError
        For out-of-range arguments, no seeds, or per-replica settings of the wrong length.
    """
    check_int_at_least("d_k", d_k, 1)
    seeds = [int(s) for s in seeds]
    check_int_at_least("len(seeds)", len(seeds), 1)
    flags = [scaled] * len(seeds) if isinstance(scaled, bool) else [bool(f) for f in scaled]
    check_length("scaled", flags, len(seeds), "flags (one per seed)")
    check_positive("threshold", threshold)
    check_int_at_least("eval_size", eval_size, 1)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    models = [DotProductRetriever(d_in, d_k, scaled=f, generator=g)
              for f, g in zip(flags, gens, strict=True)]
    held_out = retrieval_batch(eval_size, n_pairs, d_in, d_v, noise,
                               torch.Generator().manual_seed(eval_seed))
    grad_norms: dict[str, list[torch.Tensor]] = {"W_q": [], "W_k": []}

    def record_gradients(params: dict[str, torch.Tensor]) -> None:
        for name, norms in grad_norms.items():
            norms.append(params[name].grad.flatten(1).norm(dim=1).detach())

    def measure(model_fn, _step) -> dict[str, torch.Tensor]:
        return _retrieval_measures(*model_fn(*held_out[:3]), held_out, threshold)

    with torch.no_grad():
        start = _retrieval_measures(*(torch.stack(t) for t in zip(
            *(m(*held_out[:3]) for m in models), strict=True)), held_out, threshold)
    draws = _SharedDraws(lambda g: retrieval_batch(batch_size, n_pairs, d_in, d_v, noise, g),
                         gens, seeds)
    history = fit_replicas(
        models, retrieval_loss, draws, generators=gens, steps=steps, optimizer=optimizer, lr=lr,
        after_backward=record_gradients, callback=measure, record_every=record_every)
    out = {"step": np.array([0, *history.step])}
    for key, first in start.items():
        out[key] = np.vstack([first.numpy()[None], history[key]])
    out["train_loss"] = np.vstack([np.full((1, len(seeds)), np.nan), history.loss])
    for name, norms in grad_norms.items():
        out[f"{name}_grad_norm"] = torch.stack(norms).numpy()
    return RetrievalRun(models, out)
