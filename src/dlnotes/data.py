"""Small data sets that ship with installed packages (nothing is downloaded).

Loaders of feature data return float arrays standardised with the *training* split's
statistics, so no test information leaks into the scaling. The text loaders (chapter 11) read
gensim's bundled test corpora through ``gensim.test.utils.datapath``.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from dlnotes.validation import (
    check_choice,
    check_in_range,
    check_int_at_least,
    check_min_length,
    check_ndim,
    check_nonnegative,
    check_positive,
    check_type,
)

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "Split",
    "standardize",
    "diabetes",
    "classification_data",
    "stratified_split",
    "classification_split",
    "lee_corpus",
    "split_sentences",
    "lee_sentences",
    "lee_sentence_documents",
    "lee_similarity_pairs",
    "word_similarity",
    "analogy_questions",
    "adjacency_matrix",
    "karate_club",
    "contextual_sbm",
    "per_class_split",
]

# scikit-learn's bundled data are read from its files, and its stratified split is replicated
# (both tested against scikit-learn): importing scikit-learn costs about 0.8 s per notebook.
_CLASSIFICATION = {
    "digits": "load_digits",
    "breast_cancer": "load_breast_cancer",
    "iris": "load_iris",
    "wine": "load_wine",
}


class Split(NamedTuple):
    """A train/test split as torch tensors (features float, labels int64)."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor


