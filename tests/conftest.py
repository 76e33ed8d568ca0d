"""Shared test set-up: every test starts from the book's seeded, single-threaded state."""

import pytest

import dlnotes


@pytest.fixture(autouse=True)
def _seeded():
    dlnotes.setup(seed=0)
