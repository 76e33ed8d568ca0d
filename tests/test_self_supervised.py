"""dlnotes.self_supervised against independent references: BERT masking against the exact
outcome distribution enumerated by brute force and Monte Carlo rates, InfoNCE against a loop
and torch's cross_entropy, the momentum update against a hand update, and every trainer against
separate fits."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import case_id
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import vmap

from dlnotes.self_supervised import (
    IGNORE_INDEX,
    MaskedAutoencoder,
    MomentumContrast,
    bert_mask,
    contrastive_views,
    group_means,
    info_nce,
    masked_positions,
    masked_reconstruction_loss,
    mlm_batch,
    mlm_loss,
    moco_loss,
    momentum_hook,
    momentum_update,
    pad_rows,
    set_dropout,
    simcse_loss,
    token_chunks,
    translations,
)
from dlnotes.training import fit, fit_replicas
from dlnotes.transformer import Encoder, SentenceEncoder, TokenPredictor

f64 = torch.float64


def _tolerance(p: float, n: int) -> float:
    """Five binomial standard deviations of a share estimated from n draws."""
    return 5 * math.sqrt(p * (1 - p) / n) + 1e-12


# --- bert_mask ------------------------------------------------------------------------------

def _exact_outcomes(x: int, *, p: float, mask_id: int, first: int, vocab: int) -> dict:
    """P(input = j) for one regular token x, by enumerating BERT's branches (brute force)."""
    probs = {x: 1 - p}  # not selected
    probs[mask_id] = probs.get(mask_id, 0.0) + 0.8 * p
    for j in range(first, vocab):  # random token, uniform over the regular ids
        probs[j] = probs.get(j, 0.0) + 0.1 * p / (vocab - first)
    probs[x] += 0.1 * p  # kept
    return probs


@pytest.mark.parametrize("p, first", [(0.15, 2), (0.5, 0), (0.3, 3)])
def test_bert_mask_input_distribution_equals_the_enumerated_one(p, first):
    vocab, mask_id, x, n = 9, 1, 5, 200_000
    tokens = torch.full((n,), x)
    inputs, labels = bert_mask(tokens, mask_id=mask_id, vocab_size=vocab, p=p,
                               first_regular_id=first, generator=torch.Generator().manual_seed(0))
    exact = _exact_outcomes(x, p=p, mask_id=mask_id, first=first, vocab=vocab)
    counts = torch.bincount(inputs, minlength=vocab).double() / n
    for j in range(vocab):
        assert abs(float(counts[j]) - exact.get(j, 0.0)) < _tolerance(exact.get(j, 0.0), n), j
    assert abs(float((labels != IGNORE_INDEX).double().mean()) - p) < _tolerance(p, n)


def test_bert_mask_selects_real_tokens_at_the_rate_and_corrupts_them_80_10_10():
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, 50, (400, 60), generator=gen)
    tokens[:, :2] = 2  # a special id (e.g. [CLS]): never selected
    lengths = torch.randint(10, 61, (400,), generator=gen)
    padding = torch.arange(60)[None] >= lengths[:, None]
    tokens = tokens.masked_fill(padding, 0)
    before = tokens.clone()
    inputs, labels = bert_mask(tokens, mask_id=1, vocab_size=50, p=0.2, generator=gen,
                               padding_mask=padding, first_regular_id=3)
    assert torch.equal(tokens, before)  # the input is not changed
    selected = labels != IGNORE_INDEX
    assert not bool((selected & padding).any()) and not bool(selected[:, :2].any())
    assert torch.equal(labels[selected], tokens[selected])
    assert torch.equal(inputs[~selected], tokens[~selected])
    candidates = int((~padding).sum()) - 2 * 400
    n = int(selected.sum())
    assert abs(n / candidates - 0.2) < _tolerance(0.2, candidates)
    masked = float((inputs[selected] == 1).double().mean())
    kept = float((inputs[selected] == tokens[selected]).double().mean())
    assert abs(masked - 0.8) < _tolerance(0.8, n)
    assert abs(kept - (0.1 + 0.1 / 47)) < _tolerance(0.1, n)  # a random id can hit the original
    assert int(inputs[selected].min()) >= 1 and not bool((inputs[selected] == 2).any())


