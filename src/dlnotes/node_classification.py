r"""Node classifiers trained side by side: multi-head graph attention with dropout, a graph
Transformer, a deep GCN, and seeds on their own graphs. Used in chapter 9, "Graph neural
networks".

* :class:`MultiHeadGATLayer` is the graph attention layer of Veličković et al. (2018) with
  several heads (concatenated or averaged) and dropout on the attention weights;
  :class:`GraphClassifier` is their two-layer GCN, GAT or MLP with dropout.
* :class:`GraphTransformer` embeds node features, applies Transformer encoder layers
  (:class:`dlnotes.transformer.EncoderLayer`: attention, feed-forward sublayer, residuals and
  LayerNorm) over all nodes or over each node's neighbourhood, and classifies;
  :class:`DeepGCN` is the same skeleton with GCN layers.
* :class:`GraphTask` binds a classifier to its graphs (features and operators as buffers), so
  that replicas on *different* graphs train side by side with
  :func:`dlnotes.training.fit_replicas`; :func:`train_node_tasks` trains them on their labelled
  nodes and records accuracy on other nodes (and the Dirichlet energy of the hidden states)
  during training; :func:`at_best_validation` reads each replica's score at its best
  validation record (early stopping by model selection).

Models take ``forward(X, operator, output="logits")``: features ``(N, F)`` and what their
layers need from the graph (:meth:`GraphClassifier.operator`): :math:`\hat A` for a GCN, the
boolean neighbourhood mask :math:`A_{ij} \ne 0 \lor i = j` for attention restricted to the
graph, an all-True mask for attention over all nodes, nothing for an MLP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.dropout import dropout as inverted_dropout
from dlnotes.dropout import dropout_generator
from dlnotes.graphs import GCNLayer, normalized_adjacency
from dlnotes.training import History, fit_replicas
from dlnotes.transformer import EncoderLayer
from dlnotes.validation import (
    as_float_tensor,
    check_choice,
    check_in_range,
    check_int_at_least,
    check_min_length,
    check_nonnegative,
    check_same_shape,
    check_shape,
    check_square,
)

__all__ = [
    "MultiHeadGATLayer",
    "GraphClassifier",
    "GraphTransformer",
    "DeepGCN",
    "GraphTask",
    "graph_operator",
    "train_node_tasks",
    "at_best_validation",
]

#: What a model needs from the graph, by the name of its operator.
OPERATORS = ("normalized", "neighbourhood", "complete", "none")


def graph_operator(kind: str, A: Any) -> torch.Tensor:
    r"""What a layer needs from the adjacency ``A`` ``(N, N)``.

    ``"normalized"``: :math:`\hat A` (:func:`dlnotes.graphs.normalized_adjacency`);
    ``"neighbourhood"``: boolean :math:`A_{ij} \ne 0 \lor i = j`; ``"complete"``: all True
    (attention over all nodes); ``"none"``: a zero ``(N, N)`` tensor, unused (an MLP).

    Raises
    ------
    ValueError
        If ``kind`` is unknown or ``A`` is not a square finite matrix.
    """
    check_choice("kind", kind, OPERATORS)
    A = as_float_tensor("A", A, 2)
    check_square("A", A)
    if kind == "normalized":
        return normalized_adjacency(A)
    eye = torch.eye(A.shape[0], dtype=torch.bool)
    if kind == "neighbourhood":
        return (A != 0) | eye
    if kind == "complete":
        return torch.ones_like(eye)
    return torch.zeros_like(A)


def _seeded_init(module: nn.Module, seed: int) -> None:
    """Glorot-uniform weights (and attention vectors), zero biases, from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                fan = p.shape[-1] + (p.shape[-2] if p.ndim > 1 else 1)
                bound = math.sqrt(6.0 / fan)
                p.uniform_(-bound, bound, generator=gen)


