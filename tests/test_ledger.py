"""The claims ledger lists every claim check of every chapter, and nothing that does not exist."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "appendix" / "claims.md"
TARGET = re.compile(r"^\((claim-[\w-]+)\)=\s*$", re.M)
LINK = re.compile(r"\{ref\}`[^`<]*<(claim-[\w-]+)>`")
VERDICTS = {"holds", "holds with a qualification", "does not reproduce here"}


def chapter_claims() -> dict[str, str]:
    found = {}
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                for label in TARGET.findall("".join(cell["source"])):
                    found[label] = path.stem
    return found


def ledger_rows() -> list[list[str]]:
    rows = []
    for line in LEDGER.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and "{ref}" in line:
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def test_every_chapter_claim_check_is_in_the_ledger_and_every_link_resolves():
    claims = chapter_claims()
    linked = LINK.findall(LEDGER.read_text(encoding="utf-8"))
    assert claims, "no claim checks found in the chapters"
    missing = sorted(set(claims) - set(linked))
    dangling = sorted(set(linked) - set(claims))
    assert not missing, f"claim checks missing from the ledger: {missing}"
    assert not dangling, f"ledger links that point nowhere: {dangling}"
    assert len(linked) == len(set(linked)), "a claim is listed twice"


def test_every_ledger_row_has_a_known_verdict_and_the_right_chapter():
    claims = chapter_claims()
    for row in ledger_rows():
        chapter, _note, _claim, verdict, evidence = row
        assert verdict in VERDICTS, row
        (label,) = LINK.findall(evidence)
        assert claims[label].startswith(f"{int(chapter):02d}_"), row


def test_each_claim_check_admonition_states_its_verdict():
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            text = "".join(cell["source"])
            for block in re.split(r"\n(?=\(claim-)", text):
                if TARGET.match(block):
                    title = block.splitlines()[1]
                    assert title.startswith(":::{admonition} Claim"), title
                    assert re.search(r"\*\*(holds|holds with a qualification|does not "
                                     r"reproduce here)\*\*", title), title
