"""The book's claim format and verification rules, in one place.

Imported by the Sphinx extension that generates the claims ledger (``generated_pages``), by
``tests/test_verification.py`` and ``tests/test_ledger.py`` (``_ext`` is on pytest's path), and
runnable by an author: ``python _ext/book_rules.py chapters/*.ipynb`` prints every violation.

**The claim format.** A claim check in a chapter is a markdown block of exactly this shape::

    (claim-NN-short-name)=
    :::{admonition} Claim: <the claim> — **<verdict>**
    :class: <tip | warning | danger | note>
    Source: note `003`.          (or: notes `004`, `000`.  or: {cite:t}`key`.)
    Evidence: experiment.        (or: derivation, {eq}`eq-NN-x`.  or: derivation and experiment.)

An experimental claim's evidence is the one line ``[claim-NN-short-name] … → <result>`` that a
cell prints with :func:`dlnotes.evidence.evidence_line`; the verdict must match its result
(:data:`RESULT_OF_VERDICT`).

**The rules** (each returns a list of violations; the tests plant one of each):

1. *Numbers are traceable*: every decimal, and every number of three or more digits, in the
   prose (not in quotes of the notes, display maths, code or link targets) appears in a stored
   output or in the code of the same notebook, unless its sentence cites a paper.
2. *Evidence is executed*: no prose says a number was measured outside the notebook.
3. *Claim-bearing logic lives in the package*: no notebook function is longer than
   :data:`MAX_FUNCTION_LINES` lines, no function name is defined in two notebooks, and no cell
   calls ``.backward()`` or an optimiser's ``.step()`` unless it says the loop is the lesson
   (a comment ``# the loop is the lesson``).
4. *Verdicts follow the evidence*: every claim says what its evidence is; an experimental
   claim has exactly one evidence line, its verdict matches the line's result, and a verdict
   over seeds uses at least :data:`MIN_SEEDS` of them; a derivation names where it is.
5. *SymPy derives*: every assert in a notebook that uses SymPy rests on a derivation (one of
   :data:`DERIVATIONS`, in the assert or in what its names were computed from), and no assert
   compares an expression with itself.
6. *Portable, clean text*: no output prints a rounding-size number (another CPU prints other
   digits: print a bound), and no markdown holds a control character (a ``\\t`` from an
   unescaped ``\\theta``).
"""

from __future__ import annotations

import ast
import json
import re
import sys
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlnotes.evidence import parse_evidence_line

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 8
MIN_SEEDS = 10

# ----------------------------------------------------------------------- the claim format
#: Verdict → the admonition class that colours it.
VERDICT_CLASS = {
    "holds": "tip",
    "holds with a qualification": "warning",
    "does not reproduce here": "danger",
    "inconclusive at this scale": "note",
}
#: Verdict → the evidence line's result it needs.
RESULT_OF_VERDICT = {
    "holds": "supports",
    "holds with a qualification": "supports",
    "does not reproduce here": "contradicts",
    "inconclusive at this scale": "inconclusive",
}
KINDS = ("experiment", "derivation", "derivation and experiment")
CLAIM_BLOCK = re.compile(
    r"^\((?P<label>claim-(?P<num>\d\d)-[a-z0-9-]+)\)=\n"
    r":::\{admonition\} Claim: (?P<claim>.+?) — \*\*(?P<verdict>[a-z ]+)\*\*\n"
    r":class: (?P<cls>\w+)\n"
    r"Source: (?P<source>.+)\n"
    r"(?:Evidence: (?P<kind>derivation and experiment|experiment|derivation)"
    r"(?P<where>[^\n]*)\n)?",
    re.M,
)
TARGET = re.compile(r"^\((claim-[\w-]+)\)=\s*$", re.M)
NOTE = re.compile(r"`(\d{3})`")
CITE = re.compile(r"\{cite:[a-z]+\}`([^`]+)`")
REFERENCE = re.compile(r"\{(?:eq|ref|numref|doc)\}`[^`]+`")


@dataclass(frozen=True)
class Claim:
    """One claim check of one chapter, with its evidence line if it has one."""

    chapter: int
    notebook: str
    note: str
    claim: str
    verdict: str
    anchor: str
    kind: str | None = None
    where: str = ""
    evidence: dict[str, Any] | None = field(default=None, compare=False)


