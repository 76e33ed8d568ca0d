"""dlnotes.word_vectors (chapter 10): skip-gram pairs, shifted PMI, SGNS, word2vec wrappers."""

import json
import logging
import os
import subprocess
import sys
import warnings
from collections import Counter
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gensim.test.utils import datapath
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import spearmanr
from sklearn.metrics.pairwise import cosine_similarity

from dlnotes import data
from dlnotes.embeddings import model_dir
from dlnotes.word_vectors import (
    analogy_accuracy,
    cooccurrence_counts,
    cosine_matrix,
    crc32_hash,
    deepwalk,
    deepwalk_matrix,
    minilm_token_embeddings,
    nearest_words,
    random_walks,
    sgns_expected_loss,
    sgns_pair_loss,
    shifted_pmi,
    similarity_spearman,
    simple_tokens,
    skipgram_pairs,
    spearman_interval,
    static_word_vectors,
    train_sgns,
    train_word2vec,
    train_word2vec_runs,
    window_cooccurrence,
)

ROOT = Path(__file__).resolve().parents[1]
@pytest.fixture(scope="module")
def lee_docs():
    return simple_tokens(data.lee_corpus("background"))


@pytest.fixture(scope="module")
def lee_word2vec(lee_docs):
    return train_word2vec(lee_docs, sg=True, vector_size=20, epochs=2, seed=0)


# --- skip-gram pairs and PMI ---------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 30), window=st.integers(1, 6))
def test_skipgram_pairs_are_all_pairs_within_the_window_in_position_order(n, window):
    tokens = list(range(n))
    pairs = skipgram_pairs(tokens, window)
    brute = sorted((i, j) for i in tokens for j in tokens if 0 < abs(i - j) <= window)
    assert pairs == brute  # ids equal positions here, so sorted order is position order
    if n >= window:
        assert len(pairs) == 2 * n * window - window * (window + 1)


def test_skipgram_pairs_keep_the_tokens_themselves():
    assert skipgram_pairs(["the", "cat", "sat"], 1) == [
        ("the", "cat"), ("cat", "the"), ("cat", "sat"), ("sat", "cat")]


def test_cooccurrence_counts_match_a_counter_of_the_pairs():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, size=200).tolist()
    pairs = np.array(skipgram_pairs(ids, 2))
    counts = cooccurrence_counts(pairs[:, 0], pairs[:, 1], 6)
    expected = Counter(map(tuple, pairs.tolist()))
    assert all(counts[w, c] == expected.get((w, c), 0) for w in range(6) for c in range(6))
    assert np.array_equal(counts, counts.T)  # a symmetric window gives symmetric counts


