"""dlnotes.norms against torch.nn.BatchNorm1d / torch.nn.LayerNorm in float64, and its laws."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import case_id
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from dlnotes.norms import (
    BatchNorm,
    LayerNorm,
    ScaleInvarianceMonitor,
    TokenTagger,
    batch_statistics,
    largest_rate_that_trains,
    mode_comparison,
    norm_mlp,
    normalisation_jitter,
    normalisation_mismatch,
    normalize,
    pad_sequences,
    prefix_decoding_gap,
    running_majority,
    stacked_outputs,
    tagging_loss,
    token_accuracy,
    train_eval_disagreement,
    train_mode_logits,
    variable_length_sequences,
    with_population_statistics,
)
from dlnotes.training import fit, fit_replicas
from dlnotes.transformer import Encoder

TOL = {"rtol": 1e-10, "atol": 1e-12}


def _same_random_affine(mine: torch.nn.Module, ref: torch.nn.Module) -> None:
    with torch.no_grad():
        weight = torch.rand_like(ref.weight) + 0.5
        bias = torch.randn_like(ref.bias)
        for m in (mine, ref):
            m.weight.copy_(weight)
            m.bias.copy_(bias)


def _forward_backward(module: torch.nn.Module, x: torch.Tensor, upstream: torch.Tensor):
    x = x.clone().requires_grad_(True)
    out = module(x)
    (out * upstream).sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("shape", [(16, 5), (6, 5, 7)])
@pytest.mark.parametrize("momentum", [0.1, 0.35])
def test_batch_norm_matches_torch_in_training_forward_gradients_and_running_statistics(
    shape, momentum
):
    mine = BatchNorm(5, eps=1e-5, momentum=momentum).double()
    ref = torch.nn.BatchNorm1d(5, eps=1e-5, momentum=momentum).double()
    _same_random_affine(mine, ref)
    for _step in range(5):
        x = 3.0 * torch.randn(shape, dtype=torch.float64) + 2.0
        upstream = torch.randn(shape, dtype=torch.float64)
        mine.zero_grad()
        ref.zero_grad()
        out_m, gx_m = _forward_backward(mine, x, upstream)
        out_r, gx_r = _forward_backward(ref, x, upstream)
        assert torch.allclose(out_m, out_r, **TOL)
        assert torch.allclose(gx_m, gx_r, **TOL)
        assert torch.allclose(mine.weight.grad, ref.weight.grad, **TOL)
        assert torch.allclose(mine.bias.grad, ref.bias.grad, **TOL)
        assert torch.allclose(mine.running_mean, ref.running_mean, **TOL)
        assert torch.allclose(mine.running_var, ref.running_var, **TOL)
    assert int(mine.num_batches_tracked) == int(ref.num_batches_tracked) == 5


def test_batch_norm_running_variance_uses_the_unbiased_batch_variance():
    bn = BatchNorm(1, momentum=1.0).double()
    x = torch.tensor([[1.0], [2.0], [6.0]], dtype=torch.float64)
    bn(x)
    # momentum 1 keeps only the last batch: its unbiased variance, 7, not the biased 14/3.
    assert float(bn.running_var[0]) == pytest.approx(7.0)
    assert float(bn.running_mean[0]) == pytest.approx(3.0)


@pytest.mark.parametrize("shape", [(9, 4), (3, 4, 5)])
def test_batch_norm_in_eval_mode_matches_torch_and_uses_running_statistics(shape):
    mine = BatchNorm(4).double()
    ref = torch.nn.BatchNorm1d(4).double()
    _same_random_affine(mine, ref)
    for _ in range(3):
        x = torch.randn(shape, dtype=torch.float64) * 2 - 1
        mine(x)
        ref(x)
    mine.eval()
    ref.eval()
    x = torch.randn(shape, dtype=torch.float64)
    upstream = torch.randn(shape, dtype=torch.float64)
    out_m, gx_m = _forward_backward(mine, x, upstream)
    out_r, gx_r = _forward_backward(ref, x, upstream)
    assert torch.allclose(out_m, out_r, **TOL)
    assert torch.allclose(gx_m, gx_r, **TOL)
    assert torch.allclose(mine.weight.grad, ref.weight.grad, **TOL)
    # eval mode does not touch the running statistics
    before = mine.running_mean.clone()
    mine(x)
    assert torch.equal(before, mine.running_mean)


def test_batch_norm_without_affine_parameters_matches_torch():
    mine = BatchNorm(3, affine=False).double()
    ref = torch.nn.BatchNorm1d(3, affine=False).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    assert list(mine.parameters()) == []
    assert torch.allclose(mine(x), ref(x), **TOL)


@pytest.mark.parametrize("normalized_shape", [6, (6,), (3, 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch_forward_and_gradients(normalized_shape, affine):
    mine = LayerNorm(normalized_shape, elementwise_affine=affine).double()
    ref = torch.nn.LayerNorm(normalized_shape, elementwise_affine=affine).double()
    if affine:
        _same_random_affine(mine, ref)
    x = 5.0 * torch.randn(4, 2, 3, 6, dtype=torch.float64) - 3.0
    upstream = torch.randn_like(x)
    out_m, gx_m = _forward_backward(mine, x, upstream)
    out_r, gx_r = _forward_backward(ref, x, upstream)
    assert torch.allclose(out_m, out_r, **TOL)
    assert torch.allclose(gx_m, gx_r, **TOL)
    if affine:
        assert torch.allclose(mine.weight.grad, ref.weight.grad, **TOL)
        assert torch.allclose(mine.bias.grad, ref.bias.grad, **TOL)


def test_layer_norm_computes_the_same_function_in_train_and_eval_mode():
    ln = LayerNorm(5).double()
    x = torch.randn(7, 5, dtype=torch.float64)
    train_out = ln.train()(x)
    assert torch.equal(train_out, ln.eval()(x))


def test_layer_norm_equals_batch_norm_of_the_transpose_in_training_mode_only():
    x = torch.randn(12, 7, dtype=torch.float64) * 4 + 1
    ln = LayerNorm(7, elementwise_affine=False)
    bn = BatchNorm(12, affine=False).double()
    assert torch.allclose(ln(x), bn(x.T).T, **TOL)
    bn.eval()  # running statistics are not the per-sample ones
    assert not torch.allclose(ln(x), bn(x.T).T, atol=1e-3)


def test_normalisation_is_accurate_under_a_large_common_offset():
    x = torch.randn(8, 6, dtype=torch.float64)
    shifted = x + 1e8
    ln = LayerNorm(6).double()
    ref = torch.nn.LayerNorm(6).double()
    assert torch.allclose(ln(shifted), ln(x), atol=1e-7)
    assert torch.allclose(ln(shifted), ref(shifted), atol=1e-7)
    bn = BatchNorm(6).double()
    assert torch.allclose(bn(shifted), bn(x), atol=1e-7)


def test_constant_input_normalises_to_zero_without_nan():
    x = torch.full((4, 3), 7.0, dtype=torch.float64)
    assert torch.equal(LayerNorm(3).double()(x), torch.zeros_like(x))
    assert torch.equal(BatchNorm(3).double()(x), torch.zeros_like(x))


@given(
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 8)),
           elements=st.floats(-1e3, 1e3)),
    st.floats(0.0, 1e-2),
)
@example(np.array([[5e-324, 0.0]]), 0.0)  # subnormal: the mean 2.5e-324 is not a double
@example(np.array([[1e-310, -3e-311, 0.0]]), 0.0)
@settings(max_examples=80, deadline=None)
def test_normalized_rows_have_mean_zero_and_variance_var_over_var_plus_eps(data, eps):
    x = torch.as_tensor(data)
    x_hat, _, var = normalize(x, -1, eps)
    assert torch.allclose(x_hat.mean(dim=-1), torch.zeros(x.shape[0], dtype=torch.float64),
                          atol=1e-9)
    if eps > 0:
        expected = (var / (var + eps)).squeeze(-1)
    else:  # exactly 1 at every scale (even where var itself underflows), 0 for equal values
        expected = (x.amax(dim=-1) > x.amin(dim=-1)).double()
    assert torch.allclose(x_hat.var(dim=-1, unbiased=False), expected, atol=1e-8)


@given(
    arrays(np.float64, 6, elements=st.floats(-100, 100)),
    st.floats(1e-2, 1e2),
    st.floats(-1e3, 1e3),
)
@settings(max_examples=80, deadline=None)
def test_layer_norm_without_eps_is_invariant_to_positive_scaling_and_shifting(data, a, b):
    x = torch.as_tensor(data)
    if float(x.std()) < 1e-3:  # a constant vector has no direction to keep
        return
    assert torch.allclose(normalize(a * x + b, -1, 0.0)[0], normalize(x, -1, 0.0)[0],
                          atol=1e-8)


@given(arrays(np.float64, 5, elements=st.floats(-10, 10)), st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_input_gradient_is_orthogonal_to_ones_and_to_the_normalized_vector(data, seed):
    x = torch.as_tensor(data).clone().requires_grad_(True)
    if float(x.detach().std()) < 1e-2:
        return
    x_hat = normalize(x, -1, 0.0)[0]
    upstream = torch.randn(5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    (grad,) = torch.autograd.grad((x_hat * upstream).sum(), x)
    scale = float(grad.norm()) + 1.0
    assert abs(float(grad.sum())) < 1e-9 * scale
    assert abs(float(grad @ x_hat.detach())) < 1e-9 * scale


def test_training_batch_of_one_raises_value_error_as_torch_refuses_it():
    with pytest.raises(ValueError, match="more than one value per feature"):
        BatchNorm(3)(torch.randn(1, 3))
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(3)(torch.randn(1, 3))
    # a single sample is fine in eval mode, and (1, C, L) holds L values per feature
    bn = BatchNorm(3)
    bn(torch.randn(1, 3, 4))
    bn.eval()
    assert bn(torch.randn(1, 3)).shape == (1, 3)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: BatchNorm(0), "num_features"),
        (lambda: BatchNorm(3, eps=0.0), "eps"),
        (lambda: BatchNorm(3, momentum=1.5), "momentum"),
        (lambda: BatchNorm(3)(torch.randn(4, 5)), "num_features"),
        (lambda: BatchNorm(3)(torch.randn(4)), "dimension"),
        (lambda: BatchNorm(3)(torch.tensor([[0.0, float("nan"), 1.0]] * 2)), "finite"),
        (lambda: LayerNorm(0), "normalized_shape"),
        (lambda: LayerNorm(()), "normalized_shape"),
        (lambda: LayerNorm(4, eps=-1.0), "eps"),
        (lambda: LayerNorm(4)(torch.randn(3, 5)), "normalized_shape"),
        (lambda: LayerNorm((2, 4))(torch.randn(3, 4, 2)), "normalized_shape"),
        (lambda: LayerNorm(2)(torch.tensor([[float("inf"), 1.0]])), "finite"),
        (lambda: normalize(torch.ones(3), -1, eps=-1.0), "eps"),
        (lambda: norm_mlp([4, 3, 2], norm="group"), "norm"),
        (lambda: norm_mlp([4]), "sizes"),
        (lambda: train_eval_disagreement(norm_mlp([2, 3, 2]), torch.zeros(4, 2), 1),
         "batch_size"),
        (lambda: pad_sequences([torch.zeros(2, 3), torch.zeros(2, 4)]), "feature size"),
        (lambda: pad_sequences([]), "sequences"),
        (lambda: batch_statistics(torch.zeros(2, 3, 4), torch.ones(2, 3)), "mask"),
        (lambda: variable_length_sequences([3, 0], 2, torch.Generator()), "lengths"),
        (lambda: normalisation_jitter(torch.zeros(3, 2), [[torch.zeros(2, 2)]]), "batches"),
        (lambda: BatchNorm(3, ghost_batch=1), "ghost_batch"),
        (lambda: BatchNorm(3, ghost_batch=4)(torch.randn(6, 3)), "multiple of ghost_batch"),
        (lambda: ScaleInvarianceMonitor([]), "names"),
        (lambda: running_majority(4, min_len=3, max_len=2, generator=torch.Generator()),
         "max_len"),
        (lambda: running_majority(4, min_len=1, max_len=5, generator=torch.Generator(),
                                  length=4), "length"),
        (lambda: with_population_statistics(norm_mlp([2, 3, 2], "batch"), torch.zeros(1, 2)),
         "len"),
        (lambda: normalisation_mismatch([_tagger("layer", 0)], *running_majority(
            6, min_len=1, max_len=6, generator=torch.Generator()), batch_size=4,
            extra_padding=0, split=3), "multiple of batch_size"),
    ],
    ids=case_id,
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_norm_mlp_places_the_normalisation_before_each_hidden_activation():
    net = norm_mlp([8, 6, 5, 3], norm="batch")
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "BatchNorm", "Sigmoid", "Linear", "BatchNorm", "Sigmoid",
                     "Linear"]
    assert [type(m).__name__ for m in norm_mlp([8, 6, 3], norm="layer")] == [
        "Linear", "LayerNorm", "Sigmoid", "Linear"]
    assert net(torch.randn(4, 8)).shape == (4, 3)


def test_train_and_eval_predictions_agree_for_layer_norm_but_not_for_tiny_batch_batch_norm():
    X = torch.randn(64, 6)
    ln_net = norm_mlp([6, 16, 4], norm="layer")
    assert train_eval_disagreement(ln_net, X, 2) == 0.0
    bn_net = norm_mlp([6, 16, 4], norm="batch")
    running = bn_net[1].running_mean.clone()
    assert train_eval_disagreement(bn_net, X, 2) > 0.0
    assert torch.equal(running, bn_net[1].running_mean)  # the model itself is untouched


def test_pad_sequences_pads_with_zeros_and_marks_real_tokens():
    a, b = torch.ones(3, 2), 2 * torch.ones(1, 2)
    x, mask = pad_sequences([a, b])
    assert x.shape == (2, 3, 2)
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert torch.equal(x[1, 1:], torch.zeros(2, 2))


def test_masked_statistics_ignore_padding_and_unmasked_ones_count_it():
    seqs = [torch.randn(5, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)]
    x, mask = pad_sequences(seqs)
    real = torch.cat(seqs)
    mean, var = batch_statistics(x, mask)
    assert torch.allclose(mean, real.mean(0), **TOL)
    assert torch.allclose(var, real.var(0, unbiased=False), **TOL)
    mean_all, _ = batch_statistics(x)
    assert torch.allclose(mean_all, real.sum(0) / 10, **TOL)  # 3 padding zeros of 10 places
    ref = torch.nn.BatchNorm1d(3, affine=False).double()
    ref(real)
    assert torch.allclose(ref.running_mean, 0.1 * mean, **TOL)


def test_padding_makes_batch_statistics_jitter_and_masking_removes_it():
    gen = torch.Generator().manual_seed(0)
    probe = variable_length_sequences([10], 4, gen, offset_scale=0.0)[0]
    groups = [variable_length_sequences([int(n) for n in torch.randint(2, 200, (5,),
                                                                        generator=gen)],
                                        4, gen, offset_scale=0.0) for _ in range(60)]
    result = normalisation_jitter(probe, groups)
    assert set(result) == {"batch, padding counted", "batch, masked"}
    padded = result["batch, padding counted"]["output jitter"]
    masked = result["batch, masked"]["output jitter"]
    # iid tokens: padding is what makes the batch statistics jitter; masking removes most of it
    assert padded > 1.5 * masked > 0
    # the per-batch deviations carry the jitter: mean * n/(n-1) is its square
    dev = result["batch, padding counted"]["deviations"]
    assert dev.shape == (60,) and np.isclose(dev.mean() * 60 / 59, padded**2, rtol=1e-10)


def test_variable_length_sequences_have_the_requested_shapes_and_shared_offsets():
    gen = torch.Generator().manual_seed(1)
    seqs = variable_length_sequences([400, 3], 2, gen, offset_scale=10.0)
    assert [tuple(s.shape) for s in seqs] == [(400, 2), (3, 2)]
    # within a sequence the noise has unit variance around the shared offset
    assert float(seqs[0].var(0).mean()) == pytest.approx(1.0, abs=0.2)


@pytest.mark.parametrize("magnitude", [1e-200, 1e200])
def test_layer_norm_is_exact_at_extreme_magnitudes_where_torch_overflows(magnitude):
    x = torch.randn(3, 5, dtype=torch.float64)
    expected = normalize(x, -1, 0.0)[0]
    assert torch.allclose(normalize(magnitude * x, -1, 0.0)[0], expected, **TOL)
    ln = LayerNorm(5, eps=1e-5).double()
    out = ln(magnitude * x)
    assert torch.isfinite(out).all()
    if magnitude > 1:  # eps is negligible next to a variance of 1e400
        assert torch.allclose(out, expected, **TOL)
    else:  # a variance of 1e-400 is negligible next to eps: the output is (x - mean)/sqrt(eps)
        centred = magnitude * (x - x.mean(dim=-1, keepdim=True))
        assert torch.allclose(out.detach(), centred / 1e-5**0.5, rtol=1e-10, atol=0.0)


def test_gradient_at_a_constant_feature_matches_torch():
    x = torch.randn(6, 3, dtype=torch.float64)
    x[:, 1] = 2.5  # a unit that outputs the same value for the whole batch
    upstream = torch.randn(6, 3, dtype=torch.float64)
    _, g_mine = _forward_backward(BatchNorm(3).double(), x, upstream)
    _, g_ref = _forward_backward(torch.nn.BatchNorm1d(3).double(), x, upstream)
    assert torch.allclose(g_mine, g_ref, rtol=1e-8, atol=1e-8)
    _, g_zero_eps = _forward_backward(lambda t: normalize(t, 0, 0.0)[0], x, upstream)
    assert torch.isfinite(g_zero_eps).all()


@pytest.mark.parametrize(("dims", "eps"), [((0,), 1e-3), ((-1,), 0.0), ((0, 2), 1e-5)])
def test_closed_form_backward_passes_finite_difference_gradcheck(dims, eps):
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: normalize(t, dims, eps)[0], (x,))


def test_rescaled_path_gradient_is_the_ordinary_gradient_divided_by_the_scale():
    x = torch.randn(3, 6, dtype=torch.float64)
    upstream = torch.randn(3, 6, dtype=torch.float64)
    _, g_ordinary = _forward_backward(lambda t: normalize(t, -1, 0.0)[0], x, upstream)
    _, g_huge = _forward_backward(lambda t: normalize(t, -1, 0.0)[0], 1e200 * x, upstream)
    assert torch.allclose(g_huge * 1e200, g_ordinary, **TOL)


def test_second_derivatives_are_refused_rather_than_wrong():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad((normalize(x, 0)[0] ** 3).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def test_train_mode_logits_leave_the_running_statistics_untouched():
    net = norm_mlp([4, 6, 3], norm="batch", seed=0)
    X = torch.randn(10, 4)
    before = [b.clone() for b in net.buffers()]
    logits = train_mode_logits(net, X, 4)
    assert logits.shape == (8, 3)  # the partial last batch (2 rows) is dropped
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers(), strict=True))
    twin = copy.deepcopy(net).train()
    with torch.no_grad():
        expected = torch.cat([twin(X[:4]), twin(X[4:8])])
    assert torch.allclose(logits, expected)


def test_train_eval_disagreement_does_not_change_the_model():
    net = norm_mlp([4, 6, 3], norm="batch", seed=1)
    before = [b.clone() for b in net.buffers()]
    train_eval_disagreement(net, torch.randn(12, 4), 3)
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers(), strict=True))


def test_norm_mlp_seed_repeats_the_network():
    a, b = norm_mlp([4, 5, 2], norm="layer", seed=3), norm_mlp([4, 5, 2], norm="layer", seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_normalize_under_vmap_takes_the_plain_path_with_the_same_values_and_gradients():
    x = torch.randn(3, 7, 5, dtype=torch.float64)  # three replicas
    upstream = torch.randn(7, 5, dtype=torch.float64)

    def loss(xi):
        return (normalize(xi, 0)[0] * upstream).sum()

    grads = torch.func.vmap(torch.func.grad(loss))(x)
    values = torch.func.vmap(lambda xi: normalize(xi, 0)[0])(x)
    for r in range(3):
        xr = x[r].clone().requires_grad_(True)
        out = normalize(xr, 0)[0]  # the closed-form backward pass
        (g,) = torch.autograd.grad((out * upstream).sum(), xr)
        assert torch.allclose(values[r], out.detach(), **TOL)
        assert torch.allclose(grads[r], g, **TOL)


def test_ghost_batches_are_torch_batch_norm_on_each_group():
    x = torch.randn(12, 5, dtype=torch.float64) * 3 + 1
    ours = BatchNorm(5, ghost_batch=4).double()
    out = ours(x)
    ref = torch.nn.BatchNorm1d(5, affine=False).double()
    means, variances = [], []
    for chunk, got in zip(x.split(4), out.split(4), strict=True):
        assert torch.allclose(got, ref.train()(chunk), **TOL)
        means.append(chunk.mean(0))
        variances.append(chunk.var(0))  # unbiased, as the running estimate uses
    assert torch.allclose(ours.running_mean, 0.1 * torch.stack(means).mean(0), **TOL)
    assert torch.allclose(ours.running_var, 0.9 + 0.1 * torch.stack(variances).mean(0), **TOL)
    whole = BatchNorm(5).double()
    assert not torch.allclose(whole(x), out, atol=1e-3)  # groups of 4 differ from the batch


@pytest.mark.parametrize(("norm", "ghost"), [("batch", None), ("batch", 2), ("layer", None)])
def test_norm_mlp_replicas_train_as_separate_fits_running_statistics_included(norm, ghost):
    X = torch.randn(48, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (48,))

    def build(seed):
        return norm_mlp([6, 8, 3], norm, nn.ReLU, seed=seed, ghost_batch=ghost).double()

    def loss(model, X, y):
        return F.cross_entropy(model(X), y)

    stacked = [build(s) for s in (0, 1)]
    fit_replicas(stacked, loss, (X, y), steps=5, batch_size=8, lr=0.3,
                 generators=[torch.Generator().manual_seed(s) for s in (0, 1)])
    for model, seed in zip(stacked, (0, 1), strict=True):
        alone = build(seed)
        fit(alone, loss, (X, y), steps=5, batch_size=8, lr=0.3,
            generator=torch.Generator().manual_seed(seed))
        for (name, a), b in zip(model.state_dict().items(), alone.state_dict().values(),
                                strict=True):
            assert torch.allclose(a.double(), b.double(), rtol=1e-9, atol=1e-11), name


def _monitored_run(norm):
    X = torch.randn(64, 6, dtype=torch.float64)
    y = (X[:, 0] > 0).long()
    models = [norm_mlp([6, 10, 2], norm, nn.ReLU, seed=s).double() for s in (0, 1)]
    monitor = ScaleInvarianceMonitor(["0.weight"])
    fit_replicas(models, lambda m, X, y: F.cross_entropy(m(X), y), (X, y), steps=20,
                 batch_size=16, lr=0.5, after_backward=monitor,
                 generators=[torch.Generator().manual_seed(s) for s in (0, 1)])
    return models, monitor


def test_weights_feeding_batch_norm_get_orthogonal_gradients_and_grow_by_eta_squared_sum():
    models, monitor = _monitored_run("batch")
    assert float(monitor.max_cos["0.weight"].max()) < 1e-3
    end = torch.stack([m[0].weight.detach() ** 2 for m in models]).sum(-1)
    growth = end - monitor.start["0.weight"]
    assert torch.allclose(growth, 0.25 * monitor.grad_sq["0.weight"], rtol=1e-2)
    # without the normalisation the same weights are not scale-invariant
    _, plain = _monitored_run(None)
    assert float(plain.max_cos["0.weight"].max()) > 0.05


def test_population_statistics_equal_one_cumulative_torch_batch_norm_pass():
    model = norm_mlp([5, 7, 3], "batch", nn.ReLU, seed=0).double()
    X = torch.randn(40, 5, dtype=torch.float64)
    twin = with_population_statistics(model, X)
    ref = torch.nn.BatchNorm1d(7, momentum=None, affine=False).double()  # cumulative average
    with torch.no_grad():
        ref.train()(model[0](X))
    assert torch.allclose(twin[1].running_mean, ref.running_mean, **TOL)
    assert torch.allclose(twin[1].running_var, ref.running_var, **TOL)
    assert torch.equal(model[1].running_mean, torch.zeros(7))  # the model is untouched


def test_running_majority_labels_match_a_count_of_the_prefix():
    tokens, padding, labels = running_majority(30, min_len=1, max_len=9,
                                               generator=torch.Generator().manual_seed(3))
    for b in range(30):
        ones = twos = 0
        for t in range(9):
            if padding[b, t]:
                assert tokens[b, t] == 0 and labels[b, t] == -100
                continue
            ones, twos = ones + (tokens[b, t] == 1), twos + (tokens[b, t] == 2)
            assert labels[b, t] == (-100 if ones == twos else int(ones > twos))
    assert bool((~padding).sum(1).min() >= 1)


def _tagger(norm, seed):
    return TokenTagger(Encoder(3, 8, 2, 16, 1, max_len=12, norm=norm, padding_idx=0, seed=seed),
                       seed=seed).double()


def test_token_accuracy_counts_labelled_positions_only():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [5.0, 0.0]]])
    labels = torch.tensor([[0, 0, -100]])
    assert float(token_accuracy(logits, labels)) == 0.5
    assert token_accuracy(torch.stack([logits, -logits]), labels).tolist() == [0.5, 0.5]


@pytest.mark.parametrize("norm", ["batch", "masked_batch", "layer"])
def test_stacked_outputs_equal_each_model_and_leave_running_statistics_alone(norm):
    models = [_tagger(norm, s) for s in (0, 1)]
    tokens, padding, _ = running_majority(4, min_len=2, max_len=8,
                                          generator=torch.Generator().manual_seed(0))
    before = copy.deepcopy(models[0].state_dict())
    with torch.no_grad():
        for train in (False, True):
            stacked = stacked_outputs(models, train=train)(tokens, padding, causal=True)
            for r, m in enumerate(models):
                m.train(train)
                assert torch.allclose(stacked[r], copy.deepcopy(m)(tokens, padding, causal=True),
                                      **TOL)
    for name, value in models[0].state_dict().items():
        assert torch.equal(value, before[name]), name


@pytest.mark.parametrize("norm", ["batch", "masked_batch", "layer"])
def test_decoding_token_by_token_equals_the_causal_eval_pass(norm):
    model = _tagger(norm, 1)
    fit(model, tagging_loss, lambda g: running_majority(8, min_len=1, max_len=8, generator=g),
        steps=3, optimizer="adam", lr=0.01)
    tokens, padding, _ = running_majority(6, min_len=1, max_len=8,
                                          generator=torch.Generator().manual_seed(5))
    assert prefix_decoding_gap(model, tokens, padding) < 1e-12


def test_batch_statistics_leak_future_tokens_and_layer_norm_does_not():
    held_out = running_majority(8, min_len=4, max_len=8, generator=torch.Generator().manual_seed(2),
                                length=10)
    found = {}
    for norm in ("batch", "masked_batch", "layer"):
        models = [_tagger(norm, s) for s in (0, 1)]
        found[norm] = normalisation_mismatch(models, *held_out, batch_size=4, extra_padding=2,
                                             split=3)
    layer = found["layer"]
    assert (layer["future leak"] == 0).all()
    assert np.array_equal(layer["eval accuracy"], layer["batch-statistics accuracy"])
    assert np.array_equal(layer["batch-statistics accuracy"], layer["with extra padding"])
    assert (found["batch"]["future leak"] > 1e-6).all()
    assert (found["masked_batch"]["future leak"] > 1e-6).all()
    # only the unmasked variant sees the extra padding
    assert np.array_equal(found["masked_batch"]["batch-statistics accuracy"],
                          found["masked_batch"]["with extra padding"])


def test_largest_rate_that_trains_is_the_largest_passing_row_per_column():
    rates = [0.1, 0.2, 0.4]
    final = np.array([[0.95, 0.5, 0.2], [0.2, 0.92, 0.3], [0.91, 0.1, 0.3]])
    assert largest_rate_that_trains(final, rates).tolist() == [0.4, 0.2, 0.05]
    with pytest.raises(ValueError, match="final"):
        largest_rate_that_trains(final[:2], rates)


def test_mode_comparison_equals_the_separate_measurements():
    model = norm_mlp([6, 12, 4], "batch", nn.ReLU, seed=3).double()
    X = torch.randn(70, 6, dtype=torch.float64)
    y = torch.randint(0, 4, (70,))
    fit(model, lambda m, X, y: F.cross_entropy(m(X), y), (X, y), steps=10, batch_size=8, lr=0.3)
    eval_acc, train_acc, disagree = mode_comparison(model, X, y, 8)
    n = 64  # full batches of 8
    with torch.no_grad():
        eval_ref = float((copy.deepcopy(model).eval()(X[:n]).argmax(1) == y[:n]).double().mean())
    train_ref = float((train_mode_logits(model, X, 8).argmax(1) == y[:n]).double().mean())
    assert (eval_acc, train_acc) == (eval_ref, train_ref)
    assert disagree == train_eval_disagreement(model, X, 8) > 0