def test_bert_mask_selection_is_independent_of_position_and_token():
    n, t = 4000, 12
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 4, (n, t), generator=gen)
    _, labels = bert_mask(tokens, mask_id=7, vocab_size=8, generator=gen)
    selected = (labels != IGNORE_INDEX).double()
    for column in selected.T:
        assert abs(float(column.mean()) - 0.15) < _tolerance(0.15, n)
    for token in range(4):
        share = float(selected[tokens == token].mean())
        assert abs(share - 0.15) < _tolerance(0.15, int((tokens == token).sum()))


def test_bert_mask_at_p_zero_and_one_and_from_its_generator():
    tokens = torch.randint(0, 10, (5, 7))
    inputs, labels = bert_mask(tokens, mask_id=0, vocab_size=10, p=0.0)
    assert torch.equal(inputs, tokens) and bool((labels == IGNORE_INDEX).all())
    _, labels = bert_mask(tokens, mask_id=0, vocab_size=10, p=1.0)
    assert torch.equal(labels, tokens)
    draws = [bert_mask(tokens, mask_id=0, vocab_size=10, p=0.5,
                       generator=torch.Generator().manual_seed(s)) for s in (4, 4, 5)]
    assert torch.equal(draws[0][0], draws[1][0]) and torch.equal(draws[0][1], draws[1][1])
    assert not torch.equal(draws[0][1], draws[2][1])


def test_share_of_changed_inputs_matches_the_derived_formula():
    # p (0.8 + 0.1 (1 - 1/V')) for V' regular ids and a special mask id (chapter 12)
    p, first, vocab, n = 0.15, 2, 12, 300_000
    tokens = torch.randint(first, vocab, (n,), generator=torch.Generator().manual_seed(1))
    inputs, _ = bert_mask(tokens, mask_id=1, vocab_size=vocab, p=p, first_regular_id=first,
                          generator=torch.Generator().manual_seed(2))
    changed = float((inputs != tokens).double().mean())
    expected = p * (0.8 + 0.1 * (1 - 1 / (vocab - first)))
    assert abs(changed - expected) < _tolerance(expected, n)


def test_masked_positions_gathers_the_selected_labels_in_order():
    labels = torch.full((3, 4), IGNORE_INDEX)
    labels[0, 1], labels[2, 0], labels[2, 3] = 5, 6, 7
    positions, targets = masked_positions(labels, 5)
    assert positions.tolist() == [1, 8, 11, 0, 0]
    assert targets.tolist() == [5, 6, 7, IGNORE_INDEX, IGNORE_INDEX]
    with pytest.raises(ValueError, match="slots"):
        masked_positions(labels, 2)


def test_mlm_batch_corrupts_rows_of_the_sequences_and_repeats_from_its_generator():
    sequences = torch.arange(2, 2 + 40 * 8).reshape(40, 8) % 30 + 2
    batch = [mlm_batch(sequences, torch.Generator().manual_seed(s), batch_size=6, mask_id=1,
                       vocab_size=32, slots=20, p=0.3, first_regular_id=2) for s in (0, 0)]
    assert all(torch.equal(a, b) for a, b in zip(*batch, strict=True))
    inputs, positions, targets = batch[0]
    real = targets != IGNORE_INDEX
    assert inputs.shape == (6, 8) and positions.shape == targets.shape == (20,)
    gen = torch.Generator().manual_seed(0)  # the same draws, step by step
    rows = sequences[torch.randint(0, 40, (6,), generator=gen)]
    _, labels = bert_mask(rows, mask_id=1, vocab_size=32, p=0.3, generator=gen,
                          first_regular_id=2)
    assert torch.equal(rows.reshape(-1)[positions[real]], targets[real])
    assert torch.equal(labels.reshape(-1)[positions[real]], targets[real])


def test_mlm_loss_equals_cross_entropy_of_the_full_logits_at_the_selected_positions():
    model = TokenPredictor(Encoder(15, 8, 2, 16, 1, max_len=6, seed=0)).double()
    gen = torch.Generator().manual_seed(1)
    inputs, positions, targets = mlm_batch(torch.randint(2, 15, (20, 6), generator=gen), gen,
                                           batch_size=10, mask_id=1, vocab_size=15, slots=40,
                                           p=0.3, first_regular_id=2)
    labels = torch.full((60,), IGNORE_INDEX)
    labels[positions[targets != IGNORE_INDEX]] = targets[targets != IGNORE_INDEX]
    with torch.no_grad():
        full = model(inputs).reshape(-1, 15)
        expected = F.cross_entropy(full[labels != IGNORE_INDEX], labels[labels != IGNORE_INDEX])
        assert abs(float(mlm_loss(model, inputs, positions, targets) - expected)) < 1e-12


