"""dlnotes.rnn against torch.nn.RNN / nn.LSTM, autograd Jacobians, matrix powers and
separate training runs."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlnotes.rnn import (
    SequenceRegressor,
    TanhRNN,
    adding_problem,
    gradient_reach,
    hidden_jacobians,
    jacobian_norms,
    regression_mse,
    scale_spectral_radius,
    train_on_adding,
)
from dlnotes.training import fit


def double_rnn(input_size=3, hidden=5, seed=0, nonlinearity="tanh"):
    return TanhRNN(input_size, hidden, nonlinearity=nonlinearity, seed=seed).double()


def test_tanh_rnn_matches_torch_rnn_with_the_same_weights_and_gradients():
    ours = double_rnn()
    ref = nn.RNN(3, 5, batch_first=True).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, name + "_l0").copy_(getattr(ours, name))
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    h0 = torch.randn(4, 5, dtype=torch.float64)
    states, _ = ours(x, h0)
    ref_states, ref_last = ref(x, h0[None])
    assert torch.allclose(states, ref_states, atol=1e-12)
    assert torch.allclose(states[:, -1], ref_last[0], atol=1e-12)
    upstream = torch.randn_like(states)
    grads = torch.autograd.grad((states * upstream).sum(), [ours.weight_hh, ours.weight_ih])
    ref_grads = torch.autograd.grad((ref_states * upstream).sum(),
                                    [ref.weight_hh_l0, ref.weight_ih_l0])
    for g, r in zip(grads, ref_grads, strict=True):
        assert torch.allclose(g, r, atol=1e-12)


def test_default_initialisation_has_torch_rnns_range_and_is_reproducible():
    a, b = TanhRNN(2, 16, seed=3), TanhRNN(2, 16, seed=3)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
        assert float(p.detach().abs().max()) <= 1 / math.sqrt(16)
    assert not torch.equal(a.weight_hh, TanhRNN(2, 16, seed=4).weight_hh)


def state_after(rnn, x, t, h_t):
    """h_T as a function of the state h_t at step t (x holds steps 1..T)."""
    states, _ = rnn(x[None, t:], h_t[None])
    return states[0, -1]


@pytest.mark.parametrize("nonlinearity", ["tanh", "sigmoid", "identity"])
def test_hidden_jacobians_match_torch_autograd_functional_jacobian(nonlinearity):
    rnn = double_rnn(nonlinearity=nonlinearity, seed=2)
    x = torch.randn(6, 3, dtype=torch.float64)
    h0 = torch.randn(5, dtype=torch.float64)
    jac = hidden_jacobians(rnn, x, h0)
    assert jac.shape == (7, 5, 5)
    with torch.no_grad():
        states, _ = rnn(x[None], h0[None])
    all_states = torch.cat([h0[None], states[0]])
    for t in range(7):
        expected = torch.autograd.functional.jacobian(
            lambda h, t=t: state_after(rnn, x, t, h) if t < 6 else h, all_states[t])
        assert torch.allclose(jac[t], expected, atol=1e-12), t


def test_linear_rnn_jacobians_are_powers_of_the_recurrent_matrix():
    rnn = double_rnn(nonlinearity="identity", seed=5)
    jac = hidden_jacobians(rnn, torch.randn(8, 3, dtype=torch.float64))
    w = rnn.weight_hh.detach()
    for t in range(9):
        assert torch.allclose(jac[t], torch.linalg.matrix_power(w, 8 - t), atol=1e-12)


@given(st.floats(0.2, 3.0), st.integers(0, 20))
@settings(max_examples=25, deadline=None)
def test_tanh_jacobian_norms_obey_the_largest_singular_value_bound(radius, seed):
    rnn = double_rnn(hidden=6, seed=seed)
    with torch.no_grad():
        rnn.weight_hh.copy_(scale_spectral_radius(rnn.weight_hh, radius))
    gen = torch.Generator().manual_seed(seed)
    norms = jacobian_norms(rnn, torch.randn(15, 3, generator=gen, dtype=torch.float64))
    sigma = float(torch.linalg.matrix_norm(rnn.weight_hh.detach(), ord=2))
    bound = torch.tensor([sigma ** (15 - t) for t in range(16)], dtype=torch.float64)
    assert norms[-1] == pytest.approx(1.0)
    assert bool((norms <= bound * (1 + 1e-9)).all())


@given(st.floats(0.1, 5.0), st.integers(0, 20))
@settings(max_examples=25, deadline=None)
def test_scale_spectral_radius_sets_the_largest_eigenvalue_modulus(radius, seed):
    w = torch.randn(7, 7, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    scaled = scale_spectral_radius(w, radius)
    assert float(torch.linalg.eigvals(scaled).abs().max()) == pytest.approx(radius, rel=1e-9)


def test_adding_problem_marks_one_value_in_each_half_and_targets_their_sum():
    X, y = adding_problem(500, 50, torch.Generator().manual_seed(0))
    assert X.shape == (500, 50, 2) and y.shape == (500,)
    markers = X[:, :, 1]
    assert bool((markers.sum(1) == 2).all())
    assert bool((markers[:, :25].sum(1) == 1).all()) and bool((markers[:, 25:].sum(1) == 1).all())
    manual = torch.stack([X[i, markers[i] == 1, 0].sum() for i in range(500)])
    assert torch.allclose(y, manual)


def test_predicting_one_on_the_adding_problem_has_mse_one_sixth():
    _, y = adding_problem(200_000, 4, torch.Generator().manual_seed(1))
    mse = float(((y - 1) ** 2).mean())
    assert mse == pytest.approx(1 / 6, abs=0.003)


def test_sequence_regressor_is_seeded_and_adds_the_forget_bias_to_the_lstm():
    a = SequenceRegressor("lstm", 2, 4, seed=1)
    b = SequenceRegressor("lstm", 2, 4, forget_bias=1.0, seed=1)
    delta = b.ih.bias - a.ih.bias
    assert torch.allclose(delta, torch.tensor([0.0] * 4 + [1.0] * 4 + [0.0] * 8))
    assert torch.equal(a.hh.weight, b.hh.weight)
    assert not torch.equal(a.hh.weight, SequenceRegressor("lstm", 2, 4, seed=2).hh.weight)
    assert float(a.hh.weight.detach().abs().max()) <= 0.5  # PyTorch's range 1/sqrt(H)
    assert a(torch.zeros(3, 5, 2)).shape == (3,)


def torch_twin(model):
    """torch.nn.RNN / nn.LSTM and a read-out carrying the model's weights."""
    layer = (nn.LSTM if model.cell == "lstm" else nn.RNN)(
        model.input_size, model.hidden_size, batch_first=True).double()
    with torch.no_grad():
        layer.weight_ih_l0.copy_(model.ih.weight)
        layer.bias_ih_l0.copy_(model.ih.bias)
        layer.weight_hh_l0.copy_(model.hh.weight)
        layer.bias_hh_l0.copy_(model.hh.bias)
    twin = lambda x: model.out(layer(x)[0][:, -1])[:, 0]  # noqa: E731
    twin.layer = layer
    return twin


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_sequence_regressor_equals_torch_rnn_and_lstm_with_copied_weights(cell):
    model = SequenceRegressor(cell, 3, 5, forget_bias=1.0, seed=4).double()
    x = torch.randn(6, 9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    twin = torch_twin(model)
    assert torch.allclose(model(x), twin(x), atol=1e-12)
    ours = torch.autograd.grad(model(x).square().sum(), [model.hh.weight, model.ih.weight])
    theirs = torch.autograd.grad(twin(x).square().sum(),
                                 [twin.layer.weight_hh_l0, twin.layer.weight_ih_l0])
    for g, r in zip(ours, theirs, strict=True):
        assert torch.allclose(g, r, atol=1e-12)


def test_gradient_reach_equals_the_ratio_from_torch_lstm():
    model = SequenceRegressor("lstm", 2, 4, forget_bias=1.0, seed=0).double()
    X, y = adding_problem(32, 12, torch.Generator().manual_seed(0))
    X, y = X.double(), y.double()
    Xg = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(((torch_twin(model)(Xg) - y) ** 2).mean(), Xg)
    expected = float(grad[:, 0].norm() / grad[:, -1].norm())
    assert gradient_reach(model, X, y) == pytest.approx(expected, rel=1e-10)


def squared_error(model, X, y):
    return ((model(X) - y) ** 2).mean()


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_side_by_side_training_equals_separate_fit_runs(cell):
    length, batch = 8, 8
    models = [SequenceRegressor(cell, 2, 3, forget_bias=1.0, seed=s).double() for s in (0, 1)]
    alone = [SequenceRegressor(cell, 2, 3, forget_bias=1.0, seed=s).double() for s in (0, 1)]
    history = train_on_adding(models, [10, 11], length=length, steps=12, lr=[0.05, 0.02],
                              batch_size=batch, clip=0.3)
    assert history.loss.shape == (1, 2)
    for m, seed, lr in zip(alone, (10, 11), (0.05, 0.02), strict=True):
        gen = torch.Generator().manual_seed(seed)
        data = tuple(t.double() for t in adding_problem(12 * batch, length, gen))
        fit(m, squared_error, data, steps=12, batch_size=batch, optimizer="adam", lr=lr,
            clip_grad_norm=0.3, generator=gen)
    for trained, reference in zip(models, alone, strict=True):
        for p, q in zip(trained.parameters(), reference.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-9)
    assert not torch.allclose(models[0].hh.weight, SequenceRegressor(
        cell, 2, 3, forget_bias=1.0, seed=0).double().hh.weight)


def test_regression_mse_is_each_models_mse_computed_by_torch():
    models = [SequenceRegressor("rnn", 2, 4, seed=s).double() for s in range(2)]
    X, y = adding_problem(30, 8, torch.Generator().manual_seed(0))
    mse = regression_mse(models, X, y)
    for r, m in enumerate(models):
        with torch.no_grad():
            expected = torch.nn.functional.mse_loss(torch_twin(m)(X.double()), y.double())
        assert float(mse[r]) == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: TanhRNN(0, 3), "input_size"),
        (lambda: TanhRNN(2, 3, nonlinearity="relu"), "nonlinearity"),
        (lambda: TanhRNN(2, 3)(torch.zeros(2, 3)), "x"),
        (lambda: TanhRNN(2, 3)(torch.zeros(2, 4, 5)), "features"),
        (lambda: TanhRNN(2, 3)(torch.zeros(2, 4, 2), torch.zeros(3, 3)), "h0"),
        (lambda: hidden_jacobians(TanhRNN(2, 3), torch.zeros(4, 2, 1)), "x"),
        (lambda: hidden_jacobians(TanhRNN(2, 3), torch.zeros(0, 2)), "x must hold at least 1 time"),
        (lambda: jacobian_norms(TanhRNN(2, 3), torch.full((3, 2), math.nan)), "x"),
        (lambda: scale_spectral_radius(torch.zeros(2, 3), 1.0), "square"),
        (lambda: scale_spectral_radius(torch.eye(2), 0.0), "radius"),
        (lambda: scale_spectral_radius(torch.tensor([[0.0, 1.0], [0.0, 0.0]]), 1.0),
         "non-zero eigenvalue"),
        (lambda: adding_problem(0, 5, torch.Generator()), "n"),
        (lambda: adding_problem(3, 1, torch.Generator()), "length"),
        (lambda: SequenceRegressor("gru", 2, 3), "cell"),
        (lambda: SequenceRegressor("lstm", 2, 3, forget_bias=math.inf), "forget_bias"),
        (lambda: SequenceRegressor("rnn", 2, 3)(torch.zeros(2, 4, 3)), "features"),
        (lambda: train_on_adding([], [], length=5, steps=1, lr=0.1), "models must hold"),
        (lambda: train_on_adding([SequenceRegressor("rnn", 3, 2)], [0],
                                 length=5, steps=1, lr=0.1), "2 inputs"),
        (lambda: train_on_adding([SequenceRegressor("rnn", 2, 2)], [0, 1],
                                 length=5, steps=1, lr=0.1), "data_seeds"),
        (lambda: train_on_adding([SequenceRegressor("rnn", 2, 2)], [0],
                                 length=5, steps=0, lr=0.1), "steps"),
        (lambda: train_on_adding([SequenceRegressor("rnn", 2, 2)], [0],
                                 length=5, steps=1, lr=0.1, clip=0.0), "clip"),
        (lambda: regression_mse([SequenceRegressor("rnn", 2, 2)],
                                torch.zeros(3, 4, 2), torch.zeros(4)), "same number of rows"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
