r"""Self-supervised objectives: BERT's masking, InfoNCE, momentum encoders, masked pixels.
Used in chapter 12, "Self-supervised learning: predicting what was hidden".

Three ways for a model to supervise itself, each a few lines on top of
:mod:`dlnotes.transformer` and :mod:`dlnotes.training`:

- **Predict hidden tokens** (BERT): :func:`bert_mask` corrupts a batch of token ids with
  Devlin et al.'s 80/10/10 rule, :func:`masked_positions` gathers the selected positions into
  a fixed number of slots (so that the loss computes the vocabulary logits only there, and
  every replica of :func:`dlnotes.training.fit_replicas` has the same shapes), :func:`mlm_batch`
  draws a masked batch, :func:`mlm_loss` scores it with a
  :class:`dlnotes.transformer.TokenPredictor`.
- **Tell views apart** (contrastive learning): :func:`info_nce` is the loss of
  van den Oord et al. (2018) with cosine similarities and a temperature; :func:`simcse_loss`
  uses two dropout masks of one sentence as its positive pair (Gao et al., 2021);
  :class:`MomentumContrast` with :func:`moco_loss` and :func:`momentum_update` is MoCo
  (He et al., 2020) with in-batch negatives: the keys come from a slowly moving copy of the
  encoder.
- **Reconstruct hidden pixels**: :class:`MaskedAutoencoder` and
  :func:`masked_reconstruction_loss`, a denoising autoencoder that sees each pixel with
  probability ``1 - rate`` (``rate = 0`` is a plain autoencoder).

Helpers: :func:`token_chunks` and :func:`pad_rows` build token matrices, :func:`group_means`
pools an encoder's token states into one vector per sentence or document,
:func:`translations` and :func:`contrastive_views` augment 8 × 8 digit images, and
:func:`set_dropout` switches the dropout of a trained encoder on for SimCSE.

Every loss is vmap-safe (its checks read shapes, never values), so ``fit_replicas`` trains
ten seeds of it side by side.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.training import mlp
from dlnotes.transformer import Encoder, SelfAttention
from dlnotes.validation import (
    check_dim_size,
    check_float_tensor,
    check_in_range,
    check_int_at_least,
    check_int_in_range,
    check_integer_array,
    check_min_length,
    check_ndim,
    check_positive,
    check_same_length,
    check_same_shape,
    check_shape,
    check_tensor,
    check_type,
)

__all__ = [
    "IGNORE_INDEX",
    "bert_mask",
    "masked_positions",
    "mlm_batch",
    "mlm_loss",
    "info_nce",
    "simcse_loss",
    "momentum_update",
    "momentum_hook",
    "MomentumContrast",
    "moco_loss",
    "MaskedAutoencoder",
    "masked_reconstruction_loss",
    "token_chunks",
    "pad_rows",
    "group_means",
    "translations",
    "contrastive_views",
    "set_dropout",
]

#: The label of a position that is not predicted (``F.cross_entropy``'s ``ignore_index``).
IGNORE_INDEX = -100


# --------------------------------------------------------------- predicting hidden tokens
def bert_mask(
    tokens: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    p: float = 0.15,
    generator: torch.Generator | None = None,
    padding_mask: torch.Tensor | None = None,
    first_regular_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Inputs and labels of a masked language model, with BERT's 80/10/10 corruption.

    Each token is selected with probability ``p``, independently. A selected token becomes
    ``mask_id`` with probability 0.8, a token drawn uniformly from
    ``range(first_regular_id, vocab_size)`` with probability 0.1, and stays as it is with
    probability 0.1 (Devlin et al., 2019). ``labels`` hold the original token at the selected
    positions and :data:`IGNORE_INDEX` (−100) elsewhere. With the defaults every position may
    be selected and the random token comes from ``range(vocab_size)``; padded positions and
    special ids (below ``first_regular_id``) are never selected, and a random token is never
    special. The share of input tokens that differ from the original is
    :math:`p\,(0.8 + 0.1\,(1 - 1/V'))` for :math:`V'` regular ids and a special ``mask_id``
    (chapter 12 derives it).

    Parameters
    ----------
    tokens
        Integer ids of any shape (not changed).
    mask_id
        Id of the ``[MASK]`` token, in ``[0, vocab_size)``.
    vocab_size
        Number of ids, ≥ 1 (``> first_regular_id``).
    p
        Selection probability in [0, 1].
    generator
        The ``torch.Generator`` every draw comes from (the global one if ``None``).
    padding_mask
        Optional boolean tensor of ``tokens``' shape, True at padding (never selected).
    first_regular_id
        Ids below it are special (padding, ``[MASK]``, …): never selected nor drawn.

    Returns
    -------
    inputs, labels
        Two int64 tensors of ``tokens``' shape.

    Raises
    ------
    ValueError
        For ids outside ``[0, vocab_size)``, a malformed mask, or ``p`` outside [0, 1].
    """
    check_int_at_least("first_regular_id", first_regular_id, 0)
    check_int_at_least("vocab_size", vocab_size, first_regular_id + 1)
    check_integer_array("tokens", tokens, None, low=0, high=vocab_size)
    check_tensor("tokens", tokens, min_ndim=1)
    check_int_in_range("mask_id", mask_id, 0, vocab_size - 1)
    check_in_range("p", p, 0.0, 1.0, high_inclusive=True)
    tokens = tokens.long()
    maskable = tokens >= first_regular_id
    if padding_mask is not None:
        check_tensor("padding_mask", padding_mask, dtype=torch.bool)
        check_shape("padding_mask", padding_mask, tuple(tokens.shape), "(the shape of tokens)")
        maskable = maskable & ~padding_mask
    selected = maskable & (torch.rand(tokens.shape, generator=generator) < p)
    action = torch.rand(tokens.shape, generator=generator)
    random_ids = torch.randint(first_regular_id, vocab_size, tokens.shape, generator=generator)
    inputs = torch.where(selected & (action < 0.8), mask_id, tokens)
    inputs = torch.where(selected & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    labels = torch.where(selected, tokens, IGNORE_INDEX)
    return inputs, labels


def masked_positions(labels: torch.Tensor, slots: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The predicted positions of a batch, gathered into a fixed number of slots.

    A masked language model needs vocabulary logits only at the selected positions (about
    15 %); gathering them first saves most of the output layer. The number selected varies
    from batch to batch, so the positions are padded to ``slots`` (with position 0 and label
    −100, which the loss ignores): every batch, and every replica trained side by side, then
    has the same shapes.

    Parameters
    ----------
    labels
        Labels from :func:`bert_mask`, shape ``(B, T)``.
    slots
        Number of slots (≥ 1), at least the number of selected positions.

    Returns
    -------
    positions, targets
        int64 tensors of shape ``(slots,)``: flat indices into the ``B·T`` positions (row
        major, in increasing order) and the labels there, padded as described.

    Raises
    ------
    ValueError
        If ``labels`` is not a 2-D integer tensor or more than ``slots`` positions are selected.
    """
    check_integer_array("labels", labels, 2)
    check_int_at_least("slots", slots, 1)
    flat = labels.reshape(-1)
    chosen = (flat != IGNORE_INDEX).nonzero().squeeze(1)
    if len(chosen) > slots:
        raise ValueError(f"slots must be at least the number of selected positions, got "
                         f"slots={slots} for {len(chosen)} selected")
    positions = torch.zeros(slots, dtype=torch.long)
    targets = torch.full((slots,), IGNORE_INDEX, dtype=torch.long)
    positions[: len(chosen)] = chosen
    targets[: len(chosen)] = flat[chosen]
    return positions, targets


def mlm_batch(
    sequences: torch.Tensor,
    generator: torch.Generator,
    *,
    batch_size: int,
    mask_id: int,
    vocab_size: int,
    slots: int,
    p: float = 0.15,
    first_regular_id: int = 0,
    padding_id: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A masked batch: ``batch_size`` rows of ``sequences`` drawn with replacement, corrupted
    by :func:`bert_mask` and gathered by :func:`masked_positions`.

    Meant as the batch-drawing ``data`` of :func:`dlnotes.training.fit_replicas` (with
    ``functools.partial``): every draw comes from ``generator``.

    Parameters
    ----------
    sequences
        Token matrix ``(N, T)``.
    generator
        The replica's ``torch.Generator``.
    batch_size
        Rows per batch (≥ 1).
    mask_id, vocab_size, p, first_regular_id
        As in :func:`bert_mask`.
    slots
        As in :func:`masked_positions`.
    padding_id
        If given, positions holding this id are padding (never selected).

    Returns
    -------
    inputs, positions, targets
        ``(batch_size, T)`` corrupted ids, and ``(slots,)`` positions and targets.

    Raises
    ------
    ValueError
        As :func:`bert_mask` and :func:`masked_positions`.
    """
    check_tensor("sequences", sequences, 2)  # called every step: the rows' values are
    check_int_at_least("batch_size", batch_size, 1)  # checked by bert_mask
    rows = sequences[torch.randint(0, sequences.shape[0], (batch_size,), generator=generator)]
    padding = None if padding_id is None else rows == padding_id
    inputs, labels = bert_mask(rows, mask_id=mask_id, vocab_size=vocab_size, p=p,
                               generator=generator, padding_mask=padding,
                               first_regular_id=first_regular_id)
    return (inputs, *masked_positions(labels, slots))


def mlm_loss(model: Callable, inputs: torch.Tensor, positions: torch.Tensor,
             targets: torch.Tensor) -> torch.Tensor:
    r"""Mean cross-entropy of the masked tokens: :math:`-\frac1{|S|}\sum_{s\in S}\log
    p_\theta(x_s \mid \tilde x)` over the selected positions :math:`S`.

    ``model(inputs, positions=positions)`` must return the vocabulary logits at the gathered
    positions, shape ``(slots, V)``, as :class:`dlnotes.transformer.TokenPredictor` does;
    slots with target −100 are ignored.
    """
    return F.cross_entropy(model(inputs, positions=positions), targets,
                           ignore_index=IGNORE_INDEX)


# ---------------------------------------------------------------------- telling views apart
def info_nce(
    queries: torch.Tensor,
    keys: torch.Tensor,
    *,
    temperature: float,
    negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The InfoNCE loss with cosine similarities: each query must pick out its own key.

    With :math:`s(a, b) = a^\top b / (\lVert a\rVert\,\lVert b\rVert)` and temperature
    :math:`\tau`, row :math:`i` has the logits :math:`s(q_i, k_j)/\tau` for every key
    :math:`j` (and :math:`s(q_i, n_m)/\tau` for every row :math:`m` of ``negatives``, e.g.
    MoCo's queue), and

    .. math:: L = -\frac1N \sum_{i=1}^{N} \log \frac{e^{s(q_i, k_i)/\tau}}
              {\sum_j e^{s(q_i, k_j)/\tau} + \sum_m e^{s(q_i, n_m)/\tau}},

    the mean cross-entropy with the positive ``keys[i]`` as the target. Van den Oord et al.
    (2018) show :math:`I(q; k) \ge \log N - L` for the mutual information between the views.

    Parameters
    ----------
    queries, keys
        Floating tensors of the same shape ``(N, d)``, ``N`` ≥ 1. A zero row has cosine 0 with
        everything.
    temperature
        τ > 0.
    negatives
        Optional ``(M, d)`` extra negatives.

    Returns
    -------
    torch.Tensor
        The scalar loss (differentiable).

    Raises
    ------
    ValueError
        For mismatched shapes or a temperature ≤ 0.
    """
    check_float_tensor("queries", queries, 2, finite=False)  # no value checks: vmap-safe
    check_float_tensor("keys", keys, 2, finite=False)
    check_same_shape("queries", queries, "keys", keys)
    check_positive("temperature", temperature)
    q, k = F.normalize(queries, dim=1), F.normalize(keys, dim=1)
    logits = q @ k.T
    if negatives is not None:
        check_float_tensor("negatives", negatives, 2, finite=False)
        check_dim_size("negatives", negatives, 1, queries.shape[1], "columns (as queries)")
        logits = torch.cat([logits, q @ F.normalize(negatives, dim=1).T], dim=1)
    target = torch.arange(q.shape[0], device=q.device)
    return F.cross_entropy(logits / temperature, target)


def simcse_loss(model: Callable, tokens: torch.Tensor, *, temperature: float = 0.05
                ) -> torch.Tensor:
    """Unsupervised SimCSE (Gao et al., 2021): :func:`info_nce` between two passes of the
    same sentences through ``model`` in training mode, whose dropout masks differ.

    ``model(tokens)`` returns sentence vectors ``(B, d)``
    (:class:`dlnotes.transformer.SentenceEncoder` with dropout > 0); the other sentences of
    the batch are the negatives. Default τ = 0.05 as in the paper.
    """
    return info_nce(model(tokens), model(tokens), temperature=temperature)


def _parameters(x: nn.Module | Sequence[torch.Tensor], name: str) -> list[torch.Tensor]:
    check_type(name, x, (nn.Module, list, tuple))
    return list(x.parameters()) if isinstance(x, nn.Module) else list(x)


def momentum_update(target: nn.Module | Sequence[torch.Tensor],
                    online: nn.Module | Sequence[torch.Tensor], *, m: float) -> None:
    r"""MoCo's momentum update, in place: :math:`\theta_{target} \leftarrow m\,\theta_{target}
    + (1 - m)\,\theta_{online}`.

    The target (key) encoder is an exponential moving average of the online (query) encoder,
    so the keys change slowly and stay comparable across steps (He et al., 2020). Only
    parameters are averaged (buffers are left alone); no gradient is recorded.

    Parameters
    ----------
    target, online
        Two modules with parameters of the same shapes, in the same order, or two sequences
        of tensors (e.g. the stacked parameters of :func:`dlnotes.training.fit_replicas`).
    m
        Momentum in [0, 1]: 1 keeps the target, 0 copies the online encoder.

    Raises
    ------
    ValueError
        For ``m`` outside [0, 1] or parameters that do not match.
    """
    check_in_range("m", m, 0.0, 1.0, high_inclusive=True)
    t, o = _parameters(target, "target"), _parameters(online, "online")
    check_same_length("target parameters", t, "online parameters", o)
    for i, (a, b) in enumerate(zip(t, o, strict=True)):
        check_same_shape(f"target parameter {i}", a, f"online parameter {i}", b)
    with torch.no_grad():
        for a, b in zip(t, o, strict=True):
            a.mul_(m).add_(b, alpha=1 - m)


def momentum_hook(m: float) -> Callable[[dict[str, torch.Tensor] | nn.Module], None]:
    """An ``after_backward`` hook for :func:`dlnotes.training.fit` / ``fit_replicas`` that
    moves a :class:`MomentumContrast`'s ``target.*`` towards its ``online.*`` parameters with
    :func:`momentum_update`.

    The hook runs after the backward pass and before the optimiser step, so the target moves
    towards the online parameters of the step just taken (MoCo updates after the step: a lag
    of one step out of the :math:`1/(1-m)` it averages over).

    Raises
    ------
    ValueError
        For ``m`` outside [0, 1].
    """
    check_in_range("m", m, 0.0, 1.0, high_inclusive=True)

    def hook(params: dict[str, torch.Tensor] | nn.Module) -> None:
        if isinstance(params, nn.Module):
            momentum_update(params.target, params.online, m=m)
            return
        names = [n[len("target."):] for n in params if n.startswith("target.")]
        momentum_update([params[f"target.{n}"] for n in names],
                        [params[f"online.{n}"] for n in names], m=m)

    return hook


class MomentumContrast(nn.Module):
    r"""MoCo with in-batch negatives: an online MLP encoder and its moving-average copy.

    ``online`` is ``mlp([n_features, hidden, out])``; ``target`` starts as its copy and is
    moved by :func:`momentum_update` (never by gradients). ``forward(x)`` returns the
    representation a downstream probe reads, the hidden layer :math:`\mathrm{ReLU}(W_1x+b_1)`
    of the online encoder; ``forward(x, keys)`` returns the unit-length query embeddings of
    ``x`` and the (detached) key embeddings of ``keys``, for :func:`moco_loss`.

    Parameters
    ----------
    n_features, hidden, out
        Input width, representation width and embedding width (each ≥ 1).
    seed
        If given, the initial weights come from a generator seeded with it.

    Raises
    ------
    ValueError
        For a width < 1 or ``seed`` < 0.
    """

    def __init__(self, n_features: int, hidden: int, out: int, *, seed: int | None = None
                 ) -> None:
        super().__init__()
        self.online = mlp([n_features, hidden, out], seed=seed)
        self.target = copy.deepcopy(self.online)

    def forward(self, x: torch.Tensor, keys: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The representation of ``x``, or (with ``keys``) the query and key embeddings."""
        if keys is None:
            return self.online[1](self.online[0](x))
        queries = F.normalize(self.online(x), dim=1)
        return queries, F.normalize(self.target(keys), dim=1).detach()


def moco_loss(model: Callable, view1: torch.Tensor, view2: torch.Tensor, *,
              temperature: float) -> torch.Tensor:
    """:func:`info_nce` between the queries of ``view1`` and the keys of ``view2``, two
    augmentations of the same images (``model`` is a :class:`MomentumContrast`)."""
    queries, keys = model(view1, view2)
    return info_nce(queries, keys, temperature=temperature)


# ----------------------------------------------------------------- reconstructing hidden pixels
class MaskedAutoencoder(nn.Module):
    r"""A one-hidden-layer autoencoder of masked inputs.

    ``forward(x)`` returns the representation :math:`h = \mathrm{ReLU}(W_1 x + b_1)`;
    ``forward(x, keep)`` the reconstruction :math:`W_2\,\mathrm{ReLU}(W_1 (x \odot m) + b_1)
    + b_2` of ``x`` from its visible entries (``keep`` = :math:`m`, 1 = visible, 0 = hidden and
    set to 0). With ``hidden`` ≥ ``n_features`` and nothing hidden, the identity is within
    reach: the reason masking is needed (He et al., 2022; GraphMAE).

    Parameters
    ----------
    n_features, hidden
        Input and representation widths (≥ 1).
    seed
        If given, the initial weights come from a generator seeded with it.

    Raises
    ------
    ValueError
        For a width < 1 or ``seed`` < 0.
    """

    def __init__(self, n_features: int, hidden: int, *, seed: int | None = None) -> None:
        super().__init__()
        net = mlp([n_features, hidden, n_features], seed=seed)
        self.encoder = nn.Sequential(net[0], net[1])
        self.decoder = net[2]

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """The representation of ``x``, or its reconstruction from ``x * keep``."""
        if keep is None:
            return self.encoder(x)
        return self.decoder(self.encoder(x * keep))


def masked_reconstruction_loss(model: Callable, x: torch.Tensor, noise: torch.Tensor, *,
                               rate: float | torch.Tensor) -> torch.Tensor:
    r"""Mean squared error of reconstructing every entry of ``x`` when each is hidden with
    probability ``rate``: entry :math:`j` is hidden where ``noise[..., j] < rate``.

    ``noise`` holds uniform draws on [0, 1) of ``x``'s shape, drawn by the batch function, so
    that the replicas of :func:`dlnotes.training.fit_replicas` can share them and differ only
    in ``rate`` (a per-replica keyword). ``rate = 0`` hides nothing: a plain autoencoder.
    """
    keep = (noise >= rate).to(x.dtype)
    return F.mse_loss(model(x, keep), x)


# ---------------------------------------------------------------------------------- helpers
def token_chunks(sequences: Sequence[torch.Tensor], length: int, *, pad_id: int | None = None
                 ) -> torch.Tensor:
    """Consecutive, non-overlapping windows of ``length`` tokens of each sequence, stacked
    into one ``(N, length)`` matrix.

    A sequence's last, shorter window is dropped, or kept and padded with ``pad_id`` on the
    right if ``pad_id`` is given (then every token lands in a window).

    Raises
    ------
    ValueError
        If ``length`` < 1, a sequence is not a 1-D integer tensor, or there is no window.
    """
    check_int_at_least("length", length, 1)
    windows = []
    for i, s in enumerate(sequences):
        check_integer_array(f"sequences[{i}]", s, 1)
        s = s.long()
        if pad_id is not None and len(s) % length:
            s = torch.cat([s, torch.full((length - len(s) % length,), pad_id)])
        windows.append(s[: len(s) // length * length].reshape(-1, length))
    out = torch.cat(windows) if windows else torch.empty(0, length, dtype=torch.long)
    check_min_length(f"sequences cut into {length}-token windows", out, 1, "windows")
    return out


def pad_rows(sequences: Sequence[torch.Tensor], length: int, *, pad_id: int = 0
             ) -> torch.Tensor:
    """The first ``length`` tokens of each sequence as the rows of a matrix, padded with
    ``pad_id`` on the right.

    Raises
    ------
    ValueError
        If ``length`` < 1, a sequence is not a non-empty 1-D integer tensor, or there are none.
    """
    check_int_at_least("length", length, 1)
    check_min_length("sequences", sequences, 1, "sequences")
    out = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    for i, s in enumerate(sequences):
        check_integer_array(f"sequences[{i}]", s, 1)
        check_min_length(f"sequences[{i}]", s, 1, "tokens")
        out[i, : min(len(s), length)] = s[:length]
    return out


def group_means(encoder: Encoder, tokens: torch.Tensor, groups: torch.Tensor, n_groups: int,
                ) -> torch.Tensor:
    r"""Mean of an encoder's output over the real tokens of all rows of each group, float64.

    Row ``r`` of ``tokens`` belongs to group ``groups[r]`` (e.g. the windows of one
    document); group :math:`g`'s vector is :math:`\sum_{r \in g}\sum_t m_{rt}h_{rt} /
    \sum_{r\in g}\sum_t m_{rt}`, with :math:`m = 0` at padding. With one row per group it is
    the masked mean of :class:`dlnotes.transformer.SentenceEncoder`. Computed in eval mode
    without gradients (the encoder's mode is restored).

    Parameters
    ----------
    encoder
        The :class:`dlnotes.transformer.Encoder` (with a ``padding_idx``, or no padding).
    tokens
        ``(R, T)`` ids.
    groups
        ``(R,)`` group index of each row, in ``[0, n_groups)``.
    n_groups
        Number of groups (≥ 1); each must hold a real token.

    Returns
    -------
    torch.Tensor
        ``(n_groups, d_model)``, float64.

    Raises
    ------
    ValueError
        For a malformed argument or an empty group.
    """
    check_type("encoder", encoder, Encoder)
    check_int_at_least("n_groups", n_groups, 1)
    check_integer_array("groups", groups, 1, low=0, high=n_groups)
    check_ndim("tokens", tokens, 2)
    check_dim_size("groups", groups, 0, tokens.shape[0], "entries (one per row of tokens)")
    padding = encoder.padding_mask_of(tokens)
    real = torch.ones(tokens.shape, dtype=torch.float64) if padding is None else (
        ~padding).double()
    was_training = encoder.training
    encoder.eval()
    with torch.no_grad():
        h = encoder(tokens).double() * real[..., None]
    encoder.train(was_training)
    sums = torch.zeros(n_groups, h.shape[-1], dtype=torch.float64).index_add_(0, groups, h.sum(1))
    counts = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, groups, real.sum(1))
    if bool((counts == 0).any()):
        raise ValueError("groups must give every group at least one real token")
    return sums / counts[:, None]


def translations(images: torch.Tensor, side: int, shift: int = 1) -> torch.Tensor:
    """Every translation of square images by up to ``shift`` pixels in each direction, with
    zeros shifted in: shape ``((2·shift + 1)², N, side²)``, the unshifted copy in the middle.

    Raises
    ------
    ValueError
        If ``images`` is not ``(N, side²)`` floating or ``shift`` is outside ``[0, side)``.
    """
    check_int_at_least("side", side, 1)
    check_int_in_range("shift", shift, 0, side - 1)
    check_float_tensor("images", images, 2)
    check_dim_size("images", images, 1, side * side, "pixels (side²)")
    padded = F.pad(images.reshape(-1, side, side), (shift, shift, shift, shift))
    width = 2 * shift + 1
    return torch.stack([padded[:, dy:dy + side, dx:dx + side].reshape(-1, side * side)
                        for dy in range(width) for dx in range(width)])


def contrastive_views(translated: torch.Tensor, generator: torch.Generator, *,
                      batch_size: int, drop: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random augmentations of the same ``batch_size`` images (drawn with replacement).

    Each view takes a random translation of each image (from :func:`translations`) and hides
    each pixel with probability ``drop`` (sets it to 0). Every draw comes from ``generator``:
    the batch-drawing ``data`` of :func:`dlnotes.training.fit_replicas` for :func:`moco_loss`.

    Raises
    ------
    ValueError
        For a malformed ``translated``, ``batch_size`` < 1 or ``drop`` outside [0, 1).
    """
    check_float_tensor("translated", translated, 3, finite=False)  # called every step: cheap
    check_int_at_least("batch_size", batch_size, 1)
    check_in_range("drop", drop, 0.0, 1.0)
    n_shifts, n = translated.shape[:2]
    idx = torch.randint(0, n, (batch_size,), generator=generator)

    def view() -> torch.Tensor:
        shift = torch.randint(0, n_shifts, (batch_size,), generator=generator)
        x = translated[shift, idx]
        return x * (torch.rand(x.shape, generator=generator, dtype=x.dtype) >= drop)

    return view(), view()


def set_dropout(module: nn.Module, p: float) -> nn.Module:
    """Set the probability of every dropout in ``module`` to ``p`` (in place) and return it.

    Covers ``nn.Dropout`` layers and the attention-weight dropout of
    :class:`dlnotes.transformer.SelfAttention`: an encoder pre-trained without dropout gets
    it for SimCSE, where dropout is the augmentation.

    Raises
    ------
    ValueError
        For ``p`` outside [0, 1).
    """
    check_in_range("p", p, 0.0, 1.0)
    for sub in module.modules():
        if isinstance(sub, nn.Dropout):
            sub.p = float(p)
        elif isinstance(sub, SelfAttention):
            sub.dropout = float(p)
    return module
