"""environment.yml (conda) and pyproject.toml (pip) must list the same dependencies."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names the torch package differently; everything else is spelled the same
CONDA_TO_PIP = {"pytorch": "torch"}


def package_name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {package_name(s) for s in specs}


def conda_packages() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("\ndependencies:", 1)[1].splitlines():
        match = re.match(r"^  - ([A-Za-z0-9_.\-]+)", line)  # top-level entries of `dependencies:`
        if match:
            names.add(CONDA_TO_PIP.get(package_name(match.group(1)), package_name(match.group(1))))
    return names - {"python", "pip"}


def test_same_dependencies():
    assert pyproject_packages() == conda_packages()


def test_conda_installs_the_package():
    assert "- -e ." in (ROOT / "environment.yml").read_text()