# --- info_nce -------------------------------------------------------------------------------

def _info_nce_loop(q, k, tau, negatives=None):
    """The InfoNCE loss with Python floats, one query at a time."""
    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True)) / (
            math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))

    q, k = q.tolist(), k.tolist()
    others = [] if negatives is None else negatives.tolist()
    total = 0.0
    for i, qi in enumerate(q):
        logits = [cos(qi, kj) / tau for kj in k + others]
        top = max(logits)
        total -= logits[i] - top - math.log(sum(math.exp(v - top) for v in logits))
    return total / len(q)


@pytest.mark.parametrize("tau", [0.05, 0.5, 3.0])
@pytest.mark.parametrize("with_queue", [False, True])
def test_info_nce_equals_a_loop_and_torch_cross_entropy(tau, with_queue):
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(7, 5, generator=gen, dtype=f64), torch.randn(7, 5, generator=gen, dtype=f64)
    queue = torch.randn(4, 5, generator=gen, dtype=f64) if with_queue else None
    loss = float(info_nce(q, k, temperature=tau, negatives=queue))
    assert abs(loss - _info_nce_loop(q, k, tau, queue)) < 1e-12
    keys = k if queue is None else torch.cat([k, queue])
    sims = F.cosine_similarity(q[:, None], keys[None], dim=-1) / tau
    assert abs(loss - float(F.cross_entropy(sims, torch.arange(7)))) < 1e-12


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.floats(0.01, 100.0), st.integers(0, 10_000))
def test_info_nce_is_scale_invariant_and_between_zero_and_its_limits(n, tau, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(n, 3, generator=gen, dtype=f64), torch.randn(n, 3, generator=gen, dtype=f64)
    loss = float(info_nce(q, k, temperature=tau))
    assert loss >= 0 and math.isfinite(loss)
    scaled = float(info_nce(3.0 * q, 0.5 * k, temperature=tau))
    assert abs(scaled - loss) < 1e-9 * max(1.0, loss)
    # cosines lie in [-1, 1]: each term is at most log(1 + (n-1) e^{2/tau})
    assert loss <= math.log1p((n - 1) * math.exp(min(2 / tau, 700))) + 1e-9


def test_info_nce_tends_to_log_n_at_high_temperature_and_stays_finite_at_low():
    gen = torch.Generator().manual_seed(1)
    q, k = torch.randn(6, 4, generator=gen, dtype=f64), torch.randn(6, 4, generator=gen, dtype=f64)
    assert abs(float(info_nce(q, k, temperature=1e8)) - math.log(6)) < 1e-7
    cold = info_nce(q, k, temperature=1e-6)
    assert math.isfinite(float(cold))
    same = info_nce(torch.eye(3, dtype=f64), torch.eye(3, dtype=f64), temperature=1e-3)
    assert float(same) < 1e-12  # orthogonal views that match: no confusion


def test_info_nce_under_vmap_equals_separate_calls_and_has_gradients():
    q = torch.randn(3, 5, 4, dtype=f64, requires_grad=True)
    k = torch.randn(3, 5, 4, dtype=f64, requires_grad=True)
    batched = vmap(lambda a, b: info_nce(a, b, temperature=0.2))(q, k)
    separate = torch.stack([info_nce(a, b, temperature=0.2) for a, b in zip(q, k, strict=True)])
    assert float((batched - separate).detach().abs().max()) < 1e-14
    batched.sum().backward()
    assert float(q.grad.abs().sum()) > 0 and float(k.grad.abs().sum()) > 0


# --- momentum -------------------------------------------------------------------------------

def test_momentum_update_equals_the_hand_update_in_place():
    target, online = nn.Linear(4, 3).double(), nn.Linear(4, 3).double()
    target.register_buffer("count", torch.tensor(5.0))
    before = [p.detach().clone() for p in target.parameters()]
    ids = [id(p) for p in target.parameters()]
    momentum_update(target, online, m=0.9)
    for p, old, new in zip(target.parameters(), before, online.parameters(), strict=True):
        assert float((p - (0.9 * old + 0.1 * new)).detach().abs().max()) < 1e-15
        assert p.grad_fn is None
    assert [id(p) for p in target.parameters()] == ids and float(target.count) == 5.0
    momentum_update(target, online, m=0.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), online.parameters(),
                                                 strict=True))
    kept = [p.detach().clone() for p in target.parameters()]
    momentum_update(target, nn.Linear(4, 3).double(), m=1.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), kept, strict=True))


