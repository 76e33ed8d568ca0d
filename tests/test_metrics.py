"""dlnotes.metrics against scikit-learn's F1, a brute-force threshold search and the
definition of the soft F1 score."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from dlnotes.metrics import (
    best_f1_threshold,
    bleu_from_statistics,
    bleu_statistics,
    corpus_bleu,
    soft_f1_loss,
    tokenize_13a,
)


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
@settings(max_examples=80, deadline=None)
def test_soft_f1_loss_is_one_minus_sklearn_f1_on_hard_predictions(pairs):
    pred = np.array([p for p, _ in pairs], dtype=np.float64)
    target = np.array([t for _, t in pairs], dtype=np.float64)
    loss = soft_f1_loss(torch.tensor(pred), torch.tensor(target))
    expected = 1.0 - f1_score(target, pred, zero_division=1.0)
    assert float(loss) == pytest.approx(expected, abs=1e-12)


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_soft_f1_loss_lies_in_the_unit_interval_and_has_a_finite_gradient(pairs):
    probs = torch.tensor([p for p, _ in pairs], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([t for _, t in pairs], dtype=torch.float64)
    loss = soft_f1_loss(probs, targets)
    loss.backward()
    assert -1e-12 <= float(loss.detach()) <= 1.0 + 1e-12
    assert torch.isfinite(probs.grad).all()


def test_soft_f1_loss_is_the_expected_counts_formula_and_its_gradient():
    probs = torch.tensor([0.9, 0.2, 0.6, 0.1], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    tp = 0.9 + 0.6 + 0.1  # expected counts: sum p*y, sum p*(1-y), sum (1-p)*y
    fp = 0.2
    fn = (1 - 0.9) + (1 - 0.6) + (1 - 0.1)
    loss = soft_f1_loss(probs, targets)
    assert float(loss.detach()) == pytest.approx(1 - 2 * tp / (2 * tp + fp + fn))
    loss.backward()
    denominator = 1.8 + 3.0
    expected = -(2 * targets * denominator - 2 * tp) / denominator**2
    assert torch.allclose(probs.grad, expected)


def test_soft_f1_loss_is_zero_when_nothing_is_positive_or_predicted():
    zeros = torch.zeros(5)
    assert float(soft_f1_loss(zeros, zeros)) == 0.0


@pytest.mark.parametrize(
    "probs,targets",
    [
        (torch.tensor([0.5, 1.5]), torch.tensor([0.0, 1.0])),
        (torch.tensor([0.5, 0.5]), torch.tensor([0.0, -1.0])),
        (torch.tensor([0.5, float("nan")]), torch.tensor([0.0, 1.0])),
        (torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.0, 1.0])),
        (torch.tensor([0, 1]), torch.tensor([0.0, 1.0])),
        (np.array([0.5, 0.5]), torch.tensor([0.0, 1.0])),
    ],
    ids=["prob-above-one", "negative-target", "nan-prob", "shape-mismatch", "integer-probs",
         "numpy-probs"],
)
def test_soft_f1_loss_rejects_bad_input(probs, targets):
    with pytest.raises(ValueError, match="probs|targets"):
        soft_f1_loss(probs, targets)


# -------------------------------------------------------------------------- F1 threshold


@given(st.integers(0, 200))
@settings(max_examples=25, deadline=None)
def test_best_f1_threshold_matches_a_brute_force_search_with_sklearn(seed):
    g = np.random.default_rng(seed)
    n = int(g.integers(2, 40))
    scores = np.round(g.random(n), 1)  # many ties
    targets = (g.random(n) < 0.3).astype(np.int64)
    targets[g.integers(n)] = 1
    low, high, best = best_f1_threshold(torch.tensor(scores), torch.tensor(targets))
    brute = max(f1_score(targets, scores >= t) for t in np.unique(scores))
    assert best == pytest.approx(brute)
    assert f1_score(targets, scores >= high) == pytest.approx(best)
    assert low < high and not bool(((scores > low) & (scores < high)).any())


@pytest.mark.parametrize(
    ("scores", "targets", "message"),
    [(torch.rand(4), torch.zeros(4), "at least one positive"),
     (torch.rand(4), torch.tensor([0, 1, 2, 1]), r"targets must contain only the labels \[0, 1\]"),
     (torch.rand(4), torch.ones(3), "same shape"),
     (torch.rand(2, 2), torch.ones(2, 2), "scores must have 1 dimension"),
     (torch.tensor([0.5, float("nan")]), torch.ones(2), "scores must contain only finite")],
    ids=["no-positive", "non-binary-target", "shape-mismatch", "2-d", "nan"],
)
def test_best_f1_threshold_rejects_bad_input_naming_it(scores, targets, message):
    with pytest.raises(ValueError, match=message):
        best_f1_threshold(scores, targets)


# ---------------------------------------------------------------------------------- BLEU
# sacreBLEU is the reference: installed for the tests, never imported by the package.
WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "The", "3.5", "1,000", "-",
         "well-known", "U.S.", "it's", "(quoted)", "&amp;", "&quot;hi&quot;", "<skipped>",
         "end.", "e.g.,", "$5", "50%", "x/y", "9-5", "#tag", "@you", "{a}", "naïve", "über",
         "a\n", "-\nbroken"]
sentences = st.lists(st.sampled_from(WORDS), min_size=0, max_size=12).map(" ".join)


def sacrebleu_score(hypotheses, references):
    import sacrebleu

    return sacrebleu.corpus_bleu(hypotheses, references).score


@given(st.lists(sentences, min_size=1, max_size=60).map(" . ".join))
@settings(max_examples=150, deadline=None)
def test_tokenize_13a_matches_sacrebleu(line):
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    assert tokenize_13a(line) == Tokenizer13a()(line)


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(
    st.lists(sentences, min_size=n, max_size=n),
    st.lists(st.lists(sentences, min_size=n, max_size=n), min_size=1, max_size=3))))
@settings(max_examples=200, deadline=None)
def test_corpus_bleu_matches_sacrebleu_on_random_corpora(corpus):
    hypotheses, references = corpus
    assert abs(corpus_bleu(hypotheses, references)
               - sacrebleu_score(hypotheses, references)) < 1e-9


def test_corpus_bleu_matches_sacrebleu_with_missing_references_and_partial_matches():
    hyps = ["the cat sat on the mat .", "a dog ran", "it is well-known that 1,000 > 3.5",
            "short"]
    refs = [["the cat sat on a mat.", "a dog ran away", "It is well-known that 1,000 > 3.5 !",
             "a much longer reference sentence here"],
            ["there is a cat on the mat", None, "it is well known that 1,000 > 3.5", None]]
    ours = corpus_bleu(hyps, refs)
    assert 0 < ours < 100
    assert abs(ours - sacrebleu_score(hyps, refs)) < 1e-9


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(
    st.lists(sentences, min_size=n, max_size=n),
    st.lists(st.lists(sentences, min_size=n, max_size=n), min_size=1, max_size=3))))
@settings(max_examples=100, deadline=None)
def test_bleu_statistics_are_sacrebleus_segment_statistics(corpus):
    from sacrebleu.metrics.bleu import BLEU

    hypotheses, references = corpus
    reference = BLEU()._extract_corpus_statistics(hypotheses, references)
    assert bleu_statistics(hypotheses, references).tolist() == reference


@given(st.lists(st.integers(0, 40), min_size=4, max_size=4),
       st.lists(st.integers(0, 40), min_size=4, max_size=4), st.integers(0, 60),
       st.integers(1, 60))
@settings(max_examples=200, deadline=None)
def test_bleu_from_statistics_is_sacrebleus_formula(matches, extra, sys_len, ref_len):
    from sacrebleu.metrics.bleu import BLEU

    totals = [m + e for m, e in zip(matches, extra, strict=True)]
    ours = bleu_from_statistics([sys_len, ref_len, *matches, *totals])
    theirs = BLEU.compute_bleu(list(matches), list(totals), sys_len, ref_len,
                               smooth_method="exp").score
    assert abs(ours - theirs) < 1e-9


def test_corpus_bleu_is_100_for_a_perfect_corpus_and_0_without_any_match():
    text = ["one two three four five", "six seven eight nine ten eleven"]
    assert corpus_bleu(text, [text]) == pytest.approx(100.0, abs=1e-12)
    assert corpus_bleu(["a b c d"], [["e f g h"]]) == 0.0


@pytest.mark.parametrize(
    ("hypotheses", "references", "message"),
    [("one string", [["a"]], "hypotheses must be a sequence"),
     (["a", "b"], [["a"]], r"references\[0\] must hold 2 segments"),
     (["a"], ["a"], r"references\[0\] must be a list or tuple"),
     (["a"], [[None]], "references of segment 0"),
     (["a"], [], "references must hold at least 1"),
     ([], [[]], "hypotheses must hold at least 1")],
    ids=["one-string", "short-stream", "flat-references", "no-reference", "no-stream", "empty"],
)
def test_corpus_bleu_rejects_bad_input_naming_it(hypotheses, references, message):
    with pytest.raises(ValueError, match=message):
        corpus_bleu(hypotheses, references)


@pytest.mark.parametrize("stats", [[1, 2, 3], [1, 1, 1, 1, 1, 1, 1, 1, 1, -1]],
                         ids=["too-short", "negative"])
def test_bleu_from_statistics_rejects_bad_counts(stats):
    with pytest.raises(ValueError, match="stats"):
        bleu_from_statistics(stats)
