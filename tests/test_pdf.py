"""The whole book as one PDF (``make pdf``): every chapter is in it, with its math typeset."""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from pathlib import Path

import pytest
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parents[1]
PDF = ROOT / "_build" / "pdf" / "book.pdf"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_book import chapter_titles  # noqa: E402

pytestmark = pytest.mark.pdf


@pytest.fixture(scope="module")
def text() -> str:
    if not PDF.exists():
        message = "the PDF is not built: run `make pdf`"
        if os.environ.get("DLNOTES_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    pages = PdfReader(PDF).pages
    raw = " ".join(page.extract_text() for page in pages)
    # Chromium's fonts print "fi" and "fl" as ligatures (U+FB01, U+FB02); NFKC splits them.
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", raw))


def _words(title: str) -> str:
    return re.sub(r"\s+", " ", title).strip()


@pytest.mark.parametrize(("chapter", "title"), sorted(chapter_titles().items()))
def test_every_chapter_title_is_in_the_pdf(text, chapter, title):
    assert _words(title) in text, f"{chapter}: {title!r} not found in the PDF"


def test_pdf_math_is_typeset_not_raw_tex(text):
    assert "\\frac" not in text and "$$" not in text
