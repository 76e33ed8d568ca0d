"""Execute notebooks in place, top to bottom, each in a fresh kernel, and time them.

Used by ``make execute``: committed outputs are always produced by this script, never edited.
It also writes ``appendix/execution_report.md`` (per-notebook wall time on this machine, the
total and the versions of the key packages): the notebooks it ran get their new times, the
others keep the times of their last run. With ``--repeat N`` every notebook runs N times, each
in a fresh kernel: the first run's outputs are written back, every other run must reproduce
their text exactly (the script stops otherwise), and the report gives the median time and the
range, since the wall time of one run on a shared virtual machine varies by 20 % or more.
Right before every run it also times a calibration notebook (a fresh kernel making the imports
every chapter makes), and each row of the report gives the median of those, so that a
chapter's time can be read against how fast the machine was at that moment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "appendix" / "execution_report.md"
ROW = re.compile(r"^\| \[([\w.-]+\.ipynb)\]\([^)]*\) \| ([\d.]+) \| ([\d.]+)–([\d.]+) \| "
                 r"([\d.]+) \| ([\d.]+) \|$", re.M)
#: The calibration: a kernel's start and the imports every chapter makes, timed in the same run
#: as the chapters, shows how fast the machine was at the time.
CALIBRATION = ("import matplotlib.pyplot as plt\nimport numpy as np\nimport sympy as sp\n"
               "import torch\n\nimport dlnotes\n\nrng = dlnotes.setup(seed=0)")
PACKAGES = ("torch", "numpy", "sympy", "scikit-learn", "matplotlib", "jupyter-book", "nbval",
            "sentence-transformers", "transformers", "gensim")


def coalesce_streams(nb: nbformat.NotebookNode) -> None:
    """Merge consecutive stdout (or stderr) chunks of a cell into one output.

    How a kernel splits a cell's printing into chunks depends on timing; merging them keeps
    the stored notebook identical from run to run (nbval compares the merged text anyway).
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged: list = []
        for out in cell.outputs:
            prev = merged[-1] if merged else None
            if (out.output_type == "stream" and prev is not None
                    and prev.output_type == "stream" and prev.name == out.name):
                prev.text += out.text
            else:
                merged.append(out)
        cell.outputs = merged


def text_outputs(nb: nbformat.NotebookNode) -> list[list[str]]:
    """Every code cell's text outputs (streams and text/plain), what nbval compares."""
    return [[out.get("text", "") if out.output_type == "stream"
             else out.get("data", {}).get("text/plain", "") for out in cell.outputs]
            for cell in nb.cells if cell.cell_type == "code"]


def execute(path: Path | nbformat.NotebookNode, timeout: int, write: bool = True
            ) -> tuple[float, float, nbformat.NotebookNode]:
    """Run ``path`` in a fresh ``python3`` kernel and, if ``write``, write it back.

    Returns two wall times in s from the kernel's start: to the last cell's output (what a
    reader who runs the notebook waits for) and to the kernel's exit (the interpreter's
    teardown after the last cell, which frees torch, SymPy and the rest, adds 0.5-2 s); and
    the executed notebook.
    """
    nb = path if isinstance(path, nbformat.NotebookNode) else nbformat.read(path, as_version=4)
    folder = ROOT / "chapters" if isinstance(path, nbformat.NotebookNode) else path.parent
    done: list[float] = []
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(folder)}},
        on_cell_executed=lambda **_: done.append(time.perf_counter()),
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    coalesce_streams(nb)
    if write and not isinstance(path, nbformat.NotebookNode):
        nbformat.write(nb, path)
    return (done[-1] - start if done else elapsed), elapsed, nb


#: Median to the last output, its range, median to the kernel's exit, median calibration.
Times = tuple[float, float, float, float, float]


