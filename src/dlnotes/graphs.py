r"""Graph convolution, graph attention, over-smoothing and influence. Used in chapter 9, "Graph
neural networks" (its trained node classifiers are in :mod:`dlnotes.node_classification`, its
masked graph autoencoders in :mod:`dlnotes.graph_autoencoders`, its data in
:mod:`dlnotes.data`).

Conventions shared by every function here:

- A graph on :math:`N` nodes is a dense adjacency matrix ``A`` of shape ``(N, N)`` (a torch
  tensor or NumPy array, non-negative; weights are allowed where stated). Node features are a
  tensor ``H`` of shape ``(N, F)``, one row per node.
- :math:`\tilde A = A + I` adds a self-loop to every node, :math:`\tilde d_i = \sum_j \tilde
  A_{ij}` is its degree and :math:`\hat A = \tilde D^{-1/2}\tilde A\tilde D^{-1/2}` the
  symmetric normalised adjacency of Kipf & Welling (2017).
- Attention layers attend, from node ``i``, to every ``j`` with ``A[i, j] != 0`` and to ``i``
  itself; attention weights outside that set are exactly 0.

Dense matrices keep every formula one line of linear algebra; the graphs of the chapter have at
most a few hundred nodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.validation import (
    as_float_tensor,
    check_choice,
    check_dim_size,
    check_int_at_least,
    check_int_in_range,
    check_length,
    check_min_length,
    check_nonnegative,
    check_same_shape,
    check_shape,
    check_square,
    check_symmetric,
    check_values_in,
)

__all__ = [
    "normalized_adjacency",
    "dirichlet_energy",
    "mean_pairwise_distance",
    "hop_distances",
    "GraphLayer",
    "Propagation",
    "GCNLayer",
    "GATLayer",
    "SelfAttentionLayer",
    "DenseLayer",
    "LAYERS",
    "LAYER_KINDS",
    "LayerStack",
    "smoothing_by_depth",
    "influence_matrix",
    "influence_by_hop",
    "attention_summary",
]


# ------------------------------------------------------------------------------ checks


def _check_adjacency(name: str, A: Any, *, symmetric: bool) -> torch.Tensor:
    """``A`` as a floating tensor: a square, non-negative (and, if asked, symmetric) matrix."""
    A = as_float_tensor(name, A)
    check_square(name, A)
    check_min_length(name, A, 1, "nodes")
    check_values_in(name, A, 0.0)
    if symmetric:
        check_symmetric(name, A, 1e-6)
    return A


def _check_features(name: str, H: Any, n_nodes: int, n_features: int | None = None
                    ) -> torch.Tensor:
    """``H`` as a floating ``(n_nodes, n_features)`` tensor, one row per node."""
    H = as_float_tensor(name, H, 2)
    check_length(name, H, n_nodes, "rows (one per node)")
    if n_features is not None:
        check_dim_size(name, H, 1, n_features, "columns (in_features)")
    return H


def _neighbourhood_mask(A: torch.Tensor) -> torch.Tensor:
    """Boolean ``(N, N)``: True where ``A[i, j] != 0`` or ``i == j``."""
    return (A != 0) | torch.eye(A.shape[0], dtype=torch.bool, device=A.device)


def _generator(seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    check_int_at_least("seed", seed, 0)
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------ propagation


def normalized_adjacency(A: Any, *, add_self_loops: bool = True) -> torch.Tensor:
    r"""The symmetric normalised adjacency :math:`\hat A = \tilde D^{-1/2}\tilde A\tilde D^{-1/2}`.

    .. math::
        \tilde A = A + I, \quad \tilde d_i = \sum_j \tilde A_{ij}, \quad
        \hat A_{ij} = \frac{\tilde A_{ij}}{\sqrt{\tilde d_i \tilde d_j}}

    (Kipf & Welling 2017). Its eigenvalues lie in :math:`(-1, 1]` with the eigenvector
    :math:`\tilde D^{1/2}\mathbf 1` for 1. Without self-loops (``add_self_loops=False``) it is
    :math:`D^{-1/2}AD^{-1/2}`, whose spectrum reaches −1 on a bipartite graph; an isolated node
    then has degree 0 and gets a zero row and column (the convention of PyTorch Geometric).

    Parameters
    ----------
    A
        Adjacency matrix ``(N, N)``: symmetric, non-negative, finite (weights allowed).
    add_self_loops
        Add :math:`I` before normalising (the GCN renormalisation trick).

    Returns
    -------
    torch.Tensor
        :math:`\hat A`, ``(N, N)``, in ``A``'s floating dtype (float64 for integer input).

    Raises
    ------
    ValueError
        If ``A`` is not square, symmetric, non-negative and finite.
    """
    A = _check_adjacency("A", A, symmetric=True)
    if add_self_loops:
        A = A + torch.eye(A.shape[0], dtype=A.dtype)
    degree = A.sum(dim=1)
    inv_sqrt = torch.where(degree > 0, degree.clamp(min=torch.finfo(A.dtype).tiny).rsqrt(),
                           torch.zeros_like(degree))
    return inv_sqrt[:, None] * A * inv_sqrt[None, :]


def dirichlet_energy(H: Any, A: Any, *, add_self_loops: bool = True) -> torch.Tensor:
    r"""Dirichlet energy of node features, :math:`\operatorname{tr}(H^\top (I - \hat A) H)`.

    .. math::
        E(H) = \operatorname{tr}\big(H^\top (I - \hat A) H\big)
        = \frac12 \sum_{i,j} \tilde A_{ij}
          \Big\lVert \frac{h_i}{\sqrt{\tilde d_i}} - \frac{h_j}{\sqrt{\tilde d_j}} \Big\rVert^2

    with :math:`\hat A` from :func:`normalized_adjacency`. It is 0 exactly when every row is
    proportional to :math:`\sqrt{\tilde d_i}` times one common vector, the subspace a deep
    GCN collapses to.

    Parameters
    ----------
    H
        Node features ``(N, F)`` or ``(N,)``.
    A
        Adjacency matrix ``(N, N)`` as for :func:`normalized_adjacency`.
    add_self_loops
        Passed on to :func:`normalized_adjacency`.

    Returns
    -------
    torch.Tensor
        A scalar (differentiable in ``H``), ≥ 0 up to rounding.

    Raises
    ------
    ValueError
        If ``A`` is invalid, or ``H`` is not finite or has no row per node.
    """
    A_hat = normalized_adjacency(A, add_self_loops=add_self_loops)
    H = as_float_tensor("H", H, (1, 2))
    if H.ndim == 1:
        H = H[:, None]
    H = _check_features("H", H, A_hat.shape[0])
    A_hat = A_hat.to(H.dtype)
    return (H * H).sum() - (H * (A_hat @ H)).sum()


def mean_pairwise_distance(H: Any, *, normalize_rows: bool = False) -> torch.Tensor:
    r"""Mean Euclidean distance :math:`\frac{2}{N(N-1)}\sum_{i<j}\lVert h_i - h_j\rVert`.

    With ``normalize_rows=True`` every row is first scaled to unit length (zero rows stay 0),
    so the value measures how different the *directions* of the node representations are,
    independently of their scale: 0 when all rows point the same way, at most 2 (a measure of
    over-smoothing).

    Parameters
    ----------
    H
        Node features ``(N, F)`` with ``N`` ≥ 2.
    normalize_rows
        Scale rows to unit norm first.

    Returns
    -------
    torch.Tensor
        A scalar.

    Raises
    ------
    ValueError
        If ``H`` is not 2-D with at least two rows or is not finite.
    """
    H = as_float_tensor("H", H, 2)
    check_min_length("H", H, 2, "rows (nodes)")
    if normalize_rows:
        norms = H.norm(dim=1, keepdim=True)
        H = torch.where(norms > 0, H / norms.clamp(min=torch.finfo(H.dtype).tiny),
                        torch.zeros_like(H))
    n = H.shape[0]
    diff = (H[:, None, :] - H[None, :, :]).norm(dim=-1)
    return diff.sum() / (n * (n - 1))


def hop_distances(A: Any) -> np.ndarray:
    """Shortest-path lengths (number of edges) between all pairs of nodes.

    Breadth-first search from all nodes at once: the nodes first reached at step ``k`` are
    at distance ``k``. Edge weights are ignored (every non-zero entry is one hop, in the
    direction row → column); unreachable pairs get ``inf``.

    Parameters
    ----------
    A
        Adjacency matrix ``(N, N)``, non-negative.

    Returns
    -------
    numpy.ndarray
        ``(N, N)`` float array, 0 on the diagonal.

    Raises
    ------
    ValueError
        If ``A`` is not a square non-negative finite matrix.
    """
    A = _check_adjacency("A", A, symmetric=False)
    step = (A != 0).to(torch.float64)
    n = A.shape[0]
    dist = torch.full((n, n), math.inf, dtype=torch.float64)
    reached = torch.eye(n, dtype=torch.bool)
    dist[reached] = 0.0
    for k in range(1, n):
        frontier = ((reached.to(torch.float64) @ step) > 0) & ~reached
        if not bool(frontier.any()):
            break
        dist[frontier] = float(k)
        reached |= frontier
    return dist.numpy()


# ------------------------------------------------------------------------------ layers


class GraphLayer(nn.Module):
    """A layer of node features on a graph, before its nonlinearity.

    Each kind of layer owns what it needs from the graph and how it propagates:
    :meth:`graph_operator` computes, once per graph, what the layer uses from a validated
    adjacency matrix (:math:`\\hat A`, a neighbourhood mask, or nothing), and :meth:`propagate`
    maps features ``(N, in)`` to ``(N, out)`` with it, without argument checks (the fast path of
    the training loops). :class:`LayerStack` builds its layers
    from :data:`LAYERS` by name.
    """

    #: Whether the layer has weights; :class:`LayerStack` puts a ReLU only after those that do.
    learned = True

    def graph_operator(self, A: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        """What :meth:`propagate` needs from the (validated) adjacency ``A``; ``None``: nothing."""
        return None

    def propagate(self, H: torch.Tensor, operator: torch.Tensor | None) -> torch.Tensor:
        """New features from features ``H`` and :meth:`graph_operator`'s output."""
        raise NotImplementedError