def load(path: Path) -> dict:
    """A notebook as JSON."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append("".join(out["text"]))
        for key, value in out.get("data", {}).items():
            if key.startswith("text/"):
                parts.append("".join(value))
    return "\n".join(parts)


def outputs(nb: dict) -> str:
    """The stored text outputs of every code cell."""
    return "\n".join(_output_text(c) for c in nb["cells"] if c["cell_type"] == "code")


def markdown_cells(nb: dict) -> list[str]:
    """The source of every markdown cell."""
    return [_source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]


def toc_chapters(root: Path = ROOT) -> list[str]:
    """Chapter notebooks (stems) in the order of ``_toc.yml``."""
    toc = (root / "_toc.yml").read_text(encoding="utf-8")
    return re.findall(r"file: chapters/([\w-]+)", toc)


def chapter_claims(path: Path, nb: dict | None = None) -> list[Claim]:
    """The claim checks of one chapter notebook, in order, with their evidence lines.

    Raises
    ------
    ValueError
        If a ``(claim-…)=`` target does not open a well-formed claim check, its number is not
        the chapter's, its verdict is unknown, its class does not match the verdict, or its
        ``Source:`` line names neither a note nor a paper.
    """
    path = Path(path)
    nb = load(path) if nb is None else nb
    number = int(path.stem[:2])
    lines = parse_evidence_line(outputs(nb))
    found = []
    for text in markdown_cells(nb):
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
            notes, cites = NOTE.findall(source), CITE.findall(source)
            if not notes and not cites:
                raise ValueError(f"{path.name}: {label}: Source names no note and no paper")
            note = ", ".join(f"`{n}`" for n in notes) if notes else "—"
            found.append(Claim(number, path.stem, note, m.group("claim").strip(), verdict,
                               label, m.group("kind"), (m.group("where") or "").strip(" ,."),
                               lines.get(label)))
    return found


def all_claims(root: Path = ROOT) -> list[Claim]:
    """Every claim check of every chapter in the table of contents, in reading order."""
    claims = []
    for stem in toc_chapters(root):
        claims.extend(chapter_claims(root / "chapters" / f"{stem}.ipynb"))
    return claims


# ------------------------------------------------------------------------------- the rules
# A number: digits with optional thousands commas and an optional decimal part.
NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")
# Spans whose digits are names or the notes' own words, not our measurements.
NOT_PROSE = re.compile(
    r"```.*?```"                        # fenced code (solutions' snippets)
    r"|\$\$.*?\$\$"                     # display maths (derivations, not measurements)
    r"|`[^`]*`"                         # inline code and role targets ({ref}`…`, {cite}`…`)
    r"|^>[^\n]*$"                       # quotes of the notes
    r"|^\(claim-[\w-]+\)=[^\n]*$"       # claim targets
    r"|^\([\w-]+\)=$"                   # other targets
    r"|^:[\w-]+:[^\n]*$"                # directive options (:class:, :label:)
    r"|^(?:Source|Evidence):[^\n]*$"    # the claim's source and evidence lines
    r"|\b(?:notes?|seeds?) \d{3}\b"     # a note named by its file number
    r"|\]\([^)]*\)"                     # link targets
    r"|\\[a-zA-Z]+\{[^}]*\}",            # LaTeX commands with an argument (\mathbb{R}, \label{…})
    re.M | re.S,
)
SENTENCE = re.compile(r"(?<=[.!?;])\s+(?=[A-Z(*$\\])|\n\s*\n")
UNEXECUTED = re.compile(
    r"measured while writing|while writing this chapter|in (?:an )?earlier runs?|"
    r"(?:not|never) shown here|offline we (?:found|measured)",
    re.I,
)
#: Operations that count as deriving something with SymPy (calculus, solving, expectations,
#: matrix algebra, assumptions); ``subs`` and arithmetic on hand-typed expressions do not.
DERIVATIONS = (
    "diff", "integrate", "solve", "solveset", "linsolve", "limit", "series", "summation",
    "Sum", "Integral", "Derivative", "rsolve", "dsolve", "E", "variance", "Var", "density",
    "expectation", "P", "cdf", "jacobian", "hessian", "eigenvals", "eigenvects", "inv",
    "det", "LUsolve", "gradient", "product", "Product", "doit", "limit_seq", "nsolve",
    "maximum", "minimum", "reduce_inequalities", "ask", "Matrix", "diag", "trace",
    "charpoly", "rank", "euler_equations", "idiff", "expand_log", "logcombine",
    "gaussian_expectation",
)
DERIVATION = re.compile(
    r"\b(?:" + "|".join(DERIVATIONS) + r")\s*\("
    r"|\.is_(?:positive|nonnegative|negative|nonpositive|zero|real|finite)\b"
)
SYMPY_ASSERT = re.compile(r"\bsp\.|\bstats\.|\bsympy\b")
LOOP_CALL = re.compile(r"\.backward\(|\b(?:opt|optim|optimizer|optimiser)\w*\.step\(")
LESSON = "# the loop is the lesson"
# A rounding-size magnitude (a round power of ten such as 1e-12 is a stated bound).
ROUNDING = re.compile(
    r"(?<![<\w.])(?:[2-9](?:\.\d+)?|1\.\d*[1-9]\d*)e-(?:1[0-9]|[2-9]\d)\b")


def _normalise(number: str) -> str:
    return number.replace(",", "")


def haystack(nb: dict) -> str:
    """Code and stored text outputs of every code cell, with thousands commas removed."""
    text = "\n".join(_source(c) + "\n" + _output_text(c)
                     for c in nb["cells"] if c["cell_type"] == "code")
    return re.sub(r"(?<=\d),(?=\d{3})", "", text).replace("_", "")


def untraceable_numbers(nb: dict) -> list[str]:
    """Rule 1: numbers in the prose found neither in outputs nor in code."""
    hay = haystack(nb)
    missing = []
    for text in markdown_cells(nb):
        for sentence in SENTENCE.split(NOT_PROSE.sub(" ", text)):
            if "{cite" in sentence:
                continue
            for m in NUMBER.finditer(sentence):
                whole, frac = m.group(1), m.group(2) or ""
                if not frac and len(_normalise(whole)) < 3:
                    continue
                number = _normalise(whole) + frac
                if not re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", hay):
                    missing.append(number)
    return missing


def unexecuted_evidence(nb: dict) -> list[str]:
    """Rule 2: markdown that cites measurements the notebook does not make."""
    return [m.group(0) for text in markdown_cells(nb) for m in UNEXECUTED.finditer(text)]


def _code(cell: dict) -> str:
    # IPython magics and shell escapes are not Python.
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in _source(cell).splitlines())


def functions(nb: dict) -> list[tuple[str, int]]:
    """(name, number of lines) of every function a notebook's code cells define."""
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse(_code(cell))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((node.name, node.end_lineno - node.lineno + 1))
    return found


