r"""Evidence for experimental verdicts: intervals, the margin that matters, and one printed line.

A chapter states a claim's *margin* — the smallest effect that would matter — before it
measures anything, then prints one evidence line per experimental claim (one line)::

    [claim-04-dropout] test accuracy, dropout − plain = +0.0123, 95% CI [+0.0081, +0.0165],
    n = 10 seeds, margin 0.005 → supports

The verdict follows from the interval and the margin alone (:func:`verdict`): *supports* when
the whole interval lies beyond the margin in the claimed direction, *contradicts* when it
excludes every effect of the claimed size, *inconclusive* otherwise. The book's rules check that
each claim box's verdict matches its line (holds / holds with a qualification ⇐ supports, does
not reproduce here ⇐ contradicts, inconclusive at this scale ⇐ inconclusive).

Intervals resample or average over the real unit of replication (seeds, documents, images),
never over correlated pieces of one unit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import stdtrit

from dlnotes.validation import check_choice, check_finite, check_in_range, check_int_at_least

__all__ = [
    "Interval",
    "Evidence",
    "mean_interval",
    "paired_difference",
    "bootstrap_interval",
    "percentile_interval",
    "verdict",
    "evidence_line",
    "parse_evidence_line",
    "RESULTS",
]

#: The three results of an evidence line.
RESULTS = ("supports", "contradicts", "inconclusive")
Result = Literal["supports", "contradicts", "inconclusive"]


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval and the number of independent units."""

    estimate: float
    low: float
    high: float
    n: int
    unit: str = "seeds"
    level: float = 0.95


