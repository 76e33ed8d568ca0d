"""Serve MathJax 3 from an installed package so the book's math renders without network access.

Sphinx loads MathJax from a CDN by default; an offline reader would then see raw TeX. This
extension copies MathJax's ``es5`` bundle, shipped by the PyPI package
``django-static-mathjax`` (import name ``mathjax``), into ``_static/mathjax`` and points
``mathjax_path`` at it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

ENTRY = "tex-mml-chtml.js"


def mathjax_es5_dir() -> Path:
    """Directory of the installed MathJax 3 ``es5`` bundle."""
    try:
        import mathjax  # provided by django-static-mathjax
    except ImportError as exc:  # pragma: no cover - exercised only on a broken install
        raise ExtensionError(
            "offline_mathjax needs the package django-static-mathjax (pip install -r "
            "requirements.txt)"
        ) from exc
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / ENTRY).is_file():
        raise ExtensionError(f"MathJax bundle not found at {es5}")
    return es5


def _copy_bundle(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        shutil.copytree(mathjax_es5_dir(), Path(app.outdir) / "_static" / "mathjax",
                        dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    mathjax_es5_dir()  # fail early, before a long build, if the bundle is missing
    app.config.mathjax_path = f"mathjax/{ENTRY}"  # relative paths resolve under _static/
    app.connect("build-finished", _copy_bundle)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
