"""The benchmark harness: it measures, fills every column, and writes JSON. No timing is asserted."""

import json
import statistics

import pytest

from tnn_ref.bench.__main__ import main
from tnn_ref.bench.harness import Timing, ratio_spread, time_call, time_interleaved
from tnn_ref.bench.toeplitz import add_untuned, bench_toeplitz, format_toeplitz


def test_time_call_counts_and_orders():
    calls = []
    timing = time_call(lambda: calls.append(1), warmup=2, repeats=5)
    assert isinstance(timing, Timing)
    assert len(calls) == 2 + timing.repeats and timing.repeats == 5
    assert 0 <= timing.low <= timing.median <= timing.high


def test_time_interleaved_runs_in_rounds():
    order = []
    timings, rounds = time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, warmup=1,
                                       repeats=6)
    assert order[:2] == ["a", "b"]  # the warm-up calls first, one per contestant
    assert order[2:] == ["a", "b"] * 6  # then one call of each per round, in the same order
    assert len(rounds) == 6 and set(timings) == {"a", "b"}
    for name, timing in timings.items():
        assert timing.repeats == 6 and timing.median == pytest.approx(statistics.median(r[name] for r in rounds))


def test_ratio_spread_is_paired():
    # contestant b is twice as slow as a in every round while the machine's speed drifts tenfold
    rounds = [{"a": s, "b": 2 * s} for s in (1.0, 3.0, 10.0, 2.0, 5.0)]
    spread = ratio_spread(rounds, "b", "a")
    assert spread == {"median": 2.0, "q1": 2.0, "q3": 2.0, "rounds": 5}


def test_bench_toeplitz_rows_and_skip_reason():
    rows = bench_toeplitz([16, 64], d=4, dense_limit_bytes=16 * 16 * 4 * 4)
    assert [row["n"] for row in rows] == [16, 64]
    assert rows[0]["dense"] is not None and rows[0]["dense_over_fft"] > 0
    assert rows[1]["dense"] is None and "GiB" in rows[1]["dense_skipped"]
    for row in rows:
        assert row["scipy_loop_over_fft"] == pytest.approx(row["scipy_loop"]["median"] / row["fft"]["median"])
    table = format_toeplitz(rows)
    assert "skipped" in table and table.count("\n") == 2


def test_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "toeplitz.json"
    assert main(["toeplitz", "--sizes", "8", "32", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert {"torch", "threads", "date", "device", "cpu"} <= set(results["environment"])
    assert [row["n"] for row in results["toeplitz"]] == [8, 32]
    printed = capsys.readouterr().out
    assert "scipy/fft" in printed
    if results["environment"]["reuse_freed_memory"]:  # glibc: the untuned speed is reported beside the tuned one
        assert "untuned/fft" in printed
        for row in results["toeplitz"]:
            assert row["fft_untuned"]["median"] > 0 and row["untuned_over_fft"] > 0


def test_untuned_rows_must_follow_the_same_sizes():
    rows = [{"n": 8, "fft": {"median": 1.0}}]
    with pytest.raises(ValueError, match="same sizes"):
        add_untuned(rows, [{"n": 16, "fft": {"median": 2.0}}])
    add_untuned(rows, [{"n": 8, "fft": {"median": 2.0}}])
    assert rows[0]["untuned_over_fft"] == 2.0


def test_cli_rejects_bad_sizes(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["toeplitz", "--sizes", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "python -m tnn_ref.bench: error: argument --sizes: must be a positive int, got '0'\n"


def test_bench_layers_rows():
    from tnn_ref.bench.layers import bench_layers, format_layers

    rows = bench_layers([16, 33], dim=16, materialised_limit=20)
    assert [row["n"] for row in rows] == [16, 33]
    for row in rows:
        assert row["speedup_forward_backward"] == pytest.approx(
            row["transformer_forward_backward"]["median"] / row["tnn_forward_backward"]["median"])
        assert row["tnn_forward_backward"]["iqr"] >= 0 and row["tnn_forward_backward"]["repeats"] >= 5
        paired = row["paired_speedup_forward_backward"]
        assert paired["q1"] <= paired["median"] <= paired["q3"] and paired["rounds"] == row["tnn_forward_backward"]["repeats"]
    assert rows[0]["speedup_forward_backward_materialised"] == pytest.approx(
        rows[0]["materialised_forward_backward"]["median"] / rows[0]["tnn_forward_backward"]["median"])
    assert "materialised_forward" not in rows[1]  # past the limit the n x n contestant is not run
    table = format_layers(rows)
    assert table.count("\n") == 2 and table.splitlines()[2].split()[-3] == "-"


@pytest.mark.parametrize("causal", [True, False])
def test_layer_blocks_share_one_causality(causal):
    import torch

    from tnn_ref.bench.layers import bench_layers, layer_blocks

    torch.manual_seed(0)
    x = torch.randn(1, 12, 16)
    later = x.clone()
    later[:, -1] += torch.randn(16)  # only the last position changes (not by a constant: LayerNorm removes that)
    for kind, block in layer_blocks(16, causal=causal).items():
        with torch.no_grad():
            moved = (block(x)[:, 0] - block(later)[:, 0]).abs().max().item()
        assert (moved > 1e-3) is not causal, (kind, moved)  # bidirectional blocks let the last token reach the first
        assert causal is False or moved < 1e-5, (kind, moved)  # causal ones only by the FFT's rounding
    rows = bench_layers([16], dim=16, repeats=5, causal=causal)
    assert rows[0]["causal"] is causal and rows[0]["tnn_forward_backward"]["median"] > 0


def test_bench_tno_and_layer_memory_rows():
    from tnn_ref.bench.layers import bench_layer_memory
    from tnn_ref.bench.tno import bench_tno, format_tno

    rows = bench_tno([32, 50], batch=2, dim=8)
    assert [row["fft_size"] for row in rows] == [64, 100]
    for row in rows:
        assert row["forward_over_floor"] == pytest.approx(row["forward"]["median"] / row["floor"]["median"])
    assert format_tno(rows).count("\n") == 2
    assert bench_layer_memory([32], dim=16, causal=False)[0]["causal"] is False
    memory = bench_layer_memory([64], dim=16)
    assert memory[0]["n"] == 64 and min(memory[0][f"{kind}_bytes"] for kind in ("tnn", "transformer", "materialised")) >= 0


def test_fresh_process_peak_does_not_inherit_the_parents():
    """ru_maxrss survives fork and exec; the measurement must not report this process's own size."""
    import torch

    from tnn_ref.bench.layers import bench_layer_memory

    ballast = torch.ones(400 * 2**20 // 4)  # 400 MiB held by this (parent) process
    memory = bench_layer_memory([64], dim=16)
    assert ballast.sum() > 0
    assert memory[0]["tnn_bytes"] < 100 * 2**20 and memory[0]["transformer_bytes"] < 100 * 2**20
