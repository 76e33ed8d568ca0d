"""The whole book as one PDF (``make pdf``), checked as a reader holding it would check it.

Every chapter is in it with its math typeset; each chapter's first quote from the notes is
there in Chinese, as text (a missing CJK font prints empty boxes, which have no text); every
page has its number in the footer and something on it; the outline has a bookmark per part,
chapter and section, each chapter's bookmark opens the page that starts the chapter, whose
running header is the chapter's title; the contents list gives the same page numbers.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import book_rules
import generated_pages as gp
import pytest
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parents[1]
# DLNOTES_PDF points the tests at another print (e.g. one made before a change).
PDF = Path(os.environ.get("DLNOTES_PDF", ROOT / "_build" / "pdf" / "book.pdf"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_book import chapter_titles  # noqa: E402

pytestmark = pytest.mark.pdf

MARGIN = 16 / 25.4 * 72  # the page margins of scripts/print_pdf.py (16 mm), in points
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
# A budget, not a measurement: 14.8 MB for 13 chapters (issue 29); a tagged PDF (Chromium's
# own outline) or figures at screen resolution times ten would break it.
MAX_MEGABYTES = 30


def normalise(text: str) -> str:
    """NFKC, without whitespace: what a reader's search box matches.

    NFKC splits the ligatures Chromium prints ("fi" as U+FB01) and folds full-width
    punctuation (，) to its ASCII form (,) as the notes mostly write it.
    """
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@dataclass
class Page:
    text: str
    header: str
    footer: str
    body: str
    has_images: bool
    lines: dict[float, list[str]] = field(default_factory=dict)  # body text by baseline


def _read_page(page) -> Page:
    height = float(page.mediabox.height)
    parts: dict[str, list[str]] = {"header": [], "footer": [], "body": []}
    lines: dict[float, list[str]] = {}

    def visit(text, cm, tm, font, size):
        if not text.strip():
            return
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        where = "footer" if y < MARGIN else "header" if y > height - MARGIN else "body"
        parts[where].append(text.strip())
        if where == "body":
            lines.setdefault(round(y), []).append(text.strip())

    text = page.extract_text(visitor_text=visit)
    xobjects = page.get("/Resources", {}).get("/XObject") or {}
    return Page(text, " ".join(parts["header"]), " ".join(parts["footer"]),
                " ".join(parts["body"]), bool(xobjects), lines)


@pytest.fixture(scope="module")
def reader() -> PdfReader:
    if not PDF.exists():
        message = "the PDF is not built: run `make pdf`"
        if os.environ.get("DLNOTES_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # Skia's short xref table, harmless
    return PdfReader(PDF)


@pytest.fixture(scope="module")
def pages(reader) -> list[Page]:
    return [_read_page(p) for p in reader.pages]


@pytest.fixture(scope="module")
def text(pages) -> str:
    # Chromium's fonts print "fi" and "fl" as ligatures (U+FB01, U+FB02); NFKC splits them.
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", " ".join(p.text for p in pages)))


@pytest.fixture(scope="module")
def outline(reader) -> list[tuple[int, str, int]]:
    """The bookmarks as (depth, title, page index), in order."""
    found = []

    def walk(items, depth):
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                found.append((depth, item.title, reader.get_destination_page_number(item)))

    walk(reader.outline, 0)
    return found


def _words(title: str) -> str:
    return re.sub(r"\s+", " ", title).strip()


def first_quote(stem: str) -> str:
    """The first quote in Chinese of a chapter's "What the notes say" section (markdown)."""
    for cell in book_rules.markdown_cells(book_rules.load(ROOT / "chapters" / f"{stem}.ipynb")):
        if "## What the notes say" not in cell:
            continue
        section = cell.split("## What the notes say", 1)[1]
        for paragraph in re.split(r"\n>?[ \t]*\n", section):
            lines = [ln[1:].strip() for ln in paragraph.strip().splitlines()]
            if paragraph.lstrip().startswith(">") and HAN.search("".join(lines)):
                return "".join(lines)
    raise AssertionError(f"{stem}: no quote in Chinese under 'What the notes say'")


def quote_pieces(quote: str) -> list[str]:
    """The runs of a quote that print as text: math ($…$, typeset by MathJax) and the notes'
    ellipses split it; markdown emphasis and code marks are dropped."""
    pieces = re.split(r"\$[^$]+\$|…", re.sub(r"[*`]", "", quote))
    return [normalise(p) for p in pieces if HAN.search(p)]


def test_pdf_is_small_enough_to_share():
    if not PDF.exists():
        pytest.skip("the PDF is not built: run `make pdf`")
    assert PDF.stat().st_size < MAX_MEGABYTES * 1e6, f"{PDF.stat().st_size / 1e6:.1f} MB"


