"""Where notebook figures go, and whether this run is the quick one that must not write them.

`make figures` runs the notebooks in full mode and rewrites figures/; `make test` (nbval) sets
TNN_QUICK=1, which shrinks every experiment and leaves the committed figures untouched.
"""

from __future__ import annotations

import os
from pathlib import Path


def quick_mode() -> bool:
    """True when the environment variable TNN_QUICK is set to 1/true/yes (the test command sets it)."""
    return os.environ.get("TNN_QUICK", "0").strip().lower() in {"1", "true", "yes"}


def figures_dir() -> Path:
    """TNN_FIGURES_DIR if set (the Makefile sets it), else figures/ beside the notebooks/ folder."""
    if "TNN_FIGURES_DIR" in os.environ:
        return Path(os.environ["TNN_FIGURES_DIR"])
    cwd = Path.cwd()
    return (cwd.parent if cwd.name == "notebooks" else cwd) / "figures"


def save_figure(fig, name: str) -> Path | None:
    """Save `fig` as figures/<name>.png in full mode; in quick mode write nothing and return None."""
    if quick_mode():
        return None
    folder = figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