def standardize(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Centre and scale columns by the mean and std of ``train``; constant columns stay 0.

    Returns the standardised ``train`` followed by each of ``others``.
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple((a - mean) / std for a in (train, *others))


def diabetes(standardized: bool = True) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's bundled diabetes regression data (442 patients, 10 features).

    Parameters
    ----------
    standardized
        If true, features (the *raw* ones, ``scaled=False``) are standardised to mean 0 and
        variance 1, and the target is centred.

    Returns
    -------
    X, y, feature_names
        ``X`` of shape (442, 10), ``y`` of shape (442,), both float64.
    """
    X, y = (_bundled_table(f"diabetes_{part}.csv.gz") for part in ("data_raw", "target"))
    if standardized:
        (X,) = standardize(X)
        y = y - y.mean()
    return X, y, list(DIABETES_FEATURES)


#: The names of the diabetes features, as scikit-learn gives them.
DIABETES_FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")

#: scikit-learn's file of each classification data set (a header row, then one row per sample).
_CLASSIFICATION_FILES = {"breast_cancer": "breast_cancer.csv", "iris": "iris.csv",
                         "wine": "wine_data.csv"}


def _bundled_file(name: str) -> Path:
    """A data file that ships with scikit-learn, found without importing it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("scikit-learn is not installed; its data files are needed")
    return Path(spec.origin).parent / "datasets" / "data" / name


def _bundled_table(name: str, delimiter: str | None = None) -> np.ndarray:
    with gzip.open(_bundled_file(name), "rt", encoding="utf-8") as f:
        return np.loadtxt(f, delimiter=delimiter)


def classification_data(name: str = "digits") -> tuple[np.ndarray, np.ndarray]:
    """A classification data set bundled with scikit-learn: features (float64) and labels
    (int64), equal to what ``sklearn.datasets.load_digits`` (``load_breast_cancer``,
    ``load_iris``, ``load_wine``) returns as ``data`` and ``target`` (tested), read without
    importing scikit-learn.

    Raises
    ------
    ValueError
        For an unknown ``name``.
    """
    check_choice("name", name, sorted(_CLASSIFICATION))
    if name == "digits":
        table = _bundled_table("digits.csv.gz", delimiter=",")
        return table[:, :-1], table[:, -1].astype(np.int64)
    with _bundled_file(_CLASSIFICATION_FILES[name]).open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    n_samples = int(rows[0][0])
    body = rows[1:1 + n_samples]
    return (np.array([row[:-1] for row in body], dtype=np.float64),
            np.array([int(row[-1]) for row in body], dtype=np.int64))


def _approximate_mode(class_counts: np.ndarray, n_draws: int,
                      rng: np.random.RandomState) -> np.ndarray:
    """Samples per class closest to proportional, ties broken at random (scikit-learn's
    ``_approximate_mode``, the same draws from ``rng``)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_split(y: np.ndarray, test_size: float | int, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/test split of labels ``y``: the split that
    ``sklearn.model_selection.train_test_split(..., test_size=test_size, random_state=seed,
    stratify=y)`` makes, draw for draw (tested), without importing scikit-learn.

    Parameters
    ----------
    y
        Labels, shape ``(n,)``, every class at least twice.
    test_size
        A fraction in (0, 1) (the test set has ``ceil(test_size * n)`` samples) or a count.
    seed
        Seed of ``numpy.random.RandomState``, ≥ 0.

    Returns
    -------
    train, test
        Index arrays, in the split's (shuffled) order.

    Raises
    ------
    ValueError
        For a size out of range, a class with fewer than two samples, or fewer samples on a
        side than there are classes.
    """
    y = np.asarray(y)
    check_ndim("y", y, 1)
    check_int_at_least("seed", seed, 0)
    n = len(y)
    if isinstance(test_size, int | np.integer) and not isinstance(test_size, bool):
        check_in_range("test_size", test_size, 1, n - 1, high_inclusive=True)
        n_test = int(test_size)
    else:
        check_in_range("test_size", test_size, 0.0, 1.0, low_inclusive=False,
                       high_inclusive=False)
        n_test = math.ceil(test_size * n)
    n_train = n - n_test
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    if class_counts.min() < 2 or min(n_train, n_test) < len(classes):
        raise ValueError(f"y: every class needs two samples and each side at least one per "
                         f"class; got class counts {class_counts.tolist()}, {n_train} train "
                         f"and {n_test} test")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i in range(len(classes)):
        members = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(members[: n_i[i]])
        test.extend(members[n_i[i]: n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def classification_split(
    name: str = "digits",
    test_size: float = 0.3,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Split:
    """A stratified, standardised train/test split of a bundled classification data set.

    Parameters
    ----------
    name
        ``"digits"`` (1,797 8×8 images, 10 classes), ``"breast_cancer"`` (569 × 30, 2 classes),
        ``"iris"`` or ``"wine"``.
    test_size
        Fraction held out, in (0, 1).
    seed
        Seed of the split.
    dtype
        Floating dtype of the features.

    Returns
    -------
    Split
        ``(X_train, y_train, X_test, y_test)`` as tensors.

    Raises
    ------
    ValueError
        For an unknown ``name``, ``test_size`` outside (0, 1) or a negative ``seed``.
    """
    check_choice("name", name, sorted(_CLASSIFICATION))
    check_in_range("test_size", test_size, 0.0, 1.0, low_inclusive=False)
    check_int_at_least("seed", seed, 0)
    X, y = classification_data(name)
    train, test = stratified_split(y, test_size, seed)
    X_tr, X_te = standardize(X[train], X[test])
    y_tr, y_te = y[train], y[test]
    return Split(
        torch.as_tensor(X_tr, dtype=dtype), torch.as_tensor(y_tr, dtype=torch.int64),
        torch.as_tensor(X_te, dtype=dtype), torch.as_tensor(y_te, dtype=torch.int64),
    )


# --- Text data bundled with gensim (chapter 11) ---------------------------------------------

#: File names of gensim's bundled test data used by chapter 11, and their encodings.
_LEE_FILES = {"background": ("lee_background.cor", "utf-8"), "test": ("lee.cor", "latin-1")}
_WORD_SIMILARITY_FILES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')]))\s+(?=[\"'(]?[A-Z0-9])")


def _gensim_file(name: str) -> str:
    # The path of a file in gensim's bundled test data, found without importing gensim
    # (importing it costs about a second, and most chapters never read these files).
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the text loaders need gensim: pip install -r requirements.txt")
    return str(Path(spec.submodule_search_locations[0]) / "test" / "test_data" / name)


def lee_corpus(part: str = "background") -> list[str]:
    """News documents of the Lee corpus bundled with gensim, one string per document.

    Parameters
    ----------
    part
        ``"background"`` (``lee_background.cor``, 300 Australian news articles, for fitting)
        or ``"test"`` (``lee.cor``, the 50 short documents rated by humans, see
        :func:`lee_similarity_pairs`).

    Returns
    -------
    list of str
        The documents in file order, stripped of surrounding white space.

    Raises
    ------
    ValueError
        For an unknown ``part``.

    Notes
    -----
    Lee, Pincombe & Welsh (2005), "An empirical evaluation of models of
    text document similarity".
    """
    check_choice("part", part, sorted(_LEE_FILES))
    name, encoding = _LEE_FILES[part]
    with open(_gensim_file(name), encoding=encoding) as f:
        return [line.strip() for line in f if line.strip()]


def split_sentences(text: str, min_words: int = 1) -> list[str]:
    """Split English prose into sentences at ``.``, ``!`` or ``?`` followed by a capital.

    A simple rule, good enough for news text: abbreviations such as "U.S. officials" may be
    split wrongly, which only adds a few short fragments.

    Parameters
    ----------
    text
        The text to split.
    min_words
        Sentences with fewer white-space separated words are dropped, an integer >= 1.

    Returns
    -------
    list of str
        The sentences in order.

    Raises
    ------
    ValueError
        If ``text`` is not a string or ``min_words`` < 1.
    """
    check_type("text", text, str)
    check_int_at_least("min_words", min_words, 1)
    parts = (s.strip() for s in _SENTENCE_END.split(text))
    return [s for s in parts if len(s.split()) >= min_words]


def lee_sentences(max_sentences: int | None = None, min_words: int = 5,
                  seed: int = 0) -> list[str]:
    """Sentences of the Lee background corpus, optionally a seeded random subset.

    Parameters
    ----------
    max_sentences
        If given (an integer >= 1), a random subset of this size, kept in corpus order; all
        sentences if ``None`` or larger than their number.
    min_words
        Minimum number of words of a sentence, an integer >= 1.
    seed
        Seed of the subset, an integer >= 0.

    Returns
    -------
    list of str
        Sentences of the 300 background documents (2,676 with ``min_words=5``).

    Raises
    ------
    ValueError
        If an integer argument is out of range.
    """
    sentences = [s for doc in lee_corpus("background") for s in split_sentences(doc, min_words)]
    return [sentences[i] for i in _sentence_subset(len(sentences), max_sentences, min_words, seed)]


def _sentence_subset(n: int, max_sentences: int | None, min_words: int, seed: int) -> np.ndarray:
    """Sorted indices of the seeded subset of ``n`` sentences that :func:`lee_sentences` keeps."""
    check_int_at_least("min_words", min_words, 1)
    check_int_at_least("seed", seed, 0)
    if max_sentences is None:
        return np.arange(n)
    check_int_at_least("max_sentences", max_sentences, 1)
    if max_sentences >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_sentences, replace=False))


def lee_similarity_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Human similarity ratings of all 1,225 pairs of the 50 Lee test documents.

    Read from gensim's ``similarities0-1.txt``, the upper triangle of a 50 × 50 matrix of mean
    ratings (students rated each pair from 1 to 5; the file holds the means divided by 5).

    Returns
    -------
    i, j, rating
        Document indices into :func:`lee_corpus` ``("test")`` with ``i < j`` (int arrays of
        shape ``(1225,)``) and the ratings (float64, in ``[0.2, 1]``).
    """
    matrix = np.loadtxt(_gensim_file("similarities0-1.txt"))
    i, j = np.triu_indices(matrix.shape[0], k=1)
    return i, j, matrix[i, j]


def word_similarity(name: str) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Word pairs and their mean human ratings from WordSim-353 or SimLex-999 (gensim's copies).

    WordSim-353 (Finkelstein et al., 2002) rates *relatedness* ("cup"–"coffee" scores high);
    SimLex-999 (Hill et al., 2015) rates *similarity* proper, so related but dissimilar words
    ("cup"–"coffee") score low.

    Parameters
    ----------
    name
        ``"wordsim353"`` (353 pairs) or ``"simlex999"`` (999 pairs).

    Returns
    -------
    pairs, ratings
        List of ``(word1, word2)`` in file order and a float64 array of ratings on a 0–10 scale.

    Raises
    ------
    ValueError
        For an unknown ``name``.
    """
    check_choice("name", name, sorted(_WORD_SIMILARITY_FILES))
    pairs, ratings = [], []
    with open(_gensim_file(_WORD_SIMILARITY_FILES[name]), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            w1, w2, score = line.rstrip("\n").split("\t")[:3]
            pairs.append((w1, w2))
            ratings.append(float(score))
    return pairs, np.array(ratings)


def lee_sentence_documents(max_sentences: int | None = None, min_words: int = 5,
                           seed: int = 0) -> np.ndarray:
    """Index of the background document each sentence of :func:`lee_sentences` comes from.

    Called with the same arguments as :func:`lee_sentences`, it returns one document index
    (into :func:`lee_corpus` ``("background")``) per returned sentence, in the same order, so
    that sentences of the same article can be paired.

    Parameters
    ----------
    max_sentences, min_words, seed
        As in :func:`lee_sentences`.

    Returns
    -------
    numpy.ndarray
        Integer array, non-decreasing, with values in ``[0, 300)``.

    Raises
    ------
    ValueError
        If an integer argument is out of range.
    """
    docs = [d for d, doc in enumerate(lee_corpus("background"))
            for _ in split_sentences(doc, min_words)]
    return np.array(docs)[_sentence_subset(len(docs), max_sentences, min_words, seed)]


# --- Word-analogy questions (chapter 10) -----------------------------------------------------


def analogy_questions() -> tuple[list[str], list[tuple[str, str, str, str]]]:
    """The word-analogy questions of Mikolov et al. (2013), ``questions-words.txt`` in gensim.

    Each question "a is to b as c is to d" (``Athens Greece Baghdad Iraq``) belongs to one of
    14 sections, 5 semantic (capitals, currencies, cities in states, family) and 9 syntactic
    (``gram1-adjective-to-adverb`` …).

    Returns
    -------
    sections, questions
        The section name of each question and the ``(a, b, c, d)`` tuples, 19,544 of each, in
        file order and in the file's case.
    """
    sections, questions = [], []
    section = ""
    with open(_gensim_file("questions-words.txt"), encoding="utf-8") as f:
        for line in f:
            if line.startswith(":"):
                section = line[1:].strip()
            elif line.strip():
                a, b, c, d = line.split()
                sections.append(section)
                questions.append((a, b, c, d))
    return sections, questions


# ------------------------------------------------------------------------ graphs (chapter 9)
# networkx is imported where it is used: most chapters never build a graph.


def adjacency_matrix(graph: nx.Graph) -> torch.Tensor:
    """The unweighted adjacency matrix of a networkx graph as a float64 tensor.

    Nodes are ordered as ``graph.nodes``; edge weights (the karate club carries some) are
    ignored, every edge counts 1.

    Raises
    ------
    ValueError
        If ``graph`` is not a networkx graph or has no nodes.
    """
    import networkx as nx

    check_type("graph", graph, nx.Graph)
    check_min_length("graph", graph, 1, "nodes")
    return torch.from_numpy(nx.to_numpy_array(graph, weight=None, dtype=np.float64))


def karate_club() -> tuple[torch.Tensor, torch.Tensor]:
    """Zachary's karate club: adjacency ``(34, 34)`` and the faction of each member.

    From networkx's bundled copy (no download). Label 0 is "Mr. Hi", 1 "Officer" (the
    ``"club"`` attribute: the side each member joined after the split).

    Returns
    -------
    tuple of torch.Tensor
        Unweighted float64 adjacency and int64 labels.
    """
    import networkx as nx

    graph = nx.karate_club_graph()
    labels = torch.tensor([int(graph.nodes[v]["club"] != "Mr. Hi") for v in graph.nodes])
    return adjacency_matrix(graph), labels


def contextual_sbm(
    n_per_class: int,
    n_classes: int,
    *,
    degree: float,
    homophily: float,
    n_features: int,
    signal: float,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""A stochastic block model graph with class-dependent Gaussian features.

    ``n_classes`` blocks of ``n_per_class`` nodes from ``networkx.stochastic_block_model``
    with edge probabilities chosen so that a node has on average ``degree`` neighbours, a
    fraction ``homophily`` of them in its own class:
    :math:`p_{\text{in}} = \text{degree}\cdot h/(n-1)`,
    :math:`p_{\text{out}} = \text{degree}\,(1-h)/(n(k-1))`. Node features are
    :math:`x_i = \text{signal}\cdot e_{y_i} + \varepsilon_i` with
    :math:`\varepsilon_i \sim \mathcal N(0, I)`: the class is the ``y``-th coordinate axis
    (a contextual SBM, Deshpande et al. 2018).

    Parameters
    ----------
    n_per_class, n_classes
        Block size ≥ 2 and number of blocks ≥ 2 (``n_classes`` ≤ ``n_features``).
    degree
        Expected degree, > 0 (the probabilities must stay ≤ 1).
    homophily
        Expected fraction of same-class neighbours, in [0, 1].
    n_features
        Feature size ≥ ``n_classes``.
    signal
        Distance of each class mean from the origin, ≥ 0.
    seed
        Seeds the graph (networkx) and the features (NumPy), non-negative.

    Returns
    -------
    tuple of torch.Tensor
        Adjacency ``(N, N)`` float64, features ``(N, n_features)`` float64, labels ``(N,)``
        int64, nodes ordered by class.

    Raises
    ------
    ValueError
        If an argument is out of range or an edge probability would exceed 1.
    """
    import networkx as nx

    check_int_at_least("n_per_class", n_per_class, 2)
    check_int_at_least("n_classes", n_classes, 2)
    check_positive("degree", degree)
    check_in_range("homophily", homophily, 0.0, 1.0, high_inclusive=True)
    check_int_at_least("n_features", n_features, n_classes)
    check_nonnegative("signal", signal)
    check_int_at_least("seed", seed, 0)
    p_in = degree * homophily / (n_per_class - 1)
    p_out = degree * (1 - homophily) / (n_per_class * (n_classes - 1))
    if max(p_in, p_out) > 1:
        raise ValueError(f"degree {degree} is too large for blocks of {n_per_class} nodes "
                         f"(edge probability {max(p_in, p_out):.3g} > 1)")
    probs = [[p_in if a == b else p_out for b in range(n_classes)] for a in range(n_classes)]
    graph = nx.stochastic_block_model([n_per_class] * n_classes, probs, seed=seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((len(y), n_features))
    X[np.arange(len(y)), y] += signal
    return adjacency_matrix(graph), torch.from_numpy(X), torch.from_numpy(y)


def per_class_split(y: torch.Tensor, n_per_class: int, seed: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick ``n_per_class`` random nodes of every class; return them and all the others.

    The labelled set of semi-supervised node classification (Kipf & Welling use 20 per
    class).

    Parameters
    ----------
    y
        Labels ``(N,)``, int64, classes ``0 … k-1``.
    n_per_class
        Nodes per class, ≥ 1 and at most the size of the smallest class.
    seed
        Seeds the choice (NumPy), non-negative.

    Returns
    -------
    tuple of torch.Tensor
        Sorted indices of the picked nodes and of the rest.

    Raises
    ------
    ValueError
        If a class has fewer than ``n_per_class`` nodes or an argument is out of range.
    """
    check_int_at_least("n_per_class", n_per_class, 1)
    check_int_at_least("seed", seed, 0)
    labels = np.asarray(y)
    check_ndim("y", labels, 1)
    check_min_length("y", labels, 1, "labels")
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < n_per_class:
            raise ValueError(f"class {c} has {len(members)} nodes, fewer than "
                             f"n_per_class={n_per_class}")
        picked.append(rng.choice(members, n_per_class, replace=False))
    chosen = np.sort(np.concatenate(picked))
    rest = np.setdiff1d(np.arange(labels.size), chosen)
    return torch.from_numpy(chosen), torch.from_numpy(rest)
