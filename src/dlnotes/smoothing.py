r"""Label smoothing and label noise, the logits they ask for, and calibration measures.
Used in chapter 5, "Output noise: label smoothing".

Two conventions for the smoothed target of a ``k``-class problem are in use:

- ``"uniform"`` (Szegedy et al. 2016, Müller et al. 2019, ``torch.nn.functional.cross_entropy``
  with ``label_smoothing``): :math:`q = (1-\varepsilon)\,\text{onehot} + \varepsilon/k`, so
  the true class gets :math:`1 - \varepsilon + \varepsilon/k` and every other class
  :math:`\varepsilon/k`;
- ``"others"`` (Goodfellow et al. 2016, §7.5.1, and the course notes): the true class gets
  :math:`1-\varepsilon` and every other class :math:`\varepsilon/(k-1)`.

They describe the same family of targets: ``eps_others = eps_uniform * (k - 1) / k``
(:func:`convert_eps`). The ``"others"`` target with ε is the expected one-hot label under
symmetric label noise at rate ε (:func:`corrupt_labels`).

Modelling the noise explicitly instead scores the recorded label under the noisy
probabilities (:func:`forward_corrected_cross_entropy`). :func:`label_noise_objective` is the
chapter's training loss (smoothing or forward correction, one setting per replica of
:func:`dlnotes.training.fit_replicas`); :func:`reliability_diagram` draws calibration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F

from dlnotes.validation import (
    check_choice,
    check_distribution_rows,
    check_float_tensor,
    check_in_range,
    check_int_at_least,
    check_integer_array,
    check_length,
    check_less,
    check_min_length,
    check_positive,
    check_same_rows,
    check_tensor,
    check_type,
    check_values_in,
)

__all__ = [
    "CONVENTIONS",
    "target_probabilities",
    "smooth_targets",
    "convert_eps",
    "smoothed_cross_entropy",
    "optimal_logit_gap",
    "logit_gap",
    "logit_gap_descent",
    "corrupt_labels",
    "forward_corrected_cross_entropy",
    "label_noise_objective",
    "WeightNormTracker",
    "CalibrationBins",
    "calibration_bins",
    "expected_calibration_error",
    "fit_temperature",
    "reliability_diagram",
]

if TYPE_CHECKING:  # smoothing draws on axes it is given; it does not import matplotlib itself
    from matplotlib.axes import Axes

#: The two ways of spreading ε over the classes (see the module docstring).
CONVENTIONS: tuple[str, ...] = ("uniform", "others")


def _check_eps_k_convention(eps: float, num_classes: int, convention: str) -> None:
    check_in_range("eps", eps, 0.0, 1.0)
    check_int_at_least("num_classes", num_classes, 2)
    check_choice("convention", convention, CONVENTIONS)


def _check_labels(labels: torch.Tensor, num_classes: int) -> None:
    """Class indices: a 1-D integer tensor with values in ``[0, num_classes)``."""
    check_tensor("labels", labels, 1)
    check_integer_array("labels", labels, 1, low=0, high=num_classes)


def _check_scores(name: str, scores: torch.Tensor, labels: torch.Tensor) -> int:
    """Check a (n, k) float tensor against labels of length n; return k."""
    check_float_tensor(name, scores, 2)
    check_min_length(name, scores, 1, "rows")
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
        For labels outside ``[0, num_classes)``, or a bad ``eps`` or convention.
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
    An ``"others"`` ε ≥ (k − 1)/k has no ``"uniform"`` equivalent: it gives the true class no
    more than 1/k, which no uniform ε < 1 does.

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
        If the converted ε is not in [0, 1), or for a bad argument.
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
        For labels out of range, or a wrong shape, dtype or setting.
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


def logit_gap_descent(eps: float, steps: int, num_classes: int = 10, *, lr: float = 5.0,
                      convention: str = "uniform") -> torch.Tensor:
    r"""Gradient descent on the free logits of one example; the logit gap after every step.

    Starts from ``num_classes`` zero logits (float64), takes ``steps`` plain gradient steps
    of size ``lr`` on :func:`smoothed_cross_entropy` with true class 0 (whose gradient is
    :math:`\operatorname{softmax}(z) - q`), and records :func:`logit_gap` after each. With
    ``eps > 0`` the gap settles at :func:`optimal_logit_gap`; with ``eps = 0`` it grows
    without bound, by about :math:`\ln 10` per tenfold increase in steps once it is large
    (chapter 5 derives both).

    Parameters
    ----------
    eps
        Smoothing strength in [0, 1).
    steps
        Number of gradient steps, ≥ 1.
    num_classes
        Number of classes ``k`` ≥ 2.
    lr
        Step size, > 0.
    convention
        ``"uniform"`` or ``"others"`` (see :func:`target_probabilities`).

    Returns
    -------
    torch.Tensor
        Shape ``(steps,)``, float64: entry ``t - 1`` is the gap after ``t`` steps.

    Raises
    ------
    ValueError
        If an argument is outside the range given above.
    """
    _check_eps_k_convention(eps, num_classes, convention)
    check_int_at_least("steps", steps, 1)
    check_positive("lr", lr)
    q = smooth_targets(torch.tensor([0]), num_classes, eps, convention, dtype=torch.float64)[0]
    z = torch.zeros(num_classes, dtype=torch.float64)
    gaps = torch.empty(steps, dtype=torch.float64)
    for t in range(steps):  # the loop is the lesson: plain gradient descent, written out
        z -= lr * (torch.softmax(z, dim=0) - q)  # the gradient of the cross-entropy
        gaps[t] = z[0] - z[1:].mean()
    return gaps


def corrupt_labels(labels: torch.Tensor, rate: float, num_classes: int, *,
                   generator: torch.Generator) -> torch.Tensor:
    r"""Symmetric label noise: each label is, with probability ``rate``, replaced by one of
    the *other* classes, chosen uniformly.

    Every label is flipped independently (a Bernoulli draw per label, so the flipped fraction
    is ``rate`` only on average), and a flipped label never equals its original: the new
    class is :math:`(y + s) \bmod k` with :math:`s` uniform on :math:`\{1, \dots, k-1\}`.
    This is the noise model of the chapter's notes: a label is right with probability
    :math:`1-\varepsilon` and each wrong class has probability :math:`\varepsilon/(k-1)`,
    so the expected one-hot of a corrupted label is the ``"others"`` smoothed target with
    ``eps = rate`` (:func:`smooth_targets`).

    Parameters
    ----------
    labels
        Integer class indices of shape ``(n,)``, each in ``[0, num_classes)``.
    rate
        Flip probability in [0, 1]; 0 returns the labels unchanged.
    num_classes
        Number of classes ``k`` ≥ 2.
    generator
        The source of randomness (a seeded ``torch.Generator``).

    Returns
    -------
    torch.Tensor
        Corrupted labels, same shape and dtype as ``labels``; the original is not modified.

    Raises
    ------
    ValueError
        For labels out of range, or a bad ``rate`` or ``generator``.
    """
    check_in_range("rate", rate, 0.0, 1.0, high_inclusive=True)
    check_int_at_least("num_classes", num_classes, 2)
    _check_labels(labels, num_classes)
    check_type("generator", generator, torch.Generator)
    flip = torch.rand(labels.shape, generator=generator, dtype=torch.float64) < rate
    shift = torch.randint(1, num_classes, labels.shape, generator=generator)
    return torch.where(flip, (labels + shift) % num_classes, labels).to(labels.dtype)


def _forward_corrected(log_probs: torch.Tensor, labels: torch.Tensor,
                       rate: torch.Tensor | float) -> torch.Tensor:
    """Per-row forward-corrected NLL from log-probabilities (no checks: safe under vmap)."""
    k = log_probs.shape[-1]
    rate = torch.as_tensor(rate, dtype=log_probs.dtype)
    keep = 1.0 - rate * k / (k - 1)  # (1 - r) - r/(k - 1): the weight of p on its own label
    log_label = log_probs.gather(-1, labels[..., None].long())[..., 0]
    return -torch.logaddexp(torch.log(keep) + log_label, torch.log(rate / (k - 1)))


def forward_corrected_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                                    rate: float) -> torch.Tensor:
    r"""Mean negative log-likelihood of noisy labels under symmetric label noise at ``rate``.

    The model's clean probabilities :math:`p = \operatorname{softmax}(z)` are pushed through
    the noise of :func:`corrupt_labels` (the notes' noise model: a label is kept with
    probability :math:`1-r` and replaced by each other class with probability
    :math:`r/(k-1)`), and the recorded label :math:`\tilde y` is scored under the result:

    .. math::
        \ell(z, \tilde y) = -\log\Bigl[(1-r)\,p_{\tilde y}
        + \frac{r}{k-1}\,(1 - p_{\tilde y})\Bigr],

    the *forward correction* of Patrini et al. (2017) for a known symmetric transition matrix.
    Its expected value over the noise is minimised by the *clean* posterior (chapter 5 derives
    it), and each example's loss is at most :math:`-\log\frac{r}{k-1}`: a wrong label can
    pull only so hard. Computed with ``logaddexp`` from ``log_softmax``, finite at any logits;
    ``rate = 0`` is the ordinary cross-entropy.

    Parameters
    ----------
    logits
        Floating tensor of shape ``(n, k)``.
    labels
        The recorded (possibly wrong) class indices, shape ``(n,)``.
    rate
        The noise rate :math:`r` in :math:`[0, (k-1)/k)` (at :math:`(k-1)/k` the recorded label
        carries no information).

    Returns
    -------
    torch.Tensor
        Scalar, the mean over the rows.

    Raises
    ------
    ValueError
        For a rate outside :math:`[0, (k-1)/k)`, or as :func:`smoothed_cross_entropy`.
    """
    k = _check_scores("logits", logits, labels)
    check_in_range("rate", rate, 0.0, (k - 1) / k)
    return _forward_corrected(F.log_softmax(logits, dim=1), labels, float(rate)).mean()


def label_noise_objective(model: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor,
                          labels: torch.Tensor, *, eps: torch.Tensor | float = 0.0,
                          rate: torch.Tensor | float = 0.0) -> torch.Tensor:
    r"""The training loss of chapter 5's label-noise experiments, for
    :func:`dlnotes.training.fit_replicas`.

    With ``rate > 0`` it is :func:`forward_corrected_cross_entropy` at that rate; otherwise the
    smoothed cross-entropy in the notes' convention (``"others"``, :func:`smoothed_cross_entropy`)
    with ``eps`` (0: hard targets). ``eps`` and ``rate`` may be per-replica tensors
    (``replica_kwargs``); nothing here reads a tensor's value, so it runs under
    :func:`torch.func.vmap`. Arguments are not checked: the tests check it against the two
    checked functions.

    Parameters
    ----------
    model
        Maps inputs ``(n, d)`` to logits ``(n, k)``.
    X, labels
        A batch of inputs and (recorded) labels.
    eps
        Smoothing strength in the ``"others"`` convention, used where ``rate`` is 0.
    rate
        Assumed symmetric noise rate of the forward correction, 0 for none.

    Returns
    -------
    torch.Tensor
        Scalar, the mean over the batch.
    """
    log_probs = F.log_softmax(model(X), dim=-1)
    k = log_probs.shape[-1]
    eps = torch.as_tensor(eps, dtype=log_probs.dtype)
    rate = torch.as_tensor(rate, dtype=log_probs.dtype)
    log_label = log_probs.gather(-1, labels[..., None].long())[..., 0]
    others = (log_probs.sum(-1) - log_label) / (k - 1)
    smoothed = -((1.0 - eps) * log_label + eps * others)
    return torch.where(rate > 0, _forward_corrected(log_probs, labels, rate), smoothed).mean()


class WeightNormTracker:
    """Each replica's norm of its weight matrices, during :func:`dlnotes.training.fit_replicas`.

    Pass the tracker as ``after_backward``: it keeps a reference to the stacked parameters
    (updated in place by every step), so a ``callback`` can call :meth:`norms` at a record.
    Biases are left out (``"…weight"`` entries with a replica and two matrix dimensions).
    """

    def __init__(self) -> None:
        self.params: dict[str, torch.Tensor] | None = None

    def __call__(self, params: dict[str, torch.Tensor]) -> None:
        self.params = params

    def norms(self) -> torch.Tensor:
        """Shape ``(R,)``: the Euclidean norm of all weight matrices of each replica.

        Raises
        ------
        RuntimeError
            Before the first training step (no parameters seen yet).
        """
        if self.params is None:
            raise RuntimeError("WeightNormTracker.norms: no training step has run yet")
        weights = [p.detach() for name, p in self.params.items()
                   if name.endswith("weight") and p.ndim == 3]
        return torch.stack([w.flatten(1).pow(2).sum(1) for w in weights]).sum(0).sqrt()


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
    check_values_in("probs", probs, 0.0, 1.0)
    low_precision = probs.dtype in (torch.float16, torch.bfloat16, torch.float32)
    check_distribution_rows("probs", probs, atol=1e-4 if low_precision else 1e-8)


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
        For probability rows that are not distributions, labels out of range, or a bad ``n_bins``.
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
    check_less("low", low, "high", high)
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


def reliability_diagram(
    ax: Axes,
    predictions: dict[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    n_bins: int = 15,
    colors: Sequence[str] | None = None,
    title: str | None = None,
) -> Axes:
    """Draw a reliability diagram: accuracy against confidence in equal-width bins.

    For each entry ``label → (probs, labels)`` (probabilities of shape ``(n, k)`` and integer
    labels of shape ``(n,)``, torch tensors), one line joins the (mean confidence, accuracy)
    points of the non-empty bins of :func:`calibration_bins`. The dashed diagonal is perfect
    calibration: points below it are over-confident, points above it under-confident. A legend
    is drawn only for more than one model.

    Parameters
    ----------
    ax
        The axes to draw on.
    predictions
        Model label → ``(probs, labels)``.
    n_bins
        Number of equal-width confidence bins, ≥ 1.
    colors
        One colour per model, to keep a model's colour the same as in other figures
        (the style's colour cycle if ``None``).
    title
        Optional axes title.

    Returns
    -------
    Axes
        ``ax``.

    Raises
    ------
    ValueError
        If ``colors`` does not hold one colour per model, or as :func:`calibration_bins`.
    """
    check_min_length("predictions", predictions, 1, "(probs, labels) pairs")
    if colors is not None:
        check_length("colors", colors, len(predictions), "colours (one per model)")
    ax.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="0.5", linewidth=1.0)
    for i, (label, (probs, labels)) in enumerate(predictions.items()):
        bins = calibration_bins(probs, labels, n_bins)
        keep = bins.count > 0
        ax.plot(bins.confidence[keep].numpy(), bins.accuracy[keep].numpy(), marker="o",
                markersize=4, label=label, color=None if colors is None else colors[i])
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("confidence (maximum predicted probability)")
    ax.set_ylabel("accuracy in the bin")
    if title:
        ax.set_title(title)
    if len(predictions) > 1:
        ax.legend()
    return ax