def test_momentum_update_on_tensors_moves_stacked_replicas_each_by_its_own_online():
    target, online = [torch.zeros(2, 3)], [torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])]
    momentum_update(target, online, m=0.75)
    assert torch.equal(target[0], 0.25 * online[0])


def test_moco_trains_side_by_side_as_separate_fits_with_the_momentum_hook():
    X = torch.rand(40, 16, dtype=f64, generator=torch.Generator().manual_seed(0))
    shifted = translations(X, 4)

    def data(g):
        return contrastive_views(shifted, g, batch_size=8, drop=0.2)

    settings_ = dict(steps=6, optimizer="adam", lr=1e-2, loss_kwargs={"temperature": 0.3},
                     after_backward=momentum_hook(0.8))
    models = [MomentumContrast(16, 12, 5, seed=s).double() for s in (0, 1)]
    alone = [copy.deepcopy(m) for m in models]
    fit_replicas(models, moco_loss, data, generators=[torch.Generator().manual_seed(s)
                                                      for s in (0, 1)], **settings_)
    for s, m in enumerate(alone):
        fit(m, moco_loss, data, generator=torch.Generator().manual_seed(s), **settings_)
    for a, b in zip(models, alone, strict=True):
        for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
            assert float((p - q).detach().abs().max()) < 1e-12, name
        assert not torch.equal(a.target[0].weight, a.online[0].weight)  # the target lags


def test_momentum_contrast_returns_the_representation_or_unit_queries_and_detached_keys():
    model = MomentumContrast(6, 10, 4, seed=0).double()
    x = torch.randn(5, 6, dtype=f64)
    assert torch.equal(model(x), torch.relu(model.online[0](x)))
    q, k = model(x, x)
    assert float((q.norm(dim=1) - 1).detach().abs().max()) < 1e-12 and not k.requires_grad
    assert float((q - k).detach().abs().max()) < 1e-12  # the target starts as a copy
    assert model.target[0].weight is not model.online[0].weight


def test_simcse_loss_is_info_nce_of_two_dropout_passes():
    encoder = set_dropout(Encoder(20, 8, 2, 16, 1, max_len=5, padding_idx=0, seed=0).double(),
                          0.3)
    model = SentenceEncoder(encoder).train()
    tokens = torch.randint(1, 20, (6, 5))
    torch.manual_seed(7)
    loss = simcse_loss(model, tokens, temperature=0.1)
    torch.manual_seed(7)
    z1, z2 = model(tokens), model(tokens)
    assert float((z1 - z2).detach().abs().max()) > 1e-3  # two different dropout masks
    assert abs(float((loss - info_nce(z1, z2, temperature=0.1)).detach())) < 1e-12


def test_set_dropout_reaches_every_dropout_and_zero_makes_training_deterministic():
    encoder = Encoder(20, 8, 2, 16, 2, max_len=5, seed=0).double()
    set_dropout(encoder, 0.2)
    ps = [m.p for m in encoder.modules() if isinstance(m, nn.Dropout)]
    assert ps and all(p == 0.2 for p in ps)
    assert all(layer.self_attn.dropout == 0.2 for layer in encoder.layers)
    tokens = torch.randint(0, 20, (3, 5))
    encoder.train()
    assert not torch.equal(encoder(tokens), encoder(tokens))
    set_dropout(encoder, 0.0)
    assert torch.equal(encoder(tokens), encoder(tokens))


# --- masked pixels --------------------------------------------------------------------------

