"""requirements.txt pins exactly the packages pyproject.toml declares, within its ranges."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def test_torch_is_pinned_to_the_local_cpu_wheel():
    assert direct_pins()["torch"] == "2.13.0"


def test_the_version_has_one_source():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dlnotes.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", dlnotes.__version__)
