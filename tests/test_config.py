"""Static checks of the build set-up: what a new user hit once must not come back."""

import functools
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
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


#: The kernel each variable of the Makefile's PORTABLE_ENV must change on an x86-64 machine.
KERNEL_OF = {
    "ATEN_CPU_CAPABILITY": "torch_exp32",
    "MKL_CBWR": "torch_mm32",
    "ONEDNN_MAX_CPU_ISA": "torch_conv",
    "OPENBLAS_CORETYPE": "numpy_mm",
    "NPY_DISABLE_CPU_FEATURES": "numpy_exp32",
}
PROBE = """
import hashlib, json
import numpy as np, torch
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
a, b = torch.randn(257, 129, generator=g), torch.randn(129, 65, generator=g)
img, w = torch.randn(2, 3, 17, 17, generator=g), torch.randn(4, 3, 3, 3, generator=g)
rng = np.random.default_rng(0)
A, B = rng.normal(size=(257, 129)), rng.normal(size=(129, 65))
x = rng.normal(size=100003).astype(np.float32)
digest = lambda arr: hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest()
print(json.dumps({"torch_exp32": digest(torch.exp(a).numpy()),
                  "torch_mm32": digest((a @ b).numpy()),
                  "torch_conv": digest(torch.nn.functional.conv2d(img, w).numpy()),
                  "numpy_mm": digest(A @ B), "numpy_exp32": digest(np.exp(x))}))
"""


def portable_env() -> dict[str, str]:
    """The variables of the Makefile's PORTABLE_ENV (used by `make nbval-portable`)."""
    block = re.search(r"^PORTABLE_ENV := ((?:.*\\\n)*.*)$", MAKEFILE, re.M).group(1)
    return dict(re.findall(r'(\w+)=("[^"]*"|\S+)', block.replace("\\\n", " ")))


@functools.cache
def _native() -> dict[str, str]:
    return _probe({})


def _probe(env: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in KERNEL_OF}
    out = subprocess.run([sys.executable, "-c", PROBE], env=clean | env, capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout)


def test_the_makefile_pins_no_arithmetic():
    # Stored outputs must reproduce on any CPU without pins (README, "portable outputs").
    exports = dict(re.findall(r"^export (\w+) := (.+)$", MAKEFILE, re.M))
    assert not set(exports) & set(KERNEL_OF), exports
    assert set(portable_env()) == set(KERNEL_OF)


@pytest.mark.skipif(platform.machine() not in {"x86_64", "AMD64"},
                    reason="the portable arithmetic names x86-64 code paths")
@pytest.mark.parametrize("variable", sorted(KERNEL_OF))
def test_each_portable_variable_changes_a_kernel_on_this_machine(variable):
    # If a variable changed nothing, `make nbval-portable` would prove less than it claims.
    value = portable_env()[variable].strip('"')
    kernel = KERNEL_OF[variable]
    assert _probe({variable: value})[kernel] != _native()[kernel], (variable, kernel)