def test_masked_reconstruction_at_rate_zero_is_a_plain_autoencoder_and_hides_at_the_rate():
    model = MaskedAutoencoder(10, 16, seed=0).double()
    x = torch.rand(200, 10, dtype=f64)
    noise = torch.rand(200, 10, dtype=f64)
    plain = F.mse_loss(model.decoder(model.encoder(x)), x)
    assert float((masked_reconstruction_loss(model, x, noise, rate=0.0) - plain).detach()) == 0.0
    keep = (noise >= 0.3).double()
    expected = F.mse_loss(model.decoder(model.encoder(x * keep)), x)
    assert float((masked_reconstruction_loss(model, x, noise, rate=0.3) - expected).detach()) == 0.0
    assert abs(float(keep.mean()) - 0.7) < _tolerance(0.7, 2000)
    assert torch.equal(model(x), model.encoder(x))


def test_a_mask_rate_per_replica_trains_as_separate_fits():
    X = torch.rand(30, 8, dtype=f64, generator=torch.Generator().manual_seed(0))

    def data(g):
        idx = torch.randint(0, 30, (10,), generator=g)
        return X[idx], torch.rand(10, 8, generator=g, dtype=f64)

    rates = [0.0, 0.5]
    models = [MaskedAutoencoder(8, 12, seed=3).double() for _ in rates]
    alone = [copy.deepcopy(m) for m in models]
    fit_replicas(models, masked_reconstruction_loss, data, steps=5, optimizer="adam", lr=1e-2,
                 generators=[torch.Generator().manual_seed(1) for _ in rates],
                 replica_kwargs={"rate": torch.tensor(rates, dtype=f64)})
    for model, rate in zip(alone, rates, strict=True):
        fit(model, masked_reconstruction_loss, data, steps=5, optimizer="adam", lr=1e-2,
            generator=torch.Generator().manual_seed(1), loss_kwargs={"rate": rate})
    for a, b in zip(models, alone, strict=True):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            assert float((p - q).detach().abs().max()) < 1e-12


def test_translations_shift_in_zeros_and_keep_the_original_in_the_middle():
    images = torch.arange(1.0, 10.0, dtype=f64).reshape(1, 9)  # one 3 x 3 image
    shifted = translations(images, 3)
    assert shifted.shape == (9, 1, 9) and torch.equal(shifted[4], images)
    grid = images.reshape(3, 3)
    for dy in range(3):
        for dx in range(3):  # brute force: pixel (i, j) comes from (i + dy - 1, j + dx - 1)
            expected = torch.zeros(3, 3, dtype=f64)
            for i in range(3):
                for j in range(3):
                    a, b = i + dy - 1, j + dx - 1
                    if 0 <= a < 3 and 0 <= b < 3:
                        expected[i, j] = grid[a, b]
            assert torch.equal(shifted[3 * dy + dx, 0].reshape(3, 3), expected)


def test_contrastive_views_are_two_augmentations_of_the_same_images():
    X = torch.rand(50, 16, dtype=f64, generator=torch.Generator().manual_seed(0)) + 0.1
    v1, v2 = contrastive_views(translations(X, 4, shift=0), torch.Generator().manual_seed(1),
                               batch_size=400, drop=0.25)
    both = (v1 != 0) & (v2 != 0)
    assert torch.equal(v1[both], v2[both])  # without shifts: the same image, other pixels hidden
    hidden = float((v1 == 0).double().mean())
    assert abs(hidden - 0.25) < _tolerance(0.25, v1.numel())


# --- helpers --------------------------------------------------------------------------------

def test_token_chunks_and_pad_rows_equal_loops():
    seqs = [torch.arange(7), torch.arange(10, 13), torch.arange(20, 29)]
    chunks = token_chunks(seqs, 3)
    expected = [s[i:i + 3].tolist() for s in seqs for i in range(0, len(s) - 2, 3)]
    assert chunks.tolist() == expected
    kept = token_chunks(seqs, 3, pad_id=-1)
    assert kept.tolist() == expected[:2] + [[6, -1, -1], [10, 11, 12]] + expected[3:]
    padded = pad_rows(seqs, 5, pad_id=0)
    assert padded.tolist() == [[0, 1, 2, 3, 4], [10, 11, 12, 0, 0], [20, 21, 22, 23, 24]]
    with pytest.raises(ValueError, match="window"):
        token_chunks([torch.arange(2)], 3)


