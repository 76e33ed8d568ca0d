"""dlnotes.robustness against the network itself, functional_call, PyTorch's label smoothing,
separate training runs and closed forms."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import case_id
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.func import functional_call

from dlnotes.data import classification_split
from dlnotes.robustness import (
    accuracy_under_input_noise,
    digit_pixels,
    input_sensitivity,
    noise_injection_batches,
    noise_injection_loss,
)
from dlnotes.training import fit, fit_replicas, mlp

f64 = torch.float64


def test_digit_pixels_split_like_classification_split_in_units_of_the_pixel_spread():
    split, scale = digit_pixels()
    reference = classification_split("digits")
    assert torch.equal(split.y_train, reference.y_train)
    assert torch.equal(split.y_test, reference.y_test)
    images, _ = load_digits(return_X_y=True)
    raw = split.X_train.numpy() * scale
    raw -= raw.min()  # the centring constant: the darkest pixel is 0 gray levels
    assert np.allclose(raw, np.round(raw), atol=1e-9) and raw.max() == pytest.approx(16.0)
    assert split.X_train.mean().item() == pytest.approx(0.0, abs=1e-12)
    assert split.X_train.std(unbiased=False).item() == pytest.approx(1.0, rel=1e-12)
    # The test images use the training images' centre and scale: they are gray levels too.
    raw_test = split.X_test.numpy() * scale - (split.X_train.numpy() * scale).min()
    assert np.allclose(raw_test, np.round(raw_test), atol=1e-9)
    assert sorted(np.unique(np.round(raw))) == sorted(np.unique(images))


@pytest.mark.parametrize("seed", [0, 4])
def test_digit_pixels_is_scikit_learns_stratified_split_exactly(seed):
    images, labels = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(images.astype(np.float64), labels, test_size=0.3,
                                              random_state=seed, stratify=labels)
    split, scale = digit_pixels(seed=seed)
    assert scale == X_tr.std()
    assert np.array_equal(split.X_train.numpy(), (X_tr - X_tr.mean()) / scale)
    assert np.array_equal(split.X_test.numpy(), (X_te - X_tr.mean()) / scale)
    assert np.array_equal(split.y_train.numpy(), y_tr)
    assert np.array_equal(split.y_test.numpy(), y_te)


def _draws(B=6, d=4, hidden=5, P=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(B, d, generator=gen, dtype=f64), torch.rand(B, hidden, generator=gen,
                                                                    dtype=f64),
            torch.randn(P, generator=gen, dtype=f64))


def _net_and_batch():
    net = mlp([4, 5, 3], seed=0).double()
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(6, 4, generator=gen, dtype=f64)
    y = torch.randint(0, 3, (6,), generator=gen)
    P = sum(p.numel() for p in net.parameters())
    return net, X, y, P


def test_noise_injection_loss_without_noise_is_the_plain_cross_entropy():
    net, X, y, P = _net_and_batch()
    z, u, w = _draws(P=P)
    assert torch.allclose(noise_injection_loss(net, X, y, z, u, w), F.cross_entropy(net(X), y),
                          rtol=1e-13)


def test_noise_injection_loss_matches_the_network_under_each_kind_of_noise():
    net, X, y, P = _net_and_batch()
    z, u, w = _draws(P=P)
    assert torch.allclose(noise_injection_loss(net, X, y, z, u, w, input_std=0.7),
                          F.cross_entropy(net(X + 0.7 * z), y), rtol=1e-13)
    flat = w.split([p.numel() for p in net.parameters()])
    perturbed = {name: p + 0.1 * f.reshape(p.shape)
                 for (name, p), f in zip(net.named_parameters(), flat, strict=True)}
    assert torch.allclose(noise_injection_loss(net, X, y, z, u, w, weight_std=0.1),
                          F.cross_entropy(functional_call(net, perturbed, (X,)), y), rtol=1e-13)
    hidden = torch.relu(net[0](X)) * (u >= 0.3) / 0.7
    assert torch.allclose(noise_injection_loss(net, X, y, z, u, w, dropout=0.3),
                          F.cross_entropy(net[2](hidden), y), rtol=1e-13)
    assert torch.allclose(noise_injection_loss(net, X, y, z, u, w, smoothing=0.2),
                          F.cross_entropy(net(X), y, label_smoothing=0.2), rtol=1e-13)


def _setup(R_settings):
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(50, 4, generator=gen, dtype=f64)
    y = torch.randint(0, 3, (50,), generator=gen)
    gens = [torch.Generator().manual_seed(s) for s in range(len(R_settings))]
    data = noise_injection_batches(
        X, y, 8, generators=gens, n_params=43, hidden=5,
        input_noise=[s["input_std"] > 0 for s in R_settings],
        weight_noise=[s["weight_std"] > 0 for s in R_settings],
        dropout=[s["dropout"] > 0 for s in R_settings])
    return data, gens


SETTINGS = [{"input_std": 0.0, "weight_std": 0.0, "dropout": 0.0, "smoothing": 0.0},
            {"input_std": 0.5, "weight_std": 0.0, "dropout": 0.0, "smoothing": 0.0},
            {"input_std": 0.0, "weight_std": 0.05, "dropout": 0.0, "smoothing": 0.0},
            {"input_std": 0.0, "weight_std": 0.0, "dropout": 0.25, "smoothing": 0.1}]


def test_batches_draw_only_the_noise_a_replica_needs_and_pair_batches_by_seed():
    data, gens = _setup(SETTINGS)
    twin_data, (twin, *_) = _setup(SETTINGS[1:] + SETTINGS[:1])  # seed 0 draws input noise
    for _ in range(3):  # the same seed keeps the same batches although it draws noise
        mine, theirs = data(gens[0]), twin_data(twin)
        assert torch.equal(mine[0], theirs[0]) and torch.equal(mine[1], theirs[1])
        assert torch.equal(mine[2], torch.zeros(8, 4, dtype=f64)) and theirs[2].std() > 0.5
    plain, noisy_input, noisy_weights, dropped = (data(g) for g in gens)
    assert torch.equal(plain[2], torch.zeros(8, 4, dtype=f64))
    assert torch.equal(plain[3], torch.ones(8, 5, dtype=f64))
    assert torch.equal(plain[4], torch.zeros(43, dtype=f64))
    assert noisy_input[2].std() > 0.5 and noisy_weights[4].std() > 0.5
    assert 0 <= float(dropped[3].min()) and float(dropped[3].max()) < 1


def test_replicas_with_noise_equal_separate_fit_runs():
    nets = [mlp([4, 5, 3], seed=s).double() for s in range(4)]
    refs = [mlp([4, 5, 3], seed=s).double() for s in range(4)]
    data, gens = _setup(SETTINGS)
    fit_replicas(nets, noise_injection_loss, data, generators=gens, steps=15, lr=0.2,
                 replica_kwargs={k: torch.tensor([s[k] for s in SETTINGS], dtype=f64)
                                 for k in SETTINGS[0]})
    data, gens = _setup(SETTINGS)
    for ref, g, setting in zip(refs, gens, SETTINGS, strict=True):
        fit(ref, noise_injection_loss, data, steps=15, lr=0.2, generator=g,
            loss_kwargs=setting)
    for net, ref in zip(nets, refs, strict=True):
        for a, b in zip(net.parameters(), ref.parameters(), strict=True):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_accuracy_without_noise_is_the_accuracy_and_with_noise_matches_a_linear_closed_form():
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(400, 2, generator=gen, dtype=f64)
    w = torch.tensor([1.5, -0.5], dtype=f64)
    y = (X @ w > 0).long()
    net = nn.Linear(2, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.stack([-w / 2, w / 2]))
        net.bias.zero_()
    acc = accuracy_under_input_noise([net], X, y, [0.0, 0.8], draws=200, seed=1)
    assert acc[0, 0] == 1.0
    # The prediction flips when the noise along w crosses the margin: P(correct) = Phi(m/(s|w|)).
    margins = (X @ w).abs() / w.norm()
    expected = float(torch.as_tensor(stats.norm.cdf((margins / 0.8).numpy())).mean())
    assert acc[0, 1] == pytest.approx(expected, abs=0.01)


def test_input_sensitivity_is_the_gradient_norm_of_linear_and_quadratic_predictions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    w = np.array([2.0, -1.0, 0.5])
    assert np.allclose(input_sensitivity(lambda Z: Z @ w, X), np.linalg.norm(w), rtol=1e-8)
    A = rng.normal(size=(3, 3))
    grads = X @ (A + A.T) + w
    assert np.allclose(input_sensitivity(lambda Z: np.einsum("ni,ij,nj->n", Z, A, Z) + Z @ w, X),
                       np.linalg.norm(grads, axis=1), rtol=1e-7)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: digit_pixels(test_size=1.5), "test_size"),
        (lambda: noise_injection_batches(torch.zeros(3, 2), torch.zeros(4), 2, generators=[],
                                         n_params=1, hidden=1, input_noise=[], weight_noise=[],
                                         dropout=[]), "same number of rows"),
        (lambda: noise_injection_batches(torch.zeros(3, 2), torch.zeros(3), 2,
                                         generators=[torch.Generator()], n_params=1, hidden=1,
                                         input_noise=[], weight_noise=[True], dropout=[True]),
         "input_noise"),
        (lambda: accuracy_under_input_noise([nn.Linear(2, 2)], torch.zeros(3, 2),
                                            torch.zeros(3).long(), [-1.0]), "stds"),
        (lambda: accuracy_under_input_noise([nn.Linear(2, 2)], torch.zeros(3, 2),
                                            torch.zeros(3).long(), [1.0], draws=0), "draws"),
        (lambda: input_sensitivity(lambda Z: Z[:, 0], np.zeros(3)), "X"),
        (lambda: input_sensitivity(lambda Z: Z[:, 0], np.zeros((3, 2)), step=0.0), "step"),
    ],
    ids=case_id,
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()

