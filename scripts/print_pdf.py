"""Print the single-page HTML build of the book to one PDF with headless Chromium, offline.

Used by ``make pdf``: ``jupyter-book build . --builder singlehtml`` writes
``_build/singlehtml``; this script serves it on 127.0.0.1, opens it in Debian's Chromium
(driven by Playwright through ``executable_path``, no browser download) with every request
outside the local server blocked, waits until the bundled MathJax has typeset all math, and
prints the page to ``_build/pdf/book.pdf`` (A4, figures and backgrounds included).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Printing: no navigation chrome (sidebars, header, buttons); long code lines wrap instead of
# running off the page; collapsed blocks (solutions, hidden cells) stay collapsed.
PRINT_CSS = """
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .header-article,
.prev-next-area, .bd-footer-article, .bd-footer-content { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
pre { white-space: pre-wrap !important; overflow-wrap: anywhere; }
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def chromium_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        sys.exit("make pdf needs Chromium: `sudo apt-get install chromium` (Debian/Ubuntu)")
    return found


def print_pdf(site: Path, out: Path) -> None:
    """Serve ``site`` on 127.0.0.1 and print its ``index.html`` to ``out``."""
    if not (site / "index.html").exists():
        sys.exit(f"{site}/index.html not found: build the single-page HTML first")
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                        args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base)
                       else r.abort())
            page.goto(f"{base}/index.html", wait_until="load", timeout=120_000)
            page.wait_for_function("window.MathJax && MathJax.startup && "
                                   "MathJax.startup.promise", timeout=60_000)
            page.evaluate("MathJax.startup.promise")
            page.add_style_tag(content=PRINT_CSS)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.pdf(path=str(out), format="A4", print_background=True,
                     margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"})
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "singlehtml")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "pdf" / "book.pdf")
    args = parser.parse_args()
    print_pdf(args.site, args.out)
    print(f"The PDF is at {args.out}")


if __name__ == "__main__":
    main()
