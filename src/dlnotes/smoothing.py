r"""Label smoothing, the logits it asks for, and calibration measures. Used in chapter 5,
"Output noise: label smoothing".

Two conventions for the smoothed target of a ``k``-class problem are in use:

- ``"uniform"`` (Szegedy et al. 2016, Müller et al. 2019, ``torch.nn.functional.cross_entropy``
  with ``label_smoothing``): :math:`q = (1-\varepsilon)\,\text{onehot} + \varepsilon/k`, so
  the true class gets :math:`1 - \varepsilon + \varepsilon/k` and every other class
  :math:`\varepsilon/k`;
- ``"others"`` (Goodfellow et al. 2016, §7.5.1, and the course notes): the true class gets
  :math:`1-\varepsilon` and every other class :math:`\varepsilon/(k-1)`.

They describe the same family of targets: ``eps_others = eps_uniform * (k - 1) / k``
(:func:`convert_eps`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from dlnotes.validation import (
    check_choice,
    check_finite,
    check_in_range,
    check_int_at_least,
    check_ndim,
    check_positive,
    check_same_rows,
)

__all__ = [
    "CONVENTIONS",
    "target_probabilities",
    "smooth_targets",
    "convert_eps",
    "smoothed_cross_entropy",
    "optimal_logit_gap",
    "logit_gap",
    "CalibrationBins",
    "calibration_bins",
    "expected_calibration_error",
    "fit_temperature",
]

#: The two ways of spreading ε over the classes (see the module docstring).
CONVENTIONS: tuple[str, ...] = ("uniform", "others")


def _check_eps_k_convention(eps: float, num_classes: int, convention: str) -> None:
    check_in_range("eps", eps, 0.0, 1.0)
    check_int_at_least("num_classes", num_classes, 2)
    check_choice("convention", convention, CONVENTIONS)


def _check_labels(labels: torch.Tensor, num_classes: int) -> None:
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    check_ndim("labels", labels, 1)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must hold integer class indices, got dtype {labels.dtype}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}] (num_classes="
                         f"{num_classes}), got values from {int(labels.min())} to "
                         f"{int(labels.max())}")


def _check_scores(name: str, scores: torch.Tensor, labels: torch.Tensor) -> int:
    """Check a (n, k) float tensor against labels of length n; return k."""
    if not isinstance(scores, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(scores).__name__}")
    check_ndim(name, scores, 2)
    if not scores.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {scores.dtype}")
    if scores.shape[0] == 0:
        raise ValueError(f"{name} must have at least one row, got shape {tuple(scores.shape)}")
    check_finite(name, scores)
    num_classes = scores.shape[1]
    check_int_at_least(f"{name}.shape[1] (the number of classes)", num_classes, 2)
    _check_labels(labels, num_classes)
    check_same_rows(name, scores, "labels", labels)
    return num_classes


def target_probabilities(eps: float, num_classes: int,
                         convention: str = "uniform") -> tuple[float, float]:
    r"""The smoothed target's probability of the true class and of each other class.

    Parameters
    ----------
    eps
        Smoothing strength in [0, 1).
    num_classes
        Number of classes ``k`` ≥ 2.
    convention
        ``"uniform"``: :math:`(1-\varepsilon+\varepsilon/k,\ \varepsilon/k)`;
        ``"others"``: :math:`(1-\varepsilon,\ \varepsilon/(k-1))`.

    Returns
    -------
    true, other
        Two floats with ``true + (k - 1) * other == 1``.

    Raises
    ------
    ValueError
        If ``eps`` is outside [0, 1), ``num_classes`` < 2 or the convention is unknown.
    """
    _check_eps_k_convention(eps, num_classes, convention)
    eps, k = float(eps), int(num_classes)
    if convention == "uniform":
        return 1.0 - eps + eps / k, eps / k
    return 1.0 - eps, eps / (k - 1)


def smooth_targets(
    labels: torch.Tensor,
    num_classes: int,
    eps: float,
    convention: str = "uniform",
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Smoothed target distributions, one row per label.

    Parameters
    ----------
    labels
        Integer class indices of shape ``(n,)``, each in ``[0, num_classes)``.
    num_classes
        Number of classes ``k`` ≥ 2.
    eps
        Smoothing strength in [0, 1); 0 gives one-hot rows.
    convention
        ``"uniform"`` or ``"others"`` (see :func:`target_probabilities`).
    dtype
        Floating dtype of the result (torch's default dtype if ``None``).

    Returns
    -------
    torch.Tensor
        Shape ``(n, k)``; every row sums to 1.

    Raises
    ------
    ValueError
        For ``eps`` outside [0, 1), ``num_classes`` < 2, an unknown convention, labels that
        are not a 1-D integer tensor or lie outside ``[0, num_classes)``.
    """
    true, other = target_probabilities(eps, num_classes, convention)
    _check_labels(labels, num_classes)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    q = torch.full((labels.shape[0], num_classes), other, dtype=dtype)
    q.scatter_(1, labels[:, None].long(), true)
    return q