def long_functions(nb: dict) -> list[str]:
    """Rule 3: functions longer than :data:`MAX_FUNCTION_LINES` lines."""
    return [f"{name} ({n} lines)" for name, n in functions(nb) if n > MAX_FUNCTION_LINES]


def functions_defined_twice(notebooks: dict[str, dict]) -> dict[str, list[str]]:
    """Rule 3: function names defined in more than one notebook."""
    where = defaultdict(set)
    for name, nb in notebooks.items():
        for fn, _ in functions(nb):
            where[fn].add(name)
    return {fn: sorted(names) for fn, names in where.items() if len(names) > 1}


def handwritten_loops(nb: dict) -> list[str]:
    """Rule 3: cells that call ``.backward()`` or an optimiser's ``.step()`` outside a lesson.

    Training goes through :func:`dlnotes.training.fit`; a cell that writes the loop out
    because the loop is what it teaches says so with the comment ``# the loop is the lesson``.
    """
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code" and LESSON not in _source(cell):
            found += [f"cell {i}: {m.group(0)}" for m in LOOP_CALL.finditer(_code(cell))]
    return found


def verdict_mismatches(nb: dict, path: Path) -> list[str]:
    """Rule 4: claims whose verdict does not follow their evidence."""
    found = []
    for c in chapter_claims(path, nb):
        if c.kind is None:
            found.append(f"{c.anchor}: no 'Evidence:' line (experiment or derivation)")
            continue
        if "derivation" in c.kind and not REFERENCE.search(c.where):
            found.append(f"{c.anchor}: a derivation must name where it is "
                         "(an {eq} or {ref} after 'Evidence: derivation,')")
        if "experiment" not in c.kind:
            continue
        if c.evidence is None:
            found.append(f"{c.anchor}: no printed evidence line '[{c.anchor}] …'")
            continue
        needed = RESULT_OF_VERDICT[c.verdict]
        if c.evidence["result"] != needed:
            found.append(f"{c.anchor}: verdict '{c.verdict}' needs a '{needed}' line, the "
                         f"evidence line says '{c.evidence['result']}'")
        if c.evidence["unit"] == "seeds" and c.evidence["n"] < MIN_SEEDS:
            found.append(f"{c.anchor}: {c.evidence['n']} seeds (at least {MIN_SEEDS})")
    return found


