"""One figure style for the whole book, and small plotting helpers shared by chapters.

The palette is Okabe & Ito's colour-blind-safe set. :func:`apply_style` is called by
:func:`dlnotes.setup`, so every notebook draws with the same size, fonts and colours.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["PALETTE", "STYLE", "apply_style", "subplots", "plot_curves"]

#: Okabe & Ito (2008) colour-blind-safe palette, black last.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

#: The rcParams every figure in the book uses.
STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.8,
    "image.cmap": "viridis",
}


def apply_style() -> None:
    """Apply the book's figure style (:data:`STYLE`) to matplotlib's global rcParams."""
    mpl.rcParams.update(STYLE)


def subplots(ncols: int = 1, nrows: int = 1, **kwargs) -> tuple[Figure, np.ndarray | Axes]:
    """``plt.subplots`` at the book's size, widened for several columns.

    Parameters
    ----------
    ncols, nrows
        Grid of axes.
    **kwargs
        Passed on to :func:`matplotlib.pyplot.subplots`.
    """
    width, height = STYLE["figure.figsize"]  # type: ignore[misc]
    kwargs.setdefault("figsize", (width * max(1.0, 0.62 * ncols), height * nrows))
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, **kwargs)


def plot_curves(
    ax: Axes,
    curves: dict[str, Sequence[float]],
    *,
    x: Sequence[float] | None = None,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logy: bool = False,
) -> Axes:
    """Draw one line per entry of ``curves`` (label → values) with labelled axes.

    A legend is drawn only when there is more than one curve (the book's style rule).
    """
    for label, values in curves.items():
        xs = np.arange(1, len(values) + 1) if x is None else np.asarray(x)
        ax.plot(xs, np.asarray(values, dtype=float), label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    if len(curves) > 1:
        ax.legend()
    return ax