def test_shifted_pmi_matches_the_definition_cell_by_cell_and_is_minus_inf_when_unseen():
    counts = np.array([[4.0, 0.0, 1.0], [2.0, 3.0, 0.0]])
    total = counts.sum()
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = shifted_pmi(counts, k=5.0)
    for w in range(2):
        for c in range(3):
            if counts[w, c] == 0:
                assert out[w, c] == -np.inf
            else:
                pmi = np.log(counts[w, c] / total / (counts[w].sum() / total
                                                     * counts[:, c].sum() / total))
                assert out[w, c] == pytest.approx(pmi - np.log(5.0), abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(p=arrays(np.float64, 4, elements=st.floats(1, 100)),
       q=arrays(np.float64, 3, elements=st.floats(1, 100)),
       k=st.floats(0.1, 20))
def test_shifted_pmi_of_independent_counts_is_minus_log_k(p, q, k):
    # #(w, c) = #(w) #(c) / |D| exactly when words and contexts are independent: PMI = 0.
    assert np.allclose(shifted_pmi(np.outer(p, q), k), -np.log(k), atol=1e-9)


# --- SGNS ----------------------------------------------------------------------------------------


def test_sgns_pair_loss_is_binary_cross_entropy_with_one_positive_and_k_negatives():
    gen = torch.Generator().manual_seed(0)
    w, c = torch.randn(8, 4, generator=gen), torch.randn(8, 4, generator=gen)
    neg = torch.randn(8, 3, 4, generator=gen)
    logits = torch.cat([(w * c).sum(1, keepdim=True), torch.einsum("bd,bkd->bk", w, neg)], 1)
    targets = torch.cat([torch.ones(8, 1), torch.zeros(8, 3)], 1)
    expected = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(1)
    assert torch.allclose(sgns_pair_loss(w, c, neg), expected, atol=1e-6)


def test_sgns_pair_loss_is_finite_at_extreme_scores():
    w = torch.full((2, 1), 100.0)
    c = torch.tensor([[100.0], [-100.0]])
    loss = sgns_pair_loss(w, c, -c.unsqueeze(1))  # scores of +-1e4
    assert torch.isfinite(loss).all()
    assert loss[0] == pytest.approx(0.0) and loss[1] == pytest.approx(2e4)


def sgns_loss_by_enumeration(W, C, counts, k):
    """Mean over the corpus pairs of the SGNS loss, the negatives' term averaged over every
    noise id weighted by its probability #(c)/|D| (a loop over pairs and noise ids)."""
    noise = counts.sum(axis=0) / counts.sum()
    total = 0.0
    for w, c in zip(*np.nonzero(counts), strict=True):
        positive = -np.log(1 / (1 + np.exp(-W[w] @ C[c])))
        negative = -sum(p * np.log(1 / (1 + np.exp(W[w] @ C[n]))) for n, p in enumerate(noise))
        total += counts[w, c] * (positive + k * negative)
    return total / counts.sum()


def test_skipping_positive_noise_moves_the_optimum_to_where_the_skipped_gradient_is_zero():
    """Noise c for a pair (w, c') is skipped when c == c': c meets w as noise
    k P(c) (#(w) - #(w, c)) times, and the cell's gradient vanishes at the corrected value."""
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 9, size=(5, 5)).astype(float)
    k, x = 3, shifted_pmi(counts, k=3, skip_positive_noise=True)
    noise = k * counts.sum(axis=0)[None, :] / counts.sum() * (counts.sum(axis=1, keepdims=True)
                                                            - counts)
    sigmoid = 1 / (1 + np.exp(-x))
    assert np.allclose(counts * (1 - sigmoid), noise * sigmoid, rtol=1e-12)
    assert (x > shifted_pmi(counts, k=3)).all()


def test_sgns_expected_loss_is_the_pair_loss_averaged_over_pairs_and_noise():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 6, size=(4, 4)).astype(float)
    W, C = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    loss = sgns_expected_loss(torch.as_tensor(W @ C.T), torch.as_tensor(counts), 3)
    assert float(loss) == pytest.approx(sgns_loss_by_enumeration(W, C, counts, 3), rel=1e-12)


def test_sgns_expected_loss_is_stationary_at_shifted_pmi_on_seen_cells():
    counts = torch.tensor([[30.0, 10, 5], [10, 40, 20], [5, 20, 60]], dtype=torch.float64)
    X = torch.as_tensor(shifted_pmi(counts.numpy(), k=2)).requires_grad_()
    sgns_expected_loss(X, counts, 2).backward()
    assert float(X.grad.abs().max()) < 1e-12


def test_train_sgns_reaches_shifted_pmi_and_seeds_side_by_side_equal_separate_runs():
    counts = np.array([[30, 10, 5], [10, 40, 20], [5, 20, 60]])
    kwargs = dict(dim=3, negatives=2, steps=600, lr=0.05)
    W, C = train_sgns(counts, seeds=[1, 2], **kwargs)
    assert W.shape == C.shape == (2, 3, 3)
    assert np.abs(W @ C.transpose(0, 2, 1) - shifted_pmi(counts, k=2)).max() < 1e-3
    for r, seed in enumerate([1, 2]):
        W1, C1 = train_sgns(counts, seeds=[seed], **kwargs)
        assert np.abs(W1[0] - W[r]).max() < 1e-10 and np.abs(C1[0] - C[r]).max() < 1e-10
    assert not np.allclose(W[0], W[1])


# --- DeepWalk ------------------------------------------------------------------------------------

TRIANGLE_WITH_TAIL = np.array([[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]], float)


def test_random_walks_start_at_every_node_and_step_along_edges():
    A, _ = data.karate_club()
    walks = random_walks(A, walk_length=7, walks_per_node=3,
                         generator=torch.Generator().manual_seed(0))
    assert len(walks) == 3 * 34 and all(len(w) == 7 for w in walks)
    assert [w[0] for w in walks] == list(range(34)) * 3
    assert all(A[a, b] > 0 for w in walks for a, b in zip(w, w[1:], strict=False))