def _derives(expr: str, assigned: dict[str, str], depth: int = 4) -> bool:
    """True if ``expr``, or an expression a name in it was assigned from, derives."""
    if DERIVATION.search(expr):
        return True
    if depth == 0:
        return False
    names = set(re.findall(r"\b[A-Za-z_]\w*\b", expr))
    return any(_derives(assigned[n], assigned, depth - 1) for n in names if n in assigned)


def _assignments(node: ast.AST, assigned: dict[str, str]) -> None:
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = ast.unparse(node.value) if node.value is not None else ""
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    old = assigned.get(name.id, "")
                    augmented = isinstance(node, ast.AugAssign)
                    assigned[name.id] = f"{old} + {value}" if augmented else value
    elif isinstance(node, ast.For):
        for name in ast.walk(node.target):
            if isinstance(name, ast.Name):
                assigned[name.id] = ast.unparse(node.iter)


def hollow_sympy_asserts(nb: dict) -> list[str]:
    """Rule 5: SymPy asserts that derive nothing, and asserts that compare x with x.

    An assert derives if it, or an expression that a name in it was assigned from earlier in
    the notebook (followed a few steps back), performs one of :data:`DERIVATIONS`.
    """
    assigned: dict[str, str] = {}
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse(_code(cell))):
            _assignments(node, assigned)
            if not isinstance(node, ast.Assert):
                continue
            text = ast.unparse(node.test)
            if not SYMPY_ASSERT.search(text) or re.search(r"\b(np|torch)\.", text):
                continue  # a numeric check, not a SymPy one
            if not _derives(text, assigned):
                found.append(f"cell {i}: `assert {text}` derives nothing")
            test = node.test
            if isinstance(test, ast.Compare) and isinstance(test.left, ast.Call):
                test = test.left.args[0] if test.left.args else test
            if isinstance(test, ast.BinOp) and isinstance(test.op, ast.Sub) and (
                    ast.unparse(test.left) == ast.unparse(test.right)):
                found.append(f"cell {i}: `assert {text}` compares an expression with itself")
    return found


def rounding_digits(nb: dict) -> list[str]:
    """Rule 6: outputs that print a rounding-size number such as ``4.4e-16``."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            found += [f"cell {i}: {m.group(0)}" for m in ROUNDING.finditer(_output_text(cell))]
    return found


def control_characters(nb: dict) -> list[str]:
    """Rule 6: markdown cells holding a control character (other than a newline)."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            bad = {ch for ch in _source(cell) if ch != "\n" and unicodedata.category(ch) == "Cc"}
            found += [f"cell {i}: {ch!r}" for ch in sorted(bad)]
    return found


def violations(paths: list[Path]) -> dict[str, list[str]]:
    """Every rule violation of the given notebooks, by notebook name."""
    notebooks = {Path(p).name: load(p) for p in paths}
    report: dict[str, list[str]] = defaultdict(list)
    for p in paths:
        name, nb = Path(p).name, notebooks[Path(p).name]
        report[name] += [f"untraceable number {n}" for n in untraceable_numbers(nb)]
        report[name] += [f"unexecuted evidence: {s!r}" for s in unexecuted_evidence(nb)]
        report[name] += [f"long function {f}" for f in long_functions(nb)]
        report[name] += [f"hand-written loop {s}" for s in handwritten_loops(nb)]
        report[name] += [f"verdict: {s}" for s in verdict_mismatches(nb, Path(p))]
        report[name] += [f"hollow SymPy: {s}" for s in hollow_sympy_asserts(nb)]
        report[name] += [f"rounding digits {s}" for s in rounding_digits(nb)]
        report[name] += [f"control character {s}" for s in control_characters(nb)]
    for fn, names in functions_defined_twice(notebooks).items():
        for name in names:
            report[name].append(f"function {fn} also defined in {', '.join(names)}")
    return {name: v for name, v in report.items() if v}


if __name__ == "__main__":
    found = violations([Path(p) for p in sys.argv[1:]])
    for name, items in sorted(found.items()):
        print(name)
        for item in items:
            print("  -", item)
    sys.exit(1 if found else 0)