def test_group_means_equal_a_loop_over_real_tokens_and_the_sentence_encoder():
    encoder = Encoder(12, 8, 2, 16, 1, max_len=4, padding_idx=0, dropout=0.2, seed=0).double()
    tokens = torch.tensor([[3, 4, 0, 0], [5, 6, 7, 8], [9, 0, 0, 0]])
    groups = torch.tensor([1, 0, 1])
    encoder.train()
    got = group_means(encoder, tokens, groups, 2)
    assert encoder.training  # the mode is restored
    encoder.eval()
    with torch.no_grad():
        h = encoder(tokens)
    doc1 = torch.cat([h[0, :2], h[2, :1]]).mean(0)
    assert float((got[1] - doc1).abs().max()) < 1e-14
    assert float((got[0] - h[1].mean(0)).abs().max()) < 1e-14
    sentences = group_means(encoder, tokens, torch.arange(3), 3)
    with torch.no_grad():
        assert float((sentences - SentenceEncoder(encoder)(tokens)).abs().max()) < 1e-14
    with pytest.raises(ValueError, match="groups"):
        group_means(encoder, tokens, torch.tensor([0, 0, 0]), 2)


# --- bad input ------------------------------------------------------------------------------

_ids = torch.ones(2, 3, dtype=torch.long)
_x = torch.zeros(4, 3)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: bert_mask(_ids, mask_id=1, vocab_size=5, p=-0.1), "p must"),
        (lambda: bert_mask(_ids, mask_id=1, vocab_size=5, p=1.5), "p must"),
        (lambda: bert_mask(_ids, mask_id=5, vocab_size=5), "mask_id"),
        (lambda: bert_mask(_ids.double(), mask_id=1, vocab_size=5), "tokens"),
        (lambda: bert_mask(_ids * 9, mask_id=1, vocab_size=5), "tokens"),
        (lambda: bert_mask(_ids, mask_id=1, vocab_size=5,
                           padding_mask=torch.zeros(3, 2, dtype=torch.bool)), "padding_mask"),
        (lambda: bert_mask(_ids, mask_id=1, vocab_size=5, padding_mask=torch.zeros(2, 3)),
         "padding_mask"),
        (lambda: bert_mask(_ids, mask_id=1, vocab_size=2, first_regular_id=2), "vocab_size"),
        (lambda: masked_positions(_ids.double(), 3), "labels"),
        (lambda: masked_positions(_ids, 0), "slots"),
        (lambda: info_nce(_x, torch.zeros(4, 2), temperature=0.1), "queries and keys"),
        (lambda: info_nce(_x, _x, temperature=0.0), "temperature"),
        (lambda: info_nce(_x, _x, temperature=-1.0), "temperature"),
        (lambda: info_nce(_x, _x, temperature=0.1, negatives=torch.zeros(5, 2)), "negatives"),
        (lambda: info_nce(_ids, _ids, temperature=0.1), "queries"),
        (lambda: info_nce(torch.zeros(4), torch.zeros(4), temperature=0.1), "queries"),
        (lambda: momentum_update(nn.Linear(2, 2), nn.Linear(2, 2), m=1.5), "m must"),
        (lambda: momentum_update(nn.Linear(2, 2), nn.Linear(2, 2), m=-0.1), "m must"),
        (lambda: momentum_update(nn.Linear(2, 2), nn.Linear(3, 2), m=0.5), "target parameter"),
        (lambda: momentum_update(nn.Linear(2, 2), nn.Sequential(), m=0.5), "target parameters"),
        (lambda: momentum_update("net", nn.Linear(2, 2), m=0.5), "target"),
        (lambda: momentum_hook(2.0), "m must"),
        (lambda: MomentumContrast(6, 0, 3), "sizes"),
        (lambda: translations(torch.zeros(2, 10), 3), "images"),
        (lambda: translations(torch.zeros(2, 9), 3, shift=3), "shift"),
        (lambda: contrastive_views(torch.zeros(9, 2, 4), torch.Generator(), batch_size=2,
                                   drop=1.0), "drop"),
        (lambda: set_dropout(nn.Dropout(), 1.0), "p must"),
        (lambda: pad_rows([], 3), "sequences"),
        (lambda: pad_rows([torch.arange(0)], 3), "sequences"),
        (lambda: group_means(nn.Linear(2, 2), _ids, torch.zeros(2, dtype=torch.long), 1),
         "encoder"),
    ],
    ids=case_id,
)
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
