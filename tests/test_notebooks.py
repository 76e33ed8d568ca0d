"""Notebook hygiene: what nbval does not check but a reader and CI rely on.

Every chapter notebook is executed top to bottom in one fresh run, stores no errors, no
stderr, no memory addresses or machine paths, starts with a setup cell that calls
``dlnotes.setup`` and is listed in the table of contents (``make lint`` runs ruff over the
notebooks).
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
MACHINE_PATH = re.compile(r"(/(home|root|tmp|Users|work)/|[A-Z]:\\\\)")


def code_cells(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_the_chapters_folder_and_the_table_of_contents_list_the_same_notebooks():
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    listed = re.findall(r"file: chapters/([\w-]+)", toc)
    assert sorted(listed) == [p.stem for p in NOTEBOOKS] and len(set(listed)) == len(listed)
    numbers = [int(stem[:2]) for stem in listed]
    assert numbers == list(range(1, len(listed) + 1)), (
        "a chapter's file number is the number the book displays: 1, 2, …, n in toc order")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_top_to_bottom_in_one_fresh_run(path):
    counts = [c["execution_count"] for c in code_cells(path)]
    assert counts == list(range(1, len(counts) + 1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_hold_no_errors_stderr_addresses_or_paths(path):
    for i, cell in enumerate(code_cells(path)):
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"cell {i} stores an error"
            assert out.get("name") != "stderr", f"cell {i} stores stderr: {out.get('text')}"
            text = json.dumps(out.get("data", out.get("text", "")))
            text = re.sub(r'"image/png": "[^"]*"', "", text)
            assert not ADDRESS.search(text), f"cell {i} output holds a memory address"
            assert not MACHINE_PATH.search(text), f"cell {i} output holds a machine path"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_setup_cell(path):
    first = "".join(code_cells(path)[0]["source"])
    assert "dlnotes.setup(seed=" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_sympy_checks_assert_rather_than_display(path):
    sources = "\n".join("".join(c["source"]) for c in code_cells(path))
    assert "import sympy" in sources
    assert len(re.findall(r"^\s*assert .*sp\.", sources, flags=re.M)) >= 3


VENDOR_RANDOM = re.compile(r"\bF\.dropout\(|\bnn\.Dropout\(|\.bernoulli_\(|\bdropout1d\(")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_torch_dropout_runs_only_on_a_forked_generator(path):
    # torch's dropout draws bernoulli_: MKL's stream on Intel CPUs, torch's own elsewhere. A
    # cell that calls it must fork the generator, so no later draw depends on the CPU; models
    # use dlnotes.dropout, whose torch.rand masks are the same everywhere.
    for i, cell in enumerate(code_cells(path)):
        source = "".join(cell["source"])
        if VENDOR_RANDOM.search(source):
            assert "torch.random.fork_rng(" in source, (
                f"code cell {i} calls torch's dropout outside a forked generator")
