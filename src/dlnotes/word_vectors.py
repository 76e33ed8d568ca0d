r"""Word vectors: skip-gram pairs, shifted PMI and skip-gram with negative sampling. Used in
chapter 10, "Tokens and word vectors" (its tokenisers are in :mod:`dlnotes.bpe`).

The (centre, context) pairs of skip-gram (:func:`skipgram_pairs`), their co-occurrence counts
and shifted PMI (:func:`shifted_pmi`), a small skip-gram negative-sampling (SGNS) trainer in
torch (:func:`train_sgns`), a seeded, single-threaded wrapper over gensim's ``Word2Vec``
(:func:`train_word2vec`; several runs at once with :func:`train_word2vec_runs`), the
evaluations on word similarity and analogy sets, and the static token embeddings of the
packaged all-MiniLM-L6-v2 model read without ``transformers``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec
from gensim.utils import simple_preprocess
from safetensors import safe_open
from scipy.stats import norm, spearmanr
from tokenizers import Tokenizer
from torch import nn

from dlnotes.embeddings import model_dir
from dlnotes.evidence import Interval
from dlnotes.training import fit_replicas
from dlnotes.validation import (
    as_float_array,
    check_dim_size,
    check_in_range,
    check_int_at_least,
    check_integer_array,
    check_min_length,
    check_ndim,
    check_nonzero_rows,
    check_positive,
    check_same_length,
    check_same_shape,
    check_shape,
    check_square,
    check_strings,
    check_symmetric,
    check_type,
    check_values_in,
)

__all__ = [
    "skipgram_pairs",
    "cooccurrence_counts",
    "shifted_pmi",
    "sgns_pair_loss",
    "SkipGramNS",
    "sgns_expected_loss",
    "train_sgns",
    "simple_tokens",
    "crc32_hash",
    "train_word2vec",
    "train_word2vec_runs",
    "random_walks",
    "window_cooccurrence",
    "deepwalk_matrix",
    "deepwalk",
    "cosine_matrix",
    "nearest_words",
    "similarity_spearman",
    "spearman_interval",
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


def _count_matrix(counts: Any) -> np.ndarray:
    """``counts`` as a float64 matrix of non-negative counts with a positive sum."""
    counts = as_float_array("counts", counts, 2)
    check_values_in("counts", counts, 0.0)
    if not counts.sum() > 0:
        raise ValueError("counts must have a positive sum")
    return counts


def shifted_pmi(counts: Any, k: float = 1.0, *, skip_positive_noise: bool = False) -> np.ndarray:
    r"""Shifted pointwise mutual information of a co-occurrence count matrix.

    .. math::

       \operatorname{PMI}(w, c) - \log k = \log\frac{\#(w, c)\, |D|}{\#(w)\, \#(c)} - \log k,

    with :math:`|D| = \sum_{w,c} \#(w, c)` the number of pairs, :math:`\#(w)` the row sums
    and :math:`\#(c)` the column sums. For skip-gram with :math:`k` negative samples per pair
    drawn from the context distribution :math:`\#(c)/|D|` this is the optimum of
    :math:`w^\top c` (Levy and Goldberg, 2014).
    Pairs never seen (:math:`\#(w, c) = 0`) get :math:`-\infty`, without a warning.

    The word2vec program (and gensim) skips a noise sample that equals the positive context
    of its pair, so a pair :math:`(w, c)` meets :math:`c` as noise only among the other
    :math:`\#(w) - \#(w, c)` pairs of :math:`w`; its optimum is then higher by
    :math:`-\log(1 - \#(w, c)/\#(w))`, which ``skip_positive_noise=True`` adds (negligible for
    a large vocabulary, not for a small graph).

    Parameters
    ----------
    counts
        Non-negative, finite 2-D array of counts (need not be integer), with a positive sum.
    k
        Number of negative samples, > 0 (``k = 1`` gives plain PMI).
    skip_positive_noise
        Add word2vec's correction above (``+inf`` where every pair of ``w`` has context ``c``).

    Returns
    -------
    numpy.ndarray
        Float64 array of the shape of ``counts``.

    Raises
    ------
    ValueError
        If ``counts`` sums to 0, or for a wrong shape or value.
    """
    counts = _count_matrix(counts)
    total = counts.sum()
    check_positive("k", k)
    out = np.full(counts.shape, -np.inf)
    rows, cols = np.nonzero(counts)
    log_rows = np.log(counts.sum(axis=1)[rows])
    log_cols = np.log(counts.sum(axis=0)[cols])
    out[rows, cols] = (np.log(counts[rows, cols]) + np.log(total) - log_rows - log_cols
                       - np.log(k))
    if skip_positive_noise:
        with np.errstate(divide="ignore"):
            out[rows, cols] -= np.log1p(-counts[rows, cols] / counts.sum(axis=1)[rows])
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


class SkipGramNS(nn.Module):
    r"""The two tables of skip-gram with negative sampling: word (centre) and context vectors.

    Word vectors start uniform in :math:`\pm 0.5/\text{dim}` and context vectors at 0, as in
    word2vec; float64. Calling the module returns the matrix of products :math:`WC^\top`
    (entry :math:`[w, c] = w^\top c`).

    Parameters
    ----------
    n_words, dim
        Vocabulary size and vector dimension, integers >= 1.
    seed
        Seed of the initial word vectors (the global torch state is untouched).
    """

    def __init__(self, n_words: int, dim: int, *, seed: int = 0) -> None:
        super().__init__()
        check_int_at_least("n_words", n_words, 1)
        check_int_at_least("dim", dim, 1)
        check_int_at_least("seed", seed, 0)
        gen = torch.Generator().manual_seed(seed)
        init = (torch.rand(n_words, dim, generator=gen, dtype=torch.float64) - 0.5) / dim
        self.words = nn.Parameter(init)
        self.contexts = nn.Parameter(torch.zeros(n_words, dim, dtype=torch.float64))

    def forward(self) -> torch.Tensor:
        """The ``(n_words, n_words)`` products of every word vector with every context vector."""
        return self.words @ self.contexts.T


def sgns_expected_loss(products: torch.Tensor, counts: torch.Tensor,
                       negatives: int) -> torch.Tensor:
    r"""Mean SGNS loss per pair, in expectation over the negative samples.

    For pair counts :math:`\#(w, c)` with :math:`|D|` pairs and :math:`k` negatives per pair drawn
    from the context distribution :math:`\#(c)/|D|`, summing :func:`sgns_pair_loss` over the
    pairs and averaging over the noise gives (Levy and Goldberg, 2014)

    .. math::

       \ell = -\frac{1}{|D|}\sum_{w,c}\Big(\#(w,c)\log\sigma(x_{wc})
       + k\,\frac{\#(w)\,\#(c)}{|D|}\log\sigma(-x_{wc})\Big), \qquad x_{wc} = w^\top c ,

    whose minimum, cell by cell, is :func:`shifted_pmi`. Word2vec's stochastic gradient descent
    samples this function; minimising it directly reaches the same optimum without sampling
    noise.

    Parameters
    ----------
    products
        ``(n_words, n_words)`` scores :math:`w^\top c`.
    counts
        ``(n_words, n_words)`` non-negative pair counts (rows: centres, columns: contexts).
    negatives
        :math:`k`, an integer >= 1.

    Returns
    -------
    torch.Tensor
        A scalar.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    check_same_shape("products", products, "counts", counts)
    check_int_at_least("negatives", negatives, 1)
    total = counts.sum()
    noise = negatives * counts.sum(dim=1, keepdim=True) * counts.sum(dim=0, keepdim=True) / total
    return -(counts * F.logsigmoid(products) + noise * F.logsigmoid(-products)).sum() / total


def train_sgns(
    counts: Any,
    *,
    dim: int = 50,
    negatives: int = 5,
    steps: int = 1000,
    lr: float = 0.01,
    seeds: Sequence[int] = (0,),
) -> tuple[np.ndarray, np.ndarray]:
    r"""Train skip-gram with negative sampling on pair counts, one model per seed, side by
    side: full-batch Adam on :func:`sgns_expected_loss` through
    :func:`dlnotes.training.fit_replicas`.

    The seed fixes a model's initial word vectors (:class:`SkipGramNS`). With ``dim`` at least
    the vocabulary size every product is free and the optimum is :func:`shifted_pmi` of
    ``counts`` with ``k = negatives``.

    Parameters
    ----------
    counts
        ``(n_words, n_words)`` non-negative pair counts with a positive sum
        (:func:`cooccurrence_counts`).
    dim
        Vector dimension, an integer >= 1.
    negatives
        Noise samples per pair (:math:`k`), an integer >= 1.
    steps
        Full-batch Adam steps, an integer >= 1.
    lr
        Adam step size, > 0.
    seeds
        One seed (>= 0) per model.

    Returns
    -------
    W, C
        Float64 arrays ``(len(seeds), n_words, dim)``: word (centre) and context vectors.

    Raises
    ------
    ValueError
        If an argument is out of range or ``counts`` is not a square count matrix.
    """
    counts = _count_matrix(counts)
    check_square("counts", counts)
    check_min_length("seeds", seeds, 1, "seeds")
    models = [SkipGramNS(len(counts), dim, seed=s) for s in seeds]
    fit_replicas(models, lambda model, n: sgns_expected_loss(model(), n, negatives),
                 (torch.as_tensor(counts),), generators=[torch.Generator() for _ in seeds],
                 steps=steps, optimizer="adam", lr=lr)
    W = np.stack([m.words.detach().numpy() for m in models])
    C = np.stack([m.contexts.detach().numpy() for m in models])
    return W, C


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
    alpha: float = 0.025,
    min_alpha: float = 0.0001,
    seed: int = 0,
    on_epoch_end: Callable[[int, KeyedVectors], None] | None = None,
) -> KeyedVectors:
    r"""Train gensim's ``Word2Vec`` reproducibly: one worker thread, seeded, quiet.

    Skip-gram (``sg=True``) predicts each context word from the centre word; CBOW
    (``sg=False``) predicts the centre word from the mean of its context vectors
    (Mikolov et al., 2013). Both use negative sampling with gensim's defaults otherwise
    (noise exponent 0.75, down-sampling of frequent words at 1e-3, a window shrunk at random
    per centre). The step size falls linearly from ``alpha`` to ``min_alpha`` over the run;
    ``min_alpha = alpha`` keeps it constant, so that the vectors after epoch :math:`e` of a
    longer run are those of an :math:`e`-epoch run. With ``workers=1``, the ``seed`` and
    :func:`crc32_hash` as ``hashfxn``, two calls give identical vectors in any process.

    Parameters
    ----------
    sentences
        Tokenised texts, e.g. from :func:`simple_tokens`.
    sg
        Skip-gram if true, CBOW if false.
    vector_size, window, min_count, negative, epochs
        As in gensim, integers >= 1.
    alpha, min_alpha
        Initial and final step size, 0 < ``min_alpha`` <= ``alpha``.
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
        If an argument is out of range or ``sentences`` is empty.
    """
    options = _word2vec_options(
        sentences, sg=sg, vector_size=vector_size, window=window, min_count=min_count,
        negative=negative, epochs=epochs, alpha=alpha, min_alpha=min_alpha, seed=seed,
        on_epoch_end=on_epoch_end)
    with _quiet_gensim():
        return _fit_word2vec(options).wv


def train_word2vec_runs(
    runs: Sequence[Mapping[str, Any]], *, threads: int = 2
) -> list[KeyedVectors]:
    r"""Several :func:`train_word2vec` runs at once, one per thread: the same vectors, sooner.

    gensim's training loop is compiled code that releases Python's global interpreter lock, so
    runs on separate threads use separate CPU cores. Each run still has one worker thread and
    its own seeded random state, so its vectors are identical to those of the same
    :func:`train_word2vec` call made alone (a tested property); only the wall time changes.
    The arithmetic is not split, so on a single core nothing is gained.

    Parameters
    ----------
    runs
        One mapping of :func:`train_word2vec`'s arguments per run (``sentences`` and ``sg``
        required). An ``on_epoch_end`` hook is called on the thread of its run.
    threads
        How many runs train at the same time, an integer >= 1.

    Returns
    -------
    list of gensim.models.KeyedVectors
        The trained vectors, in the order of ``runs``.

    Raises
    ------
    ValueError
        If ``runs`` is empty, a run is not a mapping, lacks ``sentences`` or ``sg`` or has an
        unknown argument, or an argument is out of range (as in :func:`train_word2vec`).
    """
    check_int_at_least("threads", threads, 1)
    check_min_length("runs", runs, 1, "runs")
    known = set(inspect.signature(train_word2vec).parameters)
    options = []
    for i, run in enumerate(runs):
        check_type(f"runs[{i}]", run, Mapping)
        unknown = sorted(set(run) - known)
        if unknown:
            raise ValueError(f"runs[{i}] has unknown argument(s) {unknown}; "
                             f"train_word2vec takes {sorted(known)}")
        missing = [name for name in ("sentences", "sg") if name not in run]
        if missing:
            raise ValueError(f"runs[{i}] lacks the required argument(s) {missing}")
        options.append(_word2vec_options(**run))
    with _quiet_gensim(), ThreadPoolExecutor(max_workers=threads) as pool:
        return [model.wv for model in pool.map(_fit_word2vec, options)]


def _word2vec_options(
    sentences: Sequence[Sequence[str]], *, sg: bool, vector_size: int = 100, window: int = 5,
    min_count: int = 5, negative: int = 5, epochs: int = 5, alpha: float = 0.025,
    min_alpha: float = 0.0001, seed: int = 0,
    on_epoch_end: Callable[[int, KeyedVectors], None] | None = None,
) -> dict[str, Any]:
    """Check :func:`train_word2vec`'s arguments; return gensim's ``Word2Vec`` keywords."""
    for name, value in (("vector_size", vector_size), ("window", window),
                        ("min_count", min_count), ("negative", negative), ("epochs", epochs)):
        check_int_at_least(name, value, 1)
    check_positive("min_alpha", min_alpha)
    check_in_range("alpha", alpha, min_alpha, 1.0)
    check_int_at_least("seed", seed, 0)
    check_min_length("sentences", sentences, 1, "sentences")
    callbacks = [_EpochEnd(on_epoch_end)] if on_epoch_end is not None else []
    return dict(sentences=sentences, vector_size=vector_size, window=window,
                min_count=min_count, sg=int(bool(sg)), negative=negative, epochs=epochs,
                alpha=alpha, min_alpha=min_alpha, seed=seed, callbacks=callbacks)


def _fit_word2vec(options: Mapping[str, Any]) -> Word2Vec:
    """gensim's ``Word2Vec`` with negative sampling, one worker thread, CRC-32 hashing.

    The caller quiets gensim's logger (:func:`_quiet_gensim`) once around all its runs: the
    logger is global, so runs on several threads must not each set and restore it.
    """
    return Word2Vec(hs=0, workers=1, hashfxn=crc32_hash, **options)


def _word2vec(sentences: Sequence[Sequence[str]], **options: Any) -> Word2Vec:
    """gensim's ``Word2Vec`` with negative sampling, one worker thread, CRC-32 hashing, quiet."""
    with _quiet_gensim():
        return _fit_word2vec(dict(sentences=sentences, **options))


# --- DeepWalk: skip-gram on random walks -------------------------------------------------------


def _transition_matrix(adjacency: Any) -> np.ndarray:
    """Row-normalised ``adjacency`` (checked: square, finite, non-negative, no empty row)."""
    A = as_float_array("adjacency", adjacency, 2)
    check_square("adjacency", A)
    check_values_in("adjacency", A, 0.0)
    degree = A.sum(axis=1, keepdims=True)
    if (degree == 0).any():
        raise ValueError(f"adjacency: node {int(np.argmax(degree[:, 0] == 0))} has no edge, a "
                         "walk cannot leave it")
    return A / degree


def random_walks(
    adjacency: Any, *, walk_length: int, walks_per_node: int, generator: torch.Generator
) -> list[list[int]]:
    r"""Random walks on a graph, ``walks_per_node`` of them starting at every node (DeepWalk).

    Each step moves from node :math:`i` to a neighbour :math:`j` with probability
    :math:`A_{ij} / \sum_{j'} A_{ij'}` (uniformly over the neighbours of an unweighted graph):
    the random walk with transition matrix :math:`P = D^{-1}A`. Walks come in rounds: round
    :math:`r` holds one walk from each node, in node order (Perozzi et al., 2014).

    Parameters
    ----------
    adjacency
        ``(n, n)`` non-negative adjacency (or weight) matrix; every node needs an edge.
    walk_length
        Nodes per walk, the start included, an integer >= 1.
    walks_per_node
        Walks starting at each node, an integer >= 1.
    generator
        The source of every random step.

    Returns
    -------
    list of list of int
        ``n * walks_per_node`` walks of ``walk_length`` node ids each.

    Raises
    ------
    ValueError
        For a node without an edge, or a wrong matrix or setting.
    """
    P = torch.as_tensor(_transition_matrix(adjacency))
    check_int_at_least("walk_length", walk_length, 1)
    check_int_at_least("walks_per_node", walks_per_node, 1)
    check_type("generator", generator, torch.Generator)
    node = torch.arange(len(P)).repeat(walks_per_node)
    steps = [node]
    for _ in range(walk_length - 1):
        node = torch.multinomial(P[node], 1, generator=generator)[:, 0]
        steps.append(node)
    return torch.stack(steps, dim=1).tolist()


def window_cooccurrence(sequences: Iterable[Sequence[int]], window: int,
                        n_words: int) -> np.ndarray:
    r"""Counts :math:`\#(w, c)` of the skip-gram pairs of integer sequences (fixed window).

    The same counts as :func:`cooccurrence_counts` of :func:`skipgram_pairs` of every
    sequence, computed one offset at a time. Negative ids keep their place but give no pair
    (a word left out of the vocabulary).

    Parameters
    ----------
    sequences
        Sequences of ids in ``[-1, n_words)`` (walks, documents).
    window
        Context radius, an integer >= 1.
    n_words
        Vocabulary size, an integer >= 1.

    Returns
    -------
    numpy.ndarray
        ``(n_words, n_words)`` int64 counts, symmetric.

    Raises
    ------
    ValueError
        For ids out of range or a bad setting.
    """
    check_int_at_least("window", window, 1)
    check_int_at_least("n_words", n_words, 1)
    counts = np.zeros((n_words, n_words), dtype=np.int64)
    for i, seq in enumerate(sequences):
        ids = np.asarray(seq, dtype=np.int64)
        if ids.size:
            check_integer_array(f"sequences[{i}]", ids, 1, low=-1, high=n_words)
        for r in range(1, min(window, ids.size - 1) + 1):
            a, b = ids[:-r], ids[r:]
            keep = (a >= 0) & (b >= 0)
            np.add.at(counts, (a[keep], b[keep]), 1)
    return counts + counts.T


def deepwalk_matrix(adjacency: Any, *, window: int, negatives: int) -> np.ndarray:
    r"""The matrix DeepWalk factorises implicitly (NetMF, Qiu et al., 2018).

    For an undirected connected graph with degrees :math:`d_i`, volume
    :math:`\operatorname{vol} = \sum_i d_i`, :math:`D = \operatorname{diag}(d)` and
    :math:`P = D^{-1}A`, the shifted PMI of the skip-gram pairs of ever longer random walks
    (window :math:`T`, :math:`b` negatives drawn from the context counts) converges to

    .. math::

       M = \log\Big(\frac{\operatorname{vol}}{bT}
       \Big(\sum_{r=1}^{T} P^r\Big) D^{-1}\Big) \quad\text{(elementwise)},

    the optimum of :math:`w^\top c` (:func:`shifted_pmi`). Pairs no walk of at most :math:`T`
    steps connects get :math:`-\infty`, without a warning.

    Parameters
    ----------
    adjacency
        ``(n, n)`` symmetric non-negative adjacency (or weight) matrix without an empty row.
    window
        :math:`T`, an integer >= 1.
    negatives
        :math:`b`, an integer >= 1.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` float64 matrix.

    Raises
    ------
    ValueError
        For an asymmetric or otherwise invalid matrix or a bad setting.
    """
    P = _transition_matrix(adjacency)
    A = np.asarray(adjacency, dtype=np.float64)
    check_symmetric("adjacency", A, 1e-12)
    check_int_at_least("window", window, 1)
    check_int_at_least("negatives", negatives, 1)
    degree = A.sum(axis=1)
    total, power = np.zeros_like(P), np.eye(len(P))
    for _ in range(window):
        power = power @ P
        total += power
    inside = total * (degree.sum() / (negatives * window)) / degree[None, :]
    out = np.full(inside.shape, -np.inf)
    positive = inside > 0
    out[positive] = np.log(inside[positive])
    return out


def deepwalk(
    walks: Sequence[Sequence[int]],
    n_nodes: int,
    *,
    window: int,
    negatives: int = 5,
    dim: int = 64,
    epochs: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""DeepWalk: gensim's skip-gram with negative sampling on random walks, in the set-up
    NetMF analyses (:func:`deepwalk_matrix`).

    The walks are sentences whose words are node ids. Unlike word2vec's defaults, the window is
    fixed (``shrink_windows=False``), nothing is down-sampled (``sample=0``), and the noise
    contexts are drawn from the context counts themselves (``ns_exponent=1``), so that the
    optimum of :math:`w^\top c` is the shifted PMI of the walks' pairs (with word2vec's
    skipping of noise samples equal to the positive context:
    ``shifted_pmi(counts, k, skip_positive_noise=True)``); every node is kept.

    Parameters
    ----------
    walks
        Node-id sequences, e.g. from :func:`random_walks`.
    n_nodes
        Number of nodes, an integer >= 1; every node must occur in the walks.
    window, negatives, dim, epochs
        Skip-gram's window :math:`T`, negatives :math:`b`, vector size and passes, integers
        >= 1.
    seed
        Seed of gensim's initial vectors and random choices, an integer >= 0.

    Returns
    -------
    W, C
        Float64 arrays ``(n_nodes, dim)``: node vectors and context vectors, row ``i`` for
        node ``i``.

    Raises
    ------
    ValueError
        If a node does not occur in the walks, or for a bad setting.
    """
    for name, value in (("n_nodes", n_nodes), ("window", window), ("negatives", negatives),
                        ("dim", dim), ("epochs", epochs)):
        check_int_at_least(name, value, 1)
    check_int_at_least("seed", seed, 0)
    sentences = [[str(int(v)) for v in walk] for walk in walks]
    missing = {str(v) for v in range(n_nodes)} - {v for walk in sentences for v in walk}
    if missing:
        raise ValueError(f"every node must occur in the walks; missing {sorted(missing)[:5]}")
    model = _word2vec(sentences, vector_size=dim, window=window, min_count=1, sg=1,
                      negative=negatives, ns_exponent=1.0, sample=0, shrink_windows=False,
                      epochs=epochs, seed=seed)
    rows = [model.wv.key_to_index[str(v)] for v in range(n_nodes)]
    return (model.wv.vectors[rows].astype(np.float64),
            model.syn1neg[rows].astype(np.float64))


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


def spearman_interval(rho: float, n: int, *, level: float = 0.95,
                      unit: str = "word pairs") -> Interval:
    r"""Confidence interval of a Spearman correlation from its Fisher transform.

    :math:`z = \operatorname{artanh}(r_s)` is nearly normal with variance
    :math:`(1 + r_s^2/2)/(n - 3)` (Bonett and Wright, 2000); the interval is
    :math:`\tanh(z \pm z_{1-\alpha/2}\,\sigma)`. It depends on the data only through
    :math:`r_s` and :math:`n`, so rounding-size changes of the scores that leave their ranks
    alone leave it alone too (a percentile bootstrap can move with them).

    Parameters
    ----------
    rho
        The sample Spearman correlation, in (-1, 1).
    n
        Number of pairs ranked, an integer >= 4.
    level
        Confidence level in (0, 1).
    unit
        What a pair is, for the evidence line.

    Returns
    -------
    dlnotes.evidence.Interval

    Raises
    ------
    ValueError
        For ``rho`` outside (-1, 1) or out-of-range settings.
    """
    check_in_range("rho", rho, -1.0, 1.0, low_inclusive=False)
    check_int_at_least("n", n, 4)
    check_in_range("level", level, 0.0, 1.0, low_inclusive=False)
    z, half = math.atanh(rho), float(norm.ppf(0.5 + level / 2)) * math.sqrt(
        (1 + rho**2 / 2) / (n - 3))
    return Interval(float(rho), math.tanh(z - half), math.tanh(z + half), int(n), unit, level)


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