def test_body_text_prints_at_full_size(reader, outline):
    # The theme's body text is 16 CSS px, 12 pt on paper. Anything wider than the page (a table
    # that does not wrap) makes Chromium shrink every page to fit, and the text with it.
    sizes: Counter = Counter()

    def visit(text, cm, tm, font, size):
        if text.strip():
            sizes[round(size * math.hypot(tm[0], tm[1]) * math.hypot(cm[0], cm[1]), 1)] += len(text)

    first = min(i for depth, title, i in outline if depth == 1 and re.match(r"\d+\. ", title))
    for page in reader.pages[first:first + 3]:
        page.extract_text(visitor_text=visit)
    size, _ = sizes.most_common(1)[0]
    assert 11.8 <= size <= 12.2, f"body text prints at {size} pt, not 12 pt: {sizes.most_common(4)}"


@pytest.mark.parametrize(("chapter", "title"), sorted(chapter_titles().items()))
def test_every_chapter_title_is_in_the_pdf(text, chapter, title):
    assert _words(title) in text, f"{chapter}: {title!r} not found in the PDF"


def test_pdf_math_is_typeset_not_raw_tex(text):
    assert "\\frac" not in text and "$$" not in text


@pytest.mark.parametrize("chapter", gp.toc_chapters())
def test_each_chapters_first_quote_prints_in_chinese_as_text(text, chapter):
    pieces = quote_pieces(first_quote(chapter))
    assert pieces and all(HAN.search(p) for p in pieces)
    searchable = normalise(text)
    missing = [p for p in pieces if p not in searchable]
    assert not missing, f"{chapter}: the quote from the notes is not in the PDF's text: {missing}"


def test_chinese_is_searchable_as_written_not_as_radicals(pages):
    # A CJK font draws 长 and the radical ⻓ (U+2ED3) with one glyph; the PDF's text must say
    # 长, or a reader's search for 步长 finds nothing (scripts/print_pdf.py fixes the map).
    radicals = sorted({c for p in pages for c in p.text if 0x2E80 <= ord(c) < 0x2FE0})
    assert not radicals, f"CJK radicals instead of ideographs in the PDF's text: {radicals}"


def test_every_page_has_its_number_in_the_footer(pages):
    # The footer's only number is the page's (pieces of tall math, such as the rails of a
    # stretched bracket, may reach into the margin, but they are not digits).
    wrong = [(i + 1, p.footer) for i, p in enumerate(pages)
             if [w for w in p.footer.split() if w.isdigit()] != [str(i + 1)]]
    assert not wrong, f"pages whose footer is not their number (page, footer): {wrong[:10]}"


def test_no_page_is_blank(pages):
    blank = [i + 1 for i, p in enumerate(pages) if not p.body and not p.has_images]
    assert not blank, f"pages with nothing but a page number: {blank}"


def test_outline_has_a_bookmark_per_part_and_per_chapter_with_its_sections(outline):
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    parts = re.findall(r"- caption: (.+)", toc)
    top = [title for depth, title, _ in outline if depth == 0]
    assert [p for p in top if p in parts] == parts, f"part bookmarks: {top}"
    chapters = [(i, title) for i, (depth, title, _) in enumerate(outline) if depth == 1]
    for stem, title in chapter_titles().items():
        found = [i for i, t in chapters if re.fullmatch(rf"\d+\. {re.escape(_words(title))}", t)]
        assert len(found) == 1, f"{stem}: {len(found)} bookmarks for {title!r}"
        sections = []
        for depth, t, _ in outline[found[0] + 1:]:
            if depth < 2:
                break
            sections.append(t)
        assert len(sections) >= 3 and re.fullmatch(r"\d+\.1\. What the notes say", sections[0]), (
            f"{stem}: section bookmarks {sections[:3]}")


def _chapter_bookmarks(outline) -> list[tuple[str, int]]:
    found = [(title, index) for depth, title, index in outline
             if depth == 1 and re.match(r"\d+\. ", title)]
    assert len(found) == len(chapter_titles()), f"chapter bookmarks: {found}"
    return found


def test_each_chapter_bookmark_opens_its_first_page_under_its_running_header(outline, pages):
    for title, index in _chapter_bookmarks(outline):
        page, name = pages[index], normalise(title)
        assert name in normalise(page.body), f"{title!r}: not on page {index + 1}"
        assert name in normalise(page.header), f"{title!r}: header {page.header!r}"
        # The running header follows the chapter onto its next page.
        assert name in normalise(pages[index + 1].header), pages[index + 1].header


def test_contents_list_gives_each_part_and_chapter_the_page_of_its_bookmark(outline, pages):
    # A line of the contents: its title (or the first line of a long one) and a number on the
    # same baseline, in reading order.
    lines = [(normalise("".join(words[:-1])), int(words[-1]))
             for page in pages[:12] for _, words in sorted(page.lines.items(), reverse=True)
             if len(words) >= 2 and words[-1].isdigit()]
    assert lines, "the contents list has no page numbers"
    position, entries = 0, [(t, i) for d, t, i in outline if d <= 1 and t != "Contents"]
    assert len(entries) > len(_chapter_bookmarks(outline))
    for title, index in entries:
        name = normalise(title)
        while position < len(lines) and not name.startswith(lines[position][0]):
            position += 1
        assert position < len(lines), f"{title!r} is not in the contents list"
        assert lines[position][1] == index + 1, (
            f"{title!r}: the contents say page {lines[position][1]}, the bookmark {index + 1}")
