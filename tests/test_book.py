"""The built book as an offline reader meets it: a real browser, no network, every page.

Serves ``_build/html`` on 127.0.0.1, opens every chapter and appendix page in headless
Chromium (Debian's package, driven by Playwright through ``executable_path``) with every
request outside the local server blocked, and checks math, images, page errors, the download
button (and that no link points at a placeholder repository), and that searching each
chapter's title finds it; that the notes' Chinese quotes are drawn in a CJK face; and that the
claims ledger filters and sorts (``_static/ledger.js``) and still reads without JavaScript.
Also checks the published ``claims.json`` and, over the same local server, the book's internal
links with LinkChecker.

Needs the built book (``make browser`` builds it first). Without Chromium or without a build
the tests skip with a message, except in CI (``DLNOTES_REQUIRE_BROWSER=1``), where they fail.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from urllib.parse import quote

import book_rules
import generated_pages as gp
import pytest
from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
# DLNOTES_HTML points the tests at another build (tests/test_config.py uses a missing one).
HTML = Path(os.environ.get("DLNOTES_HTML", ROOT / "_build" / "html"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("DLNOTES_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# The HTML generated with sphinx-thebe 0.3.1 (pinned by jupyter-book 1.0.4) holds the inline
# script `const THEBE_JS_URL = ...` twice, so the second copy raises this SyntaxError once per
# page. Thebe (live code in the page) is not used by the book and is never loaded, so exactly
# this one error is allowed; any other page error fails the test.
ALLOWED_PAGE_ERROR = "Identifier 'THEBE_JS_URL' has already been declared"


def _skip_or_fail(reason: str):
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


def chapter_titles() -> dict[str, str]:
    """Each chapter's title (its first ``#`` heading), by notebook stem, in reading order."""
    titles = {}
    for stem in gp.toc_chapters():
        for cell in book_rules.markdown_cells(book_rules.load(ROOT / "chapters" /
                                                              f"{stem}.ipynb")):
            heading = next((line[2:].strip() for line in cell.splitlines()
                            if line.startswith("# ")), None)
            if heading:
                titles[stem] = heading
                break
    return titles


def pages() -> list[Path]:
    found = sorted(HTML.glob("chapters/*.html")) + sorted(HTML.glob("appendix/*.html"))
    return found + [HTML / "intro.html"]


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        _skip_or_fail("the book is not built: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass

    def end_headers(self):
        # LinkChecker waits 0.1-0.6 s between requests to a host unless the host answers with
        # a "LinkChecker" header; then its maxrequestspersecond applies (test_internal_links).
        self.send_header("LinkChecker", "local test server")
        super().end_headers()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        _skip_or_fail("Chromium not found: install it with `sudo apt-get install chromium` "
                      "(Debian/Ubuntu) to run the browser tests")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def offline_page(browser, server):
    """A page whose requests outside the local server are aborted (an offline reader)."""
    context = browser.new_context()
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith(server):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.errors = []
    page.blocked = blocked
    page.broken = []  # local assets (CSS, scripts, fonts, images) that failed to load
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("response", lambda r: r.status >= 400 and page.broken.append(f"{r.status} {r.url}"))
    page.on("requestfailed", lambda r: r.url.startswith(server) and page.broken.append(r.url))
    yield page
    context.close()


def _typeset(page) -> None:
    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise",
                           timeout=20_000)
    page.evaluate("MathJax.startup.promise")


