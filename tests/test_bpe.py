"""dlnotes.bpe (chapter 10): the BPE merge rule by hand and against the tokenizers library,
and token counts against a byte-level stand-in tokenizer."""

from collections import Counter

import pytest

from dlnotes import data
from dlnotes.bpe import (
    PRE_TOKEN,
    bpe_merges,
    cjk_runs,
    space_prefixed_share,
    tokens_per_character,
    tokens_per_word,
    train_bpe,
    trained_merges,
    truncated_bpe,
)

TOY = {"low": 5, "lower": 2, "newest": 6, "widest": 3}


def utf8_encode(text):
    """A stand-in tokenizer with one token per UTF-8 byte (3 per Chinese character)."""
    return list(text.encode("utf-8"))


# --- BPE ---------------------------------------------------------------------------------------


def test_bpe_merges_on_the_toy_corpus_follow_the_counts_worked_out_by_hand():
    # By hand: e-s and s-t occur 6 + 3 = 9 times (newest, widest), more than any other pair;
    # the tie goes to the pair of smaller symbols, (e, s). Then es-t occurs 9 times. Then l-o
    # and o-w both occur 5 + 2 = 7 times (low, lower): (l, o) first, then lo-w, 7 times.
    assert bpe_merges(TOY, 4) == [("e", "s"), ("es", "t"), ("l", "o"), ("lo", "w")]


def test_bpe_merges_match_the_tokenizers_trainer_on_a_toy_and_on_lee_documents():
    texts = [w for w, n in TOY.items() for _ in range(n)]
    library = trained_merges(train_bpe(texts, vocab_size=100, min_frequency=1))
    assert bpe_merges(TOY, 100, min_frequency=1) == library
    docs = data.lee_corpus("background")[:15]
    counts = Counter(w for d in docs for w in PRE_TOKEN.findall(d))
    library = trained_merges(train_bpe(docs, vocab_size=400, min_frequency=2))
    assert bpe_merges(counts, 30, min_frequency=2) == library[:30]


def test_bpe_merges_stop_when_no_pair_is_frequent_enough():
    assert bpe_merges({"ab": 1, "cd": 1}, 5, min_frequency=2) == []
    assert bpe_merges({"ab": 1}, 5) == [("a", "b")]  # then one symbol is left: no pair


def test_truncated_bpe_is_the_tokenizer_trained_with_the_smaller_vocabulary():
    docs = data.lee_corpus("background")[:40]
    big = train_bpe(docs, vocab_size=900)
    small = train_bpe(docs, vocab_size=300)
    n = len(trained_merges(small))
    cut = truncated_bpe(big, n)
    test = data.lee_corpus("test")[:10]
    tokens = [[e.tokens for e in t.encode_batch(test)] for t in (cut, small)]
    assert tokens[0] == tokens[1]
    assert trained_merges(cut) == trained_merges(small)


# --- counting tokens ---------------------------------------------------------------------------


def test_tokens_per_character_counts_only_chinese_runs():
    text = "GPT把文本转为token, 然后预测!"
    assert cjk_runs(text) == ["把文本转为", "然后预测"]
    in_context, per_char = tokens_per_character(utf8_encode, text)
    assert in_context == 3.0
    assert set(per_char) == set("把文本转为然后预测") and set(per_char.values()) == {3}


def test_tokens_per_word_with_and_without_the_leading_space():
    words = ["a", "word"]
    assert tokens_per_word(utf8_encode, words).tolist() == [2, 5]
    assert tokens_per_word(utf8_encode, words, leading_space=False).tolist() == [1, 4]


def test_space_prefixed_share_counts_prefixed_and_whitespace_only_tokens():
    assert space_prefixed_share([b"Hello", b" world", b" ", b"\n", b"!", b" again"]) == (2, 2)


BAD_INPUT = [
    (lambda: bpe_merges({"": 1}, 3), "word_counts"),
    (lambda: bpe_merges({"ab": 0}, 3), "word_counts"),
    (lambda: bpe_merges({"ab": 1}, -1), "n_merges"),
    (lambda: train_bpe(["a b"], vocab_size=1), "vocab_size"),
    (lambda: truncated_bpe(train_bpe(["ab ab"], vocab_size=10, min_frequency=1), 5),
     r"n_merges must be an integer in \[0, 1\]"),
    (lambda: tokens_per_character(utf8_encode, "no Chinese"), "Chinese"),
    (lambda: tokens_per_word(utf8_encode, [""]), r"words\[0\] must be a non-empty string"),
    (lambda: cjk_runs(3), "text must be a str"),
    (lambda: space_prefixed_share([b" a", "str"]), r"pieces\[1\] must be a bytes"),
]


@pytest.mark.parametrize(("call", "argument"), BAD_INPUT,
                         ids=[f"{i}-{arg[:12]}" for i, (_, arg) in enumerate(BAD_INPUT)])
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
