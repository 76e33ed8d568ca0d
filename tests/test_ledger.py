"""The claims ledger and the API page are generated from the sources and committed in sync."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))

import generated_pages as gp  # noqa: E402


def test_committed_ledger_is_the_one_the_chapters_generate():
    expected = gp.render_ledger(gp.all_claims())
    assert gp.LEDGER.read_text(encoding="utf-8") == expected, (
        "appendix/claims.md is stale: build the book (or run the generator) and commit it")


def test_committed_api_page_documents_every_module():
    expected = gp.render_api()
    assert gp.API.read_text(encoding="utf-8") == expected, (
        "appendix/api.md is stale: build the book (or run the generator) and commit it")
    for module in (ROOT / "src" / "dlnotes").glob("*.py"):
        if module.stem != "__init__":
            assert f"automodule:: dlnotes.{module.stem}\n" in expected, module.stem


def test_every_chapter_in_the_toc_has_claim_checks_with_unique_anchors():
    claims = gp.all_claims()
    for stem in gp.toc_chapters():
        assert any(c.notebook == stem for c in claims), f"{stem} has no claim check"
    anchors = [c.anchor for c in claims]
    assert len(anchors) == len(set(anchors)), "a claim label is used twice"


def test_every_claim_target_opens_a_claim_check():
    for stem in gp.toc_chapters():
        path = ROOT / "chapters" / f"{stem}.ipynb"
        text = "\n".join(gp._markdown_cells(path))
        assert len(gp.TARGET.findall(text)) == len(gp.chapter_claims(path)), stem


def test_claims_data_records_have_the_published_fields():
    records = gp.claims_data(gp.all_claims())
    assert records
    for r in records:
        assert set(r) == {"chapter", "notebook", "note", "claim", "verdict", "anchor"}
        assert r["verdict"] in gp.VERDICT_CLASS
        assert r["anchor"].startswith(f"chapters/{r['notebook']}.html#claim-{r['chapter']:02d}-")


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
    (claim,) = gp.chapter_claims(_notebook(tmp_path, GOOD))
    assert (claim.chapter, claim.note, claim.verdict, claim.anchor) == (
        7, "`003`", "holds", "claim-07-x")
    paper = GOOD.replace("note `003`", "{cite:t}`vaswani2017attention`")
    assert gp.chapter_claims(_notebook(tmp_path, paper))[0].note == "—"


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
        gp.chapter_claims(_notebook(tmp_path, GOOD.replace(old, new)))


def test_a_chapter_module_must_name_its_chapter(tmp_path):
    (tmp_path / "topic.py").write_text('"""A module with no chapter."""\n', encoding="utf-8")
    with pytest.raises(ValueError, match="Used in"):
        gp.render_api(tmp_path)
