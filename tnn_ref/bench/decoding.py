"""Per-token decoding latency against position, for the three decoders of `tnn_ref.decoding.generate`.

fft: one forward pass over the t+1 tokens so far (what `generate(mode="fft")` does per token);
cache / ssm: one `LmDecoder.step` at position t, after stepping through the t tokens before it.
Also the bytes each decoder keeps between tokens at that position.
"""

from __future__ import annotations

import statistics
import time

import torch

from tnn_ref.bench.harness import time_call
from tnn_ref.decoding import CacheTno, LmDecoder, SsmTno


def state_bytes(decoder: LmDecoder, t: int) -> int:
    """What the decoder keeps between tokens at position t: used cache rows, or the SSM states."""
    total = 0
    for state in decoder.tno_states:
        if isinstance(state, CacheTno):
            total += t * state.inputs.shape[-1] * state.inputs.element_size() * state.inputs.shape[0]
        elif isinstance(state, SsmTno):
            total += state.state.numel() * state.state.element_size()
    return total


@torch.no_grad()
def decode_latency(model, positions, modes=("fft", "cache", "ssm"), horizon: int | None = None,
                   window: int = 5, seed: int = 0) -> list[dict]:
    """Seconds per generated token at each position (median over `window` consecutive tokens or repeats)."""
    model.eval()
    positions = sorted(positions)
    last = positions[-1] + window
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.config.vocab_size, (1, last + 1), generator=gen)
    rows = {p: {"position": p} for p in positions}
    for mode in modes:
        if mode == "fft":
            for p in positions:
                timing = time_call(lambda: model(tokens[:, : p + 1]), warmup=1, repeats=3)
                rows[p]["fft_s"] = timing.median
                rows[p]["fft_bytes"] = 0  # keeps only the tokens; recomputes everything
            continue
        decoder = LmDecoder(model, 1, last + 1, mode, horizon if mode == "ssm" else None)
        times: dict[int, list[float]] = {p: [] for p in positions}
        targets = {t: p for p in positions for t in range(p, p + window)}
        for t in range(last):
            tick = time.perf_counter()
            decoder.step(tokens[:, t])
            elapsed = time.perf_counter() - tick
            if t in targets:
                times[targets[t]].append(elapsed)
        for p in positions:
            rows[p][f"{mode}_s"] = statistics.median(times[p])
            rows[p][f"{mode}_bytes"] = state_bytes(decoder, p)
    return [rows[p] for p in positions]


def format_latency(rows: list[dict]) -> str:
    modes = [m for m in ("fft", "cache", "ssm") if f"{m}_s" in rows[0]]
    header = f"{'position':>8} " + " ".join(f"{m + ' ms':>9}" for m in modes)
    if "fft" in modes and "ssm" in modes:
        header += f" {'fft/ssm':>8}"
    lines = [header]
    for row in rows:
        line = f"{row['position']:>8} " + " ".join(f"{row[m + '_s'] * 1e3:>9.2f}" for m in modes)
        if "fft" in modes and "ssm" in modes:
            line += f" {row['fft_s'] / row['ssm_s']:>7.1f}x"
        lines.append(line)
    return "\n".join(lines)
