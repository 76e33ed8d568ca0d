"""dlnotes.graphs against per-node and per-edge loops, networkx, scipy, scikit-learn and torch."""

import math

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist

from dlnotes.data import adjacency_matrix, karate_club
from dlnotes.graphs import (
    LAYERS,
    DenseLayer,
    GATLayer,
    GCNLayer,
    LayerStack,
    Propagation,
    SelfAttentionLayer,
    attention_summary,
    dirichlet_energy,
    hop_distances,
    influence_by_hop,
    influence_matrix,
    mean_pairwise_distance,
    normalized_adjacency,
    smoothing_by_depth,
)

f64 = torch.float64


def random_graph(seed, n=8, p=0.4, weighted=False):
    """A networkx G(n, p) graph and its (optionally weighted) symmetric adjacency."""
    graph = nx.gnp_random_graph(n, p, seed=seed)
    A = adjacency_matrix(graph)
    if weighted:
        W = torch.rand(n, n, generator=torch.Generator().manual_seed(seed), dtype=f64) + 0.1
        A = A * (W + W.T) / 2
    return graph, A


def features(seed, n, d):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=f64)


# ------------------------------------------------------------------ normalised adjacency


@given(st.integers(0, 10_000), st.integers(1, 9), st.booleans())
@settings(max_examples=40, deadline=None)
def test_normalized_adjacency_is_a_over_sqrt_degrees_entry_by_entry(seed, n, weighted):
    _, A = random_graph(seed, n, weighted=weighted)
    A_t = A + torch.eye(n, dtype=f64)
    d = A_t.sum(1)
    expected = torch.tensor([[float(A_t[i, j]) / math.sqrt(float(d[i] * d[j]))
                              for j in range(n)] for i in range(n)], dtype=f64)
    assert torch.allclose(normalized_adjacency(A), expected, rtol=1e-13, atol=1e-15)


@given(st.integers(0, 10_000), st.integers(2, 12), st.booleans())
@settings(max_examples=40, deadline=None)
def test_spectrum_lies_in_minus_one_to_one_with_top_eigenvector_sqrt_degree(seed, n, weighted):
    _, A = random_graph(seed, n, p=0.5, weighted=weighted)
    A_hat = normalized_adjacency(A)
    lam = torch.linalg.eigvalsh(A_hat)
    assert float(lam.min()) > -1 + 1e-9 and float(lam.max()) <= 1 + 1e-12
    u = (A.sum(1) + 1).sqrt()
    assert torch.allclose(A_hat @ u, u, rtol=1e-12)


def test_without_self_loops_a_bipartite_graph_reaches_minus_one_and_isolated_nodes_are_zero():
    A = adjacency_matrix(nx.path_graph(4))
    lam = torch.linalg.eigvalsh(normalized_adjacency(A, add_self_loops=False))
    assert float(lam.min()) == pytest.approx(-1.0, abs=1e-12)
    assert float(torch.linalg.eigvalsh(normalized_adjacency(A)).min()) > -1 + 1e-3
    graph = nx.path_graph(3)
    graph.add_node(3)  # isolated
    A_iso = normalized_adjacency(adjacency_matrix(graph), add_self_loops=False)
    assert torch.equal(A_iso[3], torch.zeros(4, dtype=f64))
    assert float(normalized_adjacency(adjacency_matrix(graph))[3, 3]) == 1.0


def test_integer_and_numpy_adjacency_become_float64():
    A = nx.to_numpy_array(nx.cycle_graph(5), dtype=np.int64)
    out = normalized_adjacency(A)
    assert out.dtype == f64
    assert torch.allclose(out.sum(1), torch.ones(5, dtype=f64))  # 3-regular with loops


BAD_ADJACENCY = [
    (torch.tensor([[0.0, 1.0], [0.0, 0.0]]), "symmetric"),
    (torch.tensor([[0.0, -1.0], [-1.0, 0.0]]), "non-negative"),
    (torch.ones(2, 3), "square"),
    (torch.tensor([[0.0, math.nan], [math.nan, 0.0]]), "finite"),
    ([[0.0, 1.0], [1.0, 0.0]], "torch.Tensor"),
    (torch.zeros(0, 0), "at least 1 node"),
]


@pytest.mark.parametrize(("A", "message"), BAD_ADJACENCY,
                         ids=["asymmetric", "negative", "not-square", "nan", "list", "empty"])
