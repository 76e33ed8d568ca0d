"""Let the single-page HTML build (the source of ``make pdf``) render hidden notebook cells.

``sphinx-jupyterbook-latex`` turns cells tagged ``hide-cell`` into a ``HiddenCellNode`` and
registers how to render it for the ``html`` and ``latex`` builders. Another extension
registers handlers for the ``singlehtml`` builder by name, so Sphinx no longer falls back to
the ``html`` ones and the build stops with "unknown node type: HiddenCellNode". Registering the
same (skip the node) handler for ``singlehtml`` fixes that; the hidden cells are left out of
the printed book, as they are collapsed on the web page.
"""

from __future__ import annotations

from sphinx_jupyterbook_latex.nodes import HiddenCellNode, visit_HiddenCellNode


def setup(app) -> dict:
    app.add_node(HiddenCellNode, override=True, singlehtml=(visit_HiddenCellNode, None))
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
