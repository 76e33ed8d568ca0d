"""Pages generated from the chapters and the package, so nothing is kept by hand twice.

* ``appendix/claims.md``, the claims ledger, is rendered from the claim-check admonitions of
  the chapters listed in ``_toc.yml`` (target, title with verdict, class, ``Source:`` line).
* ``appendix/api.md`` documents every module of ``src/dlnotes``: the shared ones first, then
  the chapter modules in the order of the chapter their docstring names ("Used in chapter N").
* ``claims.json`` in the built book publishes the ledger as data (chapter, note, claim,
  verdict, anchor).

Both pages are regenerated when the book is built (before Sphinx reads any source) and
committed, so the repository shows them too; ``tests/test_ledger.py`` fails if a committed page
differs from what the chapters and the package give.

A claim check in a chapter is a markdown block of exactly this shape::

    (claim-NN-short-name)=
    :::{admonition} Claim: <the claim> — **<verdict>**
    :class: <tip | warning | danger>
    Source: note `003`.          (or: notes `004`, `000`.  or: {cite:t}`key`.)
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "appendix" / "claims.md"
API = ROOT / "appendix" / "api.md"
PACKAGE = ROOT / "src" / "dlnotes"

#: Verdict → the admonition class that colours it.
VERDICT_CLASS = {
    "holds": "tip",
    "holds with a qualification": "warning",
    "does not reproduce here": "danger",
}
CLAIM_BLOCK = re.compile(
    r"^\((?P<label>claim-(?P<num>\d\d)-[a-z0-9-]+)\)=\n"
    r":::\{admonition\} Claim: (?P<claim>.+?) — \*\*(?P<verdict>[a-z ]+)\*\*\n"
    r":class: (?P<cls>\w+)\n"
    r"Source: (?P<source>.+)\n",
    re.M,
)
TARGET = re.compile(r"^\((claim-[\w-]+)\)=\s*$", re.M)
NOTE = re.compile(r"`(\d{3})`")
CITE = re.compile(r"\{cite:[a-z]+\}`([^`]+)`")
#: Shared modules, documented first in this order; every other module is a chapter module.
SHARED_MODULES = ("reproducibility", "validation", "plotting", "data", "training", "symbolic")
USED_IN = re.compile(r"[Uu]sed in\s+chapters?\s+(\d+)")


@dataclass(frozen=True)
class Claim:
    """One claim check of one chapter."""

    chapter: int
    notebook: str
    note: str
    claim: str
    verdict: str
    anchor: str


def toc_chapters(root: Path = ROOT) -> list[str]:
    """Chapter notebooks (stems) in the order of ``_toc.yml``."""
    toc = (root / "_toc.yml").read_text(encoding="utf-8")
    return re.findall(r"file: chapters/([\w-]+)", toc)


def _markdown_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def chapter_claims(path: Path) -> list[Claim]:
    """The claim checks of one chapter notebook, in order.

    Raises
    ------
    ValueError
        If a ``(claim-…)=`` target does not open a well-formed claim check, its number is not
        the chapter's, its verdict is unknown, its class does not match the verdict, or its
        ``Source:`` line names neither a note nor a paper.
    """
    number = int(path.stem[:2])
    found = []
    for text in _markdown_cells(path):
        blocks = {m.group("label"): m for m in CLAIM_BLOCK.finditer(text)}
        for label in TARGET.findall(text):
            m = blocks.get(label)
            if m is None:
                raise ValueError(f"{path.name}: {label} is not followed by a claim check of "
                                 "the documented shape (title with verdict, :class:, Source:)")
            if int(m.group("num")) != number:
                raise ValueError(f"{path.name}: {label} does not carry the chapter number")
            verdict = m.group("verdict")
            if verdict not in VERDICT_CLASS:
                raise ValueError(f"{path.name}: {label} has unknown verdict {verdict!r}")
            if m.group("cls") != VERDICT_CLASS[verdict]:
                raise ValueError(f"{path.name}: {label} is '{verdict}' but has class "
                                 f"{m.group('cls')!r}, expected {VERDICT_CLASS[verdict]!r}")
            source = m.group("source")
            notes = NOTE.findall(source)
            cites = CITE.findall(source)
            if not notes and not cites:
                raise ValueError(f"{path.name}: {label}: Source names no note and no paper")
            note = ", ".join(f"`{n}`" for n in notes) if notes else "—"
            found.append(Claim(number, path.stem, note, m.group("claim").strip(), verdict,
                               label))
    return found


def all_claims(root: Path = ROOT) -> list[Claim]:
    """Every claim check of every chapter in the table of contents, in reading order."""
    claims = []
    for stem in toc_chapters(root):
        claims.extend(chapter_claims(root / "chapters" / f"{stem}.ipynb"))
    return claims


def render_ledger(claims: list[Claim]) -> str:
    """The markdown of the claims ledger page."""
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICT_CLASS}
    lines = [
        "# Claims ledger",
        "",
        "```{note}",
        "Generated from the chapters' claim checks when the book is built "
        "(`_ext/generated_pages.py`); do not edit by hand. The same table is published as "
        "data in `claims.json` at the root of the built book.",
        "```",
        "",
        "Every claim from the notes that a chapter checks, with its verdict and a link to the "
        "evidence, and a few claims from the papers the chapters cite (note column —). "
        "Verdicts: **holds**; **holds with a qualification** (true under conditions the "
        "chapter states); **does not reproduce here** (our measurement contradicts it, on the "
        "models and data we can run).",
        "",
        f"{len(claims)} claims: " + "; ".join(f"{n} {v}" for v, n in counts.items()) + ".",
        "",
        "| chapter | note | claim | verdict | evidence |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in claims:
        claim = (c.claim[:1].upper() + c.claim[1:]).replace("|", "\\|")
        lines.append(f"| {c.chapter} | {c.note} | {claim} | {c.verdict} | "
                     f"{{ref}}`claim check <{c.anchor}>` |")
    return "\n".join(lines) + "\n"


def claims_data(claims: list[Claim]) -> list[dict]:
    """The ledger as records for ``claims.json`` (anchor: the page URL with its fragment)."""
    records = []
    for c in claims:
        record = asdict(c)
        record["anchor"] = f"chapters/{c.notebook}.html#{c.anchor}"
        records.append(record)
    return records


def _module_chapter(path: Path) -> int:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    m = USED_IN.search(doc)
    if m is None:
        raise ValueError(f"{path.name}: a chapter module's docstring must say 'Used in "
                         "chapter N'")
    return int(m.group(1))


def render_api(package: Path = PACKAGE) -> str:
    """The markdown of the API page: every module of the package, documented by autodoc."""
    modules = sorted(p for p in package.glob("*.py") if p.stem != "__init__")
    chapter_modules = sorted((p for p in modules if p.stem not in SHARED_MODULES),
                             key=lambda p: (_module_chapter(p), p.stem))
    shared = [m for m in SHARED_MODULES if (package / f"{m}.py").exists()]

    def block(names: list[str], extra: dict[str, str]) -> list[str]:
        out = ["```{eval-rst}"]
        for name in names:
            out += [f".. automodule:: {name}", f"   :members:{extra.get(name, '')}", ""]
        out[-1] = "```"
        return out

    lines = [
        "# The `dlnotes` package",
        "",
        "```{note}",
        "Generated from the package when the book is built (`_ext/generated_pages.py`); do "
        "not edit by hand.",
        "```",
        "",
        "The functions behind the chapters, documented from their docstrings. Each chapter's "
        "module says which chapter uses it.",
        "",
        "## Shared modules",
        "",
        *block(["dlnotes", *(f"dlnotes.{m}" for m in shared)],
               {"dlnotes.reproducibility": " NOISY_WARNINGS"}),
        "",
        "## Chapter modules",
        "",
    ]
    for p in chapter_modules:
        lines += [f"### Chapter {_module_chapter(p)}: `dlnotes.{p.stem}`", "",
                  *block([f"dlnotes.{p.stem}"], {}), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; True if written."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def _generate(app, config) -> None:
    write_if_changed(LEDGER, render_ledger(all_claims()))
    write_if_changed(API, render_api())


def _write_json(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        data = json.dumps(claims_data(all_claims()), ensure_ascii=False, indent=1)
        (Path(app.outdir) / "claims.json").write_text(data + "\n", encoding="utf-8")


def setup(app) -> dict:
    app.connect("config-inited", _generate)
    app.connect("build-finished", _write_json)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