def test_random_walks_move_with_the_transition_probabilities():
    A = TRIANGLE_WITH_TAIL * np.array([1.0, 2.0, 3.0, 1.0])  # weighted rows
    walks = np.array(random_walks(A, walk_length=2, walks_per_node=4000,
                                  generator=torch.Generator().manual_seed(1)))
    counts = np.zeros((4, 4))
    np.add.at(counts, (walks[:, 0], walks[:, 1]), 1)
    frequency = counts / counts.sum(axis=1, keepdims=True)
    P = A / A.sum(axis=1, keepdims=True)
    assert np.abs(frequency - P).max() < 4 * np.sqrt(0.25 / 4000)  # four standard errors


def test_window_cooccurrence_counts_the_skipgram_pairs_and_skips_negative_ids():
    rng = np.random.default_rng(0)
    sequences = [rng.integers(-1, 5, size=n).tolist() for n in (0, 1, 2, 9, 15)]
    expected = Counter(p for seq in sequences for p in skipgram_pairs(seq, 3) if min(p) >= 0)
    counts = window_cooccurrence(sequences, 3, 5)
    assert {(a, b): counts[a, b] for a, b in zip(*np.nonzero(counts), strict=True)} == expected


def test_deepwalk_matrix_equals_its_spectral_form():
    """NetMF's route through the symmetric normalised adjacency D^-1/2 A D^-1/2 = U L U^T:
    sum_r P^r D^-1 = D^-1/2 U (sum_r L^r) U^T D^-1/2."""
    A, _ = data.karate_club()
    A = A.numpy()
    d = A.sum(axis=1)
    lam, U = np.linalg.eigh(A / np.sqrt(np.outer(d, d)))
    filtered = U @ np.diag(sum(lam**r for r in range(1, 6))) @ U.T
    expected = np.log(d.sum() / (3 * 5) * filtered / np.sqrt(np.outer(d, d)))
    assert np.allclose(deepwalk_matrix(A, window=5, negatives=3), expected, atol=1e-10)


def test_shifted_pmi_of_long_random_walks_converges_to_the_deepwalk_matrix():
    walks = random_walks(TRIANGLE_WITH_TAIL, walk_length=2000, walks_per_node=25,
                         generator=torch.Generator().manual_seed(2))
    empirical = shifted_pmi(window_cooccurrence(walks, 2, 4), k=5)
    limit = deepwalk_matrix(TRIANGLE_WITH_TAIL, window=2, negatives=5)
    assert np.isfinite(limit).all() and np.isfinite(empirical).all()
    assert np.abs(empirical - limit).max() < 0.03


def test_deepwalk_matrix_is_minus_inf_beyond_the_window():
    path = np.diag(np.ones(3), 1) + np.diag(np.ones(3), -1)  # 0 - 1 - 2 - 3
    M = deepwalk_matrix(path, window=2, negatives=1)
    assert np.isneginf(M[0, 3]) and np.isfinite(M[0, 2]) and np.isfinite(M[1, 3])


def test_deepwalk_trains_node_and_context_vectors_near_the_walks_shifted_pmi():
    walks = random_walks(TRIANGLE_WITH_TAIL, walk_length=40, walks_per_node=200,
                         generator=torch.Generator().manual_seed(3))
    W, C = deepwalk(walks, 4, window=2, negatives=2, dim=4, epochs=5, seed=1)
    W2, _ = deepwalk(walks, 4, window=2, negatives=2, dim=4, epochs=5, seed=1)
    assert W.shape == C.shape == (4, 4) and np.array_equal(W, W2)
    target = shifted_pmi(window_cooccurrence(walks, 2, 4), k=2, skip_positive_noise=True)
    assert np.isfinite(target).all() and np.abs(W @ C.T - target).mean() < 0.05


# --- word2vec through gensim ---------------------------------------------------------------------


