"""dlnotes: the package behind *Deep Learning Notes, Verified*.

One module per chapter topic (``dlnotes.losses`` for chapter 1, ...) plus a few shared ones:
:mod:`dlnotes.reproducibility` (:func:`setup`), :mod:`dlnotes.validation`,
:mod:`dlnotes.plotting`, :mod:`dlnotes.data` and :mod:`dlnotes.training`.
"""

from dlnotes.reproducibility import setup

__all__ = ["setup", "__version__"]
__version__ = "0.1.0"
