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
    WeightNormTracker,
    calibration_bins,
    convert_eps,
    corrupt_labels,
    expected_calibration_error,
    fit_temperature,
    forward_corrected_cross_entropy,
    label_noise_objective,
    logit_gap,
    logit_gap_descent,
    optimal_logit_gap,
    reliability_diagram,
    smooth_targets,
    smoothed_cross_entropy,
    target_probabilities,
)
from dlnotes.training import fit, fit_replicas, mlp

eps_values = st.floats(0.0, 0.99, allow_nan=False)
_GEN = torch.Generator().manual_seed(0)
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


def _autograd_descent(eps: float, convention: str, steps: int, k: int = 10,
                      lr: float = 5.0) -> list[float]:
    """SGD on smoothed_cross_entropy through autograd; the gap after each step."""
    logits = torch.zeros(1, k, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0])
    opt = torch.optim.SGD([logits], lr=lr)
    gaps = []
    for _ in range(steps):
        opt.zero_grad()
        smoothed_cross_entropy(logits, labels, eps, convention).backward()
        opt.step()
        gaps.append(float(logit_gap(logits.detach(), labels)[0]))
    return gaps


@pytest.mark.parametrize(("eps", "convention", "k"), [(0.0, "uniform", 10), (0.1, "uniform", 10),
                                                      (0.2, "others", 4), (0.3, "others", 2)])
def test_gap_descent_equals_autograd_sgd_on_the_smoothed_cross_entropy(eps, convention, k):
    mine = logit_gap_descent(eps, 200, k, lr=2.0, convention=convention)
    ref = _autograd_descent(eps, convention, 200, k, lr=2.0)
    assert mine.shape == (200,) and mine.dtype == torch.float64
    assert torch.allclose(mine, torch.tensor(ref, dtype=torch.float64), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("eps", "convention"), [(0.1, "uniform"), (0.2, "others"),
                                                 (0.05, "uniform")])
def test_gradient_descent_on_one_example_reaches_the_closed_form_gap(eps, convention):
    gaps = logit_gap_descent(eps, 3000, 10, convention=convention)
    assert float(gaps[-1]) == pytest.approx(optimal_logit_gap(eps, 10, convention), abs=1e-8)
    assert float(gaps[-1] - gaps[-2]) == pytest.approx(0.0, abs=1e-12)


def test_with_hard_targets_the_gap_follows_log_of_one_plus_eta_k_t():
    # Chapter 5 derives dg/dt ~ eta k e^(-g), so g(t) ~ log(1 + eta k t): ln 10 per decade.
    for k, lr in ((10, 5.0), (3, 1.0)):
        gaps = logit_gap_descent(0.0, 10_000, k, lr=lr)
        assert bool((gaps[1:] > gaps[:-1]).all())  # it never stops growing
        for t in (1000, 10_000):
            assert float(gaps[t - 1]) == pytest.approx(math.log1p(lr * k * t), abs=0.02)
        assert float(gaps[9999] - gaps[999]) == pytest.approx(math.log(10), abs=0.02)


def test_corrupting_at_rate_zero_changes_nothing():
    labels = torch.randint(0, 10, (500,), generator=torch.Generator().manual_seed(1))
    before = labels.clone()
    out = corrupt_labels(labels, 0.0, 10, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out, before) and torch.equal(labels, before)
    assert out.dtype == labels.dtype


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.8])
def test_flipped_fraction_is_the_rate_within_binomial_error(rate):
    n = 40_000
    labels = torch.randint(0, 7, (n,), generator=torch.Generator().manual_seed(3))
    out = corrupt_labels(labels, rate, 7, generator=torch.Generator().manual_seed(4))
    fraction = float((out != labels).float().mean())
    assert abs(fraction - rate) < 5 * math.sqrt(rate * (1 - rate) / n)


def test_a_flipped_label_is_never_the_original_and_is_uniform_over_the_others():
    n, k = 60_000, 5
    labels = torch.full((n,), 3, dtype=torch.long)
    out = corrupt_labels(labels, 1.0, k, generator=torch.Generator().manual_seed(5))
    assert bool((out != labels).all())
    counts = torch.bincount(out, minlength=k).double()
    assert counts[3] == 0
    expected = n / (k - 1)
    chi2 = float((((counts[[0, 1, 2, 4]] - expected) ** 2) / expected).sum())
    assert chi2 < 20.0  # 3 degrees of freedom; P(chi2 > 20) < 2e-4


def test_mean_one_hot_of_corrupted_labels_is_the_notes_smoothed_target():
    n, k, rate = 100_000, 10, 0.2
    labels = torch.zeros(n, dtype=torch.long)
    out = corrupt_labels(labels, rate, k, generator=torch.Generator().manual_seed(6))
    share = F.one_hot(out, k).double().mean(dim=0)
    target = smooth_targets(labels[:1], k, rate, "others", dtype=torch.float64)[0]
    assert torch.allclose(share, target, atol=5 * math.sqrt(rate / n))