def crc32_bit_by_bit(data: bytes) -> int:
    """CRC-32 (ISO-HDLC: zip, PNG) one bit at a time, with the reflected polynomial 0xEDB88320."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def test_crc32_hash_gives_the_catalogued_check_value_of_crc32():
    assert crc32_hash("123456789") == 0xCBF43926


@given(st.text(max_size=30))
@settings(max_examples=60, deadline=None)
def test_crc32_hash_is_the_crc32_of_the_utf8_bytes_computed_bit_by_bit(text):
    assert crc32_hash(text) == crc32_bit_by_bit(text.encode("utf-8"))


def test_train_word2vec_is_identical_across_calls_and_reports_each_epoch(lee_docs):
    seen = []
    a = train_word2vec(lee_docs[:60], sg=False, vector_size=10, epochs=3, seed=3,
                       on_epoch_end=lambda e, wv: seen.append((e, wv.vectors.shape)))
    b = train_word2vec(lee_docs[:60], sg=False, vector_size=10, epochs=3, seed=3)
    assert a.index_to_key == b.index_to_key and np.array_equal(a.vectors, b.vectors)
    assert seen == [(1, a.vectors.shape), (2, a.vectors.shape), (3, a.vectors.shape)]
    c = train_word2vec(lee_docs[:60], sg=False, vector_size=10, epochs=3, seed=4)
    assert not np.array_equal(a.vectors, c.vectors)


def test_train_word2vec_runs_on_threads_equal_the_same_runs_one_after_another(lee_docs):
    seen, level = {0: [], 2: []}, logging.getLogger("gensim").level
    runs = [dict(sentences=lee_docs[:60], sg=True, vector_size=10, epochs=3, seed=3,
                 alpha=0.025, min_alpha=0.025,
                 on_epoch_end=lambda e, wv: seen[0].append((e, wv.vectors.copy()))),
            dict(sentences=lee_docs[20:50], sg=False, vector_size=8, epochs=2, seed=1),
            dict(sentences=lee_docs[:60], sg=True, vector_size=10, epochs=2, seed=3,
                 alpha=0.025, min_alpha=0.025, on_epoch_end=lambda e, wv: seen[2].append(e))]
    together = train_word2vec_runs(runs, threads=3)
    alone = [train_word2vec(**{k: v for k, v in run.items() if k != "on_epoch_end"})
             for run in runs]
    assert len(together) == 3
    for a, b in zip(together, alone, strict=True):
        assert a.index_to_key == b.index_to_key and np.array_equal(a.vectors, b.vectors)
    assert [e for e, _ in seen[0]] == [1, 2, 3] and seen[2] == [1, 2]
    assert np.array_equal(seen[0][1][1], together[2].vectors)  # epoch 2 of 3 = a 2-epoch run
    assert not np.array_equal(together[0].vectors, together[2].vectors)  # 3 epochs, not 2
    assert logging.getLogger("gensim").level == level  # the quieted logger is restored
    serial = train_word2vec_runs(runs[1:2], threads=1)
    assert np.array_equal(serial[0].vectors, alone[1].vectors)


@pytest.mark.parametrize(("runs", "threads", "message"), [
    ([], 2, "runs"),
    ([{"sentences": [["a", "b"]], "sg": True}], 0, "threads"),
    (["not a mapping"], 2, r"runs\[0\]"),
    ([{"sentences": [["a", "b"]], "sg": True}, {"sentences": [["a"]], "sg": True, "lr": 0.1}], 2,
     r"runs\[1\] has unknown argument\(s\) \['lr'\]"),
    ([{"sentences": [["a", "b"]]}], 2, r"runs\[0\] lacks the required argument\(s\) \['sg'\]"),
    ([{"sentences": [["a", "b"]], "sg": True, "epochs": 0}], 2, "epochs"),
])
def test_train_word2vec_runs_rejects_bad_runs(runs, threads, message):
    with pytest.raises(ValueError, match=message):
        train_word2vec_runs(runs, threads=threads)


def test_constant_step_size_makes_an_epoch_of_a_long_run_equal_a_short_run(lee_docs):
    snapshots = {}
    options = dict(sg=True, vector_size=10, alpha=0.025, min_alpha=0.025, seed=3)
    train_word2vec(lee_docs[:40], epochs=3, **options,
                   on_epoch_end=lambda e, wv: snapshots.setdefault(e, wv.vectors.copy()))
    short = train_word2vec(lee_docs[:40], epochs=2, **options)
    assert np.array_equal(snapshots[2], short.vectors)
    decaying = train_word2vec(lee_docs[:40], sg=True, vector_size=10, epochs=2, seed=3)
    assert not np.array_equal(decaying.vectors, short.vectors)


def test_train_word2vec_does_not_depend_on_pythonhashseed(lee_docs):
    here = train_word2vec(lee_docs[:40], sg=True, vector_size=8, epochs=2, seed=5)
    # The other process gets the same documents on stdin (loading them there would import
    # scikit-learn through dlnotes.data, a second or two for nothing).
    script = ("import json, sys, numpy as np\n"
              "from dlnotes.word_vectors import train_word2vec\n"
              "wv = train_word2vec(json.load(sys.stdin), sg=True, vector_size=8, epochs=2, "
              "seed=5)\nnp.save(sys.stdout.buffer, wv.vectors)\n")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         input=json.dumps(lee_docs[:40]).encode(), check=True).stdout
    assert np.array_equal(np.load(BytesIO(out)), here.vectors)


def test_similarity_spearman_matches_gensims_evaluate_word_pairs(lee_word2vec):
    pairs, ratings = data.word_similarity("wordsim353")
    rho, covered = similarity_spearman(lee_word2vec, pairs, ratings)
    _, gensim_rho, oov = lee_word2vec.evaluate_word_pairs(datapath("wordsim353.tsv"))
    assert rho == pytest.approx(gensim_rho.statistic, abs=1e-9)
    assert covered == round(len(pairs) * (1 - oov / 100))


def test_similarity_spearman_on_a_dict_of_vectors_is_spearman_of_cosines():
    vectors = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 1.0]), "c": np.array([0.0, 1.0]),
               "d": np.array([-1.0, 0.2])}
    pairs = [("A", "b"), ("a", "c"), ("a", "d"), ("a", "zzz")]
    rho, covered = similarity_spearman(vectors, pairs, np.array([3.0, 2.0, 1.0, 5.0]))
    assert covered == 3 and rho == pytest.approx(spearmanr([2**-0.5, 0, -0.98], [3, 2, 1])[0])


def test_spearman_interval_covers_the_population_correlation_95_percent_of_the_time():
    """Monte Carlo: 2,000 samples of 60 pairs from a bivariate normal with Pearson 0.5, whose
    Spearman correlation is (6/pi) arcsin(0.25)."""
    rng = np.random.default_rng(0)
    truth = 6 / np.pi * np.arcsin(0.25)
    x = rng.normal(size=(2000, 60))
    y = 0.5 * x + np.sqrt(0.75) * rng.normal(size=(2000, 60))
    covered = []
    for a, b in zip(x, y, strict=True):
        interval = spearman_interval(spearmanr(a, b).statistic, 60)
        covered.append(interval.low < truth < interval.high)
    assert np.mean(covered) == pytest.approx(0.95, abs=0.015)
    wide = spearman_interval(0.3, 20, level=0.99)
    narrow = spearman_interval(0.3, 20, level=0.8)
    assert wide.low < narrow.low < 0.3 < narrow.high < wide.high and wide.unit == "word pairs"


def test_analogy_accuracy_matches_gensims_evaluate_word_analogies(lee_word2vec):
    _, questions = data.analogy_questions()
    accuracy, covered = analogy_accuracy(lee_word2vec.index_to_key, lee_word2vec.vectors,
                                         questions)
    score, sections = lee_word2vec.evaluate_word_analogies(datapath("questions-words.txt"))
    total = sections[-1]
    assert covered == len(total["correct"]) + len(total["incorrect"]) > 0
    assert accuracy == pytest.approx(score)


def test_analogy_accuracy_solves_an_exact_parallelogram():
    words = ["man", "woman", "king", "queen", "apple"]
    vectors = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [0, 0, 0.1]], float)
    assert analogy_accuracy(words, vectors, [("Man", "Woman", "King", "Queen")]) == (1.0, 1)
    assert np.isnan(analogy_accuracy(words, vectors, [("a", "b", "c", "d")])[0])


def test_cosine_matrix_and_nearest_words_match_scikit_learn():
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    assert np.allclose(cosine_matrix(A, B), cosine_similarity(A, B))
    words = list("vwxyz")
    best = nearest_words(words, A, A[0], n=2, exclude=["v"])
    order = np.argsort(-cosine_similarity(A, A[:1])[:, 0])
    assert [w for w, _ in best] == [words[i] for i in order if i != 0][:2]


# --- MiniLM's static token embeddings ----------------------------------------------------------


def test_minilm_token_embeddings_follow_the_packaged_vocabulary():
    tokenizer, matrix = minilm_token_embeddings()
    vocab = (model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert matrix.shape == (len(vocab), 384) and np.isfinite(matrix).all()
    assert tokenizer.encode("kitten", add_special_tokens=False).ids == [vocab.index("kitten")]
    pieces = tokenizer.encode("embeddings", add_special_tokens=False).ids
    assert len(pieces) > 1
    assert np.allclose(static_word_vectors(["embeddings"], tokenizer, matrix)[0],
                       matrix[pieces].mean(axis=0))


# --- data loaders of chapter 10 ----------------------------------------------------------------


def test_simple_tokens_of_lee_are_lower_case_words_of_the_300_documents(lee_docs):
    assert len(lee_docs) == 300 and sum(map(len, lee_docs)) == 58152
    assert all(t.isalpha() and t == t.lower() and 2 <= len(t) <= 15 for d in lee_docs for t in d)


def test_analogy_questions_have_19544_questions_in_14_sections():
    sections, questions = data.analogy_questions()
    assert len(sections) == len(questions) == 19544 and len(set(sections)) == 14
    assert questions[0] == ("Athens", "Greece", "Baghdad", "Iraq")
    assert sections[0] == "capital-common-countries" and sections[-1] == "gram9-plural-verbs"


# --- bad input -----------------------------------------------------------------------------------


BAD_INPUT = [
    (lambda: skipgram_pairs([1, 2], 0), "window"),
    (lambda: skipgram_pairs("text", 1), "tokens"),
    (lambda: cooccurrence_counts([0, 3], [1, 1], 3), "centres"),
    (lambda: cooccurrence_counts([0, 1], [1], 3), "same length"),
    (lambda: cooccurrence_counts([0.5], [1], 3), "integer"),
    (lambda: shifted_pmi(np.ones(3)), "counts"),
    (lambda: shifted_pmi(-np.ones((2, 2))), "counts"),
    (lambda: shifted_pmi(np.zeros((2, 2))), "counts"),
    (lambda: shifted_pmi(np.full((2, 2), np.nan)), "counts"),
    (lambda: shifted_pmi(np.ones((2, 2)), k=0), "k"),
    (lambda: sgns_pair_loss(torch.ones(2, 3), torch.ones(2, 4), torch.ones(2, 1, 3)),
     "c and w must have the same shape"),
    (lambda: sgns_pair_loss(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 1, 4)),
     r"negatives must have shape \(2, any, 3\) \(batch, k, dim\)"),
    (lambda: train_sgns(np.ones((2, 2)), dim=0), "dim"),
    (lambda: train_sgns(np.ones((2, 2)), lr=-1.0), "lr"),
    (lambda: train_sgns(np.ones((2, 3))), "counts must be a square"),
    (lambda: train_sgns(np.zeros((2, 2))), "counts must have a positive sum"),
    (lambda: train_sgns(np.ones((2, 2)), seeds=[]), "seeds"),
    (lambda: sgns_expected_loss(torch.ones(2, 2), torch.ones(3, 3), 1), "same shape"),
    (lambda: train_word2vec([["a", "b"]], sg=True, alpha=0.01, min_alpha=0.02), "alpha"),
    (lambda: random_walks(np.ones((2, 3)), walk_length=2, walks_per_node=1,
                          generator=torch.Generator()), "adjacency must be a square"),
    (lambda: random_walks(np.zeros((2, 2)), walk_length=2, walks_per_node=1,
                          generator=torch.Generator()), "node 0 has no edge"),
    (lambda: random_walks(np.ones((2, 2)), walk_length=0, walks_per_node=1,
                          generator=torch.Generator()), "walk_length"),
    (lambda: random_walks(np.ones((2, 2)), walk_length=2, walks_per_node=1, generator=0),
     "generator"),
    (lambda: window_cooccurrence([[0, 2]], 1, 2), r"sequences\[0\]"),
    (lambda: deepwalk_matrix(np.triu(np.ones((3, 3))), window=2, negatives=1), "symmetric"),
    (lambda: deepwalk_matrix(np.ones((2, 2)), window=0, negatives=1), "window"),
    (lambda: deepwalk([[0, 1]], 3, window=1), "every node must occur"),
    (lambda: spearman_interval(1.0, 10), "rho"),
    (lambda: spearman_interval(0.5, 3), "n"),
    (lambda: train_word2vec([["a", "b"]], sg=True, epochs=0), "epochs"),
    (lambda: train_word2vec([], sg=True), "sentences"),
    (lambda: simple_tokens("one text"), "texts"),
    (lambda: simple_tokens(["a", 3]), "texts"),
    (lambda: cosine_matrix(np.ones((2, 3)), np.ones((2, 2))), "columns"),
    (lambda: cosine_matrix(np.zeros((1, 2)), np.ones((1, 2))), "norm"),
    (lambda: nearest_words(["a"], np.ones((2, 2)), np.ones(2)), "same length"),
    (lambda: similarity_spearman({}, [("a", "b")], np.ones(2)), "same length"),
    (lambda: analogy_accuracy(["a"], np.ones((2, 2)), []), "same length"),
]


@pytest.mark.parametrize(("call", "argument"), BAD_INPUT,
                         ids=[f"{i}-{arg}" for i, (_, arg) in enumerate(BAD_INPUT)])
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
