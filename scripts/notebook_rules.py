"""The book's verification rules, checked mechanically on a chapter notebook.

Used by ``tests/test_verification.py`` (which also plants a violation of each rule to show the
check can fail) and runnable by an author: ``python scripts/notebook_rules.py chapters/*.ipynb``
prints every violation.

1. *Numbers in claim checks are traceable*: every decimal, and every number of three or more
   digits, in a claim-check cell appears in a stored output or in the code of the same
   notebook, unless its sentence cites a paper (``{cite…}``).
2. *Evidence is executed*: no prose says a number was measured outside the notebook.
3. *Claim-bearing logic lives in the package*: no function in a notebook is longer than
   :data:`MAX_FUNCTION_LINES` lines, and no function name is defined in two notebooks.
4. *Training verdicts use several seeds*: a claim check that rests on training stands in a
   notebook that prints per-seed values or a spread (the word "seed" or "±" in an output).
5. *SymPy derives*: every assert in a notebook that uses SymPy rests on a derivation (one of
   :data:`DERIVATIONS`, in the assert or in what its names were computed from), and no assert
   compares an expression with itself.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

MAX_FUNCTION_LINES = 8
CLAIM_TARGET = re.compile(r"^\(claim-[\w-]+\)=", re.M)
# A number: digits with optional thousands commas and an optional decimal part.
NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")
# Spans whose digits are names, not measurements: inline code, roles, targets, options.
NOT_PROSE = re.compile(
    r"`[^`]*`"                      # inline code and role targets ({ref}`…`, {cite}`…`)
    r"|^\(claim-[\w-]+\)=.*$"       # claim targets
    r"|^:[\w-]+:.*$"                # directive options (:class:, :label:)
    r"|^Source:.*$"                 # the claim's source line (note file numbers)
    r"|\b(?:notes?|seeds?) \d{3}\b"   # a note named by its file number
    r"|\]\([^)]*\)"                 # link targets
    r"|\\[a-zA-Z]+\{[^}]*\}",       # LaTeX commands with an argument (\mathbb{R}, \label{…})
    re.M,
)
SENTENCE = re.compile(r"(?<=[.!?;])\s+(?=[A-Z(*$\\])|\n\s*\n")
UNEXECUTED = re.compile(
    r"measured while writing|while writing this chapter|in (?:an )?earlier runs?|"
    r"(?:not|never) shown here|offline we (?:found|measured)",
    re.I,
)
TRAINING = re.compile(r"\b(?:epochs?|seeds?|training (?:runs?|curves?|loss|accuracy)|SGD|Adam|"
                      r"learning rates?)\b", re.I)
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


def load(path: Path) -> dict:
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


def _normalise(number: str) -> str:
    return number.replace(",", "")


def haystack(nb: dict) -> str:
    """Code and stored text outputs of every code cell, with thousands commas removed."""
    text = "\n".join(_source(c) + "\n" + _output_text(c)
                     for c in nb["cells"] if c["cell_type"] == "code")
    return re.sub(r"(?<=\d),(?=\d{3})", "", text).replace("_", "")


def untraceable_numbers(nb: dict) -> list[str]:
    """Rule 1: numbers in claim-check cells found neither in outputs nor in code."""
    hay = haystack(nb)
    missing = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown" or not CLAIM_TARGET.search(_source(cell)):
            continue
        for sentence in SENTENCE.split(_source(cell)):
            if "{cite" in sentence:
                continue
            for m in NUMBER.finditer(NOT_PROSE.sub(" ", sentence)):
                whole, frac = m.group(1), m.group(2) or ""
                if not frac and len(_normalise(whole)) < 3:
                    continue
                number = _normalise(whole) + frac
                if not re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", hay):
                    missing.append(number)
    return missing


def unexecuted_evidence(nb: dict) -> list[str]:
    """Rule 2: markdown that cites measurements the notebook does not make."""
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            found += [m.group(0) for m in UNEXECUTED.finditer(_source(cell))]
    return found


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


def training_without_seeds(nb: dict) -> list[str]:
    """Rule 4: claim checks about training in a notebook that prints no per-seed spread."""
    outputs = "\n".join(_output_text(c) for c in nb["cells"] if c["cell_type"] == "code")
    if re.search(r"\bseeds?\b|±", outputs, re.I):
        return []
    return [CLAIM_TARGET.search(_source(c)).group(0) for c in nb["cells"]
            if c["cell_type"] == "markdown" and CLAIM_TARGET.search(_source(c))
            and TRAINING.search(_source(c))]


def _derives(expr: str, assigned: dict[str, str], depth: int = 4) -> bool:
    """True if ``expr``, or an expression a name in it was assigned from, derives."""
    if DERIVATION.search(expr):
        return True
    if depth == 0:
        return False
    names = set(re.findall(r"\b[A-Za-z_]\w*\b", expr))
    return any(_derives(assigned[n], assigned, depth - 1) for n in names if n in assigned)


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
            elif isinstance(node, ast.Assert):
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


def violations(paths: list[Path]) -> dict[str, list[str]]:
    """Every rule violation of the given notebooks, by notebook name."""
    notebooks = {Path(p).name: load(p) for p in paths}
    report: dict[str, list[str]] = defaultdict(list)
    for name, nb in notebooks.items():
        report[name] += [f"untraceable number {n}" for n in untraceable_numbers(nb)]
        report[name] += [f"unexecuted evidence: {s!r}" for s in unexecuted_evidence(nb)]
        report[name] += [f"long function {f}" for f in long_functions(nb)]
        report[name] += [f"training claim without seeds: {c}" for c in training_without_seeds(nb)]
        report[name] += [f"hollow SymPy: {s}" for s in hollow_sympy_asserts(nb)]
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