@given(st.integers(1, 50), st.integers(2, 12), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_corrupted_labels_stay_in_range_and_are_reproducible(n, k, rate, seed):
    labels = torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))
    out = corrupt_labels(labels, rate, k, generator=torch.Generator().manual_seed(seed))
    again = corrupt_labels(labels, rate, k, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(out, again) and out.shape == labels.shape
    assert int(out.min()) >= 0 and int(out.max()) < k
    if rate == 1.0:
        assert bool((out != labels).all())


@given(st.integers(1, 6), st.integers(2, 10), st.floats(0.0, 0.85), st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_forward_correction_is_the_nll_under_the_noise_transition_matrix(n, k, share, seed):
    rate = share * (k - 1) / k  # inside [0, (k - 1)/k)
    gen = torch.Generator().manual_seed(seed)
    logits = 4 * torch.randn(n, k, dtype=torch.float64, generator=gen)
    labels = torch.randint(0, k, (n,), generator=gen)
    # T[i, j] = P(recorded j | true i): keep with 1 - r, each other class with r / (k - 1).
    T = torch.full((k, k), rate / (k - 1), dtype=torch.float64)
    T.fill_diagonal_(1 - rate)
    noisy_probs = torch.softmax(logits, dim=1) @ T
    reference = F.nll_loss(noisy_probs.log(), labels)
    assert torch.allclose(forward_corrected_cross_entropy(logits, labels, rate), reference,
                          rtol=1e-10, atol=1e-12)


def test_forward_correction_at_rate_zero_is_cross_entropy_and_bounds_a_wrong_label():
    logits = torch.tensor([[1e4, -1e4, 0.0], [0.3, -0.2, 0.1]], dtype=torch.float64)
    labels = torch.tensor([1, 2])
    assert torch.allclose(forward_corrected_cross_entropy(logits, labels, 0.0),
                          F.cross_entropy(logits, labels), rtol=1e-12)
    # A confidently wrong prediction costs at most -log(r / (k - 1)) under the correction.
    rate = 0.2
    loss = forward_corrected_cross_entropy(logits[:1], labels[:1], rate)
    assert torch.isfinite(loss) and float(loss) == pytest.approx(-math.log(rate / 2), rel=1e-12)


@pytest.mark.parametrize(("eps", "rate"), [(0.0, 0.0), (0.3, 0.0), (0.0, 0.25), (0.3, 0.25)])
def test_label_noise_objective_is_smoothing_or_forward_correction(eps, rate):
    gen = torch.Generator().manual_seed(3)
    net = mlp([5, 4, 6], seed=0).double()
    X = torch.randn(20, 5, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 6, (20,), generator=gen)
    expected = (forward_corrected_cross_entropy(net(X), y, rate) if rate > 0
                else smoothed_cross_entropy(net(X), y, eps, "others"))
    assert torch.allclose(label_noise_objective(net, X, y, eps=eps, rate=rate), expected,
                          rtol=1e-12)


def test_replicas_with_per_replica_eps_and_rate_equal_separate_fit_runs():
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(48, 6, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 4, (48,), generator=gen)
    settings_ = [(0.0, 0.0), (0.2, 0.0), (0.0, 0.3)]
    nets = [mlp([6, 5, 4], seed=s).double() for s in range(3)]
    refs = [mlp([6, 5, 4], seed=s).double() for s in range(3)]
    tracker = WeightNormTracker()
    fit_replicas(nets, label_noise_objective, (X, y), generators=[
        torch.Generator().manual_seed(s) for s in range(3)], steps=20, batch_size=16, lr=0.3,
        momentum=0.9, after_backward=tracker,
        replica_kwargs={"eps": torch.tensor([e for e, _ in settings_], dtype=torch.float64),
                        "rate": torch.tensor([r for _, r in settings_], dtype=torch.float64)})
    for s, (ref, (eps, rate)) in enumerate(zip(refs, settings_, strict=True)):
        fit(ref, label_noise_objective, (X, y), steps=20, batch_size=16, lr=0.3, momentum=0.9,
            generator=torch.Generator().manual_seed(s), loss_kwargs={"eps": eps, "rate": rate})
        for a, b in zip(nets[s].parameters(), ref.parameters(), strict=True):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-11)
    # The tracker saw the stacked parameters: its norms are those of the trained weights.
    expected = torch.stack([torch.cat([net[0].weight.flatten(), net[2].weight.flatten()]).norm()
                            for net in nets])
    assert torch.allclose(tracker.norms(), expected, rtol=1e-12)


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
        (lambda: logit_gap_descent(0.1, 0), "steps"),
        (lambda: logit_gap_descent(0.1, 10, lr=0.0), "lr"),
        (lambda: corrupt_labels(torch.tensor([0, 1]), -0.1, 3, generator=_GEN), "rate"),
        (lambda: corrupt_labels(torch.tensor([0, 1]), 1.5, 3, generator=_GEN), "rate"),
        (lambda: corrupt_labels(torch.tensor([0, 1]), float("nan"), 3, generator=_GEN), "rate"),
        (lambda: corrupt_labels(torch.tensor([0, 3]), 0.1, 3, generator=_GEN), "labels"),
        (lambda: corrupt_labels(torch.tensor([0, 1]), 0.1, 1, generator=_GEN), "num_classes"),
        (lambda: corrupt_labels(torch.tensor([0, 1]), 0.1, 3, generator=0), "generator"),
        (lambda: forward_corrected_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), 0.7),
         "rate"),
        (lambda: forward_corrected_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), -0.1),
         "rate"),
        (lambda: forward_corrected_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3]), 0.1),
         "labels"),
    ],
    ids=case_id,
)
def test_bad_input_raises_value_error_naming_the_problem(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_weight_norms_before_any_training_step_raise():
    with pytest.raises(RuntimeError, match="no training step"):
        WeightNormTracker().norms()


def test_reliability_diagram_draws_bin_accuracy_against_confidence():
    import matplotlib.pyplot as plt

    from dlnotes.plotting import subplots

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
