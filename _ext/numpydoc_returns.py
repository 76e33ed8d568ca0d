"""Read a bare line under a numpydoc "Returns" heading as the returned *names*.

The package's docstrings write ``Returns`` entries either as ``name : type`` or, for several
returned values, as a bare ``mean, var``. Napoleon reads a bare line as a *type*, so with
``-n`` every such name became a missing ``py:class`` target ("mean", "var", ...), and the old
configuration silenced all of them with a catch-all that also hid real broken references. With
this extension a bare line is a name (rendered in bold, never cross-referenced), ``name :
type`` keeps its type, and the nitpicky build checks every type that is written as one.
"""

from __future__ import annotations

from sphinx.ext.napoleon.docstring import NumpyDocstring


def _consume_returns_section(self, preprocess_types: bool = False):
    return self._consume_fields(prefer_type=False)


def setup(app) -> dict:
    NumpyDocstring._consume_returns_section = _consume_returns_section
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