def _sample(name: str, x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    check_int_at_least(f"len({name})", a.size, 2)
    check_finite(name, a)
    return a


def mean_interval(x: Any, *, level: float = 0.95, unit: str = "seeds") -> Interval:
    r"""The Student-*t* interval of a mean: :math:`\bar x \pm t_{n-1}\, s/\sqrt n`.

    Parameters
    ----------
    x
        One value per independent unit (seed, document, …), at least two.
    level
        Confidence level in (0, 1).
    unit
        What one value is, for the printed line ("seeds", "documents", …).

    Raises
    ------
    ValueError
        For fewer than two values, non-finite values, or ``level`` outside (0, 1).
    """
    a = _sample("x", x)
    check_in_range("level", level, 0.0, 1.0, low_inclusive=False)
    n = a.size
    mean = float(a.mean())
    # stdtrit is the Student-t quantile that scipy.stats.t.ppf calls (without scipy.stats'
    # import time)
    half = float(stdtrit(n - 1, 0.5 + level / 2) * a.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n, unit, level)


def paired_difference(a: Any, b: Any, *, level: float = 0.95, unit: str = "seeds") -> Interval:
    r"""The Student-*t* interval of the mean paired difference :math:`\overline{a_i - b_i}`.

    Pairs share everything but the condition (the same seed's initialisation and batches, the
    same document), so their difference removes what the pair has in common.

    Raises
    ------
    ValueError
        If ``a`` and ``b`` differ in length, or as :func:`mean_interval`.
    """
    a, b = _sample("a", a), _sample("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must be paired (same length), got {a.size} and {b.size}")
    return mean_interval(a - b, level=level, unit=unit)


def percentile_interval(estimate: float, replicates: Any, *, n: int, unit: str,
                        level: float = 0.95) -> Interval:
    """The percentile interval of bootstrap ``replicates`` around ``estimate``.

    For bootstraps computed elsewhere (chapter 11 resamples documents with
    :func:`dlnotes.whitening.item_bootstrap_weights`); ``n`` is the number of resampled units.

    Raises
    ------
    ValueError
        For fewer than two or non-finite replicates, or ``level`` outside (0, 1).
    """
    reps = _sample("replicates", np.ravel(replicates))
    check_finite("estimate", estimate)
    check_in_range("level", level, 0.0, 1.0, low_inclusive=False)
    check_int_at_least("n", n, 2)
    low, high = np.quantile(reps, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(float(estimate), float(low), float(high), int(n), unit, level)


def bootstrap_interval(
    statistic: Callable[..., float],
    *samples: Any,
    n_resamples: int = 2000,
    level: float = 0.95,
    unit: str = "items",
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic(*samples)``, resampling units jointly.

    Row ``i`` of every sample belongs to unit ``i`` (a document, an image, a seed); each
    resample draws ``n`` units with replacement and keeps their rows together, so paired
    measurements stay paired.

    Parameters
    ----------
    statistic
        ``statistic(*samples) -> float``, evaluated on the data and on each resample.
    samples
        Arrays with the same first dimension ``n`` ≥ 2 (the units).
    n_resamples
        Number of bootstrap resamples, ≥ 100.
    level, unit
        As in :func:`mean_interval`.
    seed
        Seeds the resampling (NumPy's ``default_rng``).

    Raises
    ------
    ValueError
        For no samples, samples of different lengths, or out-of-range settings.
    """
    if not samples:
        raise ValueError("samples must hold at least one array")
    arrays = [np.asarray(s) for s in samples]
    n = arrays[0].shape[0] if arrays[0].ndim else 0
    if any(a.ndim == 0 or a.shape[0] != n for a in arrays):
        raise ValueError("samples must share their first dimension (one row per unit)")
    check_int_at_least("number of units", n, 2)
    check_int_at_least("n_resamples", n_resamples, 100)
    rng = np.random.default_rng(seed)
    estimate = float(statistic(*arrays))
    reps = np.array([statistic(*(a[idx] for a in arrays))
                     for idx in rng.integers(0, n, size=(n_resamples, n))], dtype=np.float64)
    return percentile_interval(estimate, reps, n=n, unit=unit, level=level)


def verdict(interval: Interval, *, margin: float, direction: int = 1) -> Result:
    r"""What an interval says about a claimed effect of at least ``margin``.

    Parameters
    ----------
    interval
        The measured effect.
    margin
        The smallest effect that would matter, ≥ 0, stated before the measurement.
    direction
        ``+1``: the claim says the effect is positive; ``-1``: negative; ``0``: the claim says
        there is no effect larger than the margin.

    Returns
    -------
    str
        For ±1: ``"supports"`` if the whole interval lies beyond the margin in the claimed
        direction, ``"contradicts"`` if it lies wholly short of it (no effect of the claimed
        size is compatible with the data), ``"inconclusive"`` if it straddles the margin. For
        0: ``"supports"`` if the interval lies inside :math:`(-m, m)`, ``"contradicts"`` if
        it lies wholly outside, ``"inconclusive"`` otherwise.

    Raises
    ------
    ValueError
        For a negative or non-finite margin, or a direction other than −1, 0, 1.
    """
    check_in_range("margin", margin, 0.0, math.inf)
    check_choice("direction", direction, [-1, 0, 1])
    low, high = interval.low, interval.high
    if direction == 0:
        if -margin < low and high < margin:
            return "supports"
        if low >= margin or high <= -margin:
            return "contradicts"
        return "inconclusive"
    if direction == -1:
        low, high = -high, -low
    if low > margin:
        return "supports"
    if high < margin:
        return "contradicts"
    return "inconclusive"


@dataclass(frozen=True)
class Evidence:
    """One claim's evidence: printing it prints the evidence line."""

    label: str
    what: str
    interval: Interval
    margin: float
    direction: int
    result: Result
    digits: int = 3

    def __str__(self) -> str:
        def num(x: float) -> str:
            return _format(x, self.digits, sign=True)

        i = self.interval
        return (f"[{self.label}] {self.what} = {num(i.estimate)}, "
                f"{round(100 * i.level)}% CI [{num(i.low)}, {num(i.high)}], "
                f"n = {i.n} {i.unit}, margin {self.margin:g} → {self.result}")


def _format(x: float, digits: int, *, sign: bool = False) -> str:
    """``x`` to ``digits`` significant digits, without exponent for ordinary magnitudes."""
    if x == 0:
        return "+0" if sign else "0"
    decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
    text = f"{x:.{decimals}f}"
    if float(text) == 0:  # rounds to zero at this precision: keep the sign honest
        text = f"{x:.{digits - 1}e}"
    return ("+" if sign and x > 0 else "") + text


LABEL = re.compile(r"claim-\d\d-[a-z0-9-]+")
_NUM = r"[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?"
LINE = re.compile(
    rf"^\[(?P<label>{LABEL.pattern})\] (?P<what>.+?) = (?P<effect>{_NUM}), "
    rf"(?P<level>\d+)% CI \[(?P<low>{_NUM}), (?P<high>{_NUM})\], "
    rf"n = (?P<n>\d+) (?P<unit>[^,]+), margin (?P<margin>{_NUM}) → "
    rf"(?P<result>{'|'.join(RESULTS)})$",
    re.M,
)


def evidence_line(
    label: str,
    what: str,
    interval: Interval,
    *,
    margin: float,
    direction: int = 1,
    digits: int = 3,
) -> Evidence:
    """The evidence of one claim: the interval, the margin and the :func:`verdict`.

    ``print(evidence_line(...))`` prints the line the book's rules and its ledger read.

    Parameters
    ----------
    label
        The claim's label, ``claim-NN-short-name``.
    what
        What the effect is, e.g. ``"test accuracy, dropout − plain"``.
    interval
        The measured effect (:func:`paired_difference`, :func:`mean_interval`,
        :func:`bootstrap_interval`).
    margin, direction
        As in :func:`verdict`.
    digits
        Significant digits printed (choose few enough that another CPU prints the same).

    Raises
    ------
    ValueError
        For a malformed label, an empty ``what``, or as :func:`verdict`.
    """
    if not isinstance(label, str) or not LABEL.fullmatch(label):
        raise ValueError(f"label must look like 'claim-NN-short-name', got {label!r}")
    if not what or "\n" in what or " = " in what:
        raise ValueError("what must be a one-line description without ' = '")
    check_int_at_least("digits", digits, 1)
    result = verdict(interval, margin=margin, direction=direction)
    return Evidence(label, what, interval, float(margin), direction, result, digits)


def parse_evidence_line(text: str) -> dict[str, dict[str, Any]]:
    """Every evidence line in ``text``, by label: ``what, effect, low, high, level, n, unit,
    margin, result`` (numbers as floats, ``n`` as int).

    Raises
    ------
    ValueError
        If a label has two evidence lines.
    """
    found: dict[str, dict[str, Any]] = {}
    for m in LINE.finditer(text):
        label = m.group("label")
        if label in found:
            raise ValueError(f"{label} has more than one evidence line")
        found[label] = {
            "what": m.group("what"),
            "effect": float(m.group("effect")),
            "low": float(m.group("low")),
            "high": float(m.group("high")),
            "level": int(m.group("level")) / 100,
            "n": int(m.group("n")),
            "unit": m.group("unit"),
            "margin": float(m.group("margin")),
            "result": m.group("result"),
        }
    return found