class Propagation(GraphLayer):
    r"""The linear part of a GCN alone, :math:`H \mapsto \hat A H`: no weights, width kept.

    Parameters
    ----------
    in_features, out_features
        Feature size, ≥ 1, the same twice (there is no weight to change it).
    seed
        Unused (the layer has no weights); accepted for a common signature.
    """

    learned = False

    def __init__(self, in_features: int, out_features: int, *, seed: int | None = None):
        super().__init__()
        check_int_at_least("in_features", in_features, 1)
        check_int_in_range("out_features", out_features, in_features, in_features)
        self.in_features = self.out_features = in_features

    def graph_operator(self, A: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """:math:`\\hat A` of :func:`normalized_adjacency`, in ``dtype``."""
        return normalized_adjacency(A).to(dtype)

    def propagate(self, H: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:
        """:math:`\\hat A H`."""
        return A_hat @ H


class GCNLayer(GraphLayer):
    r"""One graph convolution of Kipf & Welling (2017): :math:`\hat A H W^\top + b`.

    ``weight`` has shape ``(out_features, in_features)`` (as in ``nn.Linear``) and is drawn
    from Glorot's uniform distribution, the paper's initialisation; ``bias`` starts at 0. The
    nonlinearity is left to the caller.

    Parameters
    ----------
    in_features, out_features
        Feature sizes, ≥ 1.
    seed
        If given, the initial weights come from a generator seeded with it (the global torch
        state is untouched).
    """

    def __init__(self, in_features: int, out_features: int, *, seed: int | None = None):
        super().__init__()
        check_int_at_least("in_features", in_features, 1)
        check_int_at_least("out_features", out_features, 1)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.xavier_uniform_(self.weight, generator=_generator(seed))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    def forward(self, H: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:
        """``A_hat @ H @ weight.T + bias`` for features ``(N, in)`` and ``A_hat`` ``(N, N)``."""
        A_hat = as_float_tensor("A_hat", A_hat)
        check_square("A_hat", A_hat)
        H = _check_features("H", H, A_hat.shape[0], self.in_features)
        return self.propagate(H, A_hat)

    def graph_operator(self, A: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """:math:`\\hat A` of :func:`normalized_adjacency`, in ``dtype``."""
        return normalized_adjacency(A).to(dtype)

    def propagate(self, H: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` without the argument checks, for inputs already validated."""
        return A_hat @ (H @ self.weight.T) + self.bias


class GATLayer(GraphLayer):
    r"""One single-head graph attention layer of Veličković et al. (2018).

    .. math::
        e_{ij} = \operatorname{LeakyReLU}\big(a_{\text{dst}}^\top W h_i
                 + a_{\text{src}}^\top W h_j\big), \qquad
        \alpha_{ij} = \frac{\exp e_{ij}}{\sum_{k \in \mathcal N(i)\cup\{i\}} \exp e_{ik}},
        \qquad h_i' = \sum_{j \in \mathcal N(i)\cup\{i\}} \alpha_{ij} W h_j + b

    where :math:`\mathcal N(i) = \{j : A_{ij} \ne 0\}`; :math:`\alpha_{ij} = 0` exactly for
    every other :math:`j`. The score is the paper's :math:`a^\top[Wh_i \Vert Wh_j]` with
    :math:`a = (a_{\text{dst}}, a_{\text{src}})`. Parameters: ``weight`` ``(out, in)``,
    ``att_src`` and ``att_dst`` ``(out,)``, ``bias`` ``(out,)``; Glorot-initialised, bias 0.
    With an all-ones ``A`` (the complete graph) every node attends to every node.

    Parameters
    ----------
    in_features, out_features
        Feature sizes, ≥ 1.
    negative_slope
        Slope of the LeakyReLU for negative scores, ≥ 0 (the paper: 0.2).
    seed
        If given, the initial weights come from a generator seeded with it.
    """

    def __init__(self, in_features: int, out_features: int, *, negative_slope: float = 0.2,
                 seed: int | None = None):
        super().__init__()
        check_int_at_least("in_features", in_features, 1)
        check_int_at_least("out_features", out_features, 1)
        check_nonnegative("negative_slope", negative_slope)
        self.in_features, self.out_features = in_features, out_features
        self.negative_slope = float(negative_slope)
        gen = _generator(seed)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.att_src = nn.Parameter(torch.empty(out_features))
        self.att_dst = nn.Parameter(torch.empty(out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.xavier_uniform_(self.weight, generator=gen)
        # Glorot for the attention vector a of shape (1, 2 * out), as in the paper's code.
        bound = math.sqrt(6.0 / (1 + 2 * out_features))
        for a in (self.att_src, self.att_dst):
            nn.init.uniform_(a, -bound, bound, generator=gen)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"negative_slope={self.negative_slope}")

    def scores(self, H: torch.Tensor) -> torch.Tensor:
        """The unmasked scores :math:`e_{ij}` for all pairs, ``(N, N)``: features only."""
        Wh = H @ self.weight.T
        return F.leaky_relu((Wh @ self.att_dst)[:, None] + (Wh @ self.att_src)[None, :],
                            self.negative_slope)

    def forward(self, H: torch.Tensor, A: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Output ``(N, out)`` and attention ``(N, N)`` (rows sum to 1 over the neighbours
        and the node itself, exactly 0 elsewhere)."""
        A = _check_adjacency("A", A, symmetric=False)
        H = _check_features("H", H, A.shape[0], self.in_features)
        return self.attend(H, _neighbourhood_mask(A))

    def attend(self, H: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":meth:`forward` without the argument checks, given the boolean mask of
        :math:`\mathcal N(i)\cup\{i\}` (True = may attend; every row needs a True)."""
        e = self.scores(H)
        # torch.softmax subtracts the row maximum, so large scores cannot overflow, and
        # exp(-inf) = 0 makes the weights of non-neighbours exactly 0.
        attention = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=1)
        return attention @ (H @ self.weight.T) + self.bias, attention

    def graph_operator(self, A: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        r"""The boolean mask of :math:`\mathcal N(i)\cup\{i\}`, ``(N, N)``."""
        return _neighbourhood_mask(A)

    def propagate(self, H: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The output of :meth:`attend`."""
        return self.attend(H, mask)[0]


class SelfAttentionLayer(GraphLayer):
    r"""Single-head scaled dot-product self-attention over the nodes (a Transformer's layer).

    .. math::
        h_i' = \sum_j \alpha_{ij} W_v h_j, \qquad
        \alpha_{i\cdot} = \operatorname{softmax}_j\Big(\frac{(W_q h_i)^\top W_k h_j}
        {\sqrt{d_{\text{out}}}}\Big)

    over all nodes when ``A`` is ``None`` (the complete graph, as in a Transformer), or over
    :math:`\mathcal N(i)\cup\{i\}` when an adjacency matrix is given (a "graph Transformer"
    layer). Parameters ``w_query``, ``w_key``, ``w_value``, each ``(out, in)``,
    Glorot-initialised; no bias. In :class:`LayerStack` it attends over all nodes (its
    :meth:`GraphLayer.graph_operator` ignores the edges).

    Parameters
    ----------
    in_features, out_features
        Feature sizes, ≥ 1.
    seed
        If given, the initial weights come from a generator seeded with it.
    """

    def __init__(self, in_features: int, out_features: int, *, seed: int | None = None):
        super().__init__()
        check_int_at_least("in_features", in_features, 1)
        check_int_at_least("out_features", out_features, 1)
        self.in_features, self.out_features = in_features, out_features
        gen = _generator(seed)
        self.w_query, self.w_key, self.w_value = (
            nn.Parameter(torch.empty(out_features, in_features)) for _ in range(3))
        for w in (self.w_query, self.w_key, self.w_value):
            nn.init.xavier_uniform_(w, generator=gen)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    def forward(self, H: torch.Tensor, A: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Output ``(N, out)`` and attention ``(N, N)``; ``A=None`` attends over all nodes."""
        H = as_float_tensor("H", H, 2)
        mask = None
        if A is not None:
            A = _check_adjacency("A", A, symmetric=False)
            mask = _neighbourhood_mask(A)
        H = _check_features("H", H, H.shape[0] if A is None else A.shape[0], self.in_features)
        return self.attend(H, mask)

    def attend(self, H: torch.Tensor, mask: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` without the argument checks; ``mask=None`` is the complete graph."""
        scores = (H @ self.w_query.T) @ (H @ self.w_key.T).T / math.sqrt(self.out_features)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        attention = torch.softmax(scores, dim=1)
        return attention @ (H @ self.w_value.T), attention

    def propagate(self, H: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The output of :meth:`attend`."""
        return self.attend(H, mask)[0]


class DenseLayer(nn.Linear, GraphLayer):
    """A linear layer that ignores the graph (an MLP's layer), Glorot-initialised, bias 0.

    Parameters
    ----------
    in_features, out_features
        Feature sizes, ≥ 1.
    seed
        If given, the initial weights come from a generator seeded with it.
    """

    def __init__(self, in_features: int, out_features: int, *, seed: int | None = None):
        check_int_at_least("in_features", in_features, 1)
        check_int_at_least("out_features", out_features, 1)
        super().__init__(in_features, out_features)
        with torch.no_grad():
            nn.init.xavier_uniform_(self.weight, generator=_generator(seed))
            self.bias.zero_()

    def propagate(self, H: torch.Tensor, operator: None) -> torch.Tensor:
        """``H @ weight.T + bias``."""
        return self(H)


# ------------------------------------------------------------------- depth and influence

#: The layers of :class:`LayerStack`, by name.
LAYERS: dict[str, type[GraphLayer]] = {
    "propagation": Propagation,
    "gcn": GCNLayer,
    "gat": GATLayer,
    "attention": SelfAttentionLayer,
    "mlp": DenseLayer,
}

#: The names of :data:`LAYERS`.
LAYER_KINDS = tuple(LAYERS)


class LayerStack(nn.Module):
    r"""``depth`` layers of one kind and one width, each followed by a ReLU (untrained).

    Layer ``l`` computes :math:`Z = f_l(H)` with ``kind`` one of ``"propagation"``
    (:class:`Propagation`, :math:`\hat A H`: no weights and no ReLU, the linear part of a GCN
    alone), ``"gcn"`` (:class:`GCNLayer`), ``"gat"`` (:class:`GATLayer` on ``A``),
    ``"attention"`` (:class:`SelfAttentionLayer` over *all* nodes, ignoring ``A``: a
    Transformer's attention) or ``"mlp"`` (:class:`DenseLayer`, no graph); then
    :math:`H \leftarrow \operatorname{ReLU}(Z)`. With ``residual=True`` the update is a
    Transformer's post-norm residual block,
    :math:`H \leftarrow \operatorname{LayerNorm}(H + \operatorname{ReLU}(Z))` (LayerNorm
    without affine parameters). Layer ``l`` is Glorot-initialised with seed
    ``1000 * seed + l``. Parameters are float32 as built; call ``.double()`` for float64
    features.

    Parameters
    ----------
    kind
        One of :data:`LAYER_KINDS`.
    width
        Feature size of every layer, ≥ 1.
    depth
        Number of layers, ≥ 1.
    residual
        Use the residual block above (not with ``"propagation"``).
    seed
        Non-negative seed of the initial weights.
    """

    def __init__(self, kind: str, width: int, depth: int, *, residual: bool = False,
                 seed: int = 0):
        super().__init__()
        check_choice("kind", kind, LAYER_KINDS)
        check_int_at_least("width", width, 1)
        check_int_at_least("depth", depth, 1)
        check_int_at_least("seed", seed, 0)
        if residual and not LAYERS[kind].learned:
            raise ValueError(f"residual=True needs a learned layer; kind={kind!r} has none")
        self.kind, self.width, self.depth, self.residual = kind, width, depth, residual
        self.layers = nn.ModuleList(
            [LAYERS[kind](width, width, seed=1000 * seed + i) for i in range(depth)])

    def hidden_states(self, X: Any, A: Any) -> list[torch.Tensor]:
        """The features after each layer, a list of ``depth`` tensors ``(N, width)``."""
        A = _check_adjacency("A", A, symmetric=True)
        H = _check_features("X", X, A.shape[0], self.width)
        operator = self.layers[0].graph_operator(A, H.dtype)
        states = []
        for layer in self.layers:
            Z = layer.propagate(H, operator)
            if layer.learned:
                Z = torch.relu(Z)
            H = F.layer_norm(H + Z, (self.width,)) if self.residual else Z
            states.append(H)
        return states

    def forward(self, X: Any, A: Any) -> torch.Tensor:
        """The features after the last layer, ``(N, width)``."""
        return self.hidden_states(X, A)[-1]


def smoothing_by_depth(
    kind: str,
    X: Any,
    A: Any,
    depth: int,
    *,
    residual: bool = False,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    r"""Push features through an untrained :class:`LayerStack`; measure smoothing after each layer.

    Computed in float64 without gradients.

    Parameters
    ----------
    kind, depth, residual, seed
        As for :class:`LayerStack`; its width is the number of columns of ``X``.
    X
        Input features ``(N, F)``.
    A
        Adjacency ``(N, N)``, symmetric and non-negative; the energy is always measured on it,
        whatever graph the layers use.

    Returns
    -------
    dict
        ``"energy"``: relative Dirichlet energy :math:`E(H)/\lVert H\rVert_F^2` after each
        layer (:func:`dirichlet_energy`; it lies in :math:`[0, 2)`, is 0 exactly on the
        subspace a GCN collapses to, and does not depend on the scale of :math:`H`);
        ``"distance"``: :func:`mean_pairwise_distance` of the unit-normalised rows (0 when all
        rows point the same way); ``"norm"``: :math:`\lVert H\rVert_F`. Arrays of length
        ``depth``.

    Raises
    ------
    ValueError
        As :class:`LayerStack` and :meth:`LayerStack.hidden_states`.
    """
    X = as_float_tensor("X", X, 2)
    stack = LayerStack(kind, X.shape[1], depth, residual=residual, seed=seed).double()
    A = as_float_tensor("A", A).to(torch.float64)
    A_hat = normalized_adjacency(A)
    out: dict[str, list[float]] = {"energy": [], "distance": [], "norm": []}
    with torch.no_grad():
        for H in stack.hidden_states(X.to(torch.float64), A):
            norm_sq = float((H * H).sum())
            energy = norm_sq - float((H * (A_hat @ H)).sum())  # = dirichlet_energy(H, A)
            out["energy"].append(energy / norm_sq if norm_sq > 0 else 0.0)
            out["distance"].append(float(mean_pairwise_distance(H, normalize_rows=True)))
            out["norm"].append(math.sqrt(norm_sq))
    return {key: np.asarray(values) for key, values in out.items()}


def influence_matrix(fn: Callable[[torch.Tensor], torch.Tensor], X: Any) -> torch.Tensor:
    r"""Influence of each input node on each output node, from the Jacobian of ``fn``.

    .. math::
        I(i, j) = \sum_{a, b} \Big|\frac{\partial\, \mathrm{fn}(X)_{ia}}{\partial X_{jb}}\Big|,
        \qquad I_i(j) = \frac{I(i, j)}{\sum_k I(i, k)}

    the row-normalised influence distribution of Xu et al. (2018), with absolute values so
    that entries of opposite sign cannot cancel.

    Parameters
    ----------
    fn
        Maps features ``(N, F)`` to outputs ``(N, F')`` (a network with its graph fixed).
    X
        The input ``(N, F)`` at which the Jacobian is taken.

    Returns
    -------
    torch.Tensor
        ``(N, N)``, non-negative; each row sums to 1 (a row of zeros if output ``i`` does not
        depend on the input at all).

    Raises
    ------
    ValueError
        If ``X`` is not a finite 2-D tensor or ``fn``'s output does not have one row per node.
    """
    X = as_float_tensor("X", X, 2)
    check_shape("fn(X)", fn(X), (X.shape[0], None), "(one row per node)")
    jac = torch.autograd.functional.jacobian(fn, X, vectorize=True)  # (N, F', N, F)
    total = jac.abs().sum(dim=(1, 3)).detach()
    row = total.sum(dim=1, keepdim=True)
    return torch.where(row > 0, total / row.clamp(min=torch.finfo(total.dtype).tiny),
                       torch.zeros_like(total))


def influence_by_hop(influence: Any, hops: Any, max_hop: int, *,
                     per_node: bool = False) -> np.ndarray:
    """Influence on a node from the nodes at each hop distance.

    Entry ``k`` is the mean over output nodes ``i`` of :math:`\\sum_{j:\\,d(i,j)=k} I_i(j)`
    (the *share* of ``i``'s influence that comes from distance ``k``; the entries for
    ``k = 0 … max_hop`` sum to 1 when every node is within ``max_hop`` hops of every other).
    With ``per_node=True`` it is instead the mean of :math:`I_i(j)` over the pairs at distance
    ``k`` (the influence of *one* node at that distance; NaN if there is no such pair). Rows
    of zeros (an output that depends on no input, such as a ReLU unit that is off for every
    feature) have no influence distribution and are left out of both averages.

    Parameters
    ----------
    influence
        ``(N, N)`` influence distribution, e.g. from :func:`influence_matrix`.
    hops
        ``(N, N)`` hop distances, e.g. from :func:`hop_distances`.
    max_hop
        Largest distance reported, ≥ 0.
    per_node
        Average over pairs instead of summing over each node's ring.

    Returns
    -------
    numpy.ndarray
        Shape ``(max_hop + 1,)``.

    Raises
    ------
    ValueError
        If the matrices are not square of the same shape, or ``max_hop`` < 0.
    """
    check_int_at_least("max_hop", max_hop, 0)
    influence = as_float_tensor("influence", influence).numpy()
    check_square("influence", influence)
    hops = np.asarray(hops, dtype=float)
    check_same_shape("hops", hops, "influence", influence)
    live = influence.sum(axis=1) > 0  # rows of zeros: outputs that depend on no input
    influence, hops = influence[live], hops[live]
    if per_node:
        return np.array([influence[hops == k].mean() if (hops == k).any() else np.nan
                         for k in range(max_hop + 1)])
    return np.array([np.where(hops == k, influence, 0.0).sum(axis=1).mean()
                     for k in range(max_hop + 1)])


def attention_summary(attention: Any, A: Any, y: Any) -> dict[str, float]:
    r"""How far graph attention weights are from the structure-only (uniform) weights.

    For attention rows :math:`\alpha_{i\cdot}` over :math:`\mathcal N(i)\cup\{i\}` (as from
    :class:`GATLayer`) with :math:`\tilde d_i = |\mathcal N(i)| + 1`:

    - ``"off_graph"``: the largest weight outside :math:`\mathcal N(i)\cup\{i\}`;
    - ``"tv_to_uniform"``: the mean over nodes of the total-variation distance
      :math:`\tfrac12\sum_j |\alpha_{ij} - 1/\tilde d_i|` to the uniform weights that
      structure alone would give (0: attention is a plain neighbourhood mean; 1: maximal);
    - ``"same_class"`` and ``"same_class_uniform"``: the mean weight a node puts on its own
      class, under attention and under uniform weights;
    - ``"r2_inverse_degree"``: the squared correlation, over the non-zero pattern, between
      :math:`\alpha_{ij}` and :math:`1/\tilde d_i` (1 if the weights are set by degree alone;
      NaN if every node has the same degree).

    Parameters
    ----------
    attention
        ``(N, N)`` row-stochastic attention weights.
    A
        Adjacency ``(N, N)``, non-negative (self-loops implied).
    y
        Labels ``(N,)``.

    Returns
    -------
    dict
        The five numbers above.

    Raises
    ------
    ValueError
        If the shapes do not match or the inputs are not finite.
    """
    A = _check_adjacency("A", A, symmetric=False)
    attention = _check_adjacency("attention", attention, symmetric=False).to(torch.float64)
    check_same_shape("attention", attention, "A", A)
    labels = torch.as_tensor(np.asarray(y))
    check_shape("y", labels, A.shape[:1], "(one label per node)")
    support = _neighbourhood_mask(A)
    uniform = support.double() / support.sum(dim=1, keepdim=True)
    same = (labels[:, None] == labels[None, :]).double()
    inv_degree = uniform[support]
    r = torch.corrcoef(torch.stack([attention[support], inv_degree]))[0, 1]
    return {
        "off_graph": float(attention[~support].max()) if bool((~support).any()) else 0.0,
        "tv_to_uniform": float(0.5 * (attention - uniform).abs().sum(dim=1).mean()),
        "same_class": float((attention * same).sum(dim=1).mean()),
        "same_class_uniform": float((uniform * same).sum(dim=1).mean()),
        "r2_inverse_degree": float(r**2),
    }