def convert_eps(eps: float, num_classes: int, source: str = "uniform",
                target: str = "others") -> float:
    """The ε of convention ``target`` that gives the same smoothed targets as ``eps`` in
    ``source``.

    ``eps_others = eps_uniform * (k - 1) / k`` and ``eps_uniform = eps_others * k / (k - 1)``.

    Parameters
    ----------
    eps
        Smoothing strength in [0, 1) in the ``source`` convention.
    num_classes
        Number of classes ``k`` ≥ 2.
    source, target
        ``"uniform"`` or ``"others"``.

    Returns
    -------
    float
        The equivalent ε in the ``target`` convention.

    Raises
    ------
    ValueError
        For bad arguments, or if the converted ε is not in [0, 1) (an ``"others"`` ε ≥
        (k − 1)/k gives the true class no more than 1/k, which no uniform ε < 1 does).
    """
    _check_eps_k_convention(eps, num_classes, source)
    check_choice("target", target, CONVENTIONS)
    k = int(num_classes)
    if source == target:
        return float(eps)
    out = eps * (k - 1) / k if source == "uniform" else eps * k / (k - 1)
    if out >= 1.0:
        raise ValueError(f"eps={eps!r} in the 'others' convention has no 'uniform' "
                         f"equivalent in [0, 1) for num_classes={k} (needs eps < {(k - 1) / k})")
    return float(out)