def test_normalized_adjacency_rejects_bad_input_naming_the_argument(A, message):
    with pytest.raises(ValueError, match=message) as err:
        normalized_adjacency(A)
    assert str(err.value).startswith("A ")


# ------------------------------------------------------------------------- Dirichlet energy


@given(st.integers(0, 10_000), st.integers(2, 9), st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_dirichlet_energy_equals_the_weighted_sum_over_edges(seed, n, d):
    graph, A = random_graph(seed, n, weighted=True)
    H = features(seed, n, d)
    deg = A.sum(1) + 1
    scaled = H / deg.sqrt()[:, None]
    by_edges = sum(float(A[i, j]) * float(((scaled[i] - scaled[j]) ** 2).sum())
                   for i, j in graph.edges())
    energy = float(dirichlet_energy(H, A))
    assert energy == pytest.approx(by_edges, rel=1e-10, abs=1e-12)
    assert energy >= -1e-12


def test_dirichlet_energy_vanishes_exactly_on_the_sqrt_degree_direction():
    A = karate_club()[0]
    sqrt_deg = (A.sum(1) + 1).sqrt()
    v = torch.tensor([1.0, -2.0, 0.5], dtype=f64)
    collapsed = sqrt_deg[:, None] * v[None, :]
    assert abs(float(dirichlet_energy(collapsed, A))) < 1e-10
    assert float(dirichlet_energy(torch.ones(34, 3, dtype=f64), A)) > 1.0
    assert float(dirichlet_energy(sqrt_deg, A)) == pytest.approx(0.0, abs=1e-10)  # a vector


def test_dirichlet_energy_is_differentiable_and_rejects_mismatched_rows():
    A = karate_club()[0]
    H = features(0, 34, 2).requires_grad_()
    dirichlet_energy(H, A).backward()
    A_hat = normalized_adjacency(A)
    assert torch.allclose(H.grad, 2 * (torch.eye(34, dtype=f64) - A_hat) @ H.detach())
    with pytest.raises(ValueError, match=r"H must hold 34 rows \(one per node\), got 33"):
        dirichlet_energy(features(0, 33, 2), A)


# ------------------------------------------------------------------ distances and hops


@given(st.integers(0, 10_000), st.integers(2, 12), st.integers(1, 5))
@settings(max_examples=40, deadline=None)
def test_mean_pairwise_distance_matches_scipy_pdist(seed, n, d):
    H = features(seed, n, d)
    assert float(mean_pairwise_distance(H)) == pytest.approx(pdist(H.numpy()).mean(), rel=1e-12)
    unit = H / H.norm(dim=1, keepdim=True)
    assert float(mean_pairwise_distance(H, normalize_rows=True)) == pytest.approx(
        pdist(unit.numpy()).mean(), rel=1e-12)


def test_normalized_distance_is_zero_for_parallel_rows_and_ignores_scale():
    v = torch.tensor([0.3, -1.0, 2.0], dtype=f64)
    H = torch.tensor([[1.0], [5.0], [0.01]], dtype=f64) * v
    assert float(mean_pairwise_distance(H, normalize_rows=True)) == pytest.approx(0.0, abs=1e-15)
    assert float(mean_pairwise_distance(H)) > 1.0
    with pytest.raises(ValueError, match="H must hold at least 2 rows"):
        mean_pairwise_distance(torch.ones(1, 3))


@given(st.integers(0, 10_000), st.integers(1, 12), st.floats(0.05, 0.6))
@settings(max_examples=40, deadline=None)
def test_hop_distances_match_networkx_shortest_paths(seed, n, p):
    graph, A = random_graph(seed, n, p)
    hops = hop_distances(A)
    lengths = dict(nx.all_pairs_shortest_path_length(graph))
    for i in range(n):
        for j in range(n):
            assert hops[i, j] == lengths[i].get(j, math.inf)


# ------------------------------------------------------------------------------- layers


@given(st.integers(0, 10_000), st.integers(1, 9), st.integers(1, 4), st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_gcn_layer_matches_dense_formula_and_a_per_node_loop(seed, n, d_in, d_out):
    graph, A = random_graph(seed, n)
    layer = GCNLayer(d_in, d_out, seed=seed).double()
    with torch.no_grad():
        layer.bias.copy_(torch.randn(d_out, generator=torch.Generator().manual_seed(seed)))
    H = features(seed, n, d_in)
    A_hat = normalized_adjacency(A)
    deg = {v: graph.degree(v) + 1 for v in graph}
    with torch.no_grad():
        out = layer(H, A_hat)
        loop = torch.stack([sum(layer.weight @ H[j] / math.sqrt(deg[i] * deg[j])
                                for j in [i, *graph[i]]) + layer.bias for i in graph])
        assert torch.allclose(out, A_hat @ H @ layer.weight.T + layer.bias, rtol=1e-12)
    assert torch.allclose(out, loop, rtol=1e-12, atol=1e-14)


def test_gcn_layer_has_nn_linear_shapes_glorot_weights_and_zero_bias():
    layer = GCNLayer(7, 3, seed=5)
    bound = math.sqrt(6 / (7 + 3))
    assert layer.weight.shape == (3, 7) and layer.bias.shape == (3,)
    assert float(layer.weight.detach().abs().max()) <= bound
    assert torch.equal(layer.bias.detach(), torch.zeros(3))
    assert torch.equal(layer.weight, GCNLayer(7, 3, seed=5).weight)
    assert not torch.equal(layer.weight, GCNLayer(7, 3, seed=6).weight)


def gat_by_edges(layer, H, graph):
    """Velickovic et al.'s formulas, one node and one edge at a time."""
    Wh = H @ layer.weight.T
    out, att = [], torch.zeros(len(graph), len(graph), dtype=H.dtype)
    for i in graph:
        nbrs = [i, *graph[i]]
        e = torch.stack([F.leaky_relu(layer.att_dst @ Wh[i] + layer.att_src @ Wh[j], 0.2)
                         for j in nbrs])
        alpha = torch.exp(e - e.max()) / torch.exp(e - e.max()).sum()
        att[i, nbrs] = alpha
        out.append(sum(a * Wh[j] for a, j in zip(alpha, nbrs, strict=True)) + layer.bias)
    return torch.stack(out), att


@given(st.integers(0, 10_000), st.integers(1, 9), st.integers(1, 4), st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_gat_layer_matches_a_per_edge_loop(seed, n, d_in, d_out):
    graph, A = random_graph(seed, n)
    layer = GATLayer(d_in, d_out, seed=seed).double()
    H = features(seed, n, d_in)
    with torch.no_grad():
        out, att = layer(H, A)
        out_ref, att_ref = gat_by_edges(layer, H, graph)
    assert torch.allclose(out, out_ref, rtol=1e-12, atol=1e-14)
    assert torch.allclose(att, att_ref, rtol=1e-12, atol=1e-15)


@given(st.integers(0, 10_000), st.integers(1, 10))
@settings(max_examples=40, deadline=None)
def test_gat_attention_rows_sum_to_one_and_are_exactly_zero_outside_the_neighbourhood(seed, n):
    _, A = random_graph(seed, n, p=0.3)
    layer = GATLayer(3, 2, seed=seed).double()
    with torch.no_grad():
        _, att = layer(features(seed, n, 3), A)
    inside = (A != 0) | torch.eye(n, dtype=torch.bool)
    assert torch.allclose(att.sum(1), torch.ones(n, dtype=f64), atol=1e-14)
    assert bool((att[~inside] == 0).all()) and bool((att[inside] > 0).all())
    isolated = (A.sum(1) == 0).nonzero().flatten()
    assert bool((att[isolated, isolated] == 1).all())


def test_gat_is_finite_for_huge_features_and_ranks_keys_identically_on_the_complete_graph():
    A = karate_club()[0]
    layer = GATLayer(4, 3, seed=0).double()
    with torch.no_grad():
        out, att = layer(1e4 * features(1, 34, 4), A)
        assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(att).all())
        _, att_all = layer(features(2, 34, 4), torch.ones(34, 34))
        assert torch.allclose(att_all, torch.softmax(layer.scores(features(2, 34, 4)), dim=1))
    order = att_all.argsort(dim=1)
    assert bool((order == order[0]).all())  # static attention (Brody et al. 2022)


@given(st.integers(0, 10_000), st.integers(1, 9), st.integers(1, 4), st.integers(1, 4))
@settings(max_examples=30, deadline=None)
def test_self_attention_matches_torch_sdpa_with_and_without_a_graph(seed, n, d_in, d_out):
    _, A = random_graph(seed, n)
    layer = SelfAttentionLayer(d_in, d_out, seed=seed).double()
    H = features(seed, n, d_in)
    q, k, v = (H @ w.T for w in (layer.w_query, layer.w_key, layer.w_value))
    mask = (A != 0) | torch.eye(n, dtype=torch.bool)
    with torch.no_grad():
        out_all, w_all = layer(H)
        out_graph, w_graph = layer(H, A)
        assert torch.allclose(out_all, F.scaled_dot_product_attention(q, k, v), rtol=1e-12)
        assert torch.allclose(out_graph, F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                              rtol=1e-12, atol=1e-14)
        assert torch.equal(out_all, layer(H, torch.ones(n, n))[0])
    assert bool((w_graph[~mask] == 0).all())


BAD_LAYER_CALLS = [
    (lambda: GCNLayer(3, 2)(torch.ones(4, 2), torch.eye(4)), r"3 columns \(in_features\)"),
    (lambda: GCNLayer(3, 2)(torch.ones(4, 3), torch.eye(5)), r"rows \(one per node\)"),
    (lambda: GCNLayer(3, 2)(torch.ones(4, 3), torch.ones(4, 3)), "square"),
    (lambda: GATLayer(3, 2)(torch.ones(4, 3), -torch.eye(4)), "non-negative"),
    (lambda: GATLayer(3, 2)(torch.full((4, 3), math.inf), torch.eye(4)), "finite"),
    (lambda: GATLayer(3, 2, negative_slope=-0.1), "negative_slope"),
    (lambda: SelfAttentionLayer(3, 2)(torch.ones(3)), "shape"),
    (lambda: GCNLayer(0, 2), "in_features"),
    (lambda: GATLayer(2, 2, seed=-1), "seed"),
]


@pytest.mark.parametrize(("call", "message"), BAD_LAYER_CALLS,
                         ids=["gcn-columns", "gcn-rows", "gcn-square", "gat-negative",
                              "gat-inf", "gat-slope", "attention-1d", "gcn-size", "gat-seed"])
def test_layers_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_layer_propagates_with_its_own_graph_operator_as_its_checked_forward_does():
    A, H = karate_club()[0], features(3, 34, 5)
    A_hat = normalized_adjacency(A)
    checked = {
        "propagation": lambda layer: A_hat @ H,
        "gcn": lambda layer: layer(H, A_hat),
        "gat": lambda layer: layer(H, A)[0],
        "attention": lambda layer: layer(H)[0],
        "mlp": lambda layer: layer(H),
    }
    assert set(checked) == set(LAYERS)
    for kind, cls in LAYERS.items():
        layer = cls(5, 5, seed=1).double()
        fast = layer.propagate(H, layer.graph_operator(A, f64))
        assert torch.allclose(fast, checked[kind](layer), rtol=1e-12, atol=1e-12), kind
    assert not Propagation.learned and all(LAYERS[k].learned for k in LAYERS if k != "propagation")
    with pytest.raises(ValueError, match="out_features"):
        Propagation(5, 4)


def test_dense_layer_is_a_glorot_initialised_linear_layer_that_ignores_the_graph():
    layer = DenseLayer(40, 30, seed=2)
    bound = math.sqrt(6 / (40 + 30))
    assert isinstance(layer, torch.nn.Linear) and torch.equal(layer.bias, torch.zeros(30))
    weight = layer.weight.detach()
    assert float(weight.abs().max()) <= bound and float(weight.std()) > 0.5 * bound
    assert torch.equal(weight, DenseLayer(40, 30, seed=2).weight.detach())
    assert layer.graph_operator(torch.eye(3), f64) is None


# ----------------------------------------------------------------- depth and influence


def test_propagation_stack_is_a_hat_to_the_power_of_the_depth():
    A = karate_club()[0]
    X = features(0, 34, 4)
    states = LayerStack("propagation", 4, 5).hidden_states(X, A)
    assert torch.allclose(states[-1], torch.linalg.matrix_power(normalized_adjacency(A), 5) @ X)
    with pytest.raises(ValueError, match="residual"):
        LayerStack("propagation", 4, 2, residual=True)


def test_smoothing_by_depth_reports_the_energy_and_distance_of_the_hidden_states():
    A = karate_club()[0]
    X = features(1, 34, 6)
    report = smoothing_by_depth("gat", X, A, 5, seed=3)
    with torch.no_grad():
        states = LayerStack("gat", 6, 5, seed=3).double().hidden_states(X, A)
    for layer, H in enumerate(states):
        energy = float(dirichlet_energy(H, A)) / float((H * H).sum())
        assert report["energy"][layer] == pytest.approx(energy, rel=1e-10, abs=1e-14)
        assert report["distance"][layer] == pytest.approx(
            float(mean_pairwise_distance(H, normalize_rows=True)), rel=1e-12)
        assert report["norm"][layer] == pytest.approx(float(H.norm()), rel=1e-12)


def test_deep_gcn_and_attention_collapse_while_the_energy_of_propagation_follows_lambda_2():
    A = karate_club()[0]
    X = features(2, 34, 8)
    lam = torch.linalg.eigvalsh(normalized_adjacency(A))
    lam_2 = float(lam[:-1].abs().max())
    prop = smoothing_by_depth("propagation", X, A, 40)
    # the energy of A_hat^L X falls at least like lambda_2^(2L) relative to its start
    assert prop["energy"][-1] <= prop["energy"][0] * lam_2 ** (2 * 39) * 50
    for kind in ("gcn", "attention"):
        assert smoothing_by_depth(kind, X, A, 40)["distance"][-1] < 1e-2


def test_influence_of_a_linear_layer_is_the_normalised_adjacency_row():
    A = karate_club()[0]
    A_hat = normalized_adjacency(A)
    W = features(3, 5, 4)
    influence = influence_matrix(lambda H: A_hat @ H @ W.T, features(4, 34, 4))
    assert torch.allclose(influence, A_hat / A_hat.sum(1, keepdim=True), rtol=1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_influence_of_a_gcn_stack_is_exactly_zero_beyond_depth_hops(depth):
    A = karate_club()[0]
    hops = torch.from_numpy(hop_distances(A))
    stack = LayerStack("gcn", 4, depth, seed=depth).double()
    influence = influence_matrix(lambda H: stack(H, A), features(5, 34, 4))
    assert bool((influence[hops > depth] == 0).all())
    rows = influence.sum(1)  # 1, or 0 for an output whose ReLUs are all off
    assert bool(((rows - 1).abs() < 1e-12).logical_or(rows == 0).all()) and bool((rows > 0).any())


def test_influence_by_hop_sums_rings_and_averages_pairs_like_a_loop():
    A = adjacency_matrix(nx.path_graph(5))
    hops = hop_distances(A)
    influence = torch.rand(5, 5, generator=torch.Generator().manual_seed(0), dtype=f64)
    influence = influence / influence.sum(1, keepdim=True)
    shares = influence_by_hop(influence, hops, 4)
    per_node = influence_by_hop(influence, hops, 4, per_node=True)
    for k in range(5):
        pairs = [(i, j) for i in range(5) for j in range(5) if hops[i, j] == k]
        assert shares[k] == pytest.approx(sum(float(influence[i, j]) for i, j in pairs) / 5)
        assert per_node[k] == pytest.approx(np.mean([float(influence[i, j]) for i, j in pairs]))
    assert shares.sum() == pytest.approx(1.0)
    assert np.isnan(influence_by_hop(influence, hops, 5, per_node=True)[5])
    influence[1] = 0.0  # an output that depends on nothing is left out of both averages
    kept = [0, 2, 3, 4]
    assert influence_by_hop(influence, hops, 4)[0] == pytest.approx(
        np.mean([float(influence[i, i]) for i in kept]))
    assert influence_by_hop(influence, hops, 4, per_node=True)[1] == pytest.approx(
        np.mean([float(influence[i, j]) for i in kept for j in range(5) if hops[i, j] == 1]))


# ------------------------------------------------------------------- attention summary


def test_attention_summary_of_uniform_and_of_self_attention():
    graph = nx.star_graph(3)  # degrees with self-loops: 4, 2, 2, 2
    A = adjacency_matrix(graph)
    y = torch.tensor([0, 0, 1, 1])
    support = (A != 0) | torch.eye(4, dtype=torch.bool)
    uniform = support.double() / support.sum(1, keepdim=True)
    s = attention_summary(uniform, A, y)
    assert s["tv_to_uniform"] == 0 and s["off_graph"] == 0
    assert s["r2_inverse_degree"] == pytest.approx(1.0)
    assert s["same_class"] == pytest.approx(s["same_class_uniform"])
    assert s["same_class_uniform"] == pytest.approx((2 / 4 + 2 / 2 + 1 / 2 + 1 / 2) / 4)
    own = attention_summary(torch.eye(4, dtype=f64), A, y)
    assert own["tv_to_uniform"] == pytest.approx(np.mean([1 - 1 / 4] + [1 - 1 / 2] * 3))
    assert own["same_class"] == 1.0
    with pytest.raises(ValueError, match="attention and A must have the same shape"):
        attention_summary(torch.eye(3), A, y)
