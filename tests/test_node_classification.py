"""dlnotes.node_classification: the multi-head GAT against single-head GAT layers (themselves
tested against per-edge loops), the graph Transformer against PyTorch's encoder layer, and
side-by-side training against separate fit runs."""

from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlnotes.data import contextual_sbm
from dlnotes.graphs import GATLayer, GCNLayer, dirichlet_energy, normalized_adjacency
from dlnotes.node_classification import (
    DeepGCN,
    GraphClassifier,
    GraphTask,
    GraphTransformer,
    MultiHeadGATLayer,
    at_best_validation,
    graph_operator,
    train_node_tasks,
)
from dlnotes.training import History, fit, fit_replicas, run_in_threads

f64 = torch.float64


def small_graph(seed=0, n_per_class=6):
    A, X, y = contextual_sbm(n_per_class, 3, degree=3.0, homophily=0.8, n_features=5,
                             signal=1.0, seed=seed)
    return A, X, y


def single_head_copy(layer, head):
    """A GATLayer carrying head `head` of a MultiHeadGATLayer."""
    out = layer.out_features
    single = GATLayer(layer.in_features, out).double()
    with torch.no_grad():
        single.weight.copy_(layer.weight[head * out:(head + 1) * out])
        single.att_src.copy_(layer.att_src[head])
        single.att_dst.copy_(layer.att_dst[head])
        single.bias.zero_()
    return single


@pytest.mark.parametrize("concat", [True, False])
def test_multi_head_gat_is_its_single_head_layers_concatenated_or_averaged(concat):
    A, X, _ = small_graph()
    layer = MultiHeadGATLayer(5, 3, 4, concat=concat, seed=1).double()
    with torch.no_grad():
        layer.bias.normal_()
        out, attention = layer(X, graph_operator("neighbourhood", A))
        heads = [single_head_copy(layer, h)(X, A) for h in range(4)]
    outputs = torch.cat([o for o, _ in heads], 1) if concat else torch.stack(
        [o for o, _ in heads]).mean(0)
    assert torch.allclose(out, outputs + layer.bias, atol=1e-12)
    for h, (_, att) in enumerate(heads):
        assert torch.allclose(attention[h], att, atol=1e-12)


def test_attention_dropout_acts_in_training_only():
    A, X, _ = small_graph()
    layer = MultiHeadGATLayer(5, 3, 2, dropout=0.5, seed=0).double()
    mask = graph_operator("neighbourhood", A)
    torch.manual_seed(0)
    assert not torch.equal(layer(X, mask)[0], layer(X, mask)[0])
    layer.eval()
    assert torch.equal(layer(X, mask)[0], layer(X, mask)[0])


def test_graph_classifier_gcn_is_two_gcn_layers_with_a_relu():
    A, X, _ = small_graph()
    model = GraphClassifier("gcn", 5, 4, 3, seed=2).double().eval()
    A_hat = normalized_adjacency(A)
    first, second = GCNLayer(5, 4).double(), GCNLayer(4, 3).double()
    with torch.no_grad():
        for ref, ours in ((first, model.layer1), (second, model.layer2)):
            ref.weight.copy_(ours.weight)
            ref.bias.copy_(ours.bias)
        expected = second(torch.relu(first(X, A_hat)), A_hat)
        assert torch.allclose(model(X, model.operator(A)), expected, atol=1e-12)


def test_graph_transformer_layers_are_torch_encoder_layers_with_the_graph_as_mask():
    A, X, _ = small_graph()
    model = GraphTransformer(5, 8, 2, 16, 2, 3, attention="neighbourhood", seed=0).double()
    allowed = graph_operator("neighbourhood", A)
    with torch.no_grad():
        x = model.embed(X)[None]
        for layer in model.layers:
            ref = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                   batch_first=True).double()
            ref.load_state_dict(layer.state_dict())
            x = ref(x, src_mask=~allowed)
        assert torch.allclose(model(X, allowed), model.head(x[0]), atol=1e-10)


def test_graph_task_energy_is_the_relative_dirichlet_energy_of_the_hidden_states():
    A, X, _ = small_graph()
    task = GraphTask(DeepGCN(5, 4, 3, 3, seed=1).double(), {"train": (X, A)})
    with torch.no_grad():
        H = task("train", "hidden")
        expected = dirichlet_energy(H, A) / (H * H).sum()
        assert float(task("train", "energy")) == pytest.approx(float(expected), rel=1e-12)


def weighted_cross_entropy(task, y, weight):
    losses = F.cross_entropy(task("train"), y, reduction="none")
    return (losses * weight).sum() / weight.sum()


