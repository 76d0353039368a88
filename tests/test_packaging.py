"""environment.yml (conda) and pyproject.toml (pip) must list the same dependencies."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names the torch package differently; everything else is spelled the same
CONDA_TO_PIP = {"pytorch": "torch"}


def package_name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def pyproject_project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def extra_packages(extra: str) -> set[str]:
    """The packages of one extra, with the extras it names of tnn_ref itself (tnn_ref[notebooks]) expanded."""
    names = set()
    for spec in pyproject_project()["optional-dependencies"][extra]:
        inner = re.fullmatch(r"tnn_ref\[([\w,\s-]+)\]", spec.strip())
        names |= set().union(*(extra_packages(e.strip()) for e in inner.group(1).split(","))) if inner else {package_name(spec)}
    return names


def pyproject_packages() -> set[str]:
    """What `make` installs: the core dependencies and the dev extra (which includes the notebooks extra)."""
    return {package_name(s) for s in pyproject_project()["dependencies"]} | extra_packages("dev")


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


def test_the_model_needs_only_its_numeric_stack():
    # pip install tnn_ref brings torch, numpy, scipy and tqdm; plotting, scikit-learn and Jupyter are extras
    assert {package_name(s) for s in pyproject_project()["dependencies"]} == {"torch", "numpy", "scipy", "tqdm"}
    assert {"matplotlib", "scikit-learn", "jupyterlab"} <= extra_packages("notebooks")