def smoothed_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    convention: str = "uniform",
) -> torch.Tensor:
    r"""Mean cross-entropy between smoothed targets and the softmax of ``logits``.

    .. math::
        \ell(z, y) = -\sum_{j=1}^{k} q_j \log \operatorname{softmax}(z)_j ,

    with :math:`q` from :func:`smooth_targets`. Computed through ``log_softmax``, so logits
    of ±1e4 give finite values and the gradient :math:`\operatorname{softmax}(z) - q`. For
    ``convention="uniform"`` it equals
    ``torch.nn.functional.cross_entropy(logits, labels, label_smoothing=eps)``.

    Parameters
    ----------
    logits
        Floating tensor of shape ``(n, k)``, ``n`` ≥ 1, ``k`` ≥ 2.
    labels
        Integer class indices of shape ``(n,)``.
    eps, convention
        As in :func:`smooth_targets`.

    Returns
    -------
    torch.Tensor
        Scalar, the mean over the ``n`` rows.

    Raises
    ------
    ValueError
        For wrong shapes or dtypes, non-finite logits, labels out of range, ``eps`` outside
        [0, 1) or an unknown convention.
    """
    num_classes = _check_scores("logits", logits, labels)
    q = smooth_targets(labels, num_classes, eps, convention, dtype=logits.dtype)
    return -(q * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def optimal_logit_gap(eps: float, num_classes: int, convention: str = "uniform") -> float:
    r"""The gap between the true-class logit and every other logit that minimises the
    smoothed cross-entropy.

    At the minimum the softmax equals the target, so the gap is
    :math:`\log(q_{\text{true}} / q_{\text{other}})`:

    .. math::
        \text{uniform: } \log\Bigl(1 + \frac{k(1-\varepsilon)}{\varepsilon}\Bigr), \qquad
        \text{others: } \log\frac{(1-\varepsilon)(k-1)}{\varepsilon}.

    Parameters
    ----------
    eps, num_classes, convention
        As in :func:`smooth_targets`.

    Returns
    -------
    float
        The optimal gap; ``math.inf`` for ``eps = 0`` (hard targets have no finite minimiser).

    Raises
    ------
    ValueError
        For ``eps`` outside [0, 1), ``num_classes`` < 2 or an unknown convention.
    """
    _check_eps_k_convention(eps, num_classes, convention)
    if eps == 0:
        return math.inf
    k = int(num_classes)
    if convention == "uniform":
        return math.log1p(k * (1.0 - eps) / eps)
    return math.log((1.0 - eps) * (k - 1) / eps)


def logit_gap(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    r"""Per example, the true-class logit minus the mean of the other logits.

    :math:`z_y - \frac{1}{k-1}\sum_{j\ne y} z_j`; at the minimiser of the smoothed
    cross-entropy every other logit is equal and this is :func:`optimal_logit_gap`.

    Parameters
    ----------
    logits
        Floating tensor of shape ``(n, k)``.
    labels
        Integer class indices of shape ``(n,)``.

    Returns
    -------
    torch.Tensor
        Shape ``(n,)``.

    Raises
    ------
    ValueError
        For wrong shapes or dtypes, non-finite logits or labels out of range.
    """
    k = _check_scores("logits", logits, labels)
    true = logits.gather(1, labels[:, None].long())[:, 0]
    return true - (logits.sum(dim=1) - true) / (k - 1)


class CalibrationBins(NamedTuple):
    """Per-bin statistics of a reliability diagram (empty bins hold zeros)."""

    edges: torch.Tensor
    """Bin edges, shape ``(n_bins + 1,)``, from 0 to 1."""
    confidence: torch.Tensor
    """Mean maximum probability in each bin, shape ``(n_bins,)``."""
    accuracy: torch.Tensor
    """Fraction of correct arg-max predictions in each bin, shape ``(n_bins,)``."""
    count: torch.Tensor
    """Number of examples in each bin, shape ``(n_bins,)``."""


def _check_probs(probs: torch.Tensor, labels: torch.Tensor) -> None:
    _check_scores("probs", probs, labels)
    if bool(((probs < 0) | (probs > 1)).any()):
        raise ValueError("probs must lie in [0, 1]")
    tol = 1e-4 if probs.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-8
    if bool(((probs.sum(dim=1) - 1).abs() > tol).any()):
        raise ValueError(f"each row of probs must sum to 1 (within {tol})")


def calibration_bins(probs: torch.Tensor, labels: torch.Tensor,
                     n_bins: int = 15) -> CalibrationBins:
    """Group predictions into equal-width bins of confidence (the maximum probability).

    Bin ``b`` holds the examples with confidence in ``(b/n_bins, (b+1)/n_bins]`` (the first
    bin also holds 0), as in Guo et al. (2017).

    Parameters
    ----------
    probs
        Predicted class probabilities, shape ``(n, k)``, rows summing to 1.
    labels
        Integer class indices of shape ``(n,)``.
    n_bins
        Number of bins, ≥ 1.

    Returns
    -------
    CalibrationBins
        Edges, mean confidence, accuracy and count per bin (float64).

    Raises
    ------
    ValueError
        For wrong shapes, probabilities outside [0, 1] or rows not summing to 1, labels out of
        range or ``n_bins`` < 1.
    """
    check_int_at_least("n_bins", n_bins, 1)
    _check_probs(probs, labels)
    conf, pred = probs.to(torch.float64).max(dim=1)
    correct = (pred == labels).to(torch.float64)
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    index = torch.bucketize(conf, edges[1:-1], right=False)
    count = torch.bincount(index, minlength=n_bins).to(torch.float64)
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, conf)
    correct_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, correct)
    safe = count.clamp(min=1.0)
    return CalibrationBins(edges, conf_sum / safe, correct_sum / safe, count)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor,
                               n_bins: int = 15) -> float:
    r"""Expected calibration error with equal-width confidence bins.

    .. math::
        \mathrm{ECE} = \sum_{b} \frac{n_b}{n}\,\bigl|\mathrm{acc}_b - \mathrm{conf}_b\bigr| ,

    where :math:`\mathrm{conf}_b` is the mean maximum probability and :math:`\mathrm{acc}_b`
    the accuracy of the :math:`n_b` examples in bin :math:`b` (:func:`calibration_bins`).
    Guo et al. (2017) and Müller et al. (2019) use 15 bins.

    Parameters
    ----------
    probs
        Predicted class probabilities, shape ``(n, k)``, rows summing to 1.
    labels
        Integer class indices of shape ``(n,)``.
    n_bins
        Number of equal-width confidence bins, ≥ 1.

    Returns
    -------
    float
        A number in [0, 1]; 0 for a perfectly calibrated model (per bin).

    Raises
    ------
    ValueError
        As :func:`calibration_bins`.
    """
    bins = calibration_bins(probs, labels, n_bins)
    weights = bins.count / bins.count.sum()
    return float((weights * (bins.accuracy - bins.confidence).abs()).sum())


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, low: float = 0.01,
                    high: float = 100.0, iterations: int = 100) -> float:
    r"""The temperature :math:`T` minimising the mean NLL of ``softmax(logits / T)``.

    Temperature scaling (Guo et al. 2017) rescales a trained model's logits on held-out
    data. The NLL is convex in :math:`1/T`, hence unimodal in :math:`\log T`, and a golden-
    section search over :math:`\log T \in [\log \text{low}, \log \text{high}]` finds the
    minimiser (to far below 1e-6 relative error with the default 100 iterations). If the
    minimiser lies outside the interval (e.g. perfectly separated data, where the NLL falls
    as :math:`T \to 0`) the nearest end is returned.

    Parameters
    ----------
    logits
        Floating tensor of shape ``(n, k)`` (evaluated in float64).
    labels
        Integer class indices of shape ``(n,)``.
    low, high
        Search interval for :math:`T`, ``0 < low < high``.
    iterations
        Golden-section steps, ≥ 1.

    Returns
    -------
    float
        The fitted temperature; divide the logits by it.

    Raises
    ------
    ValueError
        For wrong shapes or dtypes, non-finite logits, labels out of range or a bad interval.
    """
    _check_scores("logits", logits, labels)
    check_positive("low", low)
    check_positive("high", high)
    if not low < high:
        raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
    check_int_at_least("iterations", iterations, 1)
    z = logits.detach().to(torch.float64)
    y = labels.long()

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(z / math.exp(log_t), y))

    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(iterations):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(d)
    return math.exp((a + b) / 2.0)
