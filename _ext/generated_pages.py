"""Pages generated from the chapters and the package, so nothing is kept by hand twice.

* ``appendix/claims.md``, the claims ledger, is rendered from the claim-check admonitions of
  the chapters listed in ``_toc.yml`` and their printed evidence lines (the format and its
  parser live in ``book_rules``).
* ``appendix/api.md`` documents every module of ``src/dlnotes``: the shared ones first, then
  the chapter modules in the order of the chapter their docstring names ("Used in chapter N").
* The list of parts and chapters on the landing page (``intro.md``, between the markers
  :data:`PARTS_START` and :data:`PARTS_END`) is rendered from ``_toc.yml`` and the chapters'
  titles.
* ``claims.json`` in the built book publishes the ledger as data (chapter, note, claim,
  verdict, anchor, and the evidence: kind, effect, interval, n, unit, margin, result).

The pages are regenerated when the book is built (before Sphinx reads any source) and
committed, so the repository shows them too; ``tests/test_ledger.py`` fails if a committed page
differs from what the chapters and the package give.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import asdict
from pathlib import Path

from book_rules import RESULT_OF_VERDICT, VERDICT_CLASS, Claim, all_claims, toc_chapters

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "appendix" / "claims.md"
API = ROOT / "appendix" / "api.md"
INTRO = ROOT / "intro.md"
PACKAGE = ROOT / "src" / "dlnotes"
PARTS_START = "<!-- parts: generated from _toc.yml, do not edit by hand -->"
PARTS_END = "<!-- end of parts -->"

#: Shared modules, documented first in this order; every other module is a chapter module.
SHARED_MODULES = ("reproducibility", "validation", "plotting", "data", "training", "evidence",
                  "symbolic")
USED_IN = re.compile(r"[Uu]sed in\s+chapters?\s+(\d+)")
EVIDENCE_FIELDS = ("effect", "low", "high", "n", "unit", "margin", "result")

__all__ = ["RESULT_OF_VERDICT", "VERDICT_CLASS", "Claim", "all_claims", "toc_chapters",
           "render_ledger", "render_api", "render_parts", "claims_data"]


def _effect(c: Claim) -> str:
    """The evidence column: effect and interval with n and margin, or the derivation."""
    if c.kind is None:
        return "—"
    if c.evidence is None:
        return c.kind
    e = c.evidence
    return (f"{e['effect']:+.3g} [{e['low']:+.3g}, {e['high']:+.3g}], n = {e['n']} "
            f"{e['unit']}, margin {e['margin']:g}: {e['result']}")


def render_ledger(claims: list[Claim]) -> str:
    """The markdown of the claims ledger page."""
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICT_CLASS}
    lines = [
        "# Claims ledger",
        "",
        "```{note}",
        "Generated from the chapters' claim checks and their printed evidence lines when the "
        "book is built (`_ext/generated_pages.py`); do not edit by hand. The same table is "
        "published as data in `claims.json` at the root of the built book.",
        "```",
        "",
        "Every claim from the notes that a chapter checks, with its verdict, its evidence and a "
        "link to it, and a few claims from the papers the chapters cite (note column —). "
        "Verdicts: **holds**; **holds with a qualification** (true under conditions the "
        "chapter states); **does not reproduce here** (our measurement contradicts it, on the "
        "models and data we can run); **inconclusive at this scale** (the interval cannot "
        "decide). An experimental verdict rests on one evidence line: the effect, its 95 % "
        "interval, the number of independent units, and the margin (the smallest effect that "
        "would matter, stated before the measurement).",
        "",
        f"{len(claims)} claims: " + "; ".join(f"{n} {v}" for v, n in counts.items()) + ".",
        "",
        "| chapter | note | claim | verdict | evidence | check |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in claims:
        claim = (c.claim[:1].upper() + c.claim[1:]).replace("|", "\\|")
        effect = _effect(c).replace("|", "\\|")
        lines.append(f"| {c.chapter} | {c.note} | {claim} | {c.verdict} | {effect} | "
                     f"{{ref}}`claim check <{c.anchor}>` |")
    return "\n".join(lines) + "\n"


def claims_data(claims: list[Claim]) -> list[dict]:
    """The ledger as records for ``claims.json`` (anchor: the page URL with its fragment)."""
    records = []
    for c in claims:
        record = {k: v for k, v in asdict(c).items() if k not in ("evidence", "where")}
        record["anchor"] = f"chapters/{c.notebook}.html#{c.anchor}"
        evidence = c.evidence or {}
        record |= {k: evidence.get(k) for k in EVIDENCE_FIELDS}
        records.append(record)
    return records


def render_parts(root: Path = ROOT) -> str:
    """The landing page's list of parts and chapters, from ``_toc.yml``."""
    toc = (root / "_toc.yml").read_text(encoding="utf-8")
    lines = [PARTS_START, ""]
    chapters = toc_chapters(root)
    lines.append(f"The {len(chapters)} chapters come in "
                 f"{len(re.findall(r'caption: [IV]+ ', toc))} parts:")
    lines.append("")
    for part in re.split(r"^  - caption: ", toc, flags=re.M)[1:]:
        caption = part.splitlines()[0].strip()
        stems = re.findall(r"file: chapters/([\w-]+)", part)
        if not stems:
            continue
        items = "; ".join(f"{int(s[:2])} {{doc}}`chapters/{s}`" for s in stems)
        lines.append(f"- **{caption}**: {items}.")
    lines += ["", PARTS_END]
    return "\n".join(lines)


def with_parts(intro: str, root: Path = ROOT) -> str:
    """``intro`` with its generated list of parts replaced by :func:`render_parts`."""
    pattern = re.compile(re.escape(PARTS_START) + ".*?" + re.escape(PARTS_END), re.S)
    if not pattern.search(intro):
        raise ValueError(f"intro.md must hold the markers {PARTS_START!r} … {PARTS_END!r}")
    return pattern.sub(lambda _: render_parts(root), intro)


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
               {"dlnotes.reproducibility": " NOISY_WARNINGS, keep_freed_memory"}),
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
    write_if_changed(INTRO, with_parts(INTRO.read_text(encoding="utf-8")))


def _write_json(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        data = json.dumps(claims_data(all_claims()), ensure_ascii=False, indent=1)
        (Path(app.outdir) / "claims.json").write_text(data + "\n", encoding="utf-8")


def setup(app) -> dict:
    app.connect("config-inited", _generate)
    app.connect("build-finished", _write_json)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
