"""Seeding, threads and warnings: the one helper every notebook's setup cell calls."""

from __future__ import annotations

import logging
import os
import random
import warnings

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from dlnotes.validation import check_int_at_least

__all__ = ["setup", "NOISY_WARNINGS"]

#: (category, message regex) pairs of warnings that carry no information for a reader of the
#: book but would land in a notebook's stored stderr.
NOISY_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # torch prints this from inside its own modules on first use of some ops.
    (UserWarning, r"TypedStorage is deprecated"),
    # matplotlib's inline backend when a figure has no artists to lay out.
    (UserWarning, r"The figure layout has changed to tight"),
    (FutureWarning, r".*`resume_download` is deprecated.*"),
)


def setup(seed: int = 0) -> np.random.Generator:
    """Make a notebook or test reproducible and return a seeded NumPy generator.

    Seeds Python's ``random``, NumPy's legacy global state and torch; limits torch and
    NumPy's BLAS to one thread each (on a shared 2-core machine, spinning BLAS threads made an
    eigendecomposition about 20 times slower, and one thread keeps sums in a fixed order);
    turns on deterministic algorithms; silences the warnings in
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
    for category, message in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    from dlnotes.plotting import apply_style  # here, so that `import dlnotes` stays light

    apply_style()
    return np.random.default_rng(seed)