@pytest.mark.parametrize("path", pages(), ids=lambda p: p.relative_to(HTML).as_posix())
def test_page_renders_offline_with_math_images_buttons_and_no_errors(offline_page, server, path):
    page = offline_page
    page.goto(f"{server}/{path.relative_to(HTML).as_posix()}", wait_until="load")
    if page.locator(".math").count():
        _typeset(page)
        raw = page.evaluate(
            "[...document.querySelectorAll('.math')]"
            ".filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.trim())"
        )
        assert not raw, f"math left as raw TeX: {raw[:3]}"
    broken = page.evaluate(
        "[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert not broken, f"images that did not load: {broken}"
    assert not page.broken, f"local assets that failed to load: {page.broken}"
    errors = [e for e in page.errors if ALLOWED_PAGE_ERROR not in e]
    assert not errors, f"page errors: {errors}"
    assert len(page.errors) - len(errors) <= 1
    hrefs = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")
    placeholders = [h for h in hrefs if any(p in h for p in (
        "github.com/dlnotes", "mybinder.org", "colab.research.google.com"))]
    assert not placeholders, f"links to a repository that does not exist: {placeholders}"
    if path.parent.name == "chapters":
        assert page.locator(f'a[href$="{path.stem}.ipynb"]').count() >= 1, "no .ipynb download"


def test_searching_each_chapter_title_finds_the_chapter(offline_page, server):
    # One page for all searches: the search index is fetched once, as a reader's browser would.
    page, missing = offline_page, []
    for chapter, title in chapter_titles().items():
        page.goto(f"{server}/search.html?q={quote(title)}", wait_until="load")
        page.locator("#search-results a").first.wait_for(timeout=20_000)
        if not page.locator(f'#search-results a[href*="chapters/{chapter}.html"]').count():
            missing.append(title)
    assert not missing, f"searching these titles does not find their chapter: {missing}"


def test_claims_json_is_published_and_every_anchor_exists(server):
    with urllib.request.urlopen(f"{server}/claims.json") as response:
        records = json.loads(response.read().decode("utf-8"))
    assert records == gp.claims_data(gp.all_claims())
    for r in records:
        page, anchor = r["anchor"].split("#")
        assert f'id="{anchor}"' in (HTML / page).read_text(encoding="utf-8"), r["anchor"]


# The CJK faces of the font stacks in _static/dlnotes.css.
CJK_FACES = ("Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Hiragino Sans GB",
             "Microsoft YaHei", "WenQuanYi Micro Hei")
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def _cjk_font_installed() -> bool:
    fc_list = shutil.which("fc-list")
    found = fc_list and subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True,
                                       text=True, check=False).stdout
    return bool(found and found.strip())


def test_chinese_quotes_render_in_a_cjk_face(offline_page, server):
    if not _cjk_font_installed():
        _skip_or_fail("no CJK font: install one (`sudo apt-get install fonts-noto-cjk`) to check "
                      "that the notes' Chinese renders as text, not as empty boxes")
    page, wrong = offline_page, []
    # Only the text and its fonts matter here: math and figures are not loaded (4x faster).
    page.route(re.compile(r".*(/mathjax/|\.png$)"), lambda route: route.abort())
    client = page.context.new_cdp_session(page)
    for stem in gp.toc_chapters():
        page.goto(f"{server}/chapters/{stem}.html", wait_until="load")
        page.evaluate("document.fonts.ready")
        # The first paragraph of a quote in Chinese, marked so that CDP can find it.
        stack = page.evaluate("""() => {
            const p = [...document.querySelectorAll('blockquote p')]
                .find((e) => /[\u4e00-\u9fff]/.test(e.textContent));
            if (!p) return null;
            p.setAttribute('data-cjk-probe', '');
            return [p.textContent, getComputedStyle(p).fontFamily];
        }""")
        assert stack, f"{stem}: no quote in Chinese"
        quote, family = stack
        assert all(face in family for face in CJK_FACES), f"{stem}: font stack {family}"
        client.send("DOM.enable")
        client.send("CSS.enable")
        root = client.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = client.send("DOM.querySelector", {"nodeId": root,
                                                 "selector": "[data-cjk-probe]"})["nodeId"]
        fonts = client.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        drawn = sum(f["glyphCount"] for f in fonts if f["familyName"] in CJK_FACES)
        if drawn < len(HAN.findall(quote)):
            wrong.append((stem, [(f["familyName"], f["glyphCount"]) for f in fonts]))
    assert not wrong, f"Chinese drawn in other faces than the CJK stack's: {wrong}"


def _ledger_rows(page) -> list[dict]:
    """The ledger table's rows as the reader sees them, in order."""
    return page.evaluate("""() => [...document.querySelectorAll('table.dl-ledger tbody tr')]
        .filter((tr) => !tr.hidden && tr.offsetParent !== null)
        .map((tr) => ({anchor: tr.querySelector('a[href*="#claim-"]').hash.slice(1),
                       verdict: tr.dataset.verdict, cells: tr.innerText}))""")


def _open_ledger(page, server, query: str = "") -> None:
    page.goto(f"{server}/appendix/claims.html{query}", wait_until="load")
    page.locator("form.dl-ledger-controls").wait_for(timeout=20_000)


def _anchor(record: dict) -> str:
    return record["anchor"].split("#")[1]


