"""Print the single-page HTML build of the book to one PDF with headless Chromium, offline.

Used by ``make pdf``: ``jupyter-book build . --builder singlehtml`` writes
``_build/singlehtml``; this script serves it on 127.0.0.1, opens it in Debian's Chromium
(driven by Playwright through ``executable_path``, no browser download) with every request
outside the local server blocked, waits until the bundled MathJax has typeset all math, and
prints the page to ``_build/pdf/book.pdf`` (A4, figures and backgrounds included).

The printed book is laid out as a book (``PREPARE_JS``): a title page with a contents list of
parts, chapters and sections with their page numbers; a page opening each part; every chapter
on a new page, its title in the running header; page numbers in the footer (from
``_static/dlnotes.css``, which also keeps figures, tables and quotes whole). Chinese prints in
a CJK face (the font stacks in ``_static/dlnotes.css``; Debian's ``fonts-noto-cjk``), and its
text says what is printed: where Chromium maps a glyph to a CJK radical (⻓ for 长), the map is
mended (``fix_cjk_text``), so that a reader can search and copy the quotes. Nothing may be
wider than the page (``fit_to_page``): Chromium would shrink every page to fit it, so wide
displayed equations are scaled to the page's width and anything else wide stops the print.

Chromium knows the page of every heading only once it has printed, and its own outline
(``outline=True``) nests the chapters under the introduction's last section and garbles titles
that wrap. So the book is printed once; the page of each part, chapter and section is read
from the named destinations Chromium writes for the contents' links; the contents pages are
printed a second time with only their page numbers visible (the layout is unchanged: the
numbers sit in fixed-width boxes) and stamped onto the first print; and pypdf writes the
outline, one bookmark per part, chapter and section.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from pathlib import Path

from fontTools.ttLib import TTFont
from playwright.sync_api import sync_playwright
from pypdf import PdfReader, PdfWriter
from pypdf.generic import Fit

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# The CJK faces named first in _static/dlnotes.css (sans for text, mono for code), and the
# Unicode blocks of the CJK radicals (CJK Radicals Supplement, Kangxi Radicals).
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans Mono CJK SC")
RADICALS = (0x2E80, 0x2FE0)
PDF_OPTIONS = {"format": "A4",
               "margin": {"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"}}
# The width a page prints, in CSS pixels (96 per inch): A4's 210 mm less the side margins.
# Content wider than this makes Chromium shrink every page of the book to fit it.
PAGE_WIDTH_PX = (210 - 14 - 14) / 25.4 * 96
# Displayed equations wider than their box: a smaller font (MathJax sizes in em), checked.
FIT_MATH_JS = """
() => {
  const wide = [...document.querySelectorAll('mjx-container[display="true"]')]
    .filter((e) => e.scrollWidth > e.clientWidth + 1);
  for (const e of wide) {  // MathJax's own inline size (e.g. 127.3 %) is the starting point
    const size = parseFloat(getComputedStyle(e).fontSize);
    e.style.fontSize = `${(0.98 * size * e.clientWidth / e.scrollWidth).toFixed(2)}px`;
  }
  const left = wide.filter((e) => e.scrollWidth > e.clientWidth + 1);
  if (left.length) throw new Error(`${left.length} equations still wider than the page`);
  return wide.length;
}
"""
# What sticks out of the page (anything not inside a box that scrolls or clips it).
WIDEST_JS = """
(width) => {
  const clipped = (e) => {
    for (let a = e.parentElement; a; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') return true;
    }
    return false;
  };
  const out = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 1 && !clipped(e)) {
      const section = e.closest('section');
      out.push(`${e.tagName.toLowerCase()}.${e.className} in #${section ? section.id : ''}`
               + ` (${Math.round(r.right)} px)`);
    }
  }
  return out.slice(0, 5);
}
"""
# Printing: no navigation chrome (sidebars, header, buttons); the theme's flex layout flattened
# to blocks so that page breaks and named pages apply; long code lines wrap instead of running
# off the page; collapsed blocks (solutions, hidden cells) stay collapsed.
PRINT_CSS = """
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .header-article,
.prev-next-area, .bd-footer-article, .bd-footer-content, .bd-header-article,
.dl-ledger-controls, .dl-ledger-status { display: none !important; }
.bd-page-width, .bd-container, .bd-container__inner, .bd-main, .bd-content,
.bd-article-container, .bd-article { display: block !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
.bd-main .bd-content { margin-left: 0 !important; }
.bd-main .bd-content .bd-article-container .bd-article { padding-left: 0; padding-right: 0; }
pre { white-space: pre-wrap !important; overflow-wrap: anywhere; }

@page { @top-center { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC",
  "Microsoft YaHei", sans-serif; font-size: 8pt; color: #666; } }
#jb-print-docs-body h1 { margin-top: 30mm !important; }
#dl-contents { margin-top: 18mm; }
#dl-contents h2 { font-size: 1.4em; margin-bottom: 0.8em; }
#dl-contents ol { list-style: none; margin: 0; padding: 0; }
#dl-contents li { display: flex; align-items: baseline; gap: 0.3em; break-inside: avoid; }
#dl-contents a { color: inherit; text-decoration: none; flex: 0 1 auto; }
#dl-contents .dl-leader { flex: 1 1 1em; border-bottom: 1px dotted #999; min-width: 1em; }
#dl-contents .dl-toc-page { flex: 0 0 2.6em; text-align: right;
  font-variant-numeric: tabular-nums; }
#dl-contents .dl-toc-l0 { font-weight: 600; margin-top: 0.7em; }
#dl-contents .dl-toc-l1 { padding-left: 1.2em; margin-top: 0.25em; }
#dl-contents .dl-toc-l2 { padding-left: 2.8em; font-size: 0.85em; color: #333; }
.dl-mark-link { position: absolute; width: 0; height: 0; overflow: hidden; }
.dl-part { page: dl-part; break-before: page; break-after: page; padding-top: 70mm;
  text-align: center; }
.dl-part .dl-part-number { font-size: 1.3em; letter-spacing: 0.1em; color: #555; }
.dl-part h2 { font-size: 2.4em; margin-top: 0.3em; }
.dl-intro, .dl-doc { break-before: page; }
html.dl-numbers-only body * { visibility: hidden !important; }
html.dl-numbers-only #dl-contents .dl-toc-page { visibility: visible !important; }
"""
# Lays the single page out as a book and returns its outline: [{level, title, id}] in reading
# order (level 0: front matter and parts, 1: chapters and appendices, 2: their sections).
# Every outline target gets a fresh id (the single page repeats ids such as
# "what-the-notes-say" in every chapter) and a link from the contents list, so that Chromium
# writes a named destination for it.
PREPARE_JS = r"""
() => {
  const text = (el) => {
    const c = el.cloneNode(true);
    c.querySelectorAll('.headerlink').forEach((x) => x.remove());
    return c.textContent.replace(/\s+/g, ' ').trim();
  };
  const heading = (sec) => [...sec.children].find((e) => /^H[1-6]$/.test(e.tagName));
  const outline = [];
  let n = 0;
  const mark = (el, level, title) => {
    el.id = 'dl-o-' + n++;
    outline.push({level, title, id: el.id});
  };
  // Parts: the captions of the theme's print contents, with the documents listed under them.
  const partOf = {};
  const parts = [...document.querySelectorAll('#jb-print-toc p.caption')].map((cap, i) => {
    const list = cap.nextElementSibling;
    (list ? [...list.querySelectorAll('a[href^="#document-"]')] : []).forEach((a) => {
      partOf[a.getAttribute('href').slice(1)] = i;
    });
    return text(cap);
  });
  const pageRules = [];
  const front = document.getElementById('jb-print-docs-body');
  const contents = document.createElement('nav');
  contents.id = 'dl-contents';
  contents.innerHTML = '<h2>Contents</h2><ol></ol>';
  document.getElementById('jb-print-toc').replaceWith(contents);
  mark(contents.querySelector('h2'), 0, 'Contents');
  const article = document.querySelector('article.bd-article');
  const intro = article.querySelector(':scope > section');
  intro.classList.add('dl-intro');
  article.style.page = 'dl-intro';
  const header = (name, title) =>
    `@page ${name} { @top-center { content: ${JSON.stringify(title)}; } }`;
  pageRules.push(header('dl-intro', text(front.querySelector('h1'))));
  const first = [...intro.children].find((e) => e.tagName === 'P') || intro;
  mark(first, 0, 'Introduction');
  for (const sec of intro.querySelectorAll(':scope > section')) {
    mark(heading(sec), 1, text(heading(sec)));
  }
  const seenParts = new Set();
  document.querySelectorAll('span[id^="document-"]').forEach((span, i) => {
    const doc = span.nextElementSibling;
    if (!doc || doc.tagName !== 'SECTION' || !heading(doc)) return;
    // The marker (target of links to the document) moves into the document: left between
    // two chapters, its anonymous box would take a page of its own.
    doc.prepend(span);
    const part = partOf[span.id];
    if (part !== undefined && !seenParts.has(part)) {
      seenParts.add(part);
      const m = parts[part].match(/^([IVXLC]+)\s+(.*)$/);
      const div = document.createElement('div');
      div.className = 'dl-part';
      div.innerHTML = (m ? '<p class="dl-part-number">PART ' + m[1] + '</p>' : '') + '<h2></h2>';
      div.querySelector('h2').textContent = m ? m[2] : parts[part];
      doc.before(div);
      mark(div.querySelector('h2'), 0, parts[part]);
    }
    const title = text(heading(doc));
    doc.classList.add('dl-doc');
    doc.style.page = 'dl-doc-' + i;
    pageRules.push(header('dl-doc-' + i, title));
    mark(heading(doc), 1, title);
    for (const sec of doc.querySelectorAll(':scope > section')) {
      if (heading(sec)) mark(heading(sec), 2, text(heading(sec)));
    }
  });
  // Tables longer than a page break between rows instead of jumping to a new page first.
  document.querySelectorAll('table').forEach((t) => {
    if (t.rows.length > 30) t.classList.add('dl-long-table');
  });
  const style = document.createElement('style');
  style.id = 'dl-page-rules';
  style.textContent = pageRules.join('\n');
  document.head.appendChild(style);
  // The contents list: one line per outline entry, a fixed-width box for its page number.
  const list = contents.querySelector('ol');
  for (const e of outline) {
    if (e.title === 'Contents') {
      const a = document.createElement('a');
      a.href = '#' + e.id;
      a.className = 'dl-mark-link';
      contents.prepend(a);
      continue;
    }
    const li = document.createElement('li');
    li.className = 'dl-toc-l' + e.level;
    li.innerHTML = '<a></a><span class="dl-leader"></span><span class="dl-toc-page"></span>';
    li.firstChild.href = '#' + e.id;
    li.firstChild.textContent = e.title;
    li.lastChild.dataset.for = e.id;
    list.appendChild(li);
  }
  return outline;
}
"""
# Second print: the contents' page numbers filled in, everything else invisible, and the book
# after the contents removed (it starts on a new page, so the contents' pages are laid out as
# before; Chromium then lays out six pages, not five hundred: 1 s instead of 15 s).
NUMBERS_JS = """
(pages) => {
  document.querySelector('article.bd-article').remove();
  document.querySelectorAll('#dl-contents .dl-toc-page').forEach((s) => {
    s.textContent = pages[s.dataset.for];
  });
  document.getElementById('dl-page-rules').remove();
  const style = document.createElement('style');
  style.textContent = '@page { @top-center { content: none; } @bottom-center { content: none; } }';
  document.head.appendChild(style);
  document.documentElement.classList.add('dl-numbers-only');
}
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def chromium_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        sys.exit("make pdf needs Chromium: `sudo apt-get install chromium` (Debian/Ubuntu)")
    return found


@contextlib.contextmanager
def serve(site: Path):
    """Serve ``site`` on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def destinations(pdf: Path) -> dict[str, tuple[int, float | None, float | None]]:
    """Named destinations of a PDF: name → (page index, left, top)."""
    reader = PdfReader(pdf)
    return {name.lstrip("/"): (reader.get_destination_page_number(d), d.left, d.top)
            for name, d in reader.named_destinations.items()}


def unified_ideographs(families=CJK_FAMILIES) -> dict[int, str]:
    """CJK radical code points → the unified ideograph that the same glyph draws.

    A CJK font draws 长 (U+957F) and the radical ⻓ (U+2ED3) with one glyph; Chromium's PDF
    writer maps each glyph back to one code point, sometimes the radical, so a reader who
    searches or copies 步长 gets 步⻓. The map comes from the character maps of the fonts the
    book prints with (found by fontconfig); NFKC covers the Kangxi radicals it knows.
    """
    mapping = {cp: unicodedata.normalize("NFKC", chr(cp)) for cp in range(*RADICALS)}
    mapping = {cp: s for cp, s in mapping.items() if len(s) == 1 and s != chr(cp)}
    for family in families if shutil.which("fc-match") else ():
        found = subprocess.run(["fc-match", "-f", "%{family}\t%{file}\t%{index}", family],
                               capture_output=True, text=True, check=False).stdout.split("\t")
        if len(found) != 3 or family not in found[0].split(","):
            continue  # not installed (fontconfig offers another family instead)
        path, index = found[1], found[2]
        with TTFont(path, fontNumber=int(index or 0), lazy=True) as font:
            cmap = font.getBestCmap()
        by_glyph: dict[str, list[int]] = {}
        for cp, glyph in cmap.items():
            by_glyph.setdefault(glyph, []).append(cp)
        for cp, glyph in cmap.items():
            if RADICALS[0] <= cp < RADICALS[1]:
                unified = [c for c in by_glyph[glyph] if not RADICALS[0] <= c < RADICALS[1]
                           and unicodedata.category(chr(c)) == "Lo"]
                if unified:
                    mapping.setdefault(cp, chr(min(unified)))
    return mapping


def _unmap_radicals(cmap: str, mapping: dict[int, str]) -> str | None:
    """A ToUnicode CMap with radicals replaced by ideographs (None: nothing to replace)."""
    pairs: list[tuple[str, str]] = []
    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        pairs += re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block)
    for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dest in re.findall(
                r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            width, start = len(lo), int(dest, 16)
            pairs += [(f"{code:0{width}X}", f"{start + k:04X}")
                      for k, code in enumerate(range(int(lo, 16), int(hi, 16) + 1))]
        if "[" in block:
            return None  # the array form: not written by Chromium; left as it is

    def fixed(dest: str) -> str:
        if len(dest) == 4 and int(dest, 16) in mapping:
            return mapping[int(dest, 16)].encode("utf-16-be").hex().upper()
        return dest

    if not any(fixed(d) != d for _, d in pairs):
        return None
    head = cmap[:cmap.index("endcodespacerange") + len("endcodespacerange")]
    tail = cmap[cmap.rindex("endcmap"):]
    blocks = []
    for i in range(0, len(pairs), 100):  # at most 100 entries per block
        chunk = pairs[i:i + 100]
        blocks.append(f"{len(chunk)} beginbfchar\n"
                      + "".join(f"<{c}> <{fixed(d)}>\n" for c, d in chunk) + "endbfchar")
    return head + "\n" + "\n".join(blocks) + "\n" + tail


def fix_cjk_text(writer: PdfWriter) -> int:
    """Map the radicals in the fonts' ToUnicode CMaps to ideographs; returns fonts fixed."""
    mapping, done, fixed = unified_ideographs(), set(), 0
    for page in writer.pages:
        fonts = page.get("/Resources", {}).get("/Font") or {}
        for ref in fonts.values():
            font = ref.get_object()
            key = getattr(ref, "idnum", id(font))
            if "/ToUnicode" not in font or key in done:
                continue
            done.add(key)
            stream = font["/ToUnicode"].get_object()
            cmap = _unmap_radicals(stream.get_data().decode("latin-1"), mapping)
            if cmap is not None:
                stream.set_data(cmap.encode("latin-1"))
                fixed += 1
    return fixed


def finish(body: Path, numbers: Path, first: int, outline: list[dict], dests: dict,
           out: Path) -> None:
    """Stamp the contents' page numbers onto ``body`` and write it with its outline."""
    writer = PdfWriter(clone_from=body)
    fix_cjk_text(writer)
    overlays = PdfReader(numbers).pages
    if first + len(overlays) > len(writer.pages):
        sys.exit("the contents' page numbers do not fit the contents' pages")
    for i, overlay in enumerate(overlays):
        writer.pages[first + i].merge_page(overlay)
    parents: dict[int, object] = {}
    for entry in outline:
        index, left, top = dests[entry["id"]]
        parent = parents.get(entry["level"] - 1) if entry["level"] else None
        parents[entry["level"]] = writer.add_outline_item(
            title=entry["title"], page_number=index, parent=parent,
            fit=Fit.xyz(left=left, top=top))
    writer.page_mode = "/UseOutlines"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        writer.write(f)


def fit_to_page(page) -> int:
    """Lay the book out at the printed page's width; scale down displayed equations wider than
    the page (on paper their box cannot scroll: the right end would be cut off), and exit if
    anything else is wider than the page (Chromium would shrink every page). Returns how many
    equations were scaled."""
    viewport = page.viewport_size
    page.set_viewport_size({"width": int(PAGE_WIDTH_PX), "height": viewport["height"]})
    page.emulate_media(media="print")
    scaled = page.evaluate(FIT_MATH_JS)
    wide = page.evaluate(WIDEST_JS, int(PAGE_WIDTH_PX))
    page.emulate_media(media=None)
    page.set_viewport_size(viewport)
    if wide:
        sys.exit("wider than the printed page (Chromium would shrink every page): "
                 + "; ".join(wide))
    return scaled


def print_pdf(site: Path, out: Path) -> None:
    """Serve ``site`` on 127.0.0.1 and print its ``index.html`` to ``out`` as a book."""
    if not (site / "index.html").exists():
        sys.exit(f"{site}/index.html not found: build the single-page HTML first")
    # Chromium's PDFs declare a short cross-reference table; pypdf says so on every read.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    with serve(site) as base, sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                    args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base)
                   else r.abort())
        start = time.perf_counter()
        page.goto(f"{base}/index.html", wait_until="load", timeout=120_000)
        page.wait_for_function("window.MathJax && MathJax.startup && "
                               "MathJax.startup.promise", timeout=60_000)
        page.evaluate("MathJax.startup.promise")
        page.evaluate("document.fonts.ready")
        print(f"loaded and typeset in {time.perf_counter() - start:.0f} s", flush=True)
        page.add_style_tag(content=PRINT_CSS)
        outline = page.evaluate(PREPARE_JS)
        print(f"{fit_to_page(page)} wide equations scaled to the page's width", flush=True)
        body, numbers = Path(tmp) / "body.pdf", Path(tmp) / "numbers.pdf"
        start = time.perf_counter()
        page.pdf(path=str(body), print_background=True, **PDF_OPTIONS)
        print(f"printed in {time.perf_counter() - start:.0f} s", flush=True)
        dests = destinations(body)
        missing = [e["title"] for e in outline if e["id"] not in dests]
        if missing:
            sys.exit(f"no page found for these headings: {missing[:5]}")
        ids = [e["id"] for e in outline]
        first = dests[ids[0]][0]  # the contents start here and end before the introduction
        last = dests[ids[1]][0] - 1
        start = time.perf_counter()
        page.evaluate(NUMBERS_JS, {i: dests[i][0] + 1 for i in ids})
        page.pdf(path=str(numbers), print_background=False,
                 page_ranges=f"{first + 1}-{last + 1}", **PDF_OPTIONS)
        print(f"contents' page numbers printed in {time.perf_counter() - start:.0f} s",
              flush=True)
        browser.close()
        start = time.perf_counter()
        finish(body, numbers, first, outline, dests, out)
        print(f"outline written in {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "singlehtml")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "pdf" / "book.pdf")
    args = parser.parse_args()
    print_pdf(args.site, args.out)
    print(f"The PDF is at {args.out}")


if __name__ == "__main__":
    main()
