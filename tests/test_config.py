"""Static checks of the build set-up: what a new user hit once must not come back."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def test_nitpick_ignores_name_modules_not_every_name():
    # A catch-all such as [A-Za-z_][A-Za-z0-9_]* would hide every broken reference of ours.
    for kind, pattern in CONFIG["sphinx"]["config"]["nitpick_ignore_regex"]:
        for name in ("BatchNorm", "dlnotes.norms.BatchNorm", "gaussian_nll", "Layer"):
            assert not re.fullmatch(pattern, name), (kind, pattern, name)


def test_no_link_to_a_repository_that_does_not_exist_yet():
    assert "repository" not in CONFIG and "launch_buttons" not in CONFIG
    assert CONFIG["html"]["use_repository_button"] is False


def test_browser_tests_build_the_book_first_and_ci_runs_test_and_pdf():
    assert re.search(r"^browser: book\b", MAKEFILE, re.M)
    assert re.search(r"^pdf: ", MAKEFILE, re.M) and "print_pdf.py" in MAKEFILE
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test\b", ci, re.M) and re.search(r"^make pdf\b", ci, re.M)


def test_generated_pages_are_built_before_sphinx_reads_them():
    extensions = CONFIG["sphinx"]["local_extensions"]
    assert {"generated_pages", "offline_mathjax", "numpydoc_returns"} <= set(extensions)


def test_a_missing_build_fails_the_browser_tests_in_ci_instead_of_skipping(tmp_path):
    env = os.environ | {"DLNOTES_REQUIRE_BROWSER": "1", "DLNOTES_HTML": str(tmp_path / "none")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(ROOT / "tests" / "test_book.py"), "-k", "claims_json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "the book is not built" in result.stdout


def test_the_makefile_pins_the_arithmetic_to_the_avx2_code_paths():
    # The stored outputs must not depend on whether a machine has AVX-512 (see README).
    exports = dict(re.findall(r"^export (\w+) := (.+)$", MAKEFILE, re.M))
    pins = {k: exports[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA",
                                    "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")}
    probe = ("import torch, numpy\n"
             "from numpy._core._multiarray_umath import __cpu_features__ as f\n"
             "print(torch.backends.cpu.get_cpu_capability(), f.get('X86_V4', False))")
    env = {**os.environ, **pins}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         check=True)
    capability, x86_v4 = out.stdout.split()
    assert capability in {"AVX2", "DEFAULT"} and x86_v4 == "False"
