"""dlnotes.attention against torch's built-ins in float64, closed forms and explicit loops."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import case_id
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnotes.attention import (
    AdditiveAttention,
    DotProductRetriever,
    attention_saturation,
    causal_mask,
    padding_mask,
    retrieval_batch,
    retrieval_loss,
    scaled_dot_product_attention,
    score_gradient_norms,
    softmax_jacobian,
    softmax_with_temperature,
    train_retrieval,
)
from dlnotes.training import fit

f64 = torch.float64


def _qkv(gen, batch, L, S, d_k, d_v):
    return (torch.randn(*batch, L, d_k, generator=gen, dtype=f64),
            torch.randn(*batch, S, d_k, generator=gen, dtype=f64),
            torch.randn(*batch, S, d_v, generator=gen, dtype=f64))


def _random_mask(gen, L, S):
    """A boolean (L, S) mask with at least one True per row."""
    mask = torch.rand(L, S, generator=gen) < 0.5
    mask[torch.arange(L), torch.randint(S, (L,), generator=gen)] = True
    return mask


@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 7), st.integers(1, 9),
       st.integers(1, 5), st.sampled_from([None, 1.0, 0.05, 3.0]))
@settings(max_examples=60, deadline=None)
def test_output_matches_torch_sdpa_in_float64_with_and_without_mask(seed, L, S, d_k, d_v,
                                                                     scale):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = _qkv(gen, (2,), L, S, d_k, d_v)
    mask = _random_mask(gen, L, S)
    for m in (None, mask):
        out, _ = scaled_dot_product_attention(q, k, v, mask=m, scale=scale)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale)
        assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)


@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 7), st.integers(1, 9))
@settings(max_examples=60, deadline=None)
def test_weights_are_distributions_and_masked_weights_are_exactly_zero(seed, L, S, d_k):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = _qkv(gen, (3,), L, S, d_k, 2)
    mask = _random_mask(gen, L, S)
    _, w = scaled_dot_product_attention(10.0 * q, k, v, mask=mask)
    assert (w >= 0).all()
    assert torch.allclose(w.sum(-1), torch.ones(3, L, dtype=f64), atol=1e-12)
    assert (w[:, ~mask] == 0).all()


def test_default_scale_is_one_over_sqrt_dk_and_weights_are_the_softmax_of_scores():
    gen = torch.Generator().manual_seed(0)
    q, k, v = _qkv(gen, (), 4, 5, 16, 3)
    _, w = scaled_dot_product_attention(q, k, v)
    expected = torch.softmax(q @ k.T / 4.0, dim=-1)
    assert torch.allclose(w, expected, rtol=1e-13)
    _, w_unscaled = scaled_dot_product_attention(q, k, v, scale=1.0)
    assert torch.allclose(w_unscaled, torch.softmax(q @ k.T, dim=-1), rtol=1e-13)


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_causal_mask_matches_torch_is_causal(n):
    gen = torch.Generator().manual_seed(n)
    q, k, v = _qkv(gen, (2, 3), n, n, 4, 6)
    out, w = scaled_dot_product_attention(q, k, v, mask=causal_mask(n))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)
    assert (w.triu(diagonal=1) == 0).all()


def test_causal_output_at_t_does_not_depend_on_later_inputs():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, generator=gen, dtype=f64)
    changed = x.clone()
    changed[4:] = torch.randn(3, 5, generator=gen, dtype=f64)
    out, _ = scaled_dot_product_attention(x, x, x, mask=causal_mask(7))
    out2, _ = scaled_dot_product_attention(changed, changed, changed, mask=causal_mask(7))
    assert torch.equal(out[:4], out2[:4])
    assert not torch.allclose(out[4:], out2[4:])


def test_padding_mask_gives_the_same_outputs_as_the_unpadded_sequence():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 6, 4, generator=gen, dtype=f64)
    mask = padding_mask([6, 3], 6)
    assert mask.shape == (2, 1, 6)
    out, w = scaled_dot_product_attention(x, x, x, mask=mask)
    short, _ = scaled_dot_product_attention(x[1, :3], x[1, :3], x[1, :3])
    assert torch.allclose(out[1, :3], short, rtol=1e-13)
    assert (w[1, :, 3:] == 0).all()
    combined = mask & causal_mask(6)
    ref = F.scaled_dot_product_attention(x, x, x, attn_mask=combined)
    assert torch.allclose(scaled_dot_product_attention(x, x, x, mask=combined)[0], ref,
                          rtol=1e-12)


def test_fully_masked_row_raises_value_error():
    q, k, v = _qkv(torch.Generator().manual_seed(0), (), 3, 4, 2, 2)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    with pytest.raises(ValueError, match="fully masked row"):
        scaled_dot_product_attention(q, k, v, mask=mask)


def test_attention_is_finite_and_exact_for_huge_scores():
    q = torch.tensor([[1e150, 0.0]], dtype=f64)
    k = torch.tensor([[1e150, 0.0], [0.0, 1e150], [-1e150, 0.0]], dtype=f64)
    v = torch.eye(3, dtype=f64)
    out, w = scaled_dot_product_attention(q, k, v)
    assert torch.equal(w, torch.tensor([[1.0, 0.0, 0.0]], dtype=f64))
    assert torch.equal(out, w)
    q32 = torch.full((2, 8), 300.0, requires_grad=True)  # scores ~ 7e5, exp would overflow
    _, w32 = scaled_dot_product_attention(q32, q32.detach() * torch.tensor([[1.0], [-1.0]]),
                                          torch.randn(2, 3))
    w32.sum().backward()
    assert torch.isfinite(w32).all() and torch.isfinite(q32.grad).all()


def test_attention_gradients_match_torch_in_float64():
    gen = torch.Generator().manual_seed(3)
    tensors = _qkv(gen, (2,), 4, 5, 3, 2)
    mine = [t.clone().requires_grad_(True) for t in tensors]
    ref = [t.clone().requires_grad_(True) for t in tensors]
    mask = _random_mask(gen, 4, 5)
    scaled_dot_product_attention(*mine, mask=mask)[0].square().sum().backward()
    F.scaled_dot_product_attention(*ref, attn_mask=mask).square().sum().backward()
    for a, b in zip(mine, ref, strict=True):
        assert torch.allclose(a.grad, b.grad, rtol=1e-10, atol=1e-12)


@given(st.lists(st.floats(-30, 30), min_size=2, max_size=8),
       st.floats(0.05, 20.0), st.floats(1.05, 4.0))
@settings(max_examples=80, deadline=None)
def test_tempered_softmax_is_a_distribution_whose_entropy_grows_with_tau(z, tau, factor):
    logits = torch.tensor(z, dtype=f64)
    p = softmax_with_temperature(logits, tau)
    assert torch.allclose(p.sum(), torch.tensor(1.0, dtype=f64))
    assert torch.allclose(p, torch.softmax(logits / tau, dim=-1), rtol=1e-10, atol=1e-300)

    def entropy(t):
        pt = softmax_with_temperature(logits, t)
        return float(-(pt * pt.clamp_min(1e-300).log()).sum())

    assert entropy(tau * factor) >= entropy(tau) - 1e-12


def test_tempered_softmax_limits_are_argmax_and_uniform():
    z = torch.tensor([2.0, 5.0, 5.0, -1.0], dtype=f64)
    cold = softmax_with_temperature(z, 1e-300)
    assert torch.equal(cold, torch.tensor([0.0, 0.5, 0.5, 0.0], dtype=f64))
    hot = softmax_with_temperature(z, 1e12)
    assert torch.allclose(hot, torch.full((4,), 0.25, dtype=f64), atol=1e-10)
    rows = softmax_with_temperature(torch.tensor([[1.0, 2.0], [3.0, 0.0]]), 1.0, dim=0)
    assert torch.allclose(rows.sum(0), torch.ones(2))


@pytest.mark.parametrize("n", [2, 3, 6])
def test_softmax_jacobian_matches_autograd(n):
    z = torch.randn(n, dtype=f64)
    auto = torch.autograd.functional.jacobian(lambda x: torch.softmax(x, -1), z)
    assert torch.allclose(softmax_jacobian(torch.softmax(z, -1)), auto, rtol=1e-12,
                          atol=1e-15)


def test_softmax_jacobian_vanishes_at_one_hot_and_has_closed_form_norms():
    assert torch.equal(softmax_jacobian(torch.tensor([0.0, 1.0, 0.0], dtype=f64)),
                       torch.zeros(3, 3, dtype=f64))
    for a in (0.5, 0.9, 0.999):  # two keys: J = a(1 - a) [[1, -1], [-1, 1]]
        two = softmax_jacobian(torch.tensor([a, 1 - a], dtype=f64))
        assert math.isclose(float(torch.linalg.matrix_norm(two)), 2 * a * (1 - a), rel_tol=1e-12)
    for n in (3, 16):
        uniform = softmax_jacobian(torch.full((n,), 1 / n, dtype=f64))
        assert math.isclose(float(torch.linalg.matrix_norm(uniform)), math.sqrt(n - 1) / n,
                            rel_tol=1e-12)


def _additive_by_loops(layer, q, k, v):
    Wq, Wk, w = layer.W_q.weight, layer.W_k.weight, layer.w.weight[0]
    L, S = q.shape[0], k.shape[0]
    e = torch.empty(L, S, dtype=q.dtype)
    for t in range(L):
        for s in range(S):
            e[t, s] = w @ torch.tanh(Wq @ q[t] + Wk @ k[s])
    a = torch.exp(e - e.max(1, keepdim=True).values)
    a = a / a.sum(1, keepdim=True)
    return a @ v, a


def test_additive_attention_matches_explicit_loops_with_different_query_and_key_sizes():
    torch.manual_seed(4)
    layer = AdditiveAttention(d_q=5, d_k=3, d_hidden=7).double()
    q = torch.randn(4, 5, dtype=f64)
    k = torch.randn(6, 3, dtype=f64)
    v = torch.randn(6, 2, dtype=f64)
    out, w = layer(q, k, v)
    ref_out, ref_w = _additive_by_loops(layer, q, k, v)
    assert torch.allclose(w, ref_w, rtol=1e-12) and torch.allclose(out, ref_out, rtol=1e-12)


def test_additive_attention_masks_batches_and_bounds_scores_by_the_l1_norm_of_w():
    torch.manual_seed(5)
    layer = AdditiveAttention(4, 9, 8).double()
    q = 100 * torch.randn(2, 3, 4, dtype=f64)
    k = 100 * torch.randn(2, 5, 9, dtype=f64)
    v = torch.randn(2, 5, 2, dtype=f64)
    mask = padding_mask([5, 2], 5)
    _, w = layer(q, k, v, mask=mask)
    assert (w[1, :, 2:] == 0).all()
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, dtype=f64))
    assert layer.scores(q, k).abs().max() <= layer.w.weight.abs().sum()


def test_attention_saturation_is_stable_when_scaled_and_saturates_when_not():
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731 - same draws for both
    scaled = attention_saturation(512, n_samples=300, generator=gen())
    unscaled = attention_saturation(512, n_samples=300, scale=1.0, generator=gen())
    assert scaled.mean_max_weight < 0.35 and scaled.median_jacobian_norm > 0.25
    assert unscaled.mean_max_weight > 0.9 and unscaled.median_jacobian_norm < 0.01


def test_retrieval_batch_query_is_a_noisy_copy_of_the_target_key():
    batch = retrieval_batch(5, 4, 3, 2, 0.0, torch.Generator().manual_seed(0))
    assert batch.query.shape == (5, 1, 3) and batch.values.shape == (5, 4, 2)
    assert batch.query.dtype == f64
    assert torch.equal(batch.query[:, 0], batch.keys[torch.arange(5), batch.target])


def test_projected_queries_have_unit_variance_components_at_initialisation():
    model = DotProductRetriever(16, 256, scaled=True, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4000, 16, generator=torch.Generator().manual_seed(1), dtype=f64)
    assert abs(float((x @ model.W_q.detach().T).var()) - 1.0) < 0.1


@pytest.mark.parametrize("scaled", [True, False])
def test_retriever_equals_scaled_dot_product_attention_of_the_projections(scaled):
    model = DotProductRetriever(6, 12, scaled=scaled, generator=torch.Generator().manual_seed(0))
    batch = retrieval_batch(5, 7, 6, 3, 0.3, torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, w = model(*batch[:3])
        q, k = batch.query @ model.W_q.T, batch.keys @ model.W_k.T
    ref_out, ref_w = scaled_dot_product_attention(q, k, batch.values,
                                                  scale=None if scaled else 1.0)
    assert float((w - ref_w).abs().max()) < 1e-12 and float((out - ref_out).abs().max()) < 1e-12


def test_score_gradient_norms_equal_autograd_per_example():
    model = DotProductRetriever(8, 32, scaled=False, generator=torch.Generator().manual_seed(2))
    batch = retrieval_batch(6, 5, 8, 4, 0.5, torch.Generator().manual_seed(3))
    with torch.no_grad():
        out, w = model(*batch[:3])
    closed = score_gradient_norms(out, w, batch.values, batch.target)
    z = torch.log(w.detach()).requires_grad_(True)  # softmax(log p) = p
    p = torch.softmax(z, -1)
    target = batch.values[torch.arange(6), batch.target][:, None, :]
    per_example = ((p @ batch.values - target) ** 2).sum(dim=(-2, -1))
    for b in range(6):
        (grad,) = torch.autograd.grad(per_example[b], z, retain_graph=True)
        assert abs(float(grad[b].norm()) - float(closed[b])) < 1e-12


def _separate_fit(d_k, scaled, seed, lr, steps, optimizer, batch_size=64):
    gen = torch.Generator().manual_seed(seed)
    model = DotProductRetriever(16, d_k, scaled=scaled, generator=gen)
    history = fit(model, retrieval_loss,
                  lambda g: retrieval_batch(batch_size, 16, 16, 8, 0.5, g), steps=steps,
                  optimizer=optimizer, lr=lr, generator=gen, record_every=1)
    return model, history


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_train_retrieval_equals_separate_fit_runs(optimizer):
    # replicas 0 and 2 share a seed (one batch stream, drawn once), replica 1 is unscaled
    seeds, flags, lrs = [3, 3, 5], [True, False, True], [0.1, 0.05, 0.2]
    if optimizer == "adam":
        lrs = [3e-3, 1e-3, 3e-3]
    run = train_retrieval(32, scaled=flags, seeds=seeds, lr=lrs, steps=12, record_every=1,
                          optimizer=optimizer)
    for r, (seed, scaled, lr) in enumerate(zip(seeds, flags, lrs, strict=True)):
        model, history = _separate_fit(32, scaled, seed, lr, 12, optimizer)
        for name in ("W_q", "W_k"):
            gap = (getattr(model, name) - getattr(run.models[r], name)).detach().abs().max()
            assert float(gap) < 1e-10, name
        assert np.allclose(run.history["train_loss"][1:, r], history.loss, rtol=1e-10)


def test_train_retrieval_records_the_first_step_gradients_of_autograd():
    run = train_retrieval(128, scaled=[True, False], seeds=[7, 7], steps=1, record_every=1)
    for r, scaled in enumerate((True, False)):
        gen = torch.Generator().manual_seed(7)
        model = DotProductRetriever(16, 128, scaled=scaled, generator=gen)
        loss = retrieval_loss(model, *retrieval_batch(64, 16, 16, 8, 0.5, gen))
        grad_q, grad_k = torch.autograd.grad(loss, [model.W_q, model.W_k])
        assert math.isclose(run.history["W_q_grad_norm"][0, r], float(grad_q.norm()),
                            rel_tol=1e-10)
        assert math.isclose(run.history["W_k_grad_norm"][0, r], float(grad_k.norm()),
                            rel_tol=1e-10)
        assert math.isclose(run.history["train_loss"][1, r], float(loss.detach()), rel_tol=1e-10)


def test_scaled_retriever_learns_and_unscaled_starts_with_silenced_examples():
    run = train_retrieval(256, scaled=[True, False], seeds=[0, 0], steps=60, record_every=20)
    h = run.history
    assert list(h["step"]) == [0, 20, 40, 60]
    assert h["eval_accuracy"][-1, 0] > 0.9 and h["eval_loss"][-1, 0] < 0.5 * h["eval_loss"][0, 0]
    # same weights up to the factor, same batch: most unscaled examples pass back ~nothing
    assert h["active_share"][0, 0] == 1.0 and h["active_share"][0, 1] < 0.8
    assert h["median_score_grad"][0, 1] < 0.1 * h["median_score_grad"][0, 0]


def test_parameter_gradients_carry_the_score_factor():
    # Same weights and batch: dL/dW_q = scale * (dL/dz) k' x^T, so at d_k = 256 the unscaled
    # model's parameter gradient is not smaller than the scaled one's, although most of its
    # examples' gradients at the scores are.
    run = train_retrieval(256, scaled=[True] * 3 + [False] * 3, seeds=[0, 1, 2] * 2, steps=1)
    grads, active = run.history["W_q_grad_norm"][0], run.history["active_share"][0]
    assert (grads[3:] > grads[:3]).all() and (active[3:] < active[:3]).all()


def test_additive_attention_projections_have_unit_variance_and_are_reproducible():
    layer = AdditiveAttention(16, 8, 512, generator=torch.Generator().manual_seed(0))
    again = AdditiveAttention(16, 8, 512, generator=torch.Generator().manual_seed(0))
    assert torch.equal(layer.W_q.weight, again.W_q.weight)
    x = torch.randn(4000, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert abs(float(layer.W_q(x).var()) - 1.0) < 0.1
        assert abs(float(layer.w.weight.square().sum()) - 1.0) < 0.2


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: scaled_dot_product_attention(torch.zeros(2, 3), torch.zeros(4, 5),
                                              torch.zeros(4, 1)), "same size d_k"),
        (lambda: scaled_dot_product_attention(torch.zeros(2, 3), torch.zeros(4, 3),
                                              torch.zeros(5, 1)), "positions"),
        (lambda: scaled_dot_product_attention(torch.zeros(2, 2, 3), torch.zeros(3, 4, 3),
                                              torch.zeros(3, 4, 1)), "broadcast"),
        (lambda: scaled_dot_product_attention(torch.zeros(3), torch.zeros(4, 3),
                                              torch.zeros(4, 1)), "q must have at least 2"),
        (lambda: scaled_dot_product_attention(torch.zeros(2, 3), torch.zeros(4, 3),
                                              torch.zeros(4, 1), scale=0.0), "scale"),
        (lambda: scaled_dot_product_attention(torch.zeros(2, 3), torch.zeros(4, 3),
                                              torch.zeros(4, 1), mask=torch.ones(2, 4)), "mask"),
        (lambda: scaled_dot_product_attention(torch.zeros(2, 3), torch.zeros(4, 3),
                                              torch.zeros(4, 1),
                                              mask=torch.ones(3, 4, dtype=torch.bool)), "mask"),
        (lambda: scaled_dot_product_attention(torch.tensor([[float("nan")]]), torch.zeros(1, 1),
                                              torch.zeros(1, 1)), "q"),
        (lambda: scaled_dot_product_attention(torch.zeros(2, 3, dtype=torch.long),
                                              torch.zeros(4, 3), torch.zeros(4, 1)), "floating"),
        (lambda: scaled_dot_product_attention(torch.full((1, 2), 1e300, dtype=f64),
                                              torch.full((1, 2), 1e300, dtype=f64),
                                              torch.zeros(1, 1, dtype=f64)), "overflow"),
        (lambda: softmax_with_temperature(torch.zeros(3), 0.0), "tau"),
        (lambda: softmax_with_temperature(torch.zeros(3), -1.0), "tau"),
        (lambda: softmax_with_temperature(torch.zeros(3), float("inf")), "tau"),
        (lambda: softmax_jacobian(torch.tensor([0.5, 0.6])), "sum to 1"),
        (lambda: causal_mask(0), "n"),
        (lambda: padding_mask([3, 0], 3), "lengths"),
        (lambda: padding_mask([4], 3), "lengths"),
        (lambda: AdditiveAttention(3, 0, 4), "d_k"),
        (lambda: AdditiveAttention(3, 2, 4)(torch.zeros(1, 2), torch.zeros(1, 2),
                                             torch.zeros(1, 1)), "d_q"),
        (lambda: AdditiveAttention(2, 2, 4)(torch.zeros(1, 2, dtype=f64), torch.zeros(1, 2),
                                             torch.zeros(1, 1)), "dtype"),
        (lambda: attention_saturation(0), "d_k"),
        (lambda: attention_saturation(4, scale=-1.0), "scale"),
        (lambda: retrieval_batch(2, 1, 3, 2, 0.1, torch.Generator()), "n_pairs"),
        (lambda: retrieval_batch(2, 3, 3, 2, -0.1, torch.Generator()), "noise"),
        (lambda: train_retrieval(8, scaled=True, optimizer="lbfgs"), "optimizer"),
        (lambda: train_retrieval(8, scaled=True, seeds=[]), "seeds"),
        (lambda: train_retrieval(8, scaled=[True], seeds=[1, 2]), "scaled"),
        (lambda: train_retrieval(8, scaled=True, seeds=[1, 2], lr=[0.1]), "lr"),
    ],
    ids=case_id,
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
