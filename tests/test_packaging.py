"""requirements.txt pins exactly the packages pyproject.toml declares, within its ranges, and
the environment holds those versions; the package's modules import across the boundaries the
style guide draws (shared modules import no chapter module; ``import dlnotes`` stays light)."""

import ast
import functools
import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import dlnotes

ROOT = Path(__file__).resolve().parents[1]


def direct_pins() -> dict[str, str]:
    """The '# --- used directly ---' block of requirements.txt, name → exact version."""
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    block = text.split("# --- used directly ---")[1].split("# ---")[0]
    pins = {}
    for line in block.splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.strip().split("==")
            pins[canonicalize_name(name)] = version
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return [Requirement(s) for s in specs]


def test_every_declared_package_is_pinned_within_its_range():
    pins = direct_pins()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is declared in pyproject.toml but not pinned"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])


def test_every_direct_pin_is_declared():
    names = {canonicalize_name(r.name) for r in declared()}
    assert set(direct_pins()) == names


def test_the_environment_holds_the_pinned_versions_and_torch_is_the_cpu_wheel():
    for name, pin in direct_pins().items():
        installed = Version(md.version(name))
        assert installed.public == pin, f"{name}: pinned {pin}, installed {installed}"
    assert Version(md.version("torch")).local == "cpu"


def test_the_version_has_one_source():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dlnotes.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", dlnotes.__version__)


# ------------------------------------------------------------------------ import boundaries

PACKAGE = Path(dlnotes.__file__).parent
USED_IN = re.compile(r"[Uu]sed in\s+chapters?\s+\d")


@functools.cache
def module_docstrings() -> dict[str, str]:
    return {p.stem: ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or ""
            for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def chapter_modules() -> set[str]:
    """The modules whose docstring says which chapter uses them (the API page's rule)."""
    return {name for name, doc in module_docstrings().items() if USED_IN.search(doc)}


def dlnotes_imports(stem: str) -> set[str]:
    """The ``dlnotes`` modules that module ``stem`` imports anywhere (also inside functions)."""
    tree = ast.parse((PACKAGE / f"{stem}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlnotes."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "dlnotes":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("dlnotes.")}
    return found


def test_every_chapter_module_names_its_chapter_once():
    for name in chapter_modules():
        assert len(USED_IN.findall(module_docstrings()[name])) == 1, name


def test_shared_modules_import_no_chapter_module_even_indirectly():
    chapters = chapter_modules()
    shared = set(module_docstrings()) - chapters
    assert {"validation", "plotting", "reproducibility", "data"} <= shared
    for stem in shared:
        seen, todo = set(), [stem]
        while todo:  # the modules stem loads, transitively
            for imported in dlnotes_imports(todo.pop()) - seen:
                seen.add(imported)
                todo.append(imported)
        assert not seen & chapters, f"{stem} imports chapter module(s) {seen & chapters}"


def test_import_dlnotes_loads_no_chapter_module_and_not_matplotlib():
    script = ("import sys, dlnotes\n"
              "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('dlnotes', 'matplotlib'))))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True).stdout.split()
    assert "dlnotes" in loaded and "dlnotes.reproducibility" in loaded
    assert not any(m.split(".")[0] == "matplotlib" for m in loaded), loaded
    assert not {m.removeprefix("dlnotes.") for m in loaded} & chapter_modules(), loaded
