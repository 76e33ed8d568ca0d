"""Tests of dlnotes.dropout: inverted dropout, its ridge form, and image augmentation."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Ridge
from torch import nn

from dlnotes.dropout import (
    Dropout,
    augmented_objective,
    dropout,
    dropout_mlp,
    dropout_ridge_solution,
    random_shifts,
    rotate_images,
    shift_images,
    train_dropout_regression,
)
from dlnotes.linear import ridge_solution
from dlnotes.training import mlp, train_classifier

# ------------------------------------------------------------------------------------ dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_has_the_law_of_torch_dropout(p):
    x = torch.linspace(0.5, 2.0, 200_000, dtype=torch.float64)
    ours = dropout(x, p, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    theirs = F.dropout(x, p, training=True)
    n = x.numel()
    se = math.sqrt(p * (1 - p) / n)
    for out in (ours, theirs):
        kept = out != 0
        # kept entries are exactly x / (1 - p), as in torch
        assert torch.allclose(out[kept], x[kept] / (1 - p), rtol=1e-15, atol=0)
        assert abs(float((~kept).double().mean()) - p) < 5 * se
    assert abs(float((ours == 0).double().mean()) - float((theirs == 0).double().mean())) < 7 * se


def test_dropout_keeps_the_expectation_and_adds_variance_p_over_one_minus_p_times_x_squared():
    p, samples = 0.3, 40_000
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    draws = dropout(x.expand(samples, 3), p, generator=torch.Generator().manual_seed(0))
    mean, var = draws.mean(0), draws.var(0)
    expected_var = p / (1 - p) * x**2
    assert torch.all((mean - x).abs() < 5 * torch.sqrt(expected_var / samples))
    assert torch.allclose(var, expected_var, rtol=0.05)


def test_dropout_is_the_identity_when_not_training_or_p_is_zero_and_zero_at_p_one():
    x = torch.randn(4, 5)
    assert dropout(x, 0.7, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))


@settings(max_examples=30, deadline=None)
@given(p=st.floats(0.0, 0.99), seed=st.integers(0, 2**16))
def test_every_dropout_output_is_zero_or_the_rescaled_input(p, seed):
    x = torch.randn(50, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) + 3
    out = dropout(x, p, generator=torch.Generator().manual_seed(seed))
    kept = out != 0
    assert torch.allclose(out[kept], x[kept] / (1 - p))


def test_dropout_layer_is_active_in_train_mode_only_and_reproducible_with_its_generator():
    x = torch.ones(1000)
    a = Dropout(0.5, torch.Generator().manual_seed(3))
    b = Dropout(0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a(x), b(x))
    assert set(a(x).unique().tolist()) == {0.0, 2.0}
    assert a.eval()(x) is x


def test_dropout_mlp_without_dropout_trains_exactly_like_mlp():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(60, 5, generator=gen)
    y = (X[:, 0] > 0).long()
    a, b = dropout_mlp([5, 8, 2], 0.0, seed=4), mlp([5, 8, 2], seed=4)
    assert len(a) == len(b)
    train_classifier(a, X, y, epochs=3, lr=0.1, batch_size=20, seed=1)
    train_classifier(b, X, y, epochs=3, lr=0.1, batch_size=20, seed=1)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_dropout_mlp_places_dropout_after_hidden_activations_and_on_inputs():
    net = dropout_mlp([4, 6, 6, 3], 0.5, input_p=0.2, seed=0)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout",
                     "Linear"]
    assert [m.p for m in net if isinstance(m, Dropout)] == [0.2, 0.5, 0.5]
    x = torch.randn(7, 4)
    net.eval()
    assert torch.allclose(net(x), mlp([4, 6, 6, 3], seed=0)(x))


# ------------------------------------------------------------------ dropout as adaptive ridge


def regression_data(seed=0, n=200, scales=(0.5, 1.0, 2.0, 4.0)):
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((n, len(scales))) * np.array(scales)
    y = X @ gen.standard_normal(len(scales)) + 0.5 * gen.standard_normal(n)
    return X, y


def test_dropout_ridge_solution_solves_its_normal_equations():
    X, y = regression_data()
    p = 0.3
    G = X.T @ X
    expected = np.linalg.solve(G + p / (1 - p) * np.diag(np.diag(G)), X.T @ y)
    assert np.allclose(dropout_ridge_solution(X, y, p), expected, rtol=1e-10)


def test_dropout_ridge_is_ridge_on_standardised_features():
    X, y = regression_data(1)
    X = (X - X.mean(0)) / X.std(0)
    p = 0.4
    ours = dropout_ridge_solution(X, y, p)
    assert np.allclose(ours, ridge_solution(X, y, p / (1 - p)), rtol=1e-10)
    sk = Ridge(alpha=X.shape[0] * p / (1 - p), fit_intercept=False).fit(X, y).coef_
    assert np.allclose(ours, sk, rtol=1e-8)


def test_dropout_ridge_predictions_do_not_depend_on_the_units_of_a_feature():
    X, y = regression_data(2)
    c = np.array([1.0, 100.0, 0.01, 1.0])
    w, w_scaled = dropout_ridge_solution(X, y, 0.5), dropout_ridge_solution(X * c, y, 0.5)
    assert np.allclose(w_scaled * c, w, rtol=1e-9)
    r, r_scaled = ridge_solution(X, y, 1.0), ridge_solution(X * c, y, 1.0)
    assert not np.allclose(r_scaled * c, r, rtol=1e-3)


def test_dropout_ridge_at_p_zero_is_least_squares():
    X, y = regression_data(3)
    assert np.allclose(dropout_ridge_solution(X, y, 0.0), np.linalg.lstsq(X, y, rcond=None)[0])


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_monte_carlo_dropout_training_converges_to_the_closed_form(p):
    X, y = regression_data(4)
    closed = dropout_ridge_solution(X, y, p)
    trained = train_dropout_regression(X, y, p, steps=6000, lr=0.05, seed=0)
    # Monte Carlo error only: a few per cent of the coefficients' size
    assert np.abs(trained - closed).max() < 0.03 * np.abs(closed).max()
    # and much closer to it than to least squares or to plain ridge of the same average size
    ls = np.linalg.lstsq(X, y, rcond=None)[0]
    assert np.abs(trained - closed).max() < 0.25 * np.abs(ls - closed).max()


def test_dropout_training_without_dropout_is_gradient_descent_to_least_squares():
    X, y = regression_data(5)
    trained = train_dropout_regression(X, y, 0.0, steps=3000, lr=0.1)
    assert np.allclose(trained, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-6)


# ------------------------------------------------------------------------------ augmentation


@settings(max_examples=40, deadline=None)
@given(dy=st.integers(-2, 2), dx=st.integers(-2, 2), seed=st.integers(0, 2**16))
def test_shifts_keep_shape_and_pixel_mass_when_nothing_leaves_the_frame(dy, dx, seed):
    gen = torch.Generator().manual_seed(seed)
    images = torch.zeros(3, 8, 8, dtype=torch.float64)
    images[:, 2:6, 2:6] = torch.rand(3, 4, 4, generator=gen, dtype=torch.float64)
    moved = shift_images(images, dy, dx)
    assert moved.shape == images.shape
    assert torch.allclose(moved.sum((1, 2)), images.sum((1, 2)), rtol=1e-14)
    assert torch.equal(shift_images(moved, -dy, -dx), images)


def test_shift_matches_torch_roll_inside_the_frame_and_loses_what_leaves_it():
    images = torch.rand(2, 8, 8, dtype=torch.float64) + 0.1
    moved = shift_images(images, 1, -2)
    rolled = torch.roll(images, shifts=(1, -2), dims=(1, 2))
    assert torch.equal(moved[:, 1:, :6], rolled[:, 1:, :6])
    assert torch.all(moved[:, 0] == 0) and torch.all(moved[:, :, 6:] == 0)
    lost = images[:, 7].sum(1) + images[:, :7, :2].sum((1, 2))
    assert torch.allclose(moved.sum((1, 2)), images.sum((1, 2)) - lost)


def test_random_shifts_draw_each_allowed_offset_and_only_those():
    one = torch.zeros(1, 5, 5, dtype=torch.float64)
    one[0, 2, 2] = 1.0
    moved = random_shifts(one.expand(4000, 5, 5), 1, 2, torch.Generator().manual_seed(0))
    rows, cols = moved.nonzero()[:, 1] - 2, moved.nonzero()[:, 2] - 2
    assert len(rows) == 4000  # every image still holds its one pixel
    assert set(rows.tolist()) == {-1, 0, 1} and set(cols.tolist()) == {-2, -1, 0, 1, 2}
    counts = torch.bincount((rows + 1) * 5 + (cols + 2), minlength=15).double()
    assert float(counts.min()) > 0.7 * 4000 / 15


def test_random_shifts_with_zero_range_are_the_identity():
    images = torch.rand(10, 8, 8)
    assert torch.equal(random_shifts(images, 0, 0), images)


def test_rotation_by_right_angles_equals_rot90_and_flips():
    images = torch.rand(3, 8, 8, dtype=torch.float64)
    for k in (1, 2, 3):
        assert torch.allclose(rotate_images(images, 90.0 * k), torch.rot90(images, k, (1, 2)),
                              atol=1e-12)
    assert torch.allclose(rotate_images(images, 180.0), torch.flip(images, (1, 2)), atol=1e-12)
    assert torch.allclose(rotate_images(images, 0.0), images, atol=1e-12)


@pytest.mark.parametrize("degrees", [5.0, 15.0, -30.0])
def test_small_rotations_keep_shape_and_nearly_all_mass_of_a_centred_blob(degrees):
    i = torch.arange(33, dtype=torch.float64) - 16
    blob = torch.exp(-(i[:, None] ** 2 + (i[None] - 2) ** 2 / 4) / (2 * 3.0**2))[None]
    turned = rotate_images(blob, degrees)
    assert turned.shape == blob.shape
    assert float(turned.sum() / blob.sum()) == pytest.approx(1.0, abs=1e-3)
    # the blob's long axis turns with the image: its second moments rotate by the angle
    def angle(img):
        w = img[0] / img[0].sum()
        xx, yy = i[None, :], i[:, None]
        mx, my = (w * xx).sum(), (w * yy).sum()
        cxx, cyy = (w * (xx - mx) ** 2).sum(), (w * (yy - my) ** 2).sum()
        cxy = (w * (xx - mx) * (yy - my)).sum()
        return 0.5 * math.degrees(math.atan2(float(2 * cxy), float(cxx - cyy)))
    # counter-clockwise on screen is clockwise in (column, row-down) coordinates
    assert angle(turned) - angle(blob) == pytest.approx(-degrees, abs=0.5)


def test_rotation_accepts_one_angle_per_image():
    images = torch.rand(2, 8, 8, dtype=torch.float64)
    both = rotate_images(images, torch.tensor([90.0, 180.0]))
    assert torch.allclose(both[0], torch.rot90(images[0], 1, (0, 1)), atol=1e-12)
    assert torch.allclose(both[1], torch.flip(images[1], (0, 1)), atol=1e-12)


def test_augmented_objective_feeds_the_augmented_batch_to_the_model():
    model = nn.Sequential(nn.Linear(16, 3))
    X = torch.rand(5, 16)
    y = torch.tensor([0, 1, 2, 0, 1])
    flip = augmented_objective(lambda im: torch.flip(im, (2,)), image_shape=(4, 4))
    loss, recorded = flip(model, X, y)
    expected = F.cross_entropy(model(torch.flip(X.reshape(5, 4, 4), (2,)).reshape(5, 16)), y)
    assert torch.allclose(loss, expected) and recorded is loss
    same = augmented_objective(lambda im: im, image_shape=(4, 4))
    assert torch.allclose(same(model, X, y)[0], F.cross_entropy(model(X), y))


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: dropout(torch.ones(3), -0.1), "p"),
        (lambda: dropout(torch.ones(3), 1.5), "p"),
        (lambda: dropout(torch.ones(3), math.nan), "p"),
        (lambda: dropout(torch.ones(3, dtype=torch.long), 0.5), "x"),
        (lambda: dropout(np.ones(3), 0.5), "x"),
        (lambda: Dropout(2.0), "p"),
        (lambda: dropout_mlp([4, 3, 2], 1.0), "p"),
        (lambda: dropout_mlp([4, 3, 2], 0.5, input_p=-0.2), "input_p"),
        (lambda: dropout_mlp([4], 0.5), "sizes"),
        (lambda: dropout_ridge_solution(np.ones((4, 2)), np.ones(4), 1.0), "p"),
        (lambda: dropout_ridge_solution(np.ones((4, 2)), np.ones(3), 0.5), "same number of rows"),
        (lambda: dropout_ridge_solution(np.ones(4), np.ones(4), 0.5), "X"),
        (lambda: dropout_ridge_solution(np.full((2, 2), np.inf), np.ones(2), 0.5), "X"),
        (lambda: train_dropout_regression(np.ones((4, 2)), np.ones(4), 0.5, steps=1, lr=0.1),
         "steps"),
        (lambda: train_dropout_regression(np.ones((4, 2)), np.ones(4), 0.5, steps=10, lr=0.0),
         "lr"),
        (lambda: train_dropout_regression(np.ones((4, 2)), np.ones((4, 1)), 0.5, steps=10,
                                          lr=0.1), "y"),
        (lambda: shift_images(torch.ones(8, 8), 8, 0), "dy"),
        (lambda: shift_images(torch.ones(8, 8), 0, -8), "dx"),
        (lambda: shift_images(torch.ones(8, 8), 0.5, 0), "dy"),
        (lambda: shift_images(torch.ones(8), 0, 0), "images"),
        (lambda: random_shifts(torch.ones(8, 8), 1, 1), "images"),
        (lambda: random_shifts(torch.ones(2, 8, 8), -1, 1), "max_dy"),
        (lambda: random_shifts(torch.ones(2, 8, 8), 1, 8), "max_dx"),
        (lambda: rotate_images(torch.ones(2, 8, 6), 10.0), "square"),
        (lambda: rotate_images(torch.ones(2, 8, 8), math.inf), "degrees"),
        (lambda: rotate_images(torch.ones(2, 8, 8), torch.zeros(3)), "degrees"),
        (lambda: augmented_objective(lambda im: im, image_shape=(8,)), "image_shape"),
        (lambda: augmented_objective(lambda im: im, image_shape=(8, 0)), "image_shape"),
    ],
    ids=[
        "dropout-negative-p", "dropout-p-above-one", "dropout-nan-p", "dropout-integer-x",
        "dropout-numpy-x", "layer-p", "mlp-p-one", "mlp-input-p", "mlp-sizes", "ridge-p-one",
        "ridge-rows", "ridge-1d-X", "ridge-inf", "train-steps", "train-lr", "train-2d-y",
        "shift-dy-too-large", "shift-dx-too-large", "shift-non-integer", "shift-1d",
        "random-shifts-2d", "random-shifts-negative", "random-shifts-too-large",
        "rotate-not-square", "rotate-inf", "rotate-wrong-length", "objective-shape-length",
        "objective-shape-zero",
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_random_shifts_equal_shift_images_with_the_offsets_drawn_from_the_same_generator():
    images = torch.rand(30, 6, 7, dtype=torch.float64)
    moved = random_shifts(images, 2, 1, torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    dys = torch.randint(-2, 3, (30,), generator=gen)
    dxs = torch.randint(-1, 2, (30,), generator=gen)
    for k in range(30):
        assert torch.equal(moved[k], shift_images(images[k], int(dys[k]), int(dxs[k])))
