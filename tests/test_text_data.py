"""The chapter-6 loaders of gensim's bundled corpora: sizes, value ranges and bad input."""

import numpy as np
import pytest

from dlnotes import data


def test_lee_corpus_has_300_background_and_50_rated_test_documents():
    background, test = data.lee_corpus("background"), data.lee_corpus("test")
    assert len(background) == 300 and len(test) == 50
    assert all(isinstance(d, str) and len(d.split()) > 20 for d in background + test)
    assert any("£" in d for d in test)  # lee.cor is Latin-1, decoded correctly


def test_lee_similarity_pairs_are_all_1225_pairs_with_ratings_in_the_file_range():
    i, j, rating = data.lee_similarity_pairs()
    assert len(i) == len(j) == len(rating) == 50 * 49 // 2
    assert np.all(i < j) and i.min() == 0 and j.max() == 49
    assert len(set(zip(i.tolist(), j.tolist(), strict=True))) == 1225
    assert rating.min() == pytest.approx(0.2) and rating.max() == pytest.approx(1.0)


@pytest.mark.parametrize(("name", "size", "example"), [
    ("wordsim353", 353, (("tiger", "cat"), 7.35)),
    ("simlex999", 999, (("smart", "intelligent"), 9.2)),
])
def test_word_similarity_sets_have_their_published_sizes_and_a_0_to_10_scale(name, size, example):
    pairs, ratings = data.word_similarity(name)
    assert len(pairs) == len(ratings) == size
    assert ratings.min() >= 0 and ratings.max() <= 10
    (pair, score) = example
    assert ratings[pairs.index(pair)] == pytest.approx(score)


def test_split_sentences_splits_at_sentence_ends_before_capitals_and_keeps_quotes():
    text = 'He said "go." Then 3 men left! Why? ok. The end'
    expected = ['He said "go."', "Then 3 men left!", "Why? ok.", "The end"]
    assert data.split_sentences(text) == expected
    assert data.split_sentences(text, min_words=3) == ['He said "go."', "Then 3 men left!"]


def test_lee_sentences_subset_is_seeded_in_corpus_order_and_within_the_full_list():
    full = data.lee_sentences()
    assert len(full) == 2676 and all(len(s.split()) >= 5 for s in full)
    subset = data.lee_sentences(max_sentences=100, seed=1)
    assert subset == data.lee_sentences(max_sentences=100, seed=1)
    assert subset != data.lee_sentences(max_sentences=100, seed=2)
    remaining = iter(full)  # a subsequence of the full list: corpus order is kept
    assert len(subset) == 100 and all(any(s == t for t in remaining) for s in subset)
    assert data.lee_sentences(max_sentences=10**6) == full


@pytest.mark.parametrize(("call", "argument"), [
    (lambda: data.lee_corpus("train"), "part"),
    (lambda: data.word_similarity("men"), "name"),
    (lambda: data.split_sentences(["a"]), "text"),
    (lambda: data.split_sentences("A b.", min_words=0), "min_words"),
    (lambda: data.lee_sentences(max_sentences=0), "max_sentences"),
    (lambda: data.lee_sentences(seed=-1), "seed"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_lee_sentence_documents_name_the_article_each_sentence_comes_from():
    docs = data.lee_corpus("background")
    for kwargs in ({}, {"max_sentences": 200, "seed": 3}):
        sentences = data.lee_sentences(**kwargs)
        owners = data.lee_sentence_documents(**kwargs)
        assert len(owners) == len(sentences) and np.all(np.diff(owners) >= 0)
        assert all(s in docs[d] for s, d in zip(sentences, owners, strict=True))
    assert data.lee_sentence_documents().max() == 299
