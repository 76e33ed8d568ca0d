"""Shared test set-up: every test starts from the book's seeded, single-threaded state.

Hypothesis runs derandomised when the ``CI`` environment variable is set (``.ci/run`` sets
it), so a CI run is reproducible; a local ``make unit`` still explores new examples.
"""

import os
import socket

import pytest
from hypothesis import settings

import dlnotes

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "explore")


@pytest.fixture(autouse=True)
def _seeded():
    dlnotes.setup(seed=0)


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2 as ``(tokenizer, model)``, loaded once per test session
    (per worker under xdist) with every network connection refused: a load that reached for
    the network would fail here."""
    from dlnotes import embeddings

    def refuse(*args, **kwargs):
        raise OSError("network access attempted during an offline load")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        return embeddings.load_model()
