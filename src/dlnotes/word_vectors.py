r"""Word vectors: skip-gram pairs, shifted PMI and skip-gram with negative sampling. Used in
chapter 10, "Tokens and word vectors" (its tokenisers are in :mod:`dlnotes.bpe`).

The (centre, context) pairs of skip-gram (:func:`skipgram_pairs`), their co-occurrence counts
and shifted PMI (:func:`shifted_pmi`), a small skip-gram negative-sampling (SGNS) trainer in
torch (:func:`train_sgns`), a seeded, single-threaded wrapper over gensim's ``Word2Vec``
(:func:`train_word2vec`), the evaluations on word similarity and analogy sets, and the static
token embeddings of the packaged all-MiniLM-L6-v2 model read without ``transformers``.
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec
from gensim.utils import simple_preprocess
from safetensors import safe_open
from scipy.stats import spearmanr
from tokenizers import Tokenizer

from dlnotes.embeddings import model_dir
from dlnotes.validation import (
    as_float_array,
    check_dim_size,
    check_int_at_least,
    check_integer_array,
    check_min_length,
    check_ndim,
    check_nonnegative,
    check_nonzero_rows,
    check_positive,
    check_same_length,
    check_same_shape,
    check_shape,
    check_strings,
    check_values_in,
)

__all__ = [
    "skipgram_pairs",
    "cooccurrence_counts",
    "shifted_pmi",
    "sgns_pair_loss",
    "train_sgns",
    "simple_tokens",
    "crc32_hash",
    "train_word2vec",
    "cosine_matrix",
    "nearest_words",
    "similarity_spearman",
    "analogy_accuracy",
    "minilm_token_embeddings",
    "static_word_vectors",
]

# --- Skip-gram pairs and PMI -----------------------------------------------------------------


def skipgram_pairs(tokens: Sequence[Any], window: int) -> list[tuple[Any, Any]]:
    r"""The (centre, context) pairs of skip-gram: each token with every token within ``window``.

    For position :math:`i` the contexts are the positions :math:`j` inside the sequence with
    :math:`0 < |i - j| \le` ``window``. Pairs come in position order: by centre position,
    then context position. (The word2vec program shrinks the window at random for each
    centre; this is the fixed window.)

    Parameters
    ----------
    tokens
        A sequence of tokens (strings, ids, anything).
    window
        Context radius, an integer >= 1.

    Returns
    -------
    list of tuple
        ``(tokens[i], tokens[j])`` pairs; a sequence of :math:`n \ge` ``window`` tokens gives
        :math:`2 n w - w(w+1)` pairs for window :math:`w`.

    Raises
    ------
    ValueError
        If ``window`` < 1 or ``tokens`` is a string (pass a list of tokens).
    """
    check_int_at_least("window", window, 1)
    if isinstance(tokens, str | bytes):
        raise ValueError("tokens must be a sequence of tokens, not a string")
    n = len(tokens)
    return [(tokens[i], tokens[j])
            for i in range(n)
            for j in range(max(0, i - window), min(n, i + window + 1))
            if j != i]


def cooccurrence_counts(centres: Any, contexts: Any, n_words: int) -> np.ndarray:
    r"""Count matrix :math:`\#(w, c)` of integer (centre, context) pairs.

    Parameters
    ----------
    centres, contexts
        Integer arrays of the same length, values in ``[0, n_words)``.
    n_words
        Vocabulary size, an integer >= 1.

    Returns
    -------
    numpy.ndarray
        ``(n_words, n_words)`` int64 matrix; entry ``[w, c]`` counts the pairs ``(w, c)``.

    Raises
    ------
    ValueError
        If the arrays differ in length, are not 1-D integer arrays or hold ids out of range.
    """
    check_int_at_least("n_words", n_words, 1)
    w, c = _pair_arrays(centres, contexts, n_words)
    counts = np.zeros((n_words, n_words), dtype=np.int64)
    np.add.at(counts, (w, c), 1)
    return counts


def _pair_arrays(centres: Any, contexts: Any, n_words: int) -> tuple[np.ndarray, np.ndarray]:
    w, c = np.asarray(centres), np.asarray(contexts)
    for name, a in (("centres", w), ("contexts", c)):
        check_ndim(name, a, 1)
        if a.size:  # an empty list becomes a float array: no ids to check
            check_integer_array(name, a, 1, low=0, high=n_words)
    check_same_length("centres", w, "contexts", c)
    return w.astype(np.int64), c.astype(np.int64)


def shifted_pmi(counts: Any, k: float = 1.0) -> np.ndarray:
    r"""Shifted pointwise mutual information of a co-occurrence count matrix.

    .. math::

       \operatorname{PMI}(w, c) - \log k = \log\frac{\#(w, c)\, |D|}{\#(w)\, \#(c)} - \log k,

    with :math:`|D| = \sum_{w,c} \#(w, c)` the number of pairs, :math:`\#(w)` the row sums
    and :math:`\#(c)` the column sums. For skip-gram with :math:`k` negative samples per pair
    drawn from the context distribution :math:`\#(c)/|D|` this is the optimum of
    :math:`w^\top c` (Levy and Goldberg, 2014).
    Pairs never seen (:math:`\#(w, c) = 0`) get :math:`-\infty`, without a warning.

    Parameters
    ----------
    counts
        Non-negative, finite 2-D array of counts (need not be integer), with a positive sum.
    k
        Number of negative samples, > 0 (``k = 1`` gives plain PMI).

    Returns
    -------
    numpy.ndarray
        Float64 array of the shape of ``counts``.

    Raises
    ------
    ValueError
        If ``counts`` sums to 0, or for a wrong shape or value.
    """
    counts = as_float_array("counts", counts, 2)
    check_values_in("counts", counts, 0.0)
    total = counts.sum()
    if not total > 0:
        raise ValueError("counts must have a positive sum")
    check_positive("k", k)
    out = np.full(counts.shape, -np.inf)
    rows, cols = np.nonzero(counts)
    log_rows = np.log(counts.sum(axis=1)[rows])
    log_cols = np.log(counts.sum(axis=0)[cols])
    out[rows, cols] = (np.log(counts[rows, cols]) + np.log(total) - log_rows - log_cols
                       - np.log(k))
    return out


# --- Skip-gram with negative sampling in torch ------------------------------------------------


def sgns_pair_loss(w: torch.Tensor, c: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    r"""Negative-sampling loss of each (centre, context) pair.

    .. math::

       \ell = -\log\sigma(w^\top c) - \sum_{i=1}^{k} \log\sigma(-w^\top n_i),

    computed with ``logsigmoid``, so scores of :math:`\pm 10^4` give finite values.

    Parameters
    ----------
    w, c
        ``(batch, dim)`` centre and context vectors.
    negatives
        ``(batch, k, dim)`` vectors of the negative (noise) contexts.

    Returns
    -------
    torch.Tensor
        ``(batch,)`` losses.

    Raises
    ------
    ValueError
        If the shapes do not fit together.
    """
    check_ndim("w", w, 2)
    check_same_shape("c", c, "w", w)
    check_shape("negatives", negatives, (w.shape[0], None, w.shape[1]), "(batch, k, dim)")
    positive = F.logsigmoid((w * c).sum(dim=1))
    negative = F.logsigmoid(-(negatives * w.unsqueeze(1)).sum(dim=2)).sum(dim=1)
    return -(positive + negative)


def train_sgns(
    centres: Any,
    contexts: Any,
    n_words: int,
    *,
    dim: int = 50,
    negatives: int = 5,
    alpha: float = 0.75,
    epochs: int = 5,
    lr: float = 0.05,
    batch_size: int = 1024,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Train skip-gram with negative sampling on given (centre, context) id pairs.

    Each epoch visits the pairs in a random order in mini-batches; each pair gets
    ``negatives`` noise contexts drawn from :math:`P_n(c) \propto \#(c)^\alpha`, where
    :math:`\#(c)` counts ``c`` among ``contexts``; the loss is :func:`sgns_pair_loss`,
    averaged over the batch and minimised with Adam, the step size falling linearly to 0.
    Word vectors start uniform in :math:`\pm 0.5/\text{dim}` and context vectors at 0, as in
    word2vec. With ``alpha = 1`` the optimum of :math:`w^\top c` is :func:`shifted_pmi` of the
    pairs' counts (for ``dim`` large enough).

    Parameters
    ----------
    centres, contexts
        Integer id arrays of the same length (at least 1), values in ``[0, n_words)``.
    n_words
        Vocabulary size, an integer >= 1.
    dim
        Vector dimension, an integer >= 1.
    negatives
        Noise samples per pair (:math:`k`), an integer >= 1.
    alpha
        Exponent of the noise distribution, >= 0 (word2vec uses 0.75).
    epochs, batch_size
        Passes over the pairs and pairs per step, integers >= 1.
    lr
        Initial Adam step size, > 0.
    seed
        Seed of the initial vectors, the order of the pairs and the noise samples.

    Returns
    -------
    W, C
        Float64 arrays ``(n_words, dim)``: word (centre) and context vectors.

    Raises
    ------
    ValueError
        If an argument is out of range or the id arrays are invalid.

    Notes
    -----
    The whole loop runs in one torch generator seeded with ``seed``, so a
    call is reproducible (with one torch thread, as :func:`dlnotes.setup` sets).
    """
    check_int_at_least("n_words", n_words, 1)
    w_ids, c_ids = _pair_arrays(centres, contexts, n_words)
    check_min_length("centres", w_ids, 1, "pairs (with contexts)")
    for name, value in (("dim", dim), ("negatives", negatives), ("epochs", epochs),
                        ("batch_size", batch_size)):
        check_int_at_least(name, value, 1)
    check_nonnegative("alpha", alpha)
    check_positive("lr", lr)
    check_int_at_least("seed", seed, 0)
    gen = torch.Generator().manual_seed(seed)
    W = ((torch.rand(n_words, dim, generator=gen) - 0.5) / dim).requires_grad_()
    C = torch.zeros(n_words, dim, requires_grad=True)
    context_counts = np.bincount(c_ids, minlength=n_words).astype(np.float64)
    noise = context_counts**alpha * (context_counts > 0)  # 0**0 = 1: unseen ids stay out
    cdf = torch.as_tensor(np.cumsum(noise) / noise.sum())
    w_all, c_all = torch.as_tensor(w_ids), torch.as_tensor(c_ids)
    steps = epochs * -(-w_ids.size // batch_size)
    optimiser = torch.optim.Adam([W, C], lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda t: 1 - t / steps)
    for _ in range(epochs):
        order = torch.randperm(w_ids.size, generator=gen)
        # inverse-CDF sampling of all noise contexts of the epoch at once
        uniform = torch.rand(w_ids.size * negatives, generator=gen, dtype=torch.float64)
        noise_ids = torch.searchsorted(cdf, uniform, right=True).clamp_(max=n_words - 1)
        noise_ids = noise_ids.view(w_ids.size, negatives)
        for batch in order.split(batch_size):
            loss = sgns_pair_loss(F.embedding(w_all[batch], W), F.embedding(c_all[batch], C),
                                  F.embedding(noise_ids[batch], C)).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return W.detach().double().numpy(), C.detach().double().numpy()


# --- word2vec through gensim -----------------------------------------------------------------


def simple_tokens(texts: Iterable[str]) -> list[list[str]]:
    """Tokenise texts for word vectors: one list of lower-case words per text.

    gensim's ``simple_preprocess``: lower-cased, accents removed, tokens of 2 to 15 letters;
    digits and punctuation are dropped. On the 300 Lee background documents
    (:func:`dlnotes.data.lee_corpus`) it gives 58,152 tokens.

    Parameters
    ----------
    texts
        The texts (strings).

    Returns
    -------
    list of list of str

    Raises
    ------
    ValueError
        If ``texts`` is a single string or holds a non-string.
    """
    texts = texts if isinstance(texts, str) else list(texts)
    check_strings("texts", texts)
    return [simple_preprocess(t) for t in texts]


def crc32_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every Python process (CRC-32 of its UTF-8 bytes).

    gensim's ``Word2Vec`` takes a ``hashfxn`` that defaults to Python's ``hash``, which is
    salted per process unless ``PYTHONHASHSEED`` is set; this one is not.

    Parameters
    ----------
    text
        Any string.

    Returns
    -------
    int
        ``zlib.crc32`` of the UTF-8 bytes, in ``[0, 2**32)``.
    """
    return zlib.crc32(text.encode("utf-8"))


@contextlib.contextmanager
def _quiet_gensim() -> Iterator[None]:
    """Raise gensim's log level to ERROR (its warnings would land on stderr), then restore."""
    logger = logging.getLogger("gensim")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _EpochEnd(CallbackAny2Vec):
    def __init__(self, on_epoch_end: Callable[[int, KeyedVectors], None]) -> None:
        self.on_epoch_end_hook = on_epoch_end
        self.epoch = 0

    def on_epoch_end(self, model: Word2Vec) -> None:
        self.epoch += 1
        self.on_epoch_end_hook(self.epoch, model.wv)


def train_word2vec(
    sentences: Sequence[Sequence[str]],
    *,
    sg: bool,
    vector_size: int = 100,
    window: int = 5,
    min_count: int = 5,
    negative: int = 5,
    epochs: int = 5,
    seed: int = 0,
    on_epoch_end: Callable[[int, KeyedVectors], None] | None = None,
) -> KeyedVectors:
    r"""Train gensim's ``Word2Vec`` reproducibly: one worker thread, seeded, quiet.

    Skip-gram (``sg=True``) predicts each context word from the centre word; CBOW
    (``sg=False``) predicts the centre word from the mean of its context vectors
    (Mikolov et al., 2013). Both use negative sampling with gensim's defaults otherwise
    (noise exponent 0.75, down-sampling of frequent words at 1e-3, a window shrunk at random
    per centre). With ``workers=1``, the ``seed`` and :func:`crc32_hash` as ``hashfxn``, two
    calls give identical vectors in any process.

    Parameters
    ----------
    sentences
        Tokenised texts, e.g. from :func:`simple_tokens`.
    sg
        Skip-gram if true, CBOW if false.
    vector_size, window, min_count, negative, epochs
        As in gensim, integers >= 1.
    seed
        Seed of the initial vectors and of every random choice, an integer >= 0.
    on_epoch_end
        Called as ``on_epoch_end(epoch, wv)`` after each epoch (``epoch`` from 1), e.g. to
        evaluate the vectors along the way.

    Returns
    -------
    gensim.models.KeyedVectors
        The trained word vectors.

    Raises
    ------
    ValueError
        If an integer argument is out of range or ``sentences`` is empty.
    """
    for name, value in (("vector_size", vector_size), ("window", window),
                        ("min_count", min_count), ("negative", negative), ("epochs", epochs)):
        check_int_at_least(name, value, 1)
    check_int_at_least("seed", seed, 0)
    check_min_length("sentences", sentences, 1, "sentences")
    callbacks = [_EpochEnd(on_epoch_end)] if on_epoch_end is not None else []
    with _quiet_gensim():
        model = Word2Vec(sentences, vector_size=vector_size, window=window, min_count=min_count,
                         sg=int(bool(sg)), hs=0, negative=negative, epochs=epochs, seed=seed,
                         workers=1, hashfxn=crc32_hash, callbacks=callbacks)
    return model.wv


# --- Evaluating word vectors -----------------------------------------------------------------


def cosine_matrix(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``A`` with every row of ``B``.

    Parameters
    ----------
    A, B
        2-D arrays ``(n, d)`` and ``(m, d)``.

    Returns
    -------
    numpy.ndarray
        ``(n, m)`` float64 matrix of cosines.

    Raises
    ------
    ValueError
        If the inputs are not 2-D with the same number of columns, or a row has norm 0.
    """
    A, B = as_float_array("A", A, 2), as_float_array("B", B, 2)
    check_dim_size("B", B, 1, A.shape[1], "columns (as many as A)")
    check_nonzero_rows("A", A)
    check_nonzero_rows("B", B)
    na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
    return (A / na[:, None]) @ (B / nb[:, None]).T


def nearest_words(
    words: Sequence[str], vectors: np.ndarray, query: np.ndarray, n: int = 5,
    exclude: Iterable[str] = (),
) -> list[tuple[str, float]]:
    """The ``n`` words whose vectors have the largest cosine with ``query``.

    Parameters
    ----------
    words
        One word per row of ``vectors``.
    vectors
        ``(len(words), dim)`` array.
    query
        ``(dim,)`` vector.
    n
        How many, an integer >= 1.
    exclude
        Words never returned (e.g. the query word itself).

    Returns
    -------
    list of (str, float)
        Words and cosines, largest first.

    Raises
    ------
    ValueError
        If the shapes do not fit or ``n`` < 1.
    """
    check_int_at_least("n", n, 1)
    vectors = np.asarray(vectors, dtype=np.float64)
    check_ndim("vectors", vectors, 2)
    check_same_length("words", words, "vectors", vectors)
    cos = cosine_matrix(vectors, np.asarray(query, dtype=np.float64)[None, :])[:, 0]
    skip = set(exclude)
    order = [i for i in np.argsort(-cos, kind="stable") if words[i] not in skip][:n]
    return [(words[i], float(cos[i])) for i in order]


def similarity_spearman(
    vectors: Any, pairs: Sequence[tuple[str, str]], ratings: np.ndarray
) -> tuple[float, int]:
    """Spearman correlation of cosine similarities with human ratings, on the covered pairs.

    A pair is covered if both words, lower-cased, are in ``vectors``; the others are left out
    (not scored as 0), so the correlation must be read with the coverage.

    Parameters
    ----------
    vectors
        Anything with ``word in vectors`` and ``vectors[word]`` (gensim ``KeyedVectors``, a
        dict of arrays).
    pairs, ratings
        Word pairs and their ratings, e.g. from :func:`dlnotes.data.word_similarity`.

    Returns
    -------
    rho, covered
        The correlation (NaN if fewer than 3 pairs are covered) and the number of pairs used.

    Raises
    ------
    ValueError
        If ``pairs`` and ``ratings`` differ in length.
    """
    ratings = np.asarray(ratings, dtype=np.float64)
    check_same_length("pairs", pairs, "ratings", ratings)
    keep = [i for i, (a, b) in enumerate(pairs) if a.lower() in vectors and b.lower() in vectors]
    if len(keep) < 3:
        return float("nan"), len(keep)
    a = np.array([vectors[pairs[i][0].lower()] for i in keep])
    b = np.array([vectors[pairs[i][1].lower()] for i in keep])
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(spearmanr(cos, ratings[keep]).statistic), len(keep)


def analogy_accuracy(
    words: Sequence[str], vectors: np.ndarray, questions: Sequence[tuple[str, str, str, str]]
) -> tuple[float, int]:
    r"""Accuracy on "a is to b as c is to d" questions by vector offset (3CosAdd).

    The answer is the word :math:`x \notin \{a, b, c\}` maximising
    :math:`\cos(x, b - a + c)` on unit vectors (Mikolov, Yih and Zweig, 2013), as gensim's
    ``evaluate_word_analogies`` computes it. Words are lower-cased; a question is covered
    only if all four words are in ``words``.

    Parameters
    ----------
    words
        One (lower-case) word per row of ``vectors``.
    vectors
        ``(len(words), dim)`` array.
    questions
        ``(a, b, c, d)`` tuples, e.g. from :func:`dlnotes.data.analogy_questions`.

    Returns
    -------
    accuracy, covered
        Fraction of covered questions answered with ``d`` (NaN if none is covered), and the
        number covered.

    Raises
    ------
    ValueError
        If ``words`` and ``vectors`` differ in length.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    check_ndim("vectors", vectors, 2)
    check_same_length("words", words, "vectors", vectors)
    index = {w: i for i, w in enumerate(words)}
    covered = [[index[w.lower()] for w in q] for q in questions
               if all(w.lower() in index for w in q)]
    if not covered:
        return float("nan"), 0
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)  # a zero vector stays zero
    q = np.array(covered)
    scores = (unit[q[:, 1]] - unit[q[:, 0]] + unit[q[:, 2]]) @ unit.T
    scores[np.arange(len(q))[:, None], q[:, :3]] = -np.inf
    return float(np.mean(scores.argmax(axis=1) == q[:, 3])), len(q)


# --- Static token embeddings of the packaged MiniLM ------------------------------------------


def minilm_token_embeddings() -> tuple[Tokenizer, np.ndarray]:
    r"""all-MiniLM-L6-v2's WordPiece tokenizer and input token-embedding matrix, read directly.

    Reads ``tokenizer.json`` with the ``tokenizers`` library (padding and truncation off) and
    the tensor ``embeddings.word_embeddings.weight`` from ``model.safetensors`` in the packaged
    model directory (:func:`dlnotes.embeddings.model_dir`), without importing ``transformers``:
    the same matrix as :func:`dlnotes.embeddings.static_embeddings` of the loaded model.

    Returns
    -------
    tokenizer, matrix
        A ``tokenizers.Tokenizer`` and a float64 array of shape ``(30522, 384)``.

    Raises
    ------
    ImportError, FileNotFoundError
        If the model package is missing (see :func:`dlnotes.embeddings.model_dir`).
    """
    path = model_dir()
    with safe_open(str(path / "model.safetensors"), framework="numpy") as f:
        matrix = f.get_tensor("embeddings.word_embeddings.weight").astype(np.float64)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer, matrix


def static_word_vectors(words: Sequence[str], tokenizer: Tokenizer,
                        matrix: np.ndarray) -> np.ndarray:
    """Static vector of each word: the mean of its word pieces' rows of ``matrix``.

    Parameters
    ----------
    words
        Words to embed.
    tokenizer, matrix
        As returned by :func:`minilm_token_embeddings`.

    Returns
    -------
    numpy.ndarray
        ``(len(words), dim)`` float64 array.

    Raises
    ------
    ValueError
        If a word is not a string or gives no word piece.
    """
    check_strings("words", words)
    rows = []
    for word in words:
        ids = tokenizer.encode(word, add_special_tokens=False).ids
        if not ids:
            raise ValueError(f"word {word!r} gives no word piece")
        rows.append(np.asarray(matrix)[ids].mean(axis=0))
    return np.array(rows, dtype=np.float64)
