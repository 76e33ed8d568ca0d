"""dlnotes.transformer against torch.nn.TransformerEncoderLayer/Encoder, BatchNorm1d on the
gathered tokens, closed forms and brute-force loops; and under torch.func.vmap."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import case_id
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from dlnotes.training import fit, fit_replicas
from dlnotes.transformer import (
    NORMS,
    Encoder,
    EncoderLayer,
    SelfAttention,
    SentenceEncoder,
    SequenceBatchNorm,
    SequenceClassifier,
    TokenPredictor,
    masked_mean,
    sequence_task,
    sinusoidal_positions,
)

f64 = torch.float64
D, H, FF, T = 32, 4, 64, 9


def _padding(lengths, t=T):
    """Boolean (B, t) mask, True at padded positions, for sequences of the given lengths."""
    return torch.arange(t)[None, :] >= torch.as_tensor(lengths)[:, None]


def _torch_layer(norm_first, dtype, activation="relu"):
    return nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=activation,
                                      batch_first=True, norm_first=norm_first).to(dtype)


def _causal_src_mask(t):
    return torch.ones(t, t, dtype=torch.bool).triu(1)  # PyTorch: True = may NOT attend


def _max_diff(a, b):
    return float((a - b).detach().abs().max())


# --- parity with torch.nn.TransformerEncoderLayer ---------------------------------------------

def test_parameter_names_and_shapes_are_pytorchs():
    ours = {k: tuple(v.shape) for k, v in EncoderLayer(D, H, FF).state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in _torch_layer(False, torch.float32).state_dict().items()}
    assert ours == theirs


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (f64, 1e-12)], ids=["f32", "f64"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
@pytest.mark.parametrize("padded", [False, True], ids=["no-padding", "padding"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_layer_norm_variant_loads_torch_state_dict_and_matches_its_outputs_and_gradients(
    dtype, tol, norm_first, padded, causal, activation
):
    ref = _torch_layer(norm_first, dtype, activation)
    ours = EncoderLayer(D, H, FF, norm_first=norm_first, activation=activation).to(dtype)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, T, D, dtype=dtype)
    mask = _padding([9, 5, 1, 7]) if padded else None
    src_mask = _causal_src_mask(T) if causal else None
    upstream = torch.randn(4, T, D, dtype=dtype)
    outs, grads = [], []
    for run in (lambda z: ref(z, src_mask=src_mask, src_key_padding_mask=mask, is_causal=causal),
                lambda z: ours(z, padding_mask=mask, causal=causal)):
        z = x.clone().requires_grad_(True)
        out = run(z)
        (out * upstream).sum().backward()
        outs.append(out.detach())
        grads.append(z.grad)
    # every position, padded ones included; |diff| <= tol·(1 + |out|): in float32 the outputs
    # (up to about 4 in size) differ by 1–3 units in the last place, 7.2e-7 at most here
    assert torch.allclose(outs[1], outs[0], rtol=tol, atol=tol)
    assert _max_diff(*grads) < 10 * tol
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert _max_diff(p.grad, ref_params[name].grad) < 100 * tol, name


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_layer_matches_torch_fast_inference_path_in_eval_mode(norm_first):
    ref = _torch_layer(norm_first, torch.float32).eval()
    ours = EncoderLayer(D, H, FF, norm_first=norm_first).eval()
    ours.load_state_dict(ref.state_dict())
    x, mask = torch.randn(3, T, D), _padding([9, 4, 6])
    with torch.no_grad():  # PyTorch takes its fused "fast path" here
        assert _max_diff(ref(x, src_key_padding_mask=mask), ours(x, padding_mask=mask)) < 1e-6


def test_attention_weights_match_torch_multihead_attention_per_head():
    ref = nn.MultiheadAttention(D, H, batch_first=True).double()
    ours = SelfAttention(D, H).double()
    ours.load_state_dict(ref.state_dict())
    x, mask = torch.randn(3, T, D, dtype=f64), _padding([9, 4, 6])
    with torch.no_grad():
        out_r, w_r = ref(x, x, x, key_padding_mask=mask, average_attn_weights=False)
        out_o, w_o = ours(x, (~mask)[:, None, None, :])
    assert _max_diff(out_r, out_o) < 1e-12
    assert _max_diff(w_r, w_o) < 1e-14
    assert float(w_o[mask[:, None, None, :].expand_as(w_o)].abs().max()) == 0.0


def test_allowed_restricts_attention_and_a_query_with_no_key_outputs_the_bias():
    layer = SelfAttention(D, H).double()
    x = torch.randn(2, 5, D, dtype=f64)
    allowed = (torch.rand(5, 5) < 0.5) | torch.eye(5, dtype=torch.bool)
    allowed[2] = False  # query 2 may attend to nothing
    with torch.no_grad():
        out, weights = layer(x, allowed)
    assert bool(torch.isfinite(out).all())
    assert float(weights[..., ~allowed].abs().max()) == 0.0
    assert _max_diff(out[:, 2], layer.out_proj.bias.expand(2, D)) < 1e-15
    rows = [i for i in range(5) if i != 2]
    assert _max_diff(weights[:, :, rows].sum(-1), torch.ones(2, H, 4, dtype=f64)) < 1e-14
    # each allowed row equals attention restricted to its allowed keys, computed one by one
    q, k, v = F.linear(x, layer.in_proj_weight, layer.in_proj_bias).chunk(3, dim=-1)
    head = slice(0, D // H)
    keys = allowed[0].nonzero().flatten()
    scores = (q[:, :1, head] @ k[:, keys, head].transpose(-2, -1)).squeeze(1) / math.sqrt(D // H)
    assert _max_diff(weights[:, 0, 0, keys], scores.softmax(-1)) < 1e-14
    # one (T, T) pattern per sequence equals each sequence run alone with its own pattern
    per_sequence = torch.stack([allowed, ~allowed | torch.eye(5, dtype=torch.bool)])
    with torch.no_grad():
        both = layer(x, per_sequence[:, None])[0]
        for b in range(2):
            assert _max_diff(both[b], layer(x[b:b + 1], per_sequence[b])[0][0]) < 1e-15
    encoder_layer = EncoderLayer(D, H, FF).double()
    out_layer = encoder_layer(x, allowed=per_sequence)
    assert _max_diff(out_layer[1], encoder_layer(x[1:], allowed=per_sequence[1])[0]) < 1e-14


# --- padded positions ---------------------------------------------------------------------------

@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_padded_positions_influence_real_ones_only_through_batch_statistics(norm, norm_first):
    layer = EncoderLayer(D, H, FF, norm=norm, norm_first=norm_first).double().train()
    mask = _padding([9, 3, 6, 2])
    x = torch.randn(4, T, D, dtype=f64)
    x_other = torch.where(mask[..., None], 10 * torch.randn_like(x), x)  # new padding values
    out, out_other = copy.deepcopy(layer)(x, padding_mask=mask), layer(x_other,
                                                                       padding_mask=mask)
    real_diff = _max_diff(out[~mask], out_other[~mask])
    if norm == "batch":
        assert real_diff > 1e-3
    else:
        assert real_diff < 1e-13


@pytest.mark.parametrize("norm", ["layer", "masked_batch"])
@given(lengths=st.lists(st.integers(1, 6), min_size=2, max_size=5), extra=st.integers(1, 4))
@settings(max_examples=15, deadline=None)
def test_real_outputs_do_not_depend_on_how_much_padding_follows(norm, lengths, extra):
    torch.manual_seed(len(lengths))
    encoder = Encoder(11, 16, 2, 24, 2, max_len=12, norm=norm, padding_idx=0).double()
    tokens = torch.randint(1, 11, (len(lengths), 6)).masked_fill(_padding(lengths, 6), 0)
    longer = torch.cat([tokens, torch.zeros(len(lengths), extra, dtype=torch.long)], dim=1)
    out = copy.deepcopy(encoder)(tokens)
    out_longer = encoder(longer)
    real = ~_padding(lengths, 6)
    assert _max_diff(out[real], out_longer[:, :6][real]) < 1e-12


def test_causal_outputs_do_not_depend_on_later_tokens():
    encoder = Encoder(11, 16, 2, 24, 2, max_len=8, norm="layer").double()
    tokens = torch.randint(0, 11, (3, 8))
    changed = tokens.clone()
    changed[:, 5:] = torch.randint(0, 11, (3, 3))
    a, b = encoder(tokens, causal=True), encoder(changed, causal=True)
    assert _max_diff(a[:, :5], b[:, :5]) < 1e-13
    assert _max_diff(a[:, 5:], b[:, 5:]) > 1e-3


# --- batch normalisation over tokens -----------------------------------------------------------

def _reference_batch_norm(ours):
    ref = nn.BatchNorm1d(D, momentum=ours.momentum, eps=ours.eps).double()
    with torch.no_grad():
        ref.weight.copy_(torch.rand(D) + 0.5)
        ref.bias.copy_(torch.randn(D))
        ours.weight.copy_(ref.weight)
        ours.bias.copy_(ref.bias)
    return ref


@pytest.mark.parametrize("masked", [False, True], ids=["batch", "masked_batch"])
def test_sequence_batch_norm_equals_batchnorm1d_on_the_counted_tokens_in_train_and_eval(masked):
    ours = SequenceBatchNorm(D, masked=masked, momentum=0.3).double()
    ref = _reference_batch_norm(ours)
    for lengths in ([9, 2, 5], [3, 3, 8, 1], [9, 9], [4, 6]):
        mask = _padding(lengths)
        x = (3 * torch.randn(len(lengths), T, D, dtype=f64) + 2).requires_grad_(True)
        x_ref = x.detach().clone().requires_grad_(True)
        upstream = torch.randn_like(x)
        out = ours(x, mask)
        counted = x_ref[~mask] if masked else x_ref.reshape(-1, D)
        out_ref = ref(counted)
        real = out[~mask] if masked else out.reshape(-1, D)
        assert _max_diff(real, out_ref) < 1e-12
        if masked:  # in a network nothing reads the padded outputs of a masked layer
            upstream = upstream.masked_fill(mask[..., None], 0.0)
        (out * upstream).sum().backward()
        (out_ref * (upstream[~mask] if masked else upstream.reshape(-1, D))).sum().backward()
        assert _max_diff(x.grad[~mask] if masked else x.grad, x_ref.grad[~mask] if masked
                         else x_ref.grad) < 1e-12
        if masked and bool(mask.any()):  # padded positions: normalised with the same statistics
            stats_mean = counted.detach().mean(0)
            stats_var = counted.detach().var(0, unbiased=False)
            expected = ((x.detach() - stats_mean) / torch.sqrt(stats_var + 1e-5) * ours.weight
                        + ours.bias)
            assert _max_diff(out.detach()[mask], expected[mask]) < 1e-12
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert _max_diff(getattr(ours, name).double(), getattr(ref, name).double()) < 1e-13
    ours.eval(), ref.eval()
    x = torch.randn(2, T, D, dtype=f64)
    assert _max_diff(ours(x, _padding([3, 9])), ref(x.transpose(1, 2)).transpose(1, 2)) < 1e-12


def test_padding_changes_batch_statistics_but_not_masked_ones():
    x = torch.randn(3, 5, D, dtype=f64) + 1.5
    mask = _padding([5, 2, 4], 5)
    x = x.masked_fill(mask[..., None], 0.0)
    more = torch.cat([x, torch.zeros(3, 4, D, dtype=f64)], dim=1)  # four more padded columns
    more_mask = _padding([5, 2, 4], 9)
    for masked, should_change in ((False, True), (True, False)):
        a, b = (SequenceBatchNorm(D, masked=masked).double() for _ in range(2))
        out, out_more = a(x, mask), b(more, more_mask)
        mean_change = _max_diff(a.running_mean, b.running_mean)
        out_change = _max_diff(out[~mask], out_more[:, :5][~mask])
        if should_change:
            assert mean_change > 1e-2 and out_change > 1e-2
        else:
            assert mean_change < 1e-15 and out_change < 1e-12


# --- the stack, its embeddings and heads --------------------------------------------------------

@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_encoder_equals_embeddings_plus_torch_transformer_encoder(norm_first):
    ours = Encoder(13, D, H, FF, 3, max_len=T, norm_first=norm_first, padding_idx=0).double()
    layer = _torch_layer(norm_first, f64)
    final = nn.LayerNorm(D).double() if norm_first else None
    ref = nn.TransformerEncoder(layer, 3, norm=final, enable_nested_tensor=False).double()
    ref.load_state_dict({k.replace("final_norm", "norm"): v for k, v in ours.state_dict().items()
                         if k.startswith(("layers", "final_norm"))})
    tokens = torch.randint(1, 13, (3, T)).masked_fill(_padding([9, 4, 1]), 0)
    emb = ours.token_embedding.weight[tokens] + ours.position_embedding.weight[:T]
    expected = ref(emb, src_key_padding_mask=tokens == 0)
    assert _max_diff(ours(tokens), expected) < 1e-12
    assert float(ours.token_embedding.weight[0].detach().abs().max()) == 0.0  # padding_idx
    trace = ours.trace(tokens)
    assert len(trace.hidden_states) == 4 and len(trace.attention) == 3
    assert _max_diff(trace.hidden_states[0], emb) == 0.0
    assert _max_diff(trace.output, expected) < 1e-12
    assert tuple(trace.attention[0].shape) == (3, H, T, T)


def test_sinusoidal_positions_follow_the_closed_form():
    encoder = Encoder(5, 6, 2, 8, 1, max_len=7, positions="sinusoidal").double()
    table = sinusoidal_positions(7, 6)
    for t in range(7):
        for i in range(3):
            angle = t / 10000 ** (2 * i / 6)
            assert abs(float(table[t, 2 * i]) - math.sin(angle)) < 1e-15
            assert abs(float(table[t, 2 * i + 1]) - math.cos(angle)) < 1e-15
    assert not any("position" in name for name, _ in encoder.named_parameters())
    tokens = torch.randint(0, 5, (2, 4))
    expected = encoder.token_embedding.weight[tokens] + table[:4]
    assert _max_diff(encoder.embed(tokens), expected) == 0.0


def test_masked_mean_equals_a_loop_over_real_tokens():
    h = torch.randn(4, T, 5, dtype=f64)
    lengths = [9, 1, 4, 6]
    pooled = masked_mean(h, _padding(lengths))
    for b, n in enumerate(lengths):
        assert _max_diff(pooled[b], h[b, :n].mean(0)) < 1e-15
    assert _max_diff(masked_mean(h), h.mean(1)) == 0.0


def test_classifier_pools_real_tokens_and_token_predictor_ties_weights():
    encoder = Encoder(12, D, H, FF, 1, max_len=T, padding_idx=0).double()
    classifier = SequenceClassifier(encoder, 3).double()
    tokens = torch.randint(1, 12, (3, T)).masked_fill(_padding([9, 2, 5]), 0)
    h = encoder(tokens)
    pooled = torch.stack([h[b, :n].mean(0) for b, n in enumerate([9, 2, 5])])
    assert _max_diff(classifier(tokens), classifier.head(pooled)) < 1e-14
    tied = TokenPredictor(encoder).double()
    logits = tied(tokens)
    assert tuple(logits.shape) == (3, T, 12)
    assert _max_diff(logits, h @ encoder.token_embedding.weight.T + tied.output_bias) < 1e-13
    n_encoder = sum(p.numel() for p in encoder.parameters())
    assert sum(p.numel() for p in tied.parameters()) == n_encoder + 12
    untied = TokenPredictor(encoder, tie_weights=False)
    assert sum(p.numel() for p in untied.parameters()) == n_encoder + 12 * D + 12
    assert _max_diff(SentenceEncoder(encoder)(tokens), pooled) < 1e-15
    logits.sum().backward()  # the tied matrix gets gradient from both ends
    assert float(encoder.token_embedding.weight.grad[5:].abs().sum()) > 0


@pytest.mark.parametrize("tie_weights", [True, False])
def test_token_predictor_at_chosen_positions_equals_the_full_logits_there(tie_weights):
    encoder = Encoder(12, D, H, FF, 1, max_len=T, padding_idx=0, seed=1).double()
    model = TokenPredictor(encoder, tie_weights=tie_weights, seed=2).double()
    tokens = torch.randint(1, 12, (3, T)).masked_fill(_padding([9, 2, 5]), 0)
    positions = torch.tensor([0, 4, 10, 26, 0])  # flat indices into the 3·T positions
    full = model(tokens).reshape(-1, 12)
    assert _max_diff(model(tokens, positions=positions), full[positions]) < 1e-13


# --- torch.func: R stacked models at once -------------------------------------------------------

def _stacked_forward(models, *inputs, train=True):
    base = copy.deepcopy(models[0]).to("meta").train(train)
    params, buffers = stack_module_state(models)

    def one(p, b, *args):
        return functional_call(base, (p, b), args)

    out = vmap(one, in_dims=(0, 0) + (None,) * len(inputs))(params, buffers, *inputs)
    return out, params, buffers, base


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_vmapped_forward_and_gradients_over_stacked_models_equal_separate_ones(norm, norm_first):
    models = [SequenceClassifier(Encoder(10, 16, 2, 24, 2, max_len=T, norm=norm,
                                         norm_first=norm_first, padding_idx=0), 2).double()
              for _ in range(3)]
    tokens, mask, labels = sequence_task("sorted", 8, vocab_size=10, min_len=2, max_len=T,
                                         generator=torch.Generator().manual_seed(0))
    twins = copy.deepcopy(models)
    out, params, buffers, base = _stacked_forward(models, tokens, mask)
    separate = [m(tokens, mask) for m in twins]
    assert _max_diff(out, torch.stack(separate)) < 1e-13
    for r, twin in enumerate(twins):  # running statistics were updated replica by replica
        for name, buf in twin.named_buffers():
            assert _max_diff(buffers[name][r].double(), buf.double()) < 1e-14, name

    def loss(p, b, t, m, y):
        return F.cross_entropy(functional_call(base, (p, b), (t, m)), y)

    grads = vmap(torch.func.grad(loss), in_dims=(0, 0, None, None, None))(
        params, buffers, tokens, mask, labels)
    for r, twin in enumerate(copy.deepcopy(models)):
        F.cross_entropy(twin(tokens, mask), labels).backward()
        for name, p in twin.named_parameters():
            assert _max_diff(grads[name][r], p.grad) < 1e-12, name


def test_vmapped_tied_token_predictor_equals_separate_forwards():
    models = [TokenPredictor(Encoder(10, 16, 2, 24, 1, max_len=T, padding_idx=0)).double()
              for _ in range(2)]
    tokens = torch.randint(1, 10, (3, T)).masked_fill(_padding([9, 5, 2]), 0)
    out, *_ = _stacked_forward(models, tokens, train=False)
    assert _max_diff(out, torch.stack([m.eval()(tokens) for m in models])) < 1e-13


# --- data ----------------------------------------------------------------------------------------

def _brute_force_label(task, seq):
    if task == "majority":
        return int(seq.count(1) > seq.count(2))
    if task == "repeat":
        return int(len(set(seq)) < len(seq))
    return int(all(a < b for a, b in zip(seq, seq[1:], strict=False)))


@pytest.mark.parametrize("task", ["majority", "repeat", "sorted"])
def test_sequence_task_labels_equal_brute_force_and_padding_follows_the_tokens(task):
    tokens, mask, labels = sequence_task(task, 3000, vocab_size=14, min_len=2, max_len=11,
                                         generator=torch.Generator().manual_seed(3))
    lengths = (~mask).sum(1)
    for row, length, label in zip(tokens.tolist(), lengths.tolist(), labels.tolist(),
                                  strict=True):
        real, pad = row[:length], row[length:]
        assert all(v == 0 for v in pad) and all(1 <= v < 14 for v in real)
        assert label == _brute_force_label(task, real)
        if task == "majority":
            assert length % 2 == 1 and set(real) <= {1, 2}
        elif task == "repeat":
            assert len(set(real)) >= length - 1  # at most one repeated token
        else:
            assert len(set(real)) == length
    assert torch.equal(mask, torch.arange(11)[None] >= lengths[:, None])  # right padding
    assert int(lengths.min()) == (3 if task == "majority" else 2) and int(lengths.max()) == 11
    assert abs(float(labels.double().mean()) - 0.5) < 0.05
    # the label is independent of the length: both classes at every length, in balance
    for n in lengths.unique().tolist():
        share = float(labels[lengths == n].double().mean())
        assert 0.3 < share < 0.7, (n, share)


def test_sequence_task_is_reproducible_from_its_generator():
    draw = [sequence_task("sorted", 50, vocab_size=12, min_len=2, max_len=8,
                          generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*draw, strict=True))


# --- bad input ------------------------------------------------------------------------------------

_layer = EncoderLayer(8, 2, 16)
_encoder = Encoder(10, 8, 2, 16, 1, max_len=5, padding_idx=0)
_gen = torch.Generator()


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: EncoderLayer(10, 4, 16), "d_model must be divisible by n_heads"),
        (lambda: EncoderLayer(8, 0, 16), "n_heads"),
        (lambda: EncoderLayer(8, 2, 0), "d_ff"),
        (lambda: EncoderLayer(8, 2, 16, norm="group"), "norm"),
        (lambda: EncoderLayer(8, 2, 16, activation="tanh"), "activation"),
        (lambda: EncoderLayer(8, 2, 16, dropout=1.0), "dropout"),
        (lambda: _layer(torch.zeros(2, 3, 7)), "x"),
        (lambda: _layer(torch.zeros(3, 8)), "x"),
        (lambda: _layer(torch.zeros(2, 3, 8, dtype=torch.long)), "floating"),
        (lambda: _layer(torch.zeros(2, 3, 8), padding_mask=torch.zeros(2, 4, dtype=torch.bool)),
         "padding_mask"),
        (lambda: _layer(torch.zeros(2, 3, 8), padding_mask=torch.zeros(2, 3)), "padding_mask"),
        (lambda: _layer(torch.zeros(2, 3, 8), padding_mask=_padding([3, 0], 3)), "padding_mask"),
        (lambda: _layer(torch.zeros(2, 3, 8), allowed=torch.ones(3, 2, dtype=torch.bool)),
         "allowed"),
        (lambda: SequenceBatchNorm(4, masked=True)(torch.zeros(2, 3, 4), _padding([1, 0], 3)),
         "padding_mask"),
        (lambda: SequenceBatchNorm(4)(torch.zeros(1, 1, 4)), "x"),
        (lambda: SequenceBatchNorm(4, momentum=1.5), "momentum"),
        (lambda: Encoder(10, 8, 2, 16, 0, max_len=5), "n_layers"),
        (lambda: Encoder(10, 8, 2, 16, 1, max_len=0), "max_len"),
        (lambda: Encoder(10, 8, 2, 16, 1, max_len=5, padding_idx=10), "padding_idx"),
        (lambda: Encoder(10, 8, 2, 16, 1, max_len=5, positions="rotary"), "positions"),
        (lambda: Encoder(10, 8, 2, 16, 1, max_len=5, embedding_std=0.0), "embedding_std"),
        (lambda: Encoder(10, 8, 2, 16, 1, max_len=5, seed=-1), "seed"),
        (lambda: _encoder(torch.zeros(2, 6, dtype=torch.long)), "max_len"),
        (lambda: _encoder(torch.full((2, 3), 10)), "tokens"),
        (lambda: _encoder(torch.zeros(2, 3)), "tokens"),
        (lambda: _encoder(torch.ones(2, 3, dtype=torch.long),
                          padding_mask=torch.zeros(3, 3, dtype=torch.bool)), "padding_mask"),
        (lambda: SequenceClassifier(nn.Linear(2, 2), 2), "encoder"),
        (lambda: SequenceClassifier(_encoder, 1), "n_classes"),
        (lambda: TokenPredictor("encoder"), "encoder"),
        (lambda: masked_mean(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.bool)),
         "padding_mask"),
        (lambda: sequence_task("copy", 5, vocab_size=9, min_len=2, max_len=4, generator=_gen),
         "task"),
        (lambda: sequence_task("sorted", 5, vocab_size=4, min_len=2, max_len=4, generator=_gen),
         "vocab_size"),
        (lambda: sequence_task("repeat", 5, vocab_size=9, min_len=1, max_len=4, generator=_gen),
         "min_len"),
        (lambda: sequence_task("sorted", 5, vocab_size=9, min_len=4, max_len=3, generator=_gen),
         "max_len"),
        (lambda: sequence_task("majority", 5, vocab_size=3, min_len=2, max_len=2,
                               generator=_gen), "odd length"),
        (lambda: sequence_task("sorted", 5, vocab_size=9, min_len=2, max_len=4, generator=_gen,
                               pad_id=3), "pad_id"),
        (lambda: TokenPredictor(_encoder)(torch.ones(2, 3, dtype=torch.long),
                                          positions=torch.zeros(2, 2, dtype=torch.long)),
         "positions"),
    ],
    ids=case_id,
)
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_dropout_acts_in_training_only_and_vmaps_with_different_masks_per_replica():
    ref = nn.TransformerEncoderLayer(D, H, FF, dropout=0.3, batch_first=True).double().eval()
    ours = EncoderLayer(D, H, FF, dropout=0.3).double().eval()
    ours.load_state_dict(ref.state_dict())
    x, mask = torch.randn(2, T, D, dtype=f64), _padding([9, 5])
    with torch.no_grad():
        assert _max_diff(ours(x, padding_mask=mask), ref(x, src_key_padding_mask=mask)) < 1e-12
        ours.train()
        assert _max_diff(ours(x, padding_mask=mask), ours(x, padding_mask=mask)) > 1e-3
    # SimCSE-style: two replicas, one shared input, different dropout masks per replica
    models = [Encoder(10, 16, 2, 24, 1, max_len=T, dropout=0.2).double() for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    base = copy.deepcopy(models[0]).to("meta")
    params, buffers = stack_module_state(models)
    tokens = torch.randint(0, 10, (3, T))
    out = vmap(lambda p, b: functional_call(base, (p, b), (tokens,)),
               randomness="different")(params, buffers)
    assert _max_diff(out[0], out[1]) > 1e-3


def test_a_seed_fixes_the_initial_weights_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = SequenceClassifier(Encoder(10, 16, 2, 24, 2, max_len=T, seed=5), 2, seed=5)
    assert torch.equal(torch.rand(1), before)
    b = SequenceClassifier(Encoder(10, 16, 2, 24, 2, max_len=T, seed=5), 2, seed=5)
    c = Encoder(10, 16, 2, 24, 2, max_len=T, seed=6)
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name
    assert not torch.equal(a.encoder.token_embedding.weight, c.token_embedding.weight)


def _classification_loss(model, tokens, mask, labels):
    return F.cross_entropy(model(tokens, mask), labels)


@pytest.mark.parametrize("norm", NORMS)
def test_fit_replicas_trains_stacked_classifiers_as_separate_fits_running_statistics_included(
    norm
):
    def build(seed):
        return SequenceClassifier(Encoder(10, 16, 2, 24, 1, max_len=T, norm=norm,
                                          padding_idx=0, seed=seed), 2, seed=seed).double()

    def draw(generator):
        return sequence_task("sorted", 16, vocab_size=10, min_len=2, max_len=T,
                             generator=generator)

    stacked, separate = [build(s) for s in (0, 1)], [build(s) for s in (0, 1)]
    fit_replicas(stacked, _classification_loss, draw, steps=4, optimizer="adam", lr=1e-2,
                 generators=[torch.Generator().manual_seed(s) for s in (7, 8)])
    for model, seed in zip(separate, (7, 8), strict=True):
        fit(model, _classification_loss, draw, steps=4, optimizer="adam", lr=1e-2,
            generator=torch.Generator().manual_seed(seed))
    for a, b in zip(stacked, separate, strict=True):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert _max_diff(x.double(), y.double()) < 1e-10, name
        # the padding embedding stays 0 in every replica (vmap's embedding rule alone would
        # train it from the second replica on when padding reaches the loss, as with "batch")
        assert float(a.encoder.token_embedding.weight[0].detach().abs().max()) == 0.0


def test_a_one_layer_classifier_learns_the_majority_task_in_forty_steps():
    model = SequenceClassifier(Encoder(3, 16, 2, 32, 1, max_len=11, padding_idx=0, seed=0), 2,
                               seed=0).double()
    history = fit(model, _classification_loss,
                  lambda g: sequence_task("majority", 32, vocab_size=3, min_len=1, max_len=11,
                                          generator=g),
                  steps=40, optimizer="adam", lr=1e-2, generator=torch.Generator().manual_seed(0))
    tokens, mask, labels = sequence_task("majority", 500, vocab_size=3, min_len=1, max_len=11,
                                         generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        accuracy = float((model.eval()(tokens, mask).argmax(-1) == labels).double().mean())
    assert accuracy > 0.9 and history.loss[-1] < 0.5


def test_embedding_std_scales_the_initial_embeddings_only():
    plain = Encoder(10, 16, 2, 24, 1, max_len=T, padding_idx=0, seed=3)
    scaled = Encoder(10, 16, 2, 24, 1, max_len=T, padding_idx=0, seed=3, embedding_std=0.25)
    for (name, p), q in zip(plain.named_parameters(), scaled.parameters(), strict=True):
        factor = 0.25 if "embedding" in name else 1.0
        assert torch.equal(q, factor * p), name
    sample = Encoder(50, 64, 2, 8, 1, max_len=50, seed=0, embedding_std=0.125)
    assert abs(float(sample.token_embedding.weight.detach().std()) - 0.125) < 0.01
