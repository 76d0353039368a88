"""The README's results section is generated from the notebooks' results files, and is up to date with them."""

import json
from pathlib import Path

import pytest

from tnn_ref.experiments.readme import END, START, main, render, updated

ROOT = Path(__file__).resolve().parents[1]


def _lm_results(metric, per_length):
    runs = [{"model": model, "seed": seed, "steps": 100, "lr": lr,
             "metrics": {metric: base + 0.1 * seed, per_length: {"64": base + 0.1 * seed, "1024": base}}}
            for model, base, lr in (("TNN", 2.0, 1e-3), ("Transformer", 2.5, 2e-3)) for seed in range(3)]
    return {"setup": {"context": 64, "batch": 12, "lengths": [64, 1024]}, "references": {"bigram_val_bpc": 3.57},
            "runs": runs, "sweeps": []}


def test_render_gives_mean_std_steps_lr_and_seeds(tmp_path):
    (tmp_path / "06_results.json").write_text(json.dumps(_lm_results("val_bpc", "test_bpc_by_length")))
    text = render(tmp_path)
    assert "| TNN | 2.100 ± 0.100 | 2.100 ± 0.100 | 2.000 ± 0.000 | 0.001 | 100 | 3 |" in text
    assert "| Transformer | 2.600 ± 0.100 |" in text and "bigram_val_bpc 3.570" in text


def test_updated_replaces_only_the_marked_section():
    readme = f"intro\n{START}\nold\n{END}\nafter\n"
    assert updated(readme, "new") == f"intro\n{START}\nnew\n{END}\nafter\n"
    with pytest.raises(ValueError, match="marker lines"):
        updated("no markers", "new")


def test_the_committed_readme_matches_the_committed_results():
    assert main(["--check", "--readme", str(ROOT / "README.md"), "--figures", str(ROOT / "figures")]) == 0


def test_a_missing_readme_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--readme", str(tmp_path / "nope.md")])
    assert stop.value.code == 2 and "argument --readme: no file" in capsys.readouterr().err
