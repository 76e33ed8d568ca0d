"""dlnotes.setup: seeds, one thread, deterministic algorithms, the figure style."""

import subprocess
import sys

import matplotlib as mpl
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import dlnotes
from dlnotes.plotting import PALETTE


def test_setup_makes_torch_numpy_and_generator_draws_repeat():
    # setup also seeds NumPy's legacy global state, which some libraries still read.
    first = (dlnotes.setup(3).normal(size=3), np.random.rand(2), torch.randn(2))  # noqa: NPY002
    second = (dlnotes.setup(3).normal(size=3), np.random.rand(2), torch.randn(2))  # noqa: NPY002
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_setup_limits_torch_and_blas_to_one_thread_deterministic_and_applies_style():
    dlnotes.setup(0)
    assert torch.get_num_threads() == 1
    assert torch.are_deterministic_algorithms_enabled()
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert blas and all(p["num_threads"] == 1 for p in blas)
    assert mpl.rcParams["axes.prop_cycle"].by_key()["color"][0] == PALETTE[0]


@pytest.mark.parametrize("bad", [-1, 1.5, "0"])
def test_setup_rejects_a_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        dlnotes.setup(bad)


def test_setup_does_not_load_the_compiler_stack():
    # The deterministic flag is set without importing torch._inductor (about 0.8 s per kernel).
    probe = ("import sys, torch, dlnotes; dlnotes.setup(seed=0); "
             "print(torch.are_deterministic_algorithms_enabled(), "
             "'torch._inductor.config' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.split() == ["True", "False"]