@pytest.mark.parametrize("kind", ["gcn", "gat", "mlp"])
def test_side_by_side_training_equals_separate_fit_runs(kind):
    graphs = [small_graph(seed) for seed in (0, 1)]
    make = lambda s: GraphClassifier(kind, 5, 4, 3, heads=2, seed=s).double()  # noqa: E731
    tasks = [GraphTask(make(s), {"train": (X, A)}) for s, (A, X, _) in enumerate(graphs)]
    alone = [GraphTask(make(s), {"train": (X, A)}) for s, (A, X, _) in enumerate(graphs)]
    y = torch.stack([g[2] for g in graphs])
    train = torch.zeros_like(y, dtype=torch.bool)
    train[:, ::3] = True
    history = train_node_tasks(tasks, y, train, epochs=15, lr=0.05, record_every=5,
                               scored={"all": ("train", y, torch.ones_like(train))})
    assert history["all"].shape == (3, 2)
    for task, ref, labels, mask in zip(tasks, alone, y, train, strict=True):
        fit(ref, weighted_cross_entropy, (labels, mask.double()), epochs=15, optimizer="adam",
            lr=0.05, weight_decay=5e-4)
        for p, q in zip(task.parameters(), ref.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-9)
        with torch.no_grad():
            acc = float((ref("train").argmax(1) == labels).double().mean())
            loss = float(F.cross_entropy(ref("train"), labels))
        r = list(tasks).index(task)
        assert history["all"][-1, r] == pytest.approx(acc)
        assert history["all loss"][-1, r] == pytest.approx(loss, rel=1e-9)


def dropout_runs(seed):
    graphs = [small_graph(s) for s in (0, 1)]
    tasks = [GraphTask(GraphClassifier("gat", 5, 4, 3, heads=2, dropout=0.4, seed=s).double(),
                       {"train": (X, A)}) for s, (A, X, _) in enumerate(graphs)]
    y = torch.stack([g[2] for g in graphs])
    train = torch.zeros_like(y, dtype=torch.bool)
    train[:, ::3] = True
    return tasks, y, train


def test_dropout_masks_are_those_of_the_seeded_global_generator_which_stays_untouched():
    tasks, y, train = dropout_runs(0)
    before = torch.get_rng_state()
    history = train_node_tasks(tasks, y, train, epochs=6, lr=0.05, record_every=3, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    reference, *_ = dropout_runs(0)
    with torch.random.fork_rng(devices=[]):  # the masks drawn from the seeded global generator
        torch.manual_seed(7)
        expected = fit_replicas(reference, weighted_cross_entropy, (y, train.double()),
                                per_replica=(True, True), generators=[torch.Generator()] * 2,
                                epochs=6, optimizer="adam", lr=0.05, weight_decay=5e-4,
                                record_every=3, randomness="different")
    np.testing.assert_array_equal(history.loss, expected.loss)
    other, *_ = dropout_runs(0)
    assert not np.array_equal(train_node_tasks(other, y, train, epochs=6, lr=0.05,
                                               record_every=3, seed=8).loss, history.loss)


def test_runs_with_dropout_on_two_threads_equal_the_same_runs_one_after_the_other():
    def runs():
        calls = {}
        for seed in range(3):
            tasks, y, train = dropout_runs(seed)
            calls[seed] = partial(train_node_tasks, tasks, y, train, epochs=30, lr=0.05,
                                  record_every=10, seed=seed)
        return calls

    alone = {seed: call() for seed, call in runs().items()}
    threaded = run_in_threads(runs(), threads=2)
    assert list(threaded) == [0, 1, 2]
    for seed, history in alone.items():
        np.testing.assert_array_equal(threaded[seed].loss, history.loss)


def test_at_best_validation_reads_each_replica_at_its_best_record():
    history = History()
    history.record(1, {"val loss": np.array([0.5, 0.2]), "test": np.array([0.1, 0.2])})
    history.record(2, {"val loss": np.array([0.3, 0.4]), "test": np.array([0.7, 0.3])})
    assert at_best_validation(history, "val", "test").tolist() == [0.7, 0.2]
    with pytest.raises(ValueError, match="not recorded"):
        at_best_validation(history, "val", "missing")


@pytest.mark.parametrize(("call", "message"), [
    (lambda: graph_operator("ring", torch.eye(3)), "kind"),
    (lambda: GraphClassifier("gat", 5, 6, 3, heads=4), "divisible"),
    (lambda: GraphClassifier("sage", 5, 6, 3), "kind"),
    (lambda: MultiHeadGATLayer(5, 3, 0), "heads"),
    (lambda: GraphTransformer(5, 8, 2, 16, 2, 3, attention="ring"), "attention"),
    (lambda: GraphTask(DeepGCN(5, 4, 2, 3), {}), "graphs"),
    (lambda: train_node_tasks([GraphTask(DeepGCN(5, 4, 2, 3).double(),
                                         {"train": small_graph()[1::-1]})],
                              torch.zeros(1, 18, dtype=torch.long),
                              torch.zeros(1, 17, dtype=torch.bool), epochs=1), "train_mask"),
], ids=["operator", "heads-divide", "kind", "no-heads", "attention", "no-graph", "mask-shape"])
def test_bad_arguments_raise_value_error_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()
