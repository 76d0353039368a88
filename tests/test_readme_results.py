"""The README's results section is generated from the notebooks' results files, and is up to date with them."""

import json
from pathlib import Path

import pytest

from tnn_ref.experiments.readme import (
    BENCH_END,
    BENCH_START,
    END,
    START,
    bench_section,
    main,
    render,
    render_bench,
    updated,
)

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


def _bench():
    timing = lambda ms: {"median": ms / 1e3, "iqr": 0.0}  # noqa: E731
    layers = [{"n": n, "tnn_forward_backward": timing(n / 100), "transformer_forward_backward": timing(n * n / 2e5),
               "speedup_forward_backward": n / 2e3, "paired_speedup_forward_backward": {"median": 1.0, "q1": 0.9, "q3": 1.1}}
              for n in (1024, 2048, 4096)]
    layers[0].update(materialised_forward_backward=timing(50.0), speedup_forward_backward_materialised=12.345)
    memory = [{"n": n, "tnn_bytes": n * 2**10, "transformer_bytes": n * 2**11} for n in (1024, 2048, 4096, 8192)]
    env = {"cpu_count": 2, "threads": 2, "torch": "2.13.0+cpu", "date": "2026-12-02T10:00:00+00:00"}
    return {"environment": env, "layers": layers, "layer_memory": memory}


def test_bench_section_gives_ratios_memory_and_slopes_per_n():
    text = "\n".join(bench_section(_bench()))
    assert text.startswith("Notebook 09's full run (2 cores, 2 torch threads")  # a run without a recorded CPU model
    bench = _bench()
    bench["environment"]["cpu"] = "AMD EPYC"
    assert bench_section(bench)[0].startswith("Notebook 09's full run (AMD EPYC, 2 cores, 2 torch threads")
    assert "| n | 1K | 2K | 4K | 8K |" in text
    assert "| speed-up of TNN over the SDPA block | 0.51× | 1.02× | 2.05× | – |" in text
    assert "| the same, round by round: median (q1–q3) | 1.00 (0.90–1.10) | 1.00 (0.90–1.10) |" in text
    assert "| speed-up of TNN over the materialised block | 12.3× | – | – | – |" in text
    assert "| memory, TNN block (MiB) | 1.0 | 2.0 | 4.0 | 8.0 |" in text
    assert "| TNN / SDPA memory | 0.50× | 0.50× | 0.50× | 0.50× |" in text
    # time n/100 ms is slope 1, n^2 slope 2; both memories are linear
    assert "TNN 1.00 / 1.00, SDPA 2.00 / 1.00." in text


def test_render_bench_names_a_missing_file_and_fills_its_own_markers(tmp_path):
    assert "09_bench_cpu.json` is missing" in render_bench(tmp_path)
    (tmp_path / "09_bench_cpu.json").write_text(json.dumps(_bench()))
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{START}\n{END}\nb\n{BENCH_START}\nold\n{BENCH_END}\nc\n")
    assert main(["--readme", str(readme), "--figures", str(tmp_path)]) == 0
    text = readme.read_text()
    assert "old" not in text and "| TNN / SDPA memory |" in text and text.endswith(f"{BENCH_END}\nc\n")
    assert main(["--check", "--readme", str(readme), "--figures", str(tmp_path)]) == 0