def test_claims_ledger_filters_by_verdict_chapter_and_note(offline_page, server):
    page, records = offline_page, gp.claims_data(gp.all_claims())
    _open_ledger(page, server)
    assert [r["anchor"] for r in _ledger_rows(page)] == [_anchor(r) for r in records]
    verdict = next(v for v in gp.VERDICT_CLASS if v != "holds"
                   and any(r["verdict"] == v for r in records))
    page.select_option("select[name=verdict]", verdict)
    shown = _ledger_rows(page)
    assert [r["anchor"] for r in shown] == [_anchor(r) for r in records if r["verdict"] == verdict]
    assert all(verdict in r["cells"] for r in shown)
    assert f"Showing {len(shown)} of {len(records)} claims" in page.inner_text(".dl-ledger-status")
    assert f"verdict={quote(verdict).replace('%20', '+')}" in page.url.replace("%20", "+")

    page.click("form.dl-ledger-controls button")  # show all
    chapter = records[-1]["chapter"]
    note = next(n for r in records if r["chapter"] == chapter
                for n in re.findall(r"\d{3}", r["note"]))
    page.select_option("select[name=chapter]", str(chapter))
    page.select_option("select[name=note]", note)
    expected = [_anchor(r) for r in records if r["chapter"] == chapter and note in r["note"]]
    assert [r["anchor"] for r in _ledger_rows(page)] == expected

    # The filtered view is a link: opened again, it shows the same rows.
    _open_ledger(page, server, f"?chapter={chapter}&note={note}")
    assert [r["anchor"] for r in _ledger_rows(page)] == expected
    page.select_option("select[name=note]", "paper")
    papers = [_anchor(r) for r in records if r["chapter"] == chapter and "`" not in r["note"]]
    assert [r["anchor"] for r in _ledger_rows(page)] == papers


def test_claims_ledger_sorts_by_effect_with_derivations_last(offline_page, server):
    # The ledger's data with effect sizes as the evidence lines print them (numbers, signed
    # strings, null for derivations) and the fourth verdict: the script must sort by value.
    records = gp.claims_data(gp.all_claims())
    effects = [None, 0.5, "+0.0123", "\u22120.25", 3, None, -1.5, "0.5"]
    for i, r in enumerate(records):
        r["effect"] = effects[i % len(effects)]
    records[1]["verdict"] = "inconclusive at this scale"

    def value(r):
        e = r["effect"]
        return None if e is None else float(str(e).replace("\u2212", "-"))

    page = offline_page
    page.route("**/claims.json", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(records)))
    _open_ledger(page, server, "?sort=effect-desc")
    with_effect = [r for r in records if value(r) is not None]
    without = [_anchor(r) for r in records if value(r) is None]
    by_value = sorted(with_effect, key=lambda r: -value(r))  # stable: ties in reading order
    assert [r["anchor"] for r in _ledger_rows(page)] == [_anchor(r) for r in by_value] + without
    page.select_option("select[name=sort]", "effect-asc")
    by_value = sorted(with_effect, key=value)
    assert [r["anchor"] for r in _ledger_rows(page)] == [_anchor(r) for r in by_value] + without
    page.select_option("select[name=verdict]", "inconclusive at this scale")
    inconclusive = [r for r in records if r["verdict"] == "inconclusive at this scale"]
    assert records[1] in inconclusive and len(inconclusive) < len(records)
    shown = sorted((r for r in inconclusive if value(r) is not None), key=value)
    shown += [r for r in inconclusive if value(r) is None]
    assert [r["anchor"] for r in _ledger_rows(page)] == [_anchor(r) for r in shown]


def test_claims_ledger_reads_without_javascript(browser, server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{server}/appendix/claims.html", wait_until="load")
        rows = page.locator("#claims-ledger table tbody tr")
        assert rows.count() == len(gp.all_claims())
        assert all(rows.nth(i).is_visible() for i in (0, rows.count() - 1))
        assert page.locator("form.dl-ledger-controls").count() == 0
    finally:
        context.close()


def test_internal_links_resolve(server, tmp_path):
    # Over HTTP, not file://: LinkChecker drops root privileges and then cannot read a build
    # inside a 0700 directory (a clone made by `mktemp -d`, or anything under /root). It
    # follows the links between pages and to their anchors; the assets under _static/ and
    # _images/ are checked by the page test above, which sees every request a page makes.
    # LinkChecker throttles itself per host; the server is our own and says so with the
    # header _QuietHandler sends, so the rate limit below applies instead.
    config = tmp_path / "linkcheckerrc"
    config.write_text("[checking]\nmaxrequestspersecond=1000\n", encoding="utf-8")
    checker = Path(sys.executable).with_name("linkchecker")
    result = subprocess.run(
        [str(checker), "-f", str(config), "--no-status", "--no-warnings", "--ignore-url=/_static/",
         "--ignore-url=/_images/", f"{server}/index.html"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
