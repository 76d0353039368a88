"""The decoding benchmark measures every contestant at every position; no timing is asserted."""

import torch

from tnn_ref.bench.decoding import MODES, decode_latency, format_latency, prompt_latency
from tnn_ref.model import TnnConfig, TnnLM


def tiny_lm():
    torch.manual_seed(0)
    return TnnLM(TnnConfig(vocab_size=11, dim=8, layers=1, expand=2, glu_dim=8, rpe_dim=4, rpe_layers=1, decay=0.5))


def test_decode_latency_rows_and_state_sizes():
    rows = decode_latency(tiny_lm(), [4, 40], horizon=8, window=3)
    assert [row["position"] for row in rows] == [4, 40]
    for row in rows:
        for mode in MODES:
            assert row[mode]["median"] > 0 and row[mode]["iqr"] >= 0
    # the full cache grows with the position; the trimmed cache and the SSM state do not
    assert rows[1]["cache_bytes"] == 10 * rows[0]["cache_bytes"]
    assert rows[0]["cache_trimmed_bytes"] == rows[1]["cache_trimmed_bytes"] == 8 * 16 * 4  # 8 rows x 16 channels
    assert rows[0]["ssm_bytes"] == rows[1]["ssm_bytes"] == 16 * (8 // 2 + 1) * 8  # complex64 state, J = 5 poles
    assert format_latency(rows).count("\n") == 2


def test_prompt_latency_reports_both_sides():
    result = prompt_latency(tiny_lm(), 64, repeats=2)
    assert result["forward_s"] > 0 and result["generate_one_s"] > 0
    assert result["ratio"] == result["generate_one_s"] / result["forward_s"]
