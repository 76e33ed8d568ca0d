"""dlnotes.smoothing against torch's label smoothing, closed forms and Monte Carlo."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import case_id
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnotes.smoothing import (
    calibration_bins,
    convert_eps,
    expected_calibration_error,
    fit_temperature,
    logit_gap,
    optimal_logit_gap,
    smooth_targets,
    smoothed_cross_entropy,
    target_probabilities,
)

eps_values = st.floats(0.0, 0.99, allow_nan=False)
class_counts = st.integers(2, 12)
conventions = st.sampled_from(["uniform", "others"])


@given(st.integers(1, 8), class_counts, eps_values, conventions, st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_smoothed_targets_are_distributions_with_the_stated_entries(n, k, eps, convention,
                                                                    seed):
    labels = torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))
    q = smooth_targets(labels, k, eps, convention, dtype=torch.float64)
    assert torch.allclose(q.sum(dim=1), torch.ones(n, dtype=torch.float64), atol=1e-12)
    assert bool((q >= 0).all())
    true, other = (1 - eps, eps / (k - 1)) if convention == "others" else (1 - eps + eps / k,
                                                                           eps / k)
    assert torch.allclose(q[torch.arange(n), labels], torch.full((n,), true,
                                                                 dtype=torch.float64))
    off = q.clone()
    off[torch.arange(n), labels] = other
    assert torch.allclose(off, torch.full_like(q, other))


def test_zero_eps_gives_one_hot_targets_in_both_conventions():
    labels = torch.tensor([2, 0, 1])
    for convention in ("uniform", "others"):
        assert torch.equal(smooth_targets(labels, 3, 0.0, convention),
                           F.one_hot(labels, 3).float())


@given(class_counts, eps_values)
@settings(max_examples=60, deadline=None)
def test_converted_eps_gives_identical_targets(k, eps):
    labels = torch.arange(k)
    eps_others = convert_eps(eps, k, "uniform", "others")
    assert eps_others == pytest.approx(eps * (k - 1) / k)
    assert torch.allclose(smooth_targets(labels, k, eps, "uniform", dtype=torch.float64),
                          smooth_targets(labels, k, eps_others, "others", dtype=torch.float64),
                          atol=1e-12)
    assert convert_eps(eps_others, k, "others", "uniform") == pytest.approx(eps, abs=1e-12)


def test_others_eps_without_a_uniform_equivalent_is_rejected():
    # others eps = 0.95 > (k-1)/k = 0.9 puts less than 1/k on the true class.
    with pytest.raises(ValueError, match="no 'uniform' equivalent"):
        convert_eps(0.95, 10, "others", "uniform")


@given(st.integers(1, 6), class_counts, st.floats(0.0, 0.99), st.integers(0, 2**31 - 1),
       st.floats(0.1, 30.0))
@settings(max_examples=80, deadline=None)
def test_uniform_smoothed_cross_entropy_and_gradient_equal_torch_label_smoothing(n, k, eps,
                                                                              seed, scale):
    gen = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, k, dtype=torch.float64, generator=gen)
    labels = torch.randint(0, k, (n,), generator=gen)
    mine_in = logits.clone().requires_grad_(True)
    ref_in = logits.clone().requires_grad_(True)
    mine = smoothed_cross_entropy(mine_in, labels, eps, "uniform")
    ref = F.cross_entropy(ref_in, labels, label_smoothing=eps)
    assert torch.allclose(mine, ref, rtol=1e-12, atol=1e-12)
    mine.backward()
    ref.backward()
    assert torch.allclose(mine_in.grad, ref_in.grad, rtol=1e-10, atol=1e-14)


def test_others_convention_equals_torch_with_the_converted_eps():
    logits = torch.randn(20, 10, dtype=torch.float64)
    labels = torch.randint(0, 10, (20,))
    ref = F.cross_entropy(logits, labels, label_smoothing=convert_eps(0.1, 10, "others",
                                                                      "uniform"))
    assert torch.allclose(smoothed_cross_entropy(logits, labels, 0.1, "others"), ref,
                          rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_smoothed_cross_entropy_is_finite_and_exact_at_logits_of_1e4(dtype):
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=dtype,
                          requires_grad=True)
    labels = torch.tensor([0, 0])
    eps = 0.3
    loss = smoothed_cross_entropy(logits, labels, eps)
    loss.backward()
    # log-softmax rows: (0, -2e4, -1e4) and (-2e4, 0, -1e4); targets (0.8, 0.1, 0.1).
    expected = ((0.1 * 2e4 + 0.1 * 1e4) + (0.8 * 2e4 + 0.1 * 1e4)) / 2
    value = float(loss.detach())
    assert math.isfinite(value) and value == pytest.approx(expected, rel=1e-6)
    assert bool(torch.isfinite(logits.grad).all())
    ref = F.cross_entropy(logits.detach(), labels, label_smoothing=eps)
    assert value == pytest.approx(float(ref), rel=1e-6)


@given(class_counts, st.floats(0.001, 0.99), conventions)
@settings(max_examples=60, deadline=None)
def test_softmax_of_the_optimal_gap_is_the_target_and_the_loss_is_its_entropy(k, eps,
                                                                            convention):
    gap = optimal_logit_gap(eps, k, convention)
    logits = torch.zeros(1, k, dtype=torch.float64)
    logits[0, 0] = gap
    labels = torch.tensor([0])
    q = smooth_targets(labels, k, eps, convention, dtype=torch.float64)
    assert torch.allclose(torch.softmax(logits, dim=1), q, atol=1e-12)
    entropy = -(q * q.log()).sum()
    assert torch.allclose(smoothed_cross_entropy(logits, labels, eps, convention), entropy,
                          atol=1e-12)


def test_optimal_gap_closed_forms_and_hard_targets():
    assert optimal_logit_gap(0.1, 10) == pytest.approx(math.log(91.0))
    assert optimal_logit_gap(0.1, 10, "others") == pytest.approx(math.log(81.0))
    assert optimal_logit_gap(0.0, 10) == math.inf
    # Larger eps, smaller gap.
    gaps = [optimal_logit_gap(e, 10) for e in (0.05, 0.1, 0.2)]
    assert gaps[0] > gaps[1] > gaps[2]


@pytest.mark.parametrize(("eps", "convention"), [(0.1, "uniform"), (0.2, "others"),
                                                 (0.05, "uniform")])
def test_gradient_descent_on_one_example_reaches_the_closed_form_gap(eps, convention):
    logits = torch.zeros(1, 10, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([3])
    opt = torch.optim.SGD([logits], lr=5.0)
    for _ in range(3000):
        opt.zero_grad()
        smoothed_cross_entropy(logits, labels, eps, convention).backward()
        opt.step()
    z = logits.detach()[0]
    others = torch.cat([z[:3], z[4:]])
    assert float(z[3] - others.max()) == pytest.approx(optimal_logit_gap(eps, 10, convention),
                                                      abs=1e-8)
    assert float(others.max() - others.min()) < 1e-10
    assert float(logit_gap(logits.detach(), labels)[0]) == pytest.approx(
        optimal_logit_gap(eps, 10, convention), abs=1e-8)


def test_with_hard_targets_gradient_descent_keeps_widening_the_gap():
    logits = torch.zeros(1, 10, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0])
    opt = torch.optim.SGD([logits], lr=5.0)
    gaps = []
    for step in range(1, 10_001):
        opt.zero_grad()
        smoothed_cross_entropy(logits, labels, 0.0).backward()
        opt.step()
        if step in (100, 1000, 10_000):
            gaps.append(float(logit_gap(logits.detach(), labels)[0]))
    # The gap grows roughly like log(steps): by about ln 10 per decade, without bound.
    assert gaps[0] < gaps[1] < gaps[2]
    assert gaps[2] - gaps[1] == pytest.approx(math.log(10), abs=0.1)


def test_logit_gap_is_true_logit_minus_mean_of_the_others():
    logits = torch.tensor([[3.0, 1.0, -1.0], [0.0, 2.0, 4.0]])
    assert torch.allclose(logit_gap(logits, torch.tensor([0, 2])), torch.tensor([3.0, 3.0]))


def _ece_reference(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    """Guo et al.'s ECE written out with a loop over bins (lower edge open, upper closed)."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        in_bin = (conf > lo) & (conf <= hi) if b else (conf <= hi)
        if in_bin.any():
            gap = abs((pred[in_bin] == labels[in_bin]).mean() - conf[in_bin].mean())
            total += in_bin.mean() * gap
    return float(total)


