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

from dlnotes.validation import (
    check_choice,
    check_dim_size,
    check_distribution_rows,
    check_float_tensor,
    check_int_at_least,
    check_integer_array,
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
    """How peaked softmax attention is, averaged over random queries and keys."""

    mean_max_weight: float
    median_jacobian_norm: float


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
    components (Vaswani et al.'s assumption), computes the weights
    :math:`p = \operatorname{softmax}(\text{scale}\cdot q^\top k_s)` and reports the mean of
    :math:`\max_s p_s` and the median Frobenius norm of the softmax Jacobian
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
        ``(mean_max_weight, median_jacobian_norm)`` as floats.

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
    return Saturation(float(torch.cat(max_weight).mean()), float(torch.cat(jac_norm).median()))


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

    Returns
    -------
    RetrievalBatch
        ``query`` ``(B, 1, d_in)``, ``keys`` ``(B, n, d_in)``, ``values`` ``(B, n, d_v)``,
        ``target`` ``(B,)`` (int64 index of the matching key), all float32 but ``target``.

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
    keys = torch.randn(batch_size, n_pairs, d_in, generator=generator)
    values = torch.randn(batch_size, n_pairs, d_v, generator=generator)
    target = torch.randint(n_pairs, (batch_size,), generator=generator)
    query = keys[torch.arange(batch_size), target] + noise * torch.randn(
        batch_size, d_in, generator=generator)
    return RetrievalBatch(query[:, None, :], keys, values, target)


class DotProductRetriever(nn.Module):
    r"""One dot-product attention layer with learned query and key projections.

    Queries and keys of size ``d_in`` are projected to size ``d_k`` by bias-free linear maps
    whose weights start as :math:`\mathcal N(0, 1/d_\text{in})`, so for inputs with unit-variance
    components the projected components have variance 1 (the assumption behind the
    :math:`1/\sqrt{d_k}` factor). The values are passed through unchanged.

    Parameters
    ----------
    d_in, d_k
        Input size and projected size, each ≥ 1.
    scaled
        Multiply the scores by :math:`1/\sqrt{d_k}` (``True``) or not (``False``).
    generator
        Source of the initial weights.

    Raises
    ------
    ValueError
        If a size is not an integer ≥ 1.
    """

    def __init__(self, d_in: int, d_k: int, *, scaled: bool,
                 generator: torch.Generator | None = None) -> None:
        check_int_at_least("d_in", d_in, 1)
        check_int_at_least("d_k", d_k, 1)
        super().__init__()
        std = 1.0 / math.sqrt(d_in)
        self.W_q = nn.Parameter(std * torch.randn(d_k, d_in, generator=generator))
        self.W_k = nn.Parameter(std * torch.randn(d_k, d_in, generator=generator))
        self.scale = 1.0 / math.sqrt(d_k) if scaled else 1.0

    def forward(self, query: torch.Tensor, keys: torch.Tensor,
                values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(output, weights)``, the :func:`scaled_dot_product_attention` of the
        projected query and keys with the values (without re-checking the internal tensors)."""
        scores = (query @ self.W_q.T) @ (keys @ self.W_k.T).transpose(-2, -1)
        return _attend(scores * self.scale, values, None)


def train_retrieval(
    d_k: int,
    *,
    scaled: bool,
    seeds: Sequence[int] = (0,),
    steps: int = 300,
    lr: float = 3e-3,
    optimizer: str = "adam",
    batch_size: int = 64,
    n_pairs: int = 16,
    d_in: int = 16,
    d_v: int = 8,
    noise: float = 0.5,
) -> dict[str, np.ndarray]:
    r"""Train a :class:`DotProductRetriever` per seed on fresh :func:`retrieval_batch` batches.

    The loss is the squared error between the attention output and the target value, summed
    over the value's components and averaged over the batch. Because it reaches the scores
    only through the softmax Jacobian, a saturated softmax passes back little gradient.

    The runs of all ``seeds`` are trained side by side as one stacked model whose objective is
    the sum of the runs' losses, so each run gets exactly its own gradient; Adam and SGD act
    element-wise, so every run is the one-seed run up to floating-point rounding. Seed ``s``
    draws the initial weights and then the batches from ``torch.Generator().manual_seed(s)``,
    the same draws whether ``scaled`` is true or not.

    Parameters
    ----------
    d_k
        Projected size of queries and keys, ≥ 1.
    scaled
        Use the :math:`1/\sqrt{d_k}` factor or not.
    seeds
        One training run per seed (at least one, distinct).
    steps, lr
        Training steps (≥ 1) and learning rate (> 0).
    optimizer
        ``"adam"`` or ``"sgd"`` (plain gradient descent, no momentum).
    batch_size, n_pairs, d_in, d_v, noise
        Task parameters, see :func:`retrieval_batch`.

    Returns
    -------
    dict of numpy.ndarray
        Each of shape ``(steps, len(seeds))``, one column per seed, measured at the weights
        *before* the step's update: ``"loss"``; ``"accuracy"`` (fraction of examples whose
        largest weight is on the matching key); ``"score_grad_norm"``, the median over the
        batch of the norm of one example's loss gradient with respect to the softmax input
        (the scaled scores); ``"wrong_grad_norm"``, the same median over the examples whose
        largest weight is on a wrong key (NaN when there are none); ``"scores_grad_norm"``,
        ``"W_q_grad_norm"`` and ``"W_k_grad_norm"``, the Frobenius norms of the gradient of the
        batch loss with respect to the ``(batch, n_pairs)`` softmax inputs, :math:`W_q` and
        :math:`W_k`.

    Raises
    ------
    ValueError
        For out-of-range arguments, empty or repeated ``seeds``, or an unknown ``optimizer``.
    """
    check_int_at_least("steps", steps, 1)
    check_positive("lr", lr)
    check_choice("optimizer", optimizer, ["adam", "sgd"])
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty sequence of distinct integers, got {seeds}")
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    inits = [DotProductRetriever(d_in, d_k, scaled=scaled, generator=g) for g in gens]
    W_q = nn.Parameter(torch.stack([m.W_q.detach() for m in inits]))  # (R, d_k, d_in)
    W_k = nn.Parameter(torch.stack([m.W_k.detach() for m in inits]))
    opt_class = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    opt = opt_class([W_q, W_k], lr=lr)
    history: dict[str, list] = {key: [] for key in _RETRIEVAL_RECORDS}
    for _ in range(steps):
        batches = [retrieval_batch(batch_size, n_pairs, d_in, d_v, noise, g) for g in gens]
        query, keys, values, target = (torch.stack(parts) for parts in zip(*batches,
                                                                            strict=True))
        # (W_q x)·(W_k k) = ((W_q x)^T W_k) k: projecting the query back to size d_in first
        # costs 2·d_k·d_in per example instead of (S + 1)·d_k·d_in.
        pulled_back = torch.bmm(torch.bmm(query[:, :, 0], W_q.mT), W_k)  # (R, B, d_in)
        scores = pulled_back[:, :, None, :] @ keys.mT  # (R, B, 1, S)
        output, weights = _attend(scores * inits[0].scale, values, None)
        weights.retain_grad()
        target_value = torch.take_along_dim(values, target[..., None, None], dim=2)
        losses = ((output - target_value) ** 2).sum(-1).mean(dim=(1, 2))  # one per run
        opt.zero_grad()
        losses.sum().backward()
        _record_retrieval_step(history, losses, weights, target, W_q, W_k)
        opt.step()
    return {key: np.array(rows) for key, rows in history.items()}


_RETRIEVAL_RECORDS = ("loss", "accuracy", "score_grad_norm", "wrong_grad_norm",
                      "scores_grad_norm", "W_q_grad_norm", "W_k_grad_norm")


def _record_retrieval_step(history: dict[str, list], losses: torch.Tensor,
                           weights: torch.Tensor, target: torch.Tensor,
                           W_q: torch.Tensor, W_k: torch.Tensor) -> None:
    """Append one step's per-run measurements (see :func:`train_retrieval`) to ``history``."""
    with torch.no_grad():
        batch_size = weights.shape[1]
        p, g = weights[:, :, 0], weights.grad[:, :, 0] * batch_size  # per-example dL/dp
        score_grad = p * (g - (p * g).sum(-1, keepdim=True))  # J^T g, J = diag(p) - pp^T
        norms = score_grad.norm(dim=-1)  # (R, B)
        wrong = p.argmax(-1) != target
        measured = {
            "loss": losses,
            "accuracy": 1.0 - wrong.double().mean(1),
            "score_grad_norm": norms.median(dim=1).values,
            "wrong_grad_norm": torch.where(wrong, norms, math.nan).nanmedian(dim=1).values,
            "scores_grad_norm": score_grad.flatten(1).norm(dim=1) / batch_size,
            "W_q_grad_norm": W_q.grad.flatten(1).norm(dim=1),
            "W_k_grad_norm": W_k.grad.flatten(1).norm(dim=1),
        }
        for key, value in measured.items():
            history[key].append(value.tolist())
