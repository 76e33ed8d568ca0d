"""The verification rules hold in every chapter, and each check fails on a planted violation.

The rules and their checks live in ``_ext/book_rules.py``; see its docstring.
"""

from pathlib import Path

import book_rules as rules
import pytest

ROOT = Path(__file__).resolve().parents[1]
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
         "Source: note `003`.\nEvidence: experiment.\n\nEVIDENCE\n:::\n")
LINE = ("[claim-07-x] accuracy, a − b = +0.0200, 95% CI [+0.0150, +0.0250], n = 10 seeds, "
        "margin 0.01 → supports\n")


def claim_with(evidence: str) -> str:
    return CLAIM.replace("EVIDENCE", evidence)


# --- the rules hold in every chapter ---------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_numbers_in_the_prose_are_printed_or_cited(path):
    assert rules.untraceable_numbers(rules.load(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_evidence_is_executed_in_the_notebook(path):
    assert rules.unexecuted_evidence(rules.load(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_functions_are_short(path):
    assert rules.long_functions(rules.load(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_training_loops_live_in_the_package_unless_they_are_the_lesson(path):
    assert rules.handwritten_loops(rules.load(path)) == []


def test_no_function_is_defined_in_two_notebooks():
    assert rules.functions_defined_twice({p.name: rules.load(p) for p in NOTEBOOKS}) == {}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_verdict_follows_its_evidence(path):
    assert rules.verdict_mismatches(rules.load(path), path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_sympy_asserts_derive(path):
    assert rules.hollow_sympy_asserts(rules.load(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_print_no_rounding_digits(path):
    assert rules.rounding_digits(rules.load(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_holds_no_control_characters(path):
    assert rules.control_characters(rules.load(path)) == []


# --- each check fails on a planted violation ------------------------------------------------

def test_planted_untraceable_number_is_found_in_any_prose():
    nb = notebook(("code", "print(round(3.14159, 2))", "3.14\n"),
                  ("md", "An explanation says 4.2 and 1,313."),
                  ("md", claim_with("We measured 3.14 and 2.72, a ratio of 1,155.")))
    assert rules.untraceable_numbers(nb) == ["4.2", "1313", "2.72", "1155"]


def test_numbers_in_cited_sentences_labels_quotes_maths_and_small_integers_are_exempt():
    nb = notebook(("code", "x = 1"), ("md", claim_with(
        "The paper reports 81.5 % {cite:p}`kipf2017semi`. See {ref}`ex-07-x-2024` and "
        "note 004; 3 seeds of 12 epochs.\n\n> 原文 0.15 的 token\n\n$$ y = 0.5 x $$\n")))
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


def test_planted_training_loop_is_found_unless_it_is_the_lesson():
    loop = "for x in batches:\n    loss = f(x)\n    loss.backward()\n    opt.step()\n"
    assert rules.handwritten_loops(notebook(("code", loop))) == [
        "cell 0: .backward(", "cell 0: opt.step("]
    assert rules.handwritten_loops(notebook(("code", "# the loop is the lesson\n" + loop))) == []
    assert rules.handwritten_loops(notebook(("code", "fit(model, loss, data, steps=5)"))) == []


def _check(tmp_path, markdown, printed=LINE, name="07_topic.ipynb"):
    nb = notebook(("code", "print(line)", printed), ("md", markdown))
    path = tmp_path / name
    return rules.verdict_mismatches(nb, path)


def test_a_verdict_that_matches_its_evidence_line_passes(tmp_path):
    assert _check(tmp_path, claim_with("Margin 0.01.")) == []


@pytest.mark.parametrize(
    ("markdown", "printed", "message"),
    [
        (claim_with("x").replace("Evidence: experiment.\n", ""), LINE, "no 'Evidence:' line"),
        (claim_with("x"), "nothing printed\n", "no printed evidence line"),
        (claim_with("x"), LINE.replace("supports", "inconclusive"), "needs a 'supports'"),
        (claim_with("x").replace("**holds**", "**does not reproduce here**").replace(
            ":class: tip", ":class: danger"), LINE, "needs a 'contradicts'"),
        (claim_with("x"), LINE.replace("n = 10 seeds", "n = 3 seeds"), "3 seeds"),
        (claim_with("x").replace("Evidence: experiment.", "Evidence: derivation."), LINE,
         "must name where"),
    ],
    ids=["no-evidence-line", "nothing-printed", "verdict-vs-inconclusive",
         "verdict-vs-supports", "three-seeds", "derivation-without-reference"],
)
def test_planted_verdict_mismatch_is_found(tmp_path, markdown, printed, message):
    found = _check(tmp_path, markdown, printed)
    assert len(found) == 1 and message in found[0], found


def test_a_derivation_that_names_its_place_needs_no_evidence_line(tmp_path):
    claim = claim_with("x").replace("Evidence: experiment.",
                                    "Evidence: derivation, {eq}`eq-07-scaling`.")
    assert _check(tmp_path, claim, "nothing\n") == []


def test_an_inconclusive_verdict_has_its_own_class_and_needs_an_inconclusive_line(tmp_path):
    claim = claim_with("x").replace("**holds**", "**inconclusive at this scale**").replace(
        ":class: tip", ":class: note")
    assert _check(tmp_path, claim, LINE.replace("supports", "inconclusive")) == []


def test_planted_hollow_sympy_asserts_are_found():
    nb = notebook(("code", "x = sp.Symbol('x')\nlhs = 2 * x\nassert sp.simplify(lhs - 2 * x) == 0\n"
                   "assert sp.simplify(lhs - lhs) == 0\n"))
    found = rules.hollow_sympy_asserts(nb)
    assert len(found) == 3 and "itself" in found[2]


def test_a_sympy_assert_on_a_derived_expression_passes():
    nb = notebook(("code", "x = sp.Symbol('x')\nf = x**3\ngrad = sp.diff(f, x)\n"
                   "assert sp.simplify(grad - 3 * x**2) == 0\n"))
    assert rules.hollow_sympy_asserts(nb) == []


def test_planted_rounding_digits_are_found_but_stated_bounds_pass():
    nb = notebook(("code", "print(err)", "max |difference| from torch: 4.4e-16\n"),
                  ("code", "print(ok)", "max |difference| < 1e-12: True; lr 2e-3\n"))
    assert rules.rounding_digits(nb) == ["cell 0: 4.4e-16"]


def test_planted_control_character_is_found():
    nb = notebook(("md", "The cost $J(\theta)$ is a tab."), ("md", "$J(\\theta)$ is fine."))
    assert rules.control_characters(nb) == ["cell 0: '\\t'"]