@given(st.integers(1, 60), st.integers(2, 6), st.integers(1, 20), st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_ece_equals_a_loop_over_bins_and_lies_in_the_unit_interval(n, k, n_bins, seed):
    gen = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, k, dtype=torch.float64, generator=gen), dim=1)
    labels = torch.randint(0, k, (n,), generator=gen)
    ece = expected_calibration_error(probs, labels, n_bins)
    assert ece == pytest.approx(_ece_reference(probs.numpy(), labels.numpy(), n_bins),
                                abs=1e-12)
    assert 0.0 <= ece <= 1.0
    bins = calibration_bins(probs, labels, n_bins)
    assert int(bins.count.sum()) == n


def test_ece_of_a_calibrated_model_is_near_zero_and_of_an_overconfident_one_is_the_gap():
    gen = torch.Generator().manual_seed(0)
    n = 40_000
    conf = 0.5 + 0.5 * torch.rand(n, dtype=torch.float64, generator=gen)
    probs = torch.stack([conf, 1 - conf], dim=1)
    # Calibrated: class 0 is right with probability conf.
    labels = (torch.rand(n, dtype=torch.float64, generator=gen) >= conf).long()
    assert expected_calibration_error(probs, labels) < 0.02
    # Over-confident by 0.1 everywhere: the truth is right with probability conf - 0.1.
    labels = (torch.rand(n, dtype=torch.float64, generator=gen) >= conf - 0.1).long()
    assert expected_calibration_error(probs, labels) == pytest.approx(0.1, abs=0.02)


