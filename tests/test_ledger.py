"""The claims ledger and the API page are generated from the sources and committed in sync."""

import json
from pathlib import Path

import book_rules
import generated_pages as gp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_committed_ledger_is_the_one_the_chapters_generate():
    expected = gp.render_ledger(gp.all_claims())
    assert gp.LEDGER.read_text(encoding="utf-8") == expected, (
        "appendix/claims.md is stale: build the book (or run the generator) and commit it")


def test_committed_api_page_documents_every_module():
    expected = gp.render_api()
    assert gp.API.read_text(encoding="utf-8") == expected, (
        "appendix/api.md is stale: build the book (or run the generator) and commit it")


def test_the_api_page_lists_a_new_module_under_its_chapter(tmp_path):
    (tmp_path / "shiny.py").write_text('"""A topic. Used in chapter 7."""\n', encoding="utf-8")
    (tmp_path / "training.py").write_text('"""Shared."""\n', encoding="utf-8")
    page = gp.render_api(tmp_path)
    assert "### Chapter 7: `dlnotes.shiny`" in page
    assert page.index("automodule:: dlnotes.training") < page.index("automodule:: dlnotes.shiny")


def test_committed_intro_lists_the_parts_of_the_toc():
    intro = gp.INTRO.read_text(encoding="utf-8")
    assert gp.with_parts(intro) == intro, "intro.md's list of parts is stale: build the book"
    for stem in gp.toc_chapters():
        assert f"{{doc}}`chapters/{stem}`" in intro


def test_a_new_chapter_in_the_toc_appears_in_the_intro(tmp_path):
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    (tmp_path / "_toc.yml").write_text(toc.replace(
        "      - file: chapters/14_em_algorithm\n",
        "      - file: chapters/14_em_algorithm\n      - file: chapters/15_new\n"),
        encoding="utf-8")
    parts = gp.render_parts(tmp_path)
    assert "14 {doc}`chapters/14_em_algorithm`; 15 {doc}`chapters/15_new`." in parts
    assert f"The {len(gp.toc_chapters()) + 1} chapters" in parts


def test_every_chapter_in_the_toc_has_claim_checks_with_unique_anchors():
    claims = gp.all_claims()
    for stem in gp.toc_chapters():
        assert any(c.notebook == stem for c in claims), f"{stem} has no claim check"
    anchors = [c.anchor for c in claims]
    assert len(anchors) == len(set(anchors)), "a claim label is used twice"


def test_every_claim_target_opens_a_claim_check():
    for stem in gp.toc_chapters():
        path = ROOT / "chapters" / f"{stem}.ipynb"
        text = "\n".join(book_rules.markdown_cells(book_rules.load(path)))
        assert len(book_rules.TARGET.findall(text)) == len(book_rules.chapter_claims(path)), stem


def test_claims_data_records_have_the_published_fields():
    records = gp.claims_data(gp.all_claims())
    assert records
    for r in records:
        assert set(r) == {"chapter", "notebook", "note", "claim", "verdict", "anchor", "kind",
                          *gp.EVIDENCE_FIELDS}
        assert r["verdict"] in gp.VERDICT_CLASS
        assert r["anchor"].startswith(f"chapters/{r['notebook']}.html#claim-{r['chapter']:02d}-")


def test_an_evidence_line_reaches_the_ledger_and_the_data(tmp_path):
    line = ("[claim-07-x] accuracy, a − b = +0.0200, 95% CI [+0.0150, +0.0250], n = 10 seeds, "
            "margin 0.01 → supports\n")
    cells = [{"cell_type": "code", "source": "print(line)", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": line}]},
        {"cell_type": "markdown", "source": GOOD.replace("Source: note `003`.\n",
                                                         "Source: note `003`.\n"
                                                         "Evidence: experiment.\n")}]
    path = tmp_path / "07_topic.ipynb"
    path.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    (claim,) = book_rules.chapter_claims(path)
    (record,) = gp.claims_data([claim])
    assert record["kind"] == "experiment" and record["n"] == 10 and record["unit"] == "seeds"
    assert (record["effect"], record["low"], record["high"]) == (0.02, 0.015, 0.025)
    assert record["margin"] == 0.01 and record["result"] == "supports"
    assert "+0.02 [+0.015, +0.025], n = 10 seeds, margin 0.01: supports" in gp.render_ledger(
        [claim])


GOOD = (
    "(claim-07-x)=\n"
    ":::{admonition} Claim: something — **holds**\n"
    ":class: tip\n"
    "Source: note `003`.\n\nEvidence.\n:::\n"
)


def _notebook(tmp_path, text, name="07_topic.ipynb"):
    cell = {"cell_type": "markdown", "metadata": {}, "source": text.splitlines(True)}
    path = tmp_path / name
    path.write_text(json.dumps({"cells": [cell]}), encoding="utf-8")
    return path


def test_a_well_formed_claim_check_is_parsed(tmp_path):
    (claim,) = book_rules.chapter_claims(_notebook(tmp_path, GOOD))
    assert (claim.chapter, claim.note, claim.verdict, claim.anchor) == (
        7, "`003`", "holds", "claim-07-x")
    paper = GOOD.replace("note `003`", "{cite:t}`vaswani2017attention`")
    assert book_rules.chapter_claims(_notebook(tmp_path, paper))[0].note == "—"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (":class: tip", ":class: warning", "class"),
        ("Source: note `003`.\n", "", "shape"),
        ("Source: note `003`.", "Source: the notes.", "Source names no note"),
        ("**holds**", "**mostly holds**", "unknown verdict"),
        ("claim-07-x", "claim-08-x", "chapter number"),
    ],
    ids=["class-contradicts-verdict", "no-source-line", "source-names-nothing",
         "unknown-verdict", "wrong-chapter-number"],
)
def test_a_planted_malformed_claim_check_is_rejected(tmp_path, old, new, message):
    with pytest.raises(ValueError, match=message):
        book_rules.chapter_claims(_notebook(tmp_path, GOOD.replace(old, new)))


def test_a_chapter_module_must_name_its_chapter(tmp_path):
    (tmp_path / "topic.py").write_text('"""A module with no chapter."""\n', encoding="utf-8")
    with pytest.raises(ValueError, match="Used in"):
        gp.render_api(tmp_path)