class MultiHeadGATLayer(nn.Module):
    r"""Graph attention with ``heads`` heads (Veličković et al. 2018).

    Head :math:`k` computes :math:`e^k_{ij} = \operatorname{LeakyReLU}(a_{\text{dst}}^{k\top}
    W^k h_i + a_{\text{src}}^{k\top} W^k h_j)`, the softmax :math:`\alpha^k_{ij}` over
    :math:`j` with ``mask[i, j]`` True, and :math:`\sum_j \alpha^k_{ij} W^k h_j`; the heads
    are concatenated (``concat=True``, width ``heads * out_features``) or averaged, then the
    bias is added. In training mode dropout with probability ``dropout`` is applied to the
    attention weights, as in the paper. With one head it is
    :class:`dlnotes.graphs.GATLayer` (tested); parameters: ``weight`` ``(heads * out, in)``,
    ``att_src`` and ``att_dst`` ``(heads, out)``, ``bias``.

    Parameters
    ----------
    in_features, out_features
        Sizes (``out_features`` per head), ≥ 1.
    heads
        Number of heads, ≥ 1.
    concat
        Concatenate the heads (hidden layers) or average them (output layer).
    dropout
        Attention dropout in [0, 1).
    negative_slope
        Of the LeakyReLU, ≥ 0.
    seed
        Seeds the Glorot-uniform initialisation; biases start at 0.
    """

    def __init__(self, in_features: int, out_features: int, heads: int = 1, *,
                 concat: bool = True, dropout: float = 0.0, negative_slope: float = 0.2,
                 seed: int = 0) -> None:
        super().__init__()
        check_int_at_least("in_features", in_features, 1)
        check_int_at_least("out_features", out_features, 1)
        check_int_at_least("heads", heads, 1)
        check_in_range("dropout", dropout, 0.0, 1.0)
        check_nonnegative("negative_slope", negative_slope)
        self.in_features, self.out_features, self.heads = in_features, out_features, heads
        self.concat, self.dropout, self.negative_slope = concat, dropout, negative_slope
        self.weight = nn.Parameter(torch.empty(heads * out_features, in_features))
        self.att_src = nn.Parameter(torch.empty(heads, out_features))
        self.att_dst = nn.Parameter(torch.empty(heads, out_features))
        self.bias = nn.Parameter(torch.zeros(heads * out_features if concat else out_features))
        gen = torch.Generator().manual_seed(seed)
        nn.init.xavier_uniform_(self.weight, generator=gen)
        bound = math.sqrt(6.0 / (1 + 2 * out_features))  # a of shape (1, 2 out) per head
        for a in (self.att_src, self.att_dst):
            nn.init.uniform_(a, -bound, bound, generator=gen)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"heads={self.heads}, concat={self.concat}, dropout={self.dropout}")

    def forward(self, H: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Output ``(N, heads * out)`` (or ``(N, out)``) and attention ``(heads, N, N)``."""
        n = H.shape[0]
        Wh = (H @ self.weight.T).reshape(n, self.heads, self.out_features)
        src = (Wh * self.att_src).sum(-1).T  # (heads, N)
        dst = (Wh * self.att_dst).sum(-1).T
        e = F.leaky_relu(dst[:, :, None] + src[:, None, :], self.negative_slope)
        attention = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=-1)
        dropped = attention
        if self.training and self.dropout > 0:
            dropped = inverted_dropout(attention, self.dropout)
        out = dropped @ Wh.transpose(0, 1)  # (heads, N, out)
        out = out.transpose(0, 1).reshape(n, -1) if self.concat else out.mean(0)
        return out + self.bias, attention


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    return inverted_dropout(x, p) if training and p > 0 else x


class GraphClassifier(nn.Module):
    r"""Two-layer node classifier: a GCN (Kipf & Welling 2017), a multi-head GAT
    (Veličković et al. 2018) or an MLP that ignores the graph, with dropout.

    GCN and MLP: dropout, layer, ReLU, dropout, layer. GAT: dropout, :class:`MultiHeadGATLayer`
    with ``heads`` heads of ``hidden // heads`` features concatenated, ELU, dropout, one
    averaged output head; attention dropout ``dropout`` too. Initialised Glorot-uniform, biases
    0, from ``seed``.

    Parameters
    ----------
    kind
        ``"gcn"``, ``"gat"`` or ``"mlp"``.
    in_features, hidden, n_classes
        Sizes, ≥ 1 (for the GAT ``hidden`` is divisible by ``heads``).
    heads
        Attention heads of the GAT's hidden layer (ignored otherwise).
    dropout
        Dropout probability in [0, 1) (0: deterministic training).
    seed
        Seeds the initial weights.
    """

    def __init__(self, kind: str, in_features: int, hidden: int, n_classes: int, *,
                 heads: int = 1, dropout: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        check_choice("kind", kind, ["gcn", "gat", "mlp"])
        check_in_range("dropout", dropout, 0.0, 1.0)
        check_int_at_least("seed", seed, 0)
        self.kind, self.dropout = kind, float(dropout)
        if kind == "gat":
            if hidden % heads:
                raise ValueError(f"hidden must be divisible by heads, got {hidden} and {heads}")
            self.layer1 = MultiHeadGATLayer(in_features, hidden // heads, heads,
                                            dropout=dropout, seed=seed)
            self.layer2 = MultiHeadGATLayer(hidden, n_classes, 1, concat=False,
                                            dropout=dropout, seed=seed + 1)
        else:
            make = GCNLayer if kind == "gcn" else nn.Linear
            self.layer1, self.layer2 = make(in_features, hidden), make(hidden, n_classes)
            _seeded_init(self, seed)
        self.operator_kind = {"gcn": "normalized", "gat": "neighbourhood", "mlp": "none"}[kind]

    def operator(self, A: Any) -> torch.Tensor:
        """What :meth:`forward` needs from the adjacency ``A`` (:func:`graph_operator`)."""
        return graph_operator(self.operator_kind, A)

    def _layer(self, layer: nn.Module, H: torch.Tensor, operator: torch.Tensor) -> torch.Tensor:
        if self.kind == "gat":
            return layer(H, operator)[0]
        if self.kind == "gcn":
            return layer.propagate(H, operator)
        return layer(H)

    def forward(self, X: torch.Tensor, operator: torch.Tensor, output: str = "logits"
                ) -> torch.Tensor:
        """Logits ``(N, n_classes)``, or the hidden layer ``(N, hidden)`` (``output="hidden"``)."""
        H = self._layer(self.layer1, _dropout(X, self.dropout, self.training), operator)
        H = F.elu(H) if self.kind == "gat" else torch.relu(H)
        if output == "hidden":
            return H
        return self._layer(self.layer2, _dropout(H, self.dropout, self.training), operator)


class GraphTransformer(nn.Module):
    r"""Node features → ``Linear`` embedding → ``n_layers`` Transformer encoder layers → linear
    classifier.

    Each layer is :class:`dlnotes.transformer.EncoderLayer` (multi-head attention and a
    feed-forward sublayer, each with a residual connection and LayerNorm, post-norm), applied
    to the ``N`` nodes as one sequence; the operator is the boolean ``(N, N)`` mask of allowed
    attention: all True for a Transformer over the complete graph, the neighbourhood mask
    (:func:`graph_operator` ``"neighbourhood"``) for graph attention. No position encoding:
    nodes are a set.

    Parameters
    ----------
    in_features, d_model, n_heads, d_ff, n_layers, n_classes
        Sizes, ≥ 1 (``d_model`` divisible by ``n_heads``).
    attention
        ``"complete"`` (every node attends to every node) or ``"neighbourhood"`` (to its
        neighbours and itself): the operator :class:`GraphTask` builds for it.
    seed
        Seeds the initial weights (the global torch state is untouched).
    """

    def __init__(self, in_features: int, d_model: int, n_heads: int, d_ff: int, n_layers: int,
                 n_classes: int, *, attention: str = "complete", seed: int = 0) -> None:
        super().__init__()
        check_int_at_least("n_layers", n_layers, 1)
        check_choice("attention", attention, ["complete", "neighbourhood"])
        check_int_at_least("seed", seed, 0)
        self.operator_kind = attention
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embed = nn.Linear(in_features, d_model)
            self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff)
                                        for _ in range(n_layers))
            self.head = nn.Linear(d_model, n_classes)

    def hidden_states(self, X: torch.Tensor, operator: torch.Tensor) -> list[torch.Tensor]:
        """The embedding and the output of every layer, each ``(N, d_model)``."""
        x = self.embed(X)[None]
        states = [x[0]]
        for layer in self.layers:
            x = layer(x, allowed=operator)
            states.append(x[0])
        return states

    def forward(self, X: torch.Tensor, operator: torch.Tensor, output: str = "logits"
                ) -> torch.Tensor:
        """Logits ``(N, n_classes)``, or the last hidden states with ``output="hidden"``."""
        H = self.hidden_states(X, operator)[-1]
        return H if output == "hidden" else self.head(H)


class DeepGCN(nn.Module):
    r"""The skeleton of :class:`GraphTransformer` with plain GCN layers: ``Linear`` embedding,
    ``n_layers`` × (:class:`dlnotes.graphs.GCNLayer`, ReLU), linear classifier; no residual
    connection and no normalisation, so depth over-smooths. The operator is :math:`\hat A`.

    Parameters
    ----------
    in_features, width, n_layers, n_classes
        Sizes, ≥ 1.
    seed
        Seeds the Glorot-uniform initialisation; biases start at 0.
    """

    def __init__(self, in_features: int, width: int, n_layers: int, n_classes: int, *,
                 seed: int = 0) -> None:
        super().__init__()
        check_int_at_least("n_layers", n_layers, 1)
        check_int_at_least("seed", seed, 0)
        self.operator_kind = "normalized"
        self.embed = nn.Linear(in_features, width)
        self.layers = nn.ModuleList(GCNLayer(width, width) for _ in range(n_layers))
        self.head = nn.Linear(width, n_classes)
        _seeded_init(self, seed)

    def hidden_states(self, X: torch.Tensor, A_hat: torch.Tensor) -> list[torch.Tensor]:
        """The embedding and the output of every layer, each ``(N, width)``."""
        states = [self.embed(X)]
        for layer in self.layers:
            states.append(torch.relu(layer.propagate(states[-1], A_hat)))
        return states

    def forward(self, X: torch.Tensor, A_hat: torch.Tensor, output: str = "logits"
                ) -> torch.Tensor:
        """Logits ``(N, n_classes)``, or the last hidden states with ``output="hidden"``."""
        H = self.hidden_states(X, A_hat)[-1]
        return H if output == "hidden" else self.head(H)


def _relative_energy(H: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:
    """:math:`E(H)/\\lVert H\\rVert_F^2` (0 for a zero ``H``)."""
    norm_sq = (H * H).sum()
    energy = norm_sq - (H * (A_hat @ H)).sum()
    return energy / norm_sq.clamp(min=torch.finfo(H.dtype).tiny)


class GraphTask(nn.Module):
    r"""A node classifier bound to its graphs, so that replicas on different graphs can be
    trained side by side.

    For every named graph ``(X, A)`` the features, the model's operator and :math:`\hat A` are
    stored as buffers; :func:`torch.func.stack_module_state` then stacks each replica's graphs
    with its parameters. ``forward(name, output)`` returns the model's logits on graph
    ``name`` (``output="logits"``), its hidden states (``"hidden"``) or their relative
    Dirichlet energy :math:`E(H)/\lVert H\rVert_F^2` on that graph (``"energy"``, a scalar; 0
    when the rows are :math:`\sqrt{\tilde d_i}` times one vector, the over-smoothed limit).

    Parameters
    ----------
    model
        A classifier with ``forward(X, operator, output)`` and an ``operator_kind`` attribute
        (one of ``"normalized"``, ``"neighbourhood"``, ``"complete"``, ``"none"``).
    graphs
        Name → ``(X, A)``: features ``(N, F)`` and symmetric adjacency ``(N, N)``.

    Raises
    ------
    ValueError
        If no graph is given or a graph's shapes do not match.
    """

    def __init__(self, model: nn.Module, graphs: Mapping[str, tuple[Any, Any]]) -> None:
        super().__init__()
        check_min_length("graphs", graphs, 1, "graphs")
        self.model, self.names = model, list(graphs)
        dtype = next(model.parameters()).dtype
        for i, (name, (X, A)) in enumerate(graphs.items()):
            X = as_float_tensor(f"graphs[{name!r}][0]", X, 2).to(dtype)
            check_shape(f"graphs[{name!r}][0]", X, (A.shape[0], None), "(one row per node)")
            self.register_buffer(f"x_{i}", X)
            self.register_buffer(f"op_{i}", graph_operator(model.operator_kind, A).to(
                dtype if model.operator_kind in ("normalized", "none") else torch.bool))
            self.register_buffer(f"ahat_{i}", normalized_adjacency(A).to(dtype))

    def forward(self, name: str = "train", output: str = "logits") -> torch.Tensor:
        """See the class notes."""
        i = self.names.index(name)
        X, op = getattr(self, f"x_{i}"), getattr(self, f"op_{i}")
        if output == "energy":
            return _relative_energy(self.model(X, op, "hidden"), getattr(self, f"ahat_{i}"))
        return self.model(X, op, output)


def _weighted_cross_entropy(task, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    losses = F.cross_entropy(task("train"), y, reduction="none")
    return (losses * weight).sum() / weight.sum()


def train_node_tasks(
    tasks: Sequence[GraphTask],
    labels: torch.Tensor,
    train_mask: torch.Tensor,
    *,
    epochs: int,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    scored: Mapping[str, tuple[str, torch.Tensor, torch.Tensor]] | None = None,
    energy: bool = False,
    record_every: int = 10,
    seed: int = 0,
) -> History:
    r"""Full-batch Adam on each task's training nodes, tasks side by side
    (:func:`dlnotes.training.fit_replicas`), recording accuracies during training.

    Replica :math:`r` minimises the cross-entropy of its ``"train"`` graph on the nodes where
    ``train_mask[r]`` is True (transductive: the whole graph is seen, only those labels are
    used). Without dropout each replica follows its own :func:`dlnotes.training.fit` run
    (tested); dropout draws independent masks per replica from a generator seeded with ``seed``
    (:func:`dlnotes.dropout.dropout_generator`: the masks the global generator would draw after
    ``torch.manual_seed(seed)``, while the global state is left alone), so runs can train on two
    threads at once (:func:`dlnotes.training.run_in_threads`). Every ``record_every`` epochs
    (and after the last) the models are evaluated in eval mode (no dropout) and, for every entry
    ``key: (graph name, labels, mask)`` of ``scored``, the accuracy on that graph's nodes where
    ``mask[r]`` is True (against ``labels[r]``) is recorded as ``history[key]`` and their mean
    cross-entropy as ``history[key + " loss"]``; with ``energy=True`` also the relative
    Dirichlet energy of the hidden states on the training graph (``history["energy"]``).

    Parameters
    ----------
    tasks
        ``R`` tasks with the same architecture and graph sizes.
    labels
        ``(R, N)`` integer labels of each task's training graph.
    train_mask
        ``(R, N)`` boolean: the labelled nodes.
    epochs
        Number of full-batch steps, ≥ 1.
    lr, weight_decay
        Adam's settings (the defaults are Kipf & Welling's).
    scored
        Name → ``(graph name, labels, mask)``: the ``(R, N_g)`` labels and boolean mask of the
        nodes to score on the task's graph of that name.
    energy
        Record the relative Dirichlet energy of the hidden states.
    record_every
        Evaluate every this many epochs.
    seed
        Seeds the dropout masks.

    Returns
    -------
    History
        ``history[key]`` of shape ``(records, R)``; ``history.step`` the epochs.

    Raises
    ------
    ValueError
        For masks or labels of the wrong shape, or as :func:`dlnotes.training.fit_replicas`.
    """
    check_min_length("tasks", tasks, 1, "tasks")
    R = len(tasks)
    check_shape("labels", labels, (R, None), "(replicas, nodes)")
    check_same_shape("train_mask", train_mask, "labels", labels)
    scored = dict(scored or {})
    for key, (_, graph_labels, mask) in scored.items():
        check_same_shape(f"scored[{key!r}] mask", mask, "its labels", graph_labels)
        check_shape(f"scored[{key!r}] labels", graph_labels, (R, None), "(replicas, nodes)")
    weight = train_mask.to(next(tasks[0].parameters()).dtype)

    def callback(model_fn, step):
        values = {}
        for key, (name, graph_labels, mask) in scored.items():
            logits, count = model_fn(name), mask.sum(1)
            correct = (logits.argmax(-1) == graph_labels) & mask
            values[key] = correct.sum(1).to(torch.float64) / count
            losses = F.cross_entropy(logits.transpose(1, 2), graph_labels, reduction="none")
            values[f"{key} loss"] = (losses * mask).sum(1).to(torch.float64) / count
        if energy:
            values["energy"] = model_fn("train", "energy")
        return values

    with dropout_generator(torch.Generator().manual_seed(seed)):
        return fit_replicas(tasks, _weighted_cross_entropy, (labels, weight),
                            per_replica=(True, True),
                            generators=[torch.Generator() for _ in tasks], epochs=epochs,
                            optimizer="adam", lr=lr, weight_decay=weight_decay,
                            callback=callback, record_every=record_every,
                            randomness="different")


def at_best_validation(history: History, validation: str, score: str) -> np.ndarray:
    """Each replica's ``score`` at the record where its validation cross-entropy
    (``history[validation + " loss"]``, recorded by :func:`train_node_tasks`) is lowest: early
    stopping by model selection on the validation nodes, Kipf & Welling's criterion. The loss
    is continuous, so the choice does not hang on ties between validation accuracies.

    Returns
    -------
    numpy.ndarray
        ``(R,)``.

    Raises
    ------
    ValueError
        If a name was not recorded.
    """
    for name in (validation + " loss", score):
        if name not in history:
            raise ValueError(f"{name!r} was not recorded; recorded: {history.keys()}")
    best = history[validation + " loss"].argmin(axis=0)
    return history[score][best, np.arange(best.size)]
