"""The verification rules hold in every chapter, and each check fails on a planted violation.

The rules and their checks live in ``scripts/notebook_rules.py``; see its docstring.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import notebook_rules as rules  # noqa: E402

NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def notebook(*cells):
    """A notebook from ("md" | "code", source[, printed output]) tuples."""
    built = []
    for kind, source, *printed in cells:
        if kind == "md":
            built.append({"cell_type": "markdown", "source": source})
        else:
            outputs = [{"output_type": "stream", "name": "stdout", "text": printed[0]}
                       ] if printed else []
            built.append({"cell_type": "code", "source": source, "outputs": outputs})
    return {"cells": built}


CLAIM = ("(claim-07-x)=\n:::{admonition} Claim: x — **holds**\n:class: tip\n"
         "Source: note `003`.\n\nEVIDENCE\n:::\n")


def claim_with(evidence: str) -> str:
    return CLAIM.replace("EVIDENCE", evidence)


# --- the rules hold in every chapter ---------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_numbers_in_claim_checks_are_printed_or_cited(path):
    assert rules.untraceable_numbers(rules.load(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_evidence_is_executed_in_the_notebook(path):
    assert rules.unexecuted_evidence(rules.load(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_functions_are_short(path):
    assert rules.long_functions(rules.load(path)) == []


def test_no_function_is_defined_in_two_notebooks():
    assert rules.functions_defined_twice({p.name: rules.load(p) for p in NOTEBOOKS}) == {}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_training_verdicts_print_several_seeds(path):
    assert rules.training_without_seeds(rules.load(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_sympy_asserts_derive(path):
    assert rules.hollow_sympy_asserts(rules.load(path)) == []


# --- each check fails on a planted violation ------------------------------------------------

def test_planted_untraceable_number_is_found():
    nb = notebook(("code", "print(round(3.14159, 2))", "3.14\n"),
                  ("md", claim_with("We measured 3.14 and 2.72, a ratio of 1,155.")))
    assert rules.untraceable_numbers(nb) == ["2.72", "1155"]


def test_numbers_in_cited_sentences_labels_and_small_integers_are_exempt():
    nb = notebook(("code", "x = 1"), ("md", claim_with(
        "The paper reports 81.5 % {cite:p}`kipf2017semi`. See {ref}`ex-07-x-2024` and "
        "note 004; 3 seeds of 12 epochs.")))
    assert rules.untraceable_numbers(nb) == []


def test_planted_unexecuted_evidence_is_found():
    nb = notebook(("md", "Measured while writing this chapter: 0.5."))
    assert rules.unexecuted_evidence(nb) == ["Measured while writing", ]


def test_planted_long_function_is_found():
    body = "\n".join(f"    x{i} = {i}" for i in range(8))
    nb = notebook(("code", f"def helper():\n{body}\n    return 0\n"))
    assert rules.long_functions(nb) == ["helper (10 lines)"]
    short = notebook(("code", "def helper():\n    return 0\n"))
    assert rules.long_functions(short) == []


def test_planted_duplicate_function_is_found():
    nb = notebook(("code", "def f():\n    return 0\n"))
    assert rules.functions_defined_twice({"a": nb, "b": nb}) == {"f": ["a", "b"]}


def test_planted_training_claim_without_seeds_is_found():
    claim = claim_with("After 20 epochs of SGD the accuracy is higher.")
    nb = notebook(("code", "print(0.9)", "0.9\n"), ("md", claim))
    assert rules.training_without_seeds(nb) == ["(claim-07-x)="]
    with_seeds = notebook(("code", "print(0.9)", "seed 0: 0.9\n"), ("md", claim))
    assert rules.training_without_seeds(with_seeds) == []


def test_planted_hollow_sympy_asserts_are_found():
    nb = notebook(("code", "x = sp.Symbol('x')\nlhs = 2 * x\nassert sp.simplify(lhs - 2 * x) == 0\n"
                   "assert sp.simplify(lhs - lhs) == 0\n"))
    found = rules.hollow_sympy_asserts(nb)
    assert len(found) == 3 and "itself" in found[2]


def test_a_sympy_assert_on_a_derived_expression_passes():
    nb = notebook(("code", "x = sp.Symbol('x')\nf = x**3\ngrad = sp.diff(f, x)\n"
                   "assert sp.simplify(grad - 3 * x**2) == 0\n"))
    assert rules.hollow_sympy_asserts(nb) == []
