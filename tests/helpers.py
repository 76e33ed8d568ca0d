"""Small helpers shared by the test modules."""

import inspect
import re


def case_id(value) -> str | None:
    """A readable pytest id for a parametrised case: a lambda is named by the call it makes.

    ``lambda: gaussian_nll(x, y, sigma=0.0)`` → ``gaussian_nll``; strings are kept; anything
    else gets pytest's default id. Pytest numbers repeated ids (``gaussian_nll-sigma0``, ...).
    """
    if callable(value) and getattr(value, "__name__", "") == "<lambda>":
        source = inspect.getsource(value)
        m = re.search(r"lambda[^:]*:\s*([\w.]+)", source)
        return m.group(1) if m else "lambda"
    if isinstance(value, str):
        return re.sub(r"\W+", "_", value).strip("_") or None
    return None
