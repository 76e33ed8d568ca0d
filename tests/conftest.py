"""Shared test set-up: every test starts from the book's seeded, single-threaded state.

Hypothesis runs derandomised when the ``CI`` environment variable is set (``.ci/run`` sets
it), so a CI run is reproducible; a local ``make unit`` still explores new examples.
"""

import os

import pytest
from hypothesis import settings

import dlnotes

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "explore")


@pytest.fixture(autouse=True)
def _seeded():
    dlnotes.setup(seed=0)
