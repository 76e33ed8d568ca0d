"""Tests of dlnotes.dropout: inverted dropout, its ridge form, and image augmentation."""

import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.linear_model import Ridge
from torch import nn

from dlnotes.dropout import (
    Dropout,
    MaskedMLP,
    ShiftSampler,
    augmented_objective,
    dropout,
    dropout_generator,
    dropout_mlp,
    dropout_ridge_solution,
    evaluation_callback,
    extra_steps,
    idle_unit_share,
    place_on_canvas,
    random_shifts,
    random_shifts_inside,
    rotate_images,
    scale_images,
    shift_images,
    slowdown_share,
    steps_to_reach,
    train_conditions,
    train_dropout_regression,
)
from dlnotes.linear import ridge_solution
from dlnotes.training import fit, fit_replicas, mlp, train_classifier

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


# -------------------------------------------------------- MaskedMLP: dropout set per replica


def small_batch(n=12, d=6, classes=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x, torch.randint(0, classes, (n,), generator=gen)


def test_masked_mlp_in_eval_mode_is_the_plain_mlp_with_the_same_seed():
    x, _ = small_batch()
    net = MaskedMLP([6, 9, 7, 3], seed=5).eval()
    assert torch.allclose(net(x, p=0.5, input_p=0.2), mlp([6, 9, 7, 3], seed=5).double()(x),
                          rtol=1e-12, atol=1e-12)


def test_masked_mlp_draws_inverted_dropout_masks_from_the_global_generator():
    x, _ = small_batch()
    net = MaskedMLP([6, 9, 3], seed=1).train()
    torch.manual_seed(7)
    out = net(x, p=0.4)
    torch.manual_seed(7)
    h = torch.relu(net.layers[0](x))
    keep = torch.rand_like(h) < 0.6
    assert torch.allclose(out, net.layers[1](h * keep / 0.6), rtol=1e-12, atol=1e-12)
    assert torch.equal(net(x, p=0.0), net.eval()(x))


def test_gradient_only_masks_keep_the_full_forward_pass_and_give_dropouts_gradients():
    x, y = small_batch()
    net = MaskedMLP([6, 9, 3], seed=2).train()
    torch.manual_seed(3)
    out = net(x, p=0.5, gradient_only=1.0)
    F.cross_entropy(out, y).backward()
    # reference by hand: the full network's output error, dropout's per-example unit gains
    torch.manual_seed(3)
    W1, b1 = net.layers[0].weight.detach(), net.layers[0].bias.detach()
    W2, b2 = net.layers[1].weight.detach(), net.layers[1].bias.detach()
    pre = x @ W1.T + b1
    gain = (torch.rand_like(pre) < 0.5) / 0.5
    h = torch.relu(pre)
    logits = h @ W2.T + b2
    delta = (torch.softmax(logits, 1) - F.one_hot(y, 3)) / len(y)
    assert torch.allclose(out, logits, rtol=1e-12, atol=1e-12)
    assert torch.allclose(net.layers[1].weight.grad, delta.T @ (gain * h), atol=1e-12)
    assert torch.allclose(net.layers[1].bias.grad, delta.sum(0), atol=1e-12)
    back = gain * (pre > 0) * (delta @ W2)
    assert torch.allclose(net.layers[0].weight.grad, back.T @ x, atol=1e-12)
    assert torch.allclose(net.layers[0].bias.grad, back.sum(0), atol=1e-12)


def ce_with(model, x, y, p=0.0):
    return F.cross_entropy(model(x, p), y)


def test_masked_mlp_replicas_without_dropout_equal_separate_fit_runs():
    x, y = small_batch(30)
    models = [MaskedMLP([6, 8, 3], seed=s) for s in (0, 1)]
    # replica 0 has p = 0 inside a call where replica 1 drops: p = 0 keeps every unit
    fit_replicas(models, ce_with, (x, y), generators=[torch.Generator().manual_seed(0)] * 2,
                 steps=20, lr=0.2, replica_kwargs={"p": torch.tensor([0.0, 0.5])},
                 randomness="different")
    alone = MaskedMLP([6, 8, 3], seed=0)
    fit(alone, ce_with, (x, y), steps=20, lr=0.2)
    for a, b in zip(models[0].parameters(), alone.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    twin = MaskedMLP([6, 8, 3], seed=1)
    fit(twin, ce_with, (x, y), steps=20, lr=0.2)
    assert not torch.allclose(models[1].layers[0].weight, twin.layers[0].weight)


def test_masked_mlp_replicas_draw_their_own_masks():
    x, y = small_batch(30)
    models = [MaskedMLP([6, 8, 3], seed=0) for _ in range(2)]
    fit_replicas(models, ce_with, (x, y), generators=[torch.Generator().manual_seed(0)] * 2,
                 steps=5, lr=0.2, loss_kwargs={"p": 0.5}, randomness="different")
    assert not torch.allclose(models[0].layers[0].weight, models[1].layers[0].weight)


def test_train_conditions_pairs_seeds_across_conditions_and_equals_separate_fits():
    x, y = small_batch(24)
    conditions = [{}, {"weight_decay": 0.05}]
    out = train_conditions(ce_with, (x, y), conditions, sizes=[6, 8, 3], seeds=[0, 3],
                           steps=12, lr=0.2, momentum=0.5, batch_size=8, record_every=4,
                           callback=evaluation_callback({"train": (x, y)}, at={12}))
    assert out["step"].tolist() == [4, 8, 12]
    assert out["train"].shape == (3, 2, 2) and np.isnan(out["train"][:2]).all()
    for c, decay in enumerate((0.0, 0.05)):
        for s, seed in enumerate((0, 3)):
            alone = MaskedMLP([6, 8, 3], seed=seed)
            history = fit(alone, ce_with, (x, y), steps=12, lr=0.2, momentum=0.5,
                          weight_decay=decay, batch_size=8, record_every=4,
                          generator=torch.Generator().manual_seed(seed))
            assert np.allclose(out["loss"][:, c, s], history.loss, rtol=1e-10)
            accuracy = float((alone.eval()(x).argmax(1) == y).double().mean())
            assert out["train"][-1, c, s] == pytest.approx(accuracy)


def test_train_conditions_with_a_mask_seed_repeats_its_masks_and_leaves_the_global_state():
    x, y = small_batch(24)

    def run():
        return train_conditions(ce_with, (x, y), [{"p": 0.5}], sizes=[6, 8, 3], seeds=[0, 1],
                                steps=6, lr=0.2, mask_seed=7)["loss"]

    torch.manual_seed(0)
    first = run()
    after = torch.rand(3)
    torch.manual_seed(1)
    second = run()
    torch.manual_seed(0)
    assert np.array_equal(first, second)
    assert torch.equal(torch.rand(3), after)


def test_evaluation_callback_measures_every_replica():
    x, y = small_batch(20)
    nets = [MaskedMLP([6, 8, 3], seed=s).eval() for s in range(3)]

    def model_fn(inputs):
        return torch.stack([net(inputs) for net in nets])

    callback = evaluation_callback({"a": (x, y)}, at={5}, fit_set=(x, y))
    with torch.no_grad():  # as fit_replicas calls it
        values = callback(model_fn, 5)
        for r, net in enumerate(nets):
            assert float(values["fit_ce"][r]) == pytest.approx(float(F.cross_entropy(net(x), y)))
            assert float(values["a"][r]) == pytest.approx(float((net(x).argmax(1) == y)
                                                                .double().mean()))
            assert float(values["a_ce"][r]) == pytest.approx(float(values["fit_ce"][r]))
        assert torch.isnan(callback(model_fn, 4)["a"]).all()


def test_idle_unit_share_counts_units_silent_for_every_example():
    x, y = small_batch(4)
    net = MaskedMLP([6, 40, 3], seed=4).train()
    active = (net.layers[0](x) > 0).detach()
    assert idle_unit_share(net, x, y) == pytest.approx(float((~active.any(0)).double().mean()))
    torch.manual_seed(9)
    shared = idle_unit_share(net, x, y, p=0.5)
    torch.manual_seed(9)
    kept = torch.rand(4, 40, dtype=torch.float64) < 0.5
    assert shared == pytest.approx(float((~(active & kept).any(0)).double().mean()))
    assert all(p.grad is None or not p.grad.any() for p in net.parameters())


# ------------------------------------------------------------------ how fast training is


def test_steps_to_reach_interpolates_between_records_like_a_fine_curve():
    fine = np.arange(0, 201)
    curves = np.stack([np.exp(-fine / 40), np.exp(-fine / 70), 1 + 0 * fine], 1)
    coarse = fine[::10]
    found = steps_to_reach(coarse, curves[::10], 0.2)
    exact = [40 * np.log(5), 70 * np.log(5)]
    # linear interpolation of a convex curve overshoots by less than one record interval
    assert np.all(np.abs(found[:2] - exact) < 1.0)
    assert np.isnan(found[2])
    assert steps_to_reach(coarse, curves[::10, 0], 2.0) == 0
    assert steps_to_reach([1, 2, 3], np.array([0.9, 0.5, 0.1]), 0.3) == 2.5


def test_extra_steps_is_the_t_interval_of_log_ratios_mapped_back():
    gen = np.random.default_rng(0)
    base = gen.uniform(40, 60, 12)
    slower = base * np.exp(gen.normal(0.2, 0.05, 12))
    found = extra_steps(slower, base)
    logs = np.log(slower / base)
    half = stats.t.ppf(0.975, 11) * logs.std(ddof=1) / np.sqrt(12)
    assert found.estimate == pytest.approx(np.expm1(logs.mean()), rel=1e-12)
    assert found.low == pytest.approx(np.expm1(logs.mean() - half), rel=1e-12)
    assert found.high == pytest.approx(np.expm1(logs.mean() + half), rel=1e-12)
    assert found.n == 12


def test_slowdown_share_is_one_for_a_copy_and_zero_for_the_baseline():
    gen = np.random.default_rng(1)
    base = gen.uniform(40, 60, 10)
    treated = base * gen.uniform(1.2, 1.4, 10)
    assert slowdown_share(treated, treated, base).estimate == pytest.approx(1.0)
    assert slowdown_share(base, treated, base).estimate == pytest.approx(0.0)
    half = base * np.sqrt(treated / base)  # half of every log-slowdown
    share = slowdown_share(half, treated, base)
    assert share.estimate == pytest.approx(0.5)
    assert share.low <= 0.5 <= share.high


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


def single_pixels(size, where):
    images = torch.zeros(len(where), size, size, dtype=torch.float64)
    for k, (r, c) in enumerate(where):
        images[k, r, c] = 1.0
    return images


def test_random_shifts_inside_draw_uniformly_among_the_offsets_that_keep_the_ink():
    one = single_pixels(6, [(1, 4)]).expand(6000, 6, 6)
    moved = random_shifts_inside(one, 2, torch.Generator().manual_seed(0))
    spots = moved.nonzero()
    assert len(spots) == 6000  # nothing ever leaves the frame
    rows, cols = spots[:, 1] - 1, spots[:, 2] - 4
    assert set(rows.tolist()) == {-1, 0, 1, 2} and set(cols.tolist()) == {-2, -1, 0, 1}
    counts = torch.bincount((rows + 1) * 4 + (cols + 2), minlength=16).double()
    assert float(counts.min()) > 0.8 * 6000 / 16 and float(counts.max()) < 1.2 * 6000 / 16


def test_random_shifts_inside_keep_every_pixel_value_and_leave_full_images_in_place():
    gen = torch.Generator().manual_seed(1)
    blobs = torch.zeros(20, 9, 9, dtype=torch.float64)
    blobs[:, 3:6, 2:7] = torch.rand(20, 3, 5, generator=gen, dtype=torch.float64) + 0.1
    moved = random_shifts_inside(blobs, 3, gen)
    assert torch.equal(moved.flatten(1).sort(1).values, blobs.flatten(1).sort(1).values)
    full = torch.rand(3, 5, 5, generator=gen, dtype=torch.float64) + 0.1
    assert torch.equal(random_shifts_inside(full, 2, gen), full)


def test_shift_sampler_draws_inside_vmap_and_leaves_inactive_replicas_unshifted():
    images = single_pixels(6, [(1, 4), (3, 2), (5, 0)])
    sampler = ShiftSampler(images, 2)
    active = torch.tensor([1.0, 0.0, 1.0, 1.0])
    out = torch.func.vmap(lambda a: sampler(torch.rand(3, 2, dtype=torch.float64), a),
                          randomness="different")(active)
    assert out.shape == (4, 3, 6, 6)
    assert torch.equal(out[1], images)
    assert torch.equal(out.sum((2, 3)), torch.ones(4, 3, dtype=torch.float64))
    assert not torch.equal(out[0], out[2]) or not torch.equal(out[2], out[3])
    u = torch.rand(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(sampler(u), random_shifts_inside(images, 2,
                                                        torch.Generator().manual_seed(0)))


def test_place_on_canvas_puts_each_image_at_its_offset():
    gen = torch.Generator().manual_seed(2)
    images = torch.rand(7, 3, 4, generator=gen, dtype=torch.float64)
    offsets = torch.stack([torch.randint(0, 4, (7,), generator=gen),
                           torch.randint(0, 3, (7,), generator=gen)], 1)
    placed = place_on_canvas(images, 6, offsets)
    expected = torch.zeros(7, 6, 6, dtype=torch.float64)
    for k, (r, c) in enumerate(offsets.tolist()):
        expected[k, r:r + 3, c:c + 4] = images[k]
    assert torch.equal(placed, expected)


def gaussian_blob(size, sigma):
    i = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    return torch.exp(-(i[:, None] ** 2 + i[None] ** 2) / (2 * sigma**2))[None]


@pytest.mark.parametrize("factor", [0.8, 1.25, 1.5])
def test_scaling_a_gaussian_blob_scales_its_width(factor):
    zoomed = scale_images(gaussian_blob(41, 3.0), factor)
    # bilinear interpolation of a blob of width 3 pixels is good to a few hundredths
    assert torch.allclose(zoomed, gaussian_blob(41, 3.0 * factor), atol=0.03)
    # and the mass of a blob well inside the frame grows with the area, factor ** 2
    assert float(zoomed.sum() / gaussian_blob(41, 3.0).sum()) == pytest.approx(factor**2,
                                                                              rel=1e-3)
    assert torch.allclose(scale_images(gaussian_blob(9, 2.0), 1.0), gaussian_blob(9, 2.0),
                          atol=1e-12)


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
        (lambda: MaskedMLP([4, 3], seed=-1), "seed"),
        (lambda: idle_unit_share(MaskedMLP([4, 3]), torch.ones(2, 4), torch.zeros(3)), "rows"),
        (lambda: random_shifts_inside(torch.ones(8, 8), 1), "images"),
        (lambda: random_shifts_inside(torch.ones(2, 8, 8), -1), "max_shift"),
        (lambda: place_on_canvas(torch.ones(2, 8, 8), 6, torch.zeros(2, 2)), "size"),
        (lambda: place_on_canvas(torch.ones(2, 8, 8), 10, torch.full((2, 2), 3)), "offsets"),
        (lambda: place_on_canvas(torch.ones(2, 8, 8), 10, torch.zeros(3, 2)), "offsets"),
        (lambda: scale_images(torch.ones(2, 8, 8), 0.0), "factors"),
        (lambda: scale_images(torch.ones(2, 8, 8), torch.ones(3)), "factors"),
        (lambda: scale_images(torch.ones(2, 8, 6), 1.0), "square"),
        (lambda: steps_to_reach([1, 2], np.ones(3), 0.5), "values"),
        (lambda: steps_to_reach([1, 2], np.ones(2), math.nan), "target"),
        (lambda: extra_steps(np.ones(3), np.zeros(3)), "baseline"),
        (lambda: slowdown_share(np.ones(3), np.ones(3), -np.ones(3)), "baseline"),
    ],
    ids=[
        "dropout-negative-p", "dropout-p-above-one", "dropout-nan-p", "dropout-integer-x",
        "dropout-numpy-x", "layer-p", "mlp-p-one", "mlp-input-p", "mlp-sizes", "ridge-p-one",
        "ridge-rows", "ridge-1d-X", "ridge-inf", "train-steps", "train-lr", "train-2d-y",
        "shift-dy-too-large", "shift-dx-too-large", "shift-non-integer", "shift-1d",
        "random-shifts-2d", "random-shifts-negative", "random-shifts-too-large",
        "rotate-not-square", "rotate-inf", "rotate-wrong-length", "objective-shape-length",
        "objective-shape-zero", "masked-seed", "idle-rows", "inside-2d", "inside-negative",
        "canvas-too-small", "canvas-offset-too-large", "canvas-offsets-shape", "scale-zero",
        "scale-wrong-length", "scale-not-square", "reach-shapes", "reach-target",
        "extra-zero", "share-negative",
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


def test_evaluation_callback_measures_each_set_at_its_own_steps():
    x, y = small_batch(20)
    nets = [MaskedMLP([6, 8, 3], seed=s).eval() for s in range(2)]

    def model_fn(inputs):
        return torch.stack([net(inputs) for net in nets])

    callback = evaluation_callback({"a": (x, y), "b": (x[:10], y[:10])}, at={"a": {5}, "b": {6}})
    with torch.no_grad():
        at_5, at_6 = callback(model_fn, 5), callback(model_fn, 6)
    assert not torch.isnan(at_5["a"]).any() and torch.isnan(at_5["b"]).all()
    assert torch.isnan(at_6["a"]).all() and not torch.isnan(at_6["b_ce"]).any()
    with pytest.raises(ValueError, match="at has no steps"):
        evaluation_callback({"a": (x, y)}, at={"b": {5}})


def test_dropout_generator_gives_this_thread_the_seeded_global_draws_and_leaves_others_alone():
    x = torch.ones(4, 50, dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        expected = [dropout(x, 0.5), Dropout(0.3)(x)]
        torch.manual_seed(3)
        batched = torch.func.vmap(lambda row: dropout(row, 0.5), randomness="different")(x)
    before = torch.get_rng_state()
    with dropout_generator(torch.Generator().manual_seed(3)) as generator:
        got = [dropout(x, 0.5), Dropout(0.3)(x)]
        seen = {}
        thread = threading.Thread(target=lambda: seen.update(mask=dropout(x, 0.5)))
        thread.start()
        thread.join()
        with dropout_generator(torch.Generator().manual_seed(9)):  # nested: its own stream
            inner = dropout(x, 0.5)
        generator.manual_seed(3)
        again = torch.func.vmap(lambda row: dropout(row, 0.5), randomness="different")(x)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(again, batched, rtol=0, atol=0)
    assert not torch.equal(inner, expected[0])
    # the other thread drew from the global generator, the only draw from it here
    assert not torch.equal(torch.get_rng_state(), before)
    torch.set_rng_state(before)
    torch.testing.assert_close(seen["mask"], dropout(x, 0.5), rtol=0, atol=0)
    torch.set_rng_state(before)
    after_block = dropout(x, 0.5)  # outside the block: the global generator again
    torch.set_rng_state(before)
    torch.testing.assert_close(after_block, dropout(x, 0.5), rtol=0, atol=0)
    own = torch.Generator().manual_seed(1)
    with dropout_generator(torch.Generator().manual_seed(3)):
        torch.testing.assert_close(dropout(x, 0.5, generator=own),
                                   dropout(x, 0.5, generator=torch.Generator().manual_seed(1)),
                                   rtol=0, atol=0)  # an explicit generator still wins
    with pytest.raises(ValueError, match="generator"), dropout_generator(3):
        pass
