r"""Metrics of discrete predictions and their smooth surrogates. Used in chapter 13,
"Gradients through sampling".

F1 counts true and false positives of hard predictions, so its gradient with respect to a
model's parameters is zero almost everywhere. :func:`soft_f1_loss` replaces the counts by
sums of probabilities, a differentiable surrogate that equals :math:`1 - F_1` on hard
predictions; :func:`best_f1_threshold` picks the decision threshold that maximises F1 on
held-out scores.
"""

from __future__ import annotations

import math

import torch

from dlnotes.validation import (
    check_float_tensor,
    check_labels_in,
    check_same_shape,
    check_tensor,
    check_values_in,
)

__all__ = ["soft_f1_loss", "best_f1_threshold"]


def soft_f1_loss(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""One minus the soft F1 score, a differentiable surrogate for :math:`1 - F_1`.

    .. math::
        \ell(p, y) = 1 - \frac{2\sum_i p_iy_i}{\sum_i p_i + \sum_i y_i},

    that is :math:`1 - 2\,\mathrm{TP}/(2\,\mathrm{TP} + \mathrm{FP} + \mathrm{FN})` with the
    counts replaced by sums of probabilities. On hard predictions :math:`p \in \{0, 1\}` it is
    exactly :math:`1 - F_1`; when there are no positives and none is predicted (the
    denominator is 0) it is 0, like F1 = 1 by convention.

    Parameters
    ----------
    probs
        Predicted probabilities of the positive class, a floating tensor with values in [0, 1].
    targets
        Same shape, labels (or soft labels) in [0, 1].

    Returns
    -------
    torch.Tensor
        Scalar in [0, 1], over all elements together (F1 is not a mean of per-example terms).

    Raises
    ------
    ValueError
        If the shapes differ, or a value is not finite or outside [0, 1].
    """
    check_float_tensor("probs", probs)
    check_tensor("targets", targets, finite=True)
    check_same_shape("probs", probs, "targets", targets)
    check_values_in("probs", probs, 0.0, 1.0)
    check_values_in("targets", targets, 0.0, 1.0)
    tp = (probs * targets).sum()
    denominator = probs.sum() + targets.sum()
    safe = denominator.clamp(min=torch.finfo(probs.dtype).tiny)
    return torch.where(denominator > 0, 1.0 - 2.0 * tp / safe, torch.zeros_like(tp))


def best_f1_threshold(scores: torch.Tensor, targets: torch.Tensor) -> tuple[float, float, float]:
    r"""The thresholds on ``scores`` that maximise F1, predicting positive when score ≥ t.

    Predicting the top :math:`m` scores as positive gives
    :math:`F_1(m) = 2\,\mathrm{TP}(m)/(m + P)` with :math:`P` the number of positives; every
    :math:`t` in :math:`(s_{(m+1)}, s_{(m)}]` (scores sorted in decreasing order) makes the
    same predictions. Ties in ``scores`` are never split.

    Parameters
    ----------
    scores
        Shape ``(n,)``, finite (probabilities or logits).
    targets
        Shape ``(n,)``, labels in {0, 1} with at least one positive.

    Returns
    -------
    low, high, f1
        The best F1 and the interval ``(low, high]`` of thresholds that achieve it at the
        smallest number of predicted positives (``low`` is ``-inf`` if every example is
        predicted positive).

    Raises
    ------
    ValueError
        If there is no positive label (F1 is undefined), or for a wrong shape or value.
    """
    check_tensor("scores", scores, 1, finite=True)
    check_same_shape("scores", scores, "targets", targets)
    check_labels_in("targets", targets, (0, 1))
    positives = float(targets.sum())
    if positives == 0:
        raise ValueError("targets must contain at least one positive (F1 is undefined)")
    s = scores.detach().to(torch.float64)
    order = torch.argsort(s, descending=True, stable=True)
    s_sorted, tp = s[order], torch.cumsum(targets[order].to(torch.float64), dim=0)
    m = torch.arange(1, s.shape[0] + 1, dtype=torch.float64)
    valid = torch.ones_like(s_sorted, dtype=torch.bool)
    valid[:-1] = s_sorted[:-1] > s_sorted[1:]  # cut only between distinct scores
    f1 = torch.where(valid, 2.0 * tp / (m + positives), torch.full_like(m, -1.0))
    best = int(torch.argmax(f1))
    low = float(s_sorted[best + 1]) if best + 1 < s.shape[0] else -math.inf
    return low, float(s_sorted[best]), float(f1[best])