def calibrate(timeout: int) -> float:
    """Wall time of one run of the calibration notebook (kernel start and the common imports)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CALIBRATION)])
    return execute(nb, timeout, write=False)[0]


def write_report(times: dict[str, Times], repeat: int) -> None:
    """Write the execution report page from measured times (never typed by hand)."""
    cpu = platform.processor() or platform.machine()
    runs = ("Each notebook runs in a fresh kernel (its last run)." if repeat == 1 else
            f"Each notebook ran {repeat} times, each in a fresh kernel, with the same text "
            "outputs every time; the times are the medians, and the range of the first "
            "shows how much one run on this shared virtual machine can vary.")
    lines = [
        "# Execution report",
        "",
        "```{note}",
        "Generated by `scripts/execute_notebooks.py` during the last `make execute`; "
        "do not edit by hand. It is a benchmark: it reports times, it does not fail on them.",
        "```",
        "",
        f"Run on {dt.date.today().isoformat()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU core(s) ({cpu}), one torch and one BLAS thread per notebook "
        "(chapters 6, 8, 9 and 13 train their independent side-by-side runs two at a time, and "
        "chapter 10 three gensim word2vec runs, on two threads at once, each run "
        "single-threaded). "
        f"{runs} The first time is the wall time "
        "from starting the kernel to the last cell's output, what a reader who runs the "
        "notebook top to bottom waits for (kernel start and imports included); the last "
        "adds the kernel's exit, the interpreter's teardown after the last cell.",
        "",
        "The speed of a shared virtual machine can drift by 20 % or more within an hour, so "
        "right before every run of a notebook the script also times a calibration: a fresh "
        "kernel that makes the imports every chapter makes (torch, NumPy, SymPy, Matplotlib, "
        "`dlnotes.setup`). The last column is the median of those, the speed of the machine "
        "while that notebook ran: a chapter that took longer next to a slower calibration "
        "met a slower machine, not slower code.",
        "",
        "| notebook | seconds to the last output | range over the runs | "
        "seconds to the kernel's exit | calibration, s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (ran, low, high, total, calibration) in sorted(times.items()):
        page = name.removesuffix(".ipynb")
        lines.append(f"| [{name}](../chapters/{page}.ipynb) | {ran:.1f} | {low:.1f}–{high:.1f} "
                     f"| {total:.1f} | {calibration:.1f} |")
    ran, total = (sum(t[i] for t in times.values()) for i in (0, 3))
    lines += [f"| **total** | **{ran:.1f}** | | **{total:.1f}** | |", "",
              "## Package versions", "",
              "| package | version |", "| --- | --- |"]
    for pkg in PACKAGES:
        try:
            lines.append(f"| {pkg} | {md.version(pkg)} |")
        except md.PackageNotFoundError:
            continue
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_repeatedly(path: Path, timeout: int, repeat: int) -> Times:
    """Execute ``path`` ``repeat`` times, each right after a calibration run; write back the
    first run; the median times."""
    calibrations = [calibrate(timeout)]
    ran, total, first = execute(path, timeout)
    runs = [(ran, total)]
    for _ in range(repeat - 1):
        calibrations.append(calibrate(timeout))
        again = execute(path, timeout, write=False)
        if text_outputs(again[2]) != text_outputs(first):
            raise SystemExit(f"{path}: a second run printed other text than the first")
        runs.append(again[:2])
    to_output = [r[0] for r in runs]
    return (statistics.median(to_output), min(to_output), max(to_output),
            statistics.median(r[1] for r in runs), statistics.median(calibrations))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout in s")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per notebook (the first is written back), median reported")
    parser.add_argument("--no-report", action="store_true",
                        help="do not update the execution report")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    times: dict[str, Times] = {}
    for path in args.notebooks:
        times[path.name] = run_repeatedly(path, args.timeout, args.repeat)
        ran, low, high, total, calibration = times[path.name]
        print(f"{path}: {ran:.1f} s to the last output ({low:.1f}-{high:.1f}), {total:.1f} s "
              f"to the kernel's exit; calibration {calibration:.1f} s", flush=True)
    if not args.no_report:
        # A partial run replaces the rows of the notebooks it ran and keeps the others.
        previous = {name: tuple(float(v) for v in values) for name, *values in ROW.findall(
            REPORT.read_text(encoding="utf-8"))} if REPORT.exists() else {}
        chapters = {p.name for p in (ROOT / "chapters").glob("*.ipynb")}
        write_report({name: t for name, t in (previous | times).items() if name in chapters},
                     args.repeat)
        print(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
