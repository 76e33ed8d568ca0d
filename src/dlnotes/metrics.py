r"""Metrics of discrete predictions and their smooth surrogates. Used in chapter 13,
"Gradients through sampling".

F1 counts true and false positives of hard predictions, so its gradient with respect to a
model's parameters is zero almost everywhere. :func:`soft_f1_loss` replaces the counts by
sums of probabilities, a differentiable surrogate that equals :math:`1 - F_1` on hard
predictions; :func:`best_f1_threshold` picks the decision threshold that maximises F1 on
held-out scores. :func:`corpus_bleu` is the BLEU score of machine translation (Papineni et
al. 2002) as sacreBLEU computes it by default (Post 2018): another metric of discrete outputs.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dlnotes.validation import (
    check_float_tensor,
    check_labels_in,
    check_length,
    check_min_length,
    check_same_shape,
    check_shape,
    check_strings,
    check_tensor,
    check_type,
    check_values_in,
)

__all__ = ["soft_f1_loss", "best_f1_threshold", "tokenize_13a", "corpus_bleu", "bleu_statistics",
           "bleu_from_statistics"]


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


# ---------------------------------------------------------------------------------- BLEU
#: The rules of mteval-v13a's tokeniser (WMT's reference script), in order, as sacreBLEU
#: applies them: punctuation and symbols become tokens; a period or comma does unless it sits
#: between digits; a dash after a digit does.
_RULES_13A = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]
_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))
MAX_ORDER = 4


def tokenize_13a(line: str) -> str:
    """Tokenise one segment as mteval-v13a (sacreBLEU's default ``"13a"`` tokeniser).

    Drops ``<skipped>``, joins a word broken by ``-`` at a line end, turns newlines into
    spaces, unescapes four HTML entities, splits off punctuation and symbols, and returns the
    tokens joined by single spaces.
    """
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in _ENTITIES:
        line = line.replace(entity, char)
    line = f" {line} "
    for pattern, replacement in _RULES_13A:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def _ngrams(tokens: list[str]) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for n in range(1, MAX_ORDER + 1)
                   for i in range(len(tokens) - n + 1))


def _segment_statistics(hypothesis: str, references: list[str]) -> list[int]:
    """``[hyp_len, ref_len, matches_1..4, totals_1..4]`` of one segment."""
    hyp = tokenize_13a(hypothesis.rstrip()).split()
    refs = [tokenize_13a(r.rstrip()).split() for r in references]
    clip: Counter = Counter()
    for ref in refs:
        clip |= _ngrams(ref)  # the largest count of each n-gram in any one reference
    # the closest reference length, the shorter one on a tie
    ref_len = min((abs(len(hyp) - len(r)), len(r)) for r in refs)[1]
    matches, totals = [0] * MAX_ORDER, [0] * MAX_ORDER
    for gram, count in _ngrams(hyp).items():
        totals[len(gram) - 1] += count
        matches[len(gram) - 1] += min(count, clip[gram])
    return [len(hyp), ref_len, *matches, *totals]


def bleu_statistics(hypotheses: Sequence[str], references: Sequence[Sequence[str | None]]
                    ) -> np.ndarray:
    """BLEU's sufficient statistics of each segment, as sacreBLEU counts them.

    Row ``i`` is ``[c, r, m_1, …, m_4, t_1, …, t_4]`` for segment ``i``: the hypothesis length
    :math:`c` (13a tokens), the closest reference length :math:`r` (the shorter one on a
    tie), the clipped n-gram matches :math:`m_n` and the hypothesis n-grams :math:`t_n`.
    Corpus BLEU is :func:`bleu_from_statistics` of their column sums, so a resample of
    segments (a bootstrap) needs no new counting.

    Parameters
    ----------
    hypotheses, references
        As in :func:`corpus_bleu`.

    Returns
    -------
    numpy.ndarray
        Integer array of shape ``(len(hypotheses), 10)``.

    Raises
    ------
    ValueError
        As :func:`corpus_bleu`.
    """
    check_strings("hypotheses", hypotheses, min_count=1)
    check_type("references", references, (list, tuple))  # a list of reference streams
    check_min_length("references", references, 1, "reference streams")
    for j, stream in enumerate(references):
        check_type(f"references[{j}]", stream, (list, tuple))
        check_length(f"references[{j}]", stream, len(hypotheses), "segments (as hypotheses)")
        check_strings(f"references[{j}]", [s for s in stream if s is not None])
    rows = []
    for i, hyp in enumerate(hypotheses):
        refs = [stream[i] for stream in references if stream[i] is not None]
        check_min_length(f"references of segment {i}", refs, 1, "strings")
        rows.append(_segment_statistics(hyp, refs))
    return np.array(rows, dtype=np.int64)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str | None]]) -> float:
    r"""Corpus BLEU on a 0–100 scale, as ``sacrebleu.corpus_bleu(hypotheses, references).score``.

    Segments are tokenised by :func:`tokenize_13a`; n-gram matches (n = 1 … 4) are clipped
    by the largest count in any one reference and summed over the corpus, as are the
    hypothesis length :math:`c` and the closest reference length :math:`r` of each segment:

    .. math::
        \mathrm{BLEU} = 100\cdot\min\big(1, e^{1 - r/c}\big)
        \exp\Big(\tfrac14\sum_{n=1}^4 \log p_n\Big), \qquad
        p_n = \frac{\text{clipped matches of order } n}{\text{hypothesis n-grams of order } n},

    with sacreBLEU's default ``"exp"`` smoothing: the k-th order without a match gets
    :math:`p_n = 1/(2^k\,\text{total}_n)`. No match at all, or an order with no n-gram, gives
    0. The score is a function of the hypotheses' tokens alone: a model's BLEU changes only
    when one of its decoded tokens does.

    Parameters
    ----------
    hypotheses
        One string per segment.
    references
        sacreBLEU's layout: a list of reference *streams*, each with one string per segment
        (``references[j][i]`` is the ``j``-th reference of segment ``i``); ``None`` marks a
        missing reference, but every segment needs at least one.

    Returns
    -------
    float
        BLEU in [0, 100].

    Raises
    ------
    ValueError
        If a stream's length differs from the number of hypotheses, or a segment has no
        reference.
    """
    return bleu_from_statistics(bleu_statistics(hypotheses, references).sum(axis=0))


def bleu_from_statistics(stats: Any) -> float:
    """Corpus BLEU (0–100) from summed statistics ``[c, r, m_1..m_4, t_1..t_4]``
    (:func:`bleu_statistics`), with sacreBLEU's arithmetic and ``"exp"`` smoothing.

    Raises
    ------
    ValueError
        If ``stats`` does not hold 10 non-negative counts.
    """
    stats = np.asarray(stats)
    check_shape("stats", stats, (2 + 2 * MAX_ORDER,))
    check_values_in("stats", stats, 0.0)
    stats = [int(x) for x in stats]
    sys_len, ref_len = stats[0], stats[1]
    matches, totals = stats[2:2 + MAX_ORDER], stats[2 + MAX_ORDER:]
    if not any(matches) or not all(totals):
        return 0.0
    brevity = 1.0 if sys_len >= ref_len else math.exp(1 - ref_len / sys_len) if sys_len else 0.0
    log_precisions, halvings = 0.0, 1.0
    for m, t in zip(matches, totals, strict=True):
        if m == 0:
            halvings *= 2
            log_precisions += math.log(100.0 / (halvings * t))
        else:
            log_precisions += math.log(100.0 * m / t)
    return brevity * math.exp(log_precisions / MAX_ORDER)
