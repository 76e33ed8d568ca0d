"""Seeding, threads and warnings: the one helper every notebook's setup cell calls."""

from __future__ import annotations

import ctypes
import logging
import os
import random
import sys
import warnings

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from dlnotes.validation import check_int_at_least

__all__ = ["setup", "keep_freed_memory", "NOISY_WARNINGS"]

#: (category, message regex) pairs of warnings that carry no information for a reader of the
#: book but would land in a notebook's stored stderr.
NOISY_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # torch prints this from inside its own modules on first use of some ops.
    (UserWarning, r"TypedStorage is deprecated"),
    # matplotlib's inline backend when a figure has no artists to lay out.
    (UserWarning, r"The figure layout has changed to tight"),
    (FutureWarning, r".*`resume_download` is deprecated.*"),
)


# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on a 64-bit
# machine (DEFAULT_MMAP_THRESHOLD_MAX, 4 MiB * sizeof(long)).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse instead of handing it back to the OS.

    By default glibc serves an allocation above its mmap threshold (128 KiB at first) with a
    fresh ``mmap`` and returns it with ``munmap`` when it is freed, and trims the top of its
    heap when more than the trim threshold is free. A training loop that allocates and frees
    the same megabyte-sized tensors at every step then pays a page fault and a kernel
    zero-fill for every page of every one of them: training chapter 9's 30 side-by-side GATs
    for 160 epochs took about 160,000 minor page faults and 2.35 s here, 3,500 faults and 2.1 s
    with freed memory kept. Raising the
    mmap threshold to its maximum (32 MiB on a 64-bit machine) and the trim threshold out of
    reach keeps freed blocks in the heap, at the cost of a process that does not shrink back.
    Only the placement of memory changes, not any arithmetic. (PyTorch's CPU tuning guide
    suggests jemalloc or tcmalloc for the same reason; this needs no extra library.)

    Returns
    -------
    bool
        Whether both settings took effect: false on a system without glibc (macOS, Windows,
        musl), where nothing is changed.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return (mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
            and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1)


def setup(seed: int = 0) -> np.random.Generator:
    """Make a notebook or test reproducible and return a seeded NumPy generator.

    Seeds Python's ``random``, NumPy's legacy global state and torch; limits torch and
    NumPy's BLAS to one thread each (on a shared 2-core machine, spinning BLAS threads made an
    eigendecomposition about 20 times slower, and one thread keeps sums in a fixed order);
    turns on deterministic algorithms; keeps freed memory for reuse
    (:func:`~dlnotes.reproducibility.keep_freed_memory`,
    a speed setting that changes no result); silences the warnings in
    :data:`~dlnotes.reproducibility.NOISY_WARNINGS`; applies the book's figure style.

    Parameters
    ----------
    seed
        Non-negative integer seed.

    Returns
    -------
    numpy.random.Generator
        ``np.random.default_rng(seed)``, for code that takes a generator.

    Raises
    ------
    ValueError
        If ``seed`` is not a non-negative integer.
    """
    check_int_at_least("seed", seed, 0)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - some libraries still read the global state
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # can only be set once per process, before parallel work starts
        pass
    # torch.use_deterministic_algorithms also imports the compiler's configuration
    # (torch._inductor, about 0.8 s) to set a flag that only torch.compile reads; the book never
    # compiles, so ATen's own flag is set directly where torch offers it.
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None:
        torch.use_deterministic_algorithms(True)
    else:
        set_flag(True)
    threadpool_limits(limits=1, user_api="blas")
    keep_freed_memory()
    for category, message in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    from dlnotes.plotting import apply_style  # here, so that `import dlnotes` stays light

    apply_style()
    return np.random.default_rng(seed)
