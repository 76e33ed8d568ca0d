"""dlnotes.evidence: intervals against SciPy, the verdict's three regions, the printed line."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from dlnotes.evidence import (
    Interval,
    bootstrap_interval,
    evidence_line,
    mean_interval,
    paired_difference,
    parse_evidence_line,
    percentile_interval,
    verdict,
)


@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=40),
       st.sampled_from([0.8, 0.9, 0.95, 0.99]))
@settings(max_examples=60, deadline=None)
def test_mean_interval_equals_scipy_t_interval(values, level):
    x = np.asarray(values)
    got = mean_interval(x, level=level)
    sem = stats.sem(x)
    if sem == 0:
        assert got.low == got.high == got.estimate
        return
    low, high = stats.t.interval(level, len(x) - 1, loc=x.mean(), scale=sem)
    assert abs(got.low - low) <= 1e-12 * (1 + abs(low))
    assert abs(got.high - high) <= 1e-12 * (1 + abs(high))
    assert got.n == len(x)


def test_paired_difference_equals_scipy_paired_t_test_interval():
    rng = np.random.default_rng(1)
    a = rng.normal(0.9, 0.02, size=10)
    b = a - rng.normal(0.01, 0.005, size=10)
    got = paired_difference(a, b, unit="seeds")
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert abs(got.low - ci.low) < 1e-12 and abs(got.high - ci.high) < 1e-12
    assert got.unit == "seeds" and got.n == 10
    # pairing removes the shared part: the unpaired interval is far wider
    unpaired = stats.ttest_ind(a, b).confidence_interval(0.95)
    assert unpaired.high - unpaired.low > 3 * (got.high - got.low)


def test_bootstrap_interval_agrees_with_scipy_percentile_bootstrap():
    rng = np.random.default_rng(2)
    x = rng.exponential(size=80)
    ours = bootstrap_interval(np.median, x, n_resamples=4000, unit="documents", seed=3)
    ref = stats.bootstrap((x,), np.median, n_resamples=4000, method="percentile",
                          rng=np.random.default_rng(4)).confidence_interval
    spread = ref.high - ref.low
    assert abs(ours.low - ref.low) < 0.15 * spread and abs(ours.high - ref.high) < 0.15 * spread
    assert ours.estimate == np.median(x) and ours.n == 80 and ours.unit == "documents"


def test_bootstrap_keeps_paired_rows_together():
    rng = np.random.default_rng(5)
    base = rng.normal(size=50)
    a, b = base + 1.0, base  # the difference is exactly 1 in every unit
    got = bootstrap_interval(lambda u, v: float(np.mean(u - v)), a, b, n_resamples=200)
    assert abs(got.low - 1.0) < 1e-12 and abs(got.high - 1.0) < 1e-12


def test_percentile_interval_is_the_quantiles_of_the_replicates():
    reps = np.arange(1001, dtype=float)
    got = percentile_interval(500.0, reps, n=30, unit="documents")
    assert got.low == pytest.approx(25.0) and got.high == pytest.approx(975.0)


@pytest.mark.parametrize(
    ("low", "high", "direction", "expected"),
    [
        (0.02, 0.05, 1, "supports"),        # beyond the margin
        (0.005, 0.05, 1, "inconclusive"),   # straddles the margin
        (-0.03, 0.008, 1, "contradicts"),   # no effect of the claimed size fits
        (-0.05, -0.02, -1, "supports"),
        (-0.05, 0.0, -1, "inconclusive"),
        (0.0, 0.05, -1, "contradicts"),
        (-0.005, 0.008, 0, "supports"),     # no effect larger than the margin
        (-0.02, 0.005, 0, "inconclusive"),
        (0.02, 0.05, 0, "contradicts"),
    ],
)
def test_verdict_regions(low, high, direction, expected):
    interval = Interval((low + high) / 2, low, high, 10)
    assert verdict(interval, margin=0.01, direction=direction) == expected


@given(st.floats(-1, 1), st.floats(0, 1), st.floats(0, 0.5), st.sampled_from([-1, 1]))
def test_a_wider_interval_never_turns_inconclusive_into_a_decision(centre, half, margin, d):
    narrow = Interval(centre, centre - half, centre + half, 10)
    wide = Interval(centre, centre - 2 * half - 0.01, centre + 2 * half + 0.01, 10)
    if verdict(narrow, margin=margin, direction=d) == "inconclusive":
        assert verdict(wide, margin=margin, direction=d) == "inconclusive"


def test_evidence_line_prints_and_parses_back():
    interval = paired_difference([0.92, 0.93, 0.93, 0.94], [0.90, 0.91, 0.90, 0.91])
    ev = evidence_line("claim-04-dropout", "test accuracy, dropout − plain", interval,
                       margin=0.005)
    line = str(ev)
    assert line.startswith("[claim-04-dropout] test accuracy, dropout − plain = +0.0250, "
                           "95% CI [+")
    assert line.endswith(", n = 4 seeds, margin 0.005 → supports") and ev.result == "supports"
    parsed = parse_evidence_line("noise\n" + line + "\nmore")["claim-04-dropout"]
    assert parsed["result"] == "supports" and parsed["n"] == 4 and parsed["unit"] == "seeds"
    assert abs(parsed["effect"] - interval.estimate) < 1e-3 and parsed["margin"] == 0.005
    with pytest.raises(ValueError, match="more than one"):
        parse_evidence_line(line + "\n" + line)


def test_tiny_effects_keep_their_sign_and_digits():
    line = str(evidence_line("claim-01-x", "gap", Interval(-1.234e-4, -2e-4, -5e-5, 12),
                             margin=0.0, direction=-1))
    assert "= -0.000123, 95% CI [-0.000200, -0.0000500]" in line
    assert parse_evidence_line(line)["claim-01-x"]["high"] == -5e-5


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mean_interval([1.0]), "len"),
        (lambda: mean_interval([1.0, np.nan]), "finite"),
        (lambda: mean_interval([[1.0, 2.0]]), "one-dimensional"),
        (lambda: mean_interval([1.0, 2.0], level=1.0), "level"),
        (lambda: paired_difference([1.0, 2.0], [1.0, 2.0, 3.0]), "paired"),
        (lambda: bootstrap_interval(np.mean, np.ones(5), np.ones(4)), "first dimension"),
        (lambda: bootstrap_interval(np.mean, np.ones(5), n_resamples=10), "n_resamples"),
        (lambda: verdict(Interval(0, -1, 1, 3), margin=-0.1), "margin"),
        (lambda: verdict(Interval(0, -1, 1, 3), margin=0.1, direction=2), "direction"),
        (lambda: evidence_line("dropout", "x", Interval(0, -1, 1, 3), margin=0.1), "label"),
        (lambda: evidence_line("claim-04-x", "a = b", Interval(0, -1, 1, 3), margin=0.1),
         "what"),
    ],
    ids=["one-value", "nan", "2d", "level", "unpaired", "lengths", "resamples", "margin",
         "direction", "label", "what"],
)
def test_bad_input_is_rejected_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
