"""dlnotes.word_vectors (chapter 10): skip-gram pairs, shifted PMI, SGNS, word2vec wrappers."""

import json
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
    minilm_token_embeddings,
    nearest_words,
    sgns_pair_loss,
    shifted_pmi,
    similarity_spearman,
    simple_tokens,
    skipgram_pairs,
    static_word_vectors,
    train_sgns,
    train_word2vec,
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


def test_train_sgns_reaches_shifted_pmi_and_is_reproducible():
    counts = np.array([[30, 10, 5], [10, 40, 20], [5, 20, 60]])
    w_ids = np.repeat(np.repeat(np.arange(3), 3), counts.ravel())
    c_ids = np.repeat(np.tile(np.arange(3), 3), counts.ravel())
    kwargs = dict(dim=3, negatives=2, alpha=1.0, epochs=150, lr=0.05, batch_size=50, seed=1)
    W, C = train_sgns(w_ids, c_ids, 3, **kwargs)
    assert np.abs(W @ C.T - shifted_pmi(counts, k=2)).max() < 0.15
    W2, C2 = train_sgns(w_ids, c_ids, 3, **kwargs)
    assert np.array_equal(W, W2) and np.array_equal(C, C2)


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
    (lambda: train_sgns([0], [1], 2, dim=0), "dim"),
    (lambda: train_sgns([0], [1], 2, lr=-1.0), "lr"),
    (lambda: train_sgns([0], [1], 2, alpha=-0.5), "alpha"),
    (lambda: train_sgns([], [], 2), "centres must hold at least 1 pair"),
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