def test_fit_temperature_recovers_the_scale_of_over_confident_logits():
    gen = torch.Generator().manual_seed(0)
    true_logits = 2 * torch.randn(20_000, 5, dtype=torch.float64, generator=gen)
    labels = torch.multinomial(torch.softmax(true_logits, dim=1), 1, generator=gen)[:, 0]
    t = fit_temperature(3.0 * true_logits, labels)
    assert t == pytest.approx(3.0, rel=0.05)
    # And it is the minimiser: nearby temperatures give a larger NLL.
    nll = [float(F.cross_entropy(3.0 * true_logits / s, labels)) for s in (0.95 * t, t, 1.05 * t)]
    assert nll[1] < nll[0] and nll[1] < nll[2]


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: smooth_targets(torch.tensor([0, 1]), 3, 1.0), "eps"),
        (lambda: smooth_targets(torch.tensor([0, 1]), 3, -0.1), "eps"),
        (lambda: smooth_targets(torch.tensor([0, 3]), 3, 0.1), "labels"),
        (lambda: smooth_targets(torch.tensor([-1, 0]), 3, 0.1), "labels"),
        (lambda: smooth_targets(torch.tensor([0.0, 1.0]), 3, 0.1), "labels"),
        (lambda: smooth_targets(torch.tensor([[0, 1]]), 3, 0.1), "labels"),
        (lambda: smooth_targets(torch.tensor([0]), 1, 0.1), "num_classes"),
        (lambda: smooth_targets(torch.tensor([0]), 3, 0.1, "gaussian"), "convention"),
        (lambda: smoothed_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1, 2]), 0.1),
         "rows"),
        (lambda: smoothed_cross_entropy(torch.zeros(3), torch.tensor([0, 1, 2]), 0.1),
         "logits"),
        (lambda: smoothed_cross_entropy(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]),
                                        0.1), "logits"),
        (lambda: smoothed_cross_entropy(torch.zeros(1, 3), torch.tensor([0]), float("nan")),
         "eps"),
        (lambda: optimal_logit_gap(1.5, 10), "eps"),
        (lambda: target_probabilities(0.1, 10, "none"), "convention"),
        (lambda: expected_calibration_error(torch.full((2, 2), 0.7), torch.tensor([0, 1])),
         "sum to 1"),
        (lambda: expected_calibration_error(torch.tensor([[1.5, -0.5]]), torch.tensor([0])),
         "probs"),
        (lambda: expected_calibration_error(torch.eye(2), torch.tensor([0, 1]), n_bins=0),
         "n_bins"),
        (lambda: fit_temperature(torch.zeros(2, 3), torch.tensor([0, 1]), low=2.0, high=1.0),
         "low"),
    ],
    ids=case_id,
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_reliability_diagram_draws_bin_accuracy_against_confidence():
    import matplotlib.pyplot as plt

    from dlnotes.plotting import reliability_diagram, subplots

    probs = torch.tensor([[0.95, 0.05], [0.85, 0.15], [0.32, 0.68], [0.62, 0.38]])
    labels = torch.tensor([0, 1, 1, 1])
    fig, ax = subplots()
    reliability_diagram(ax, {"model": (probs, labels)}, n_bins=10)
    diagonal, line = ax.get_lines()
    bins = calibration_bins(probs, labels, 10)
    keep = bins.count > 0
    assert np.allclose(line.get_xdata(), bins.confidence[keep].numpy())
    assert np.allclose(line.get_ydata(), bins.accuracy[keep].numpy())
    # Bin (0.6, 0.7]: one of two right; (0.8, 0.9]: wrong; (0.9, 1]: right.
    assert np.allclose(line.get_xdata(), [0.65, 0.85, 0.95])
    assert np.allclose(line.get_ydata(), [0.5, 0.0, 1.0])
    assert ax.get_legend() is None and ax.get_xlabel().startswith("confidence")
    plt.close(fig)
    fig, ax = subplots()
    reliability_diagram(ax, {"a": (probs, labels), "b": (probs, labels)},
                        colors=["#000000", "#E69F00"])
    assert ax.get_legend() is not None
    assert [line.get_color() for line in ax.get_lines()[1:]] == ["#000000", "#E69F00"]
    with pytest.raises(ValueError, match="predictions"):
        reliability_diagram(ax, {})
    with pytest.raises(ValueError, match="colors"):
        reliability_diagram(ax, {"a": (probs, labels)}, colors=["#000000", "#E69F00"])
    plt.close(fig)
