"""Decoding latency, measured side by side: the prompt read in one pass, and the time per generated token
against position for every decoder of `tnn_ref.decoding`.

Per-token contestants at position t (each decoder first reads the t-token prompt with `prefill`):
fft: one forward pass over the t+1 tokens so far (what `generate(mode="fft")` does per token);
cache: `LmDecoder(mode="cache")`, every past input kept, O(t) per token;
cache_trimmed: the cache cut to the last `horizon` inputs, O(horizon) per token;
ssm: `LmDecoder(mode="ssm", horizon=horizon)`, the kernel as a diagonal state-space model, O(horizon / 2).
Also the bytes each decoder keeps between tokens at that position.
"""

from __future__ import annotations

import statistics
import time

import torch

from tnn_ref.bench.harness import time_call
from tnn_ref.decoding import CacheTno, LmDecoder, SsmTno, generate

MODES = ("fft", "cache", "cache_trimmed", "ssm")


def state_bytes(decoder: LmDecoder, t: int) -> int:
    """What the decoder keeps between tokens at position t: used cache rows, or the SSM states."""
    total = 0
    for state in decoder.tno_states:
        if isinstance(state, CacheTno):
            rows = state.inputs.shape[1] if state.trimmed else t
            total += rows * state.inputs.shape[-1] * state.inputs.element_size() * state.inputs.shape[0]
        elif isinstance(state, SsmTno):
            total += state.state.numel() * state.state.element_size()
    return total


def spread(times: list[float]) -> dict:
    """Median and interquartile range of repeated timings, in seconds."""
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median": statistics.median(times), "iqr": quartiles[2] - quartiles[0], "repeats": len(times)}


def _decoder(model, mode: str, max_len: int, horizon: int) -> LmDecoder:
    if mode == "cache":
        return LmDecoder(model, 1, max_len, "cache", horizon=None)
    return LmDecoder(model, 1, max_len, "cache" if mode == "cache_trimmed" else "ssm", horizon=horizon)


@torch.no_grad()
def decode_latency(model, positions, horizon: int, modes=MODES, window: int = 7, seed: int = 0) -> list[dict]:
    """Seconds per generated token at each position: median and IQR over `window` consecutive tokens
    (fft: over `window` repeats of the forward pass). horizon: the SSM's and the trimmed cache's."""
    model.eval()
    positions = sorted(positions)
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.config.vocab_size, (1, positions[-1] + window + 1), generator=gen)
    rows = []
    for p in positions:
        row: dict = {"position": p}
        for mode in modes:
            if mode == "fft":
                timing = time_call(lambda p=p: model(tokens[:, : p + 1]), warmup=1, repeats=window, budget_s=20.0)
                row["fft"] = {"median": timing.median, "iqr": timing.high - timing.low, "repeats": timing.repeats}
                row["fft_bytes"] = 0  # keeps only the tokens; recomputes everything
                continue
            decoder = _decoder(model, mode, p + window + 1, horizon)
            decoder.prefill(tokens[:, :p])
            decoder.step(tokens[:, p])  # warm-up: the first step allocates
            times = []
            for t in range(p + 1, p + window):
                tick = time.perf_counter()
                decoder.step(tokens[:, t])
                times.append(time.perf_counter() - tick)
            row[mode] = spread(times)
            row[f"{mode}_bytes"] = state_bytes(decoder, p)
        rows.append(row)
    return rows


@torch.no_grad()
def prompt_latency(model, prompt_length: int, repeats: int = 5, seed: int = 0) -> dict:
    """generate(prompt, 1 step, mode="ssm") (prefill, then one token) against one forward pass over the
    prompt, medians over `repeats`: the cost of reading a prompt before the first new token."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, model.config.vocab_size, (1, prompt_length), generator=gen)
    forward = time_call(lambda: model(prompt), warmup=1, repeats=repeats, budget_s=60.0)
    first = time_call(lambda: generate(model, prompt, 1, mode="ssm", temperature=0), warmup=1, repeats=repeats,
                      budget_s=60.0)
    return {"prompt_length": prompt_length, "forward_s": forward.median, "generate_one_s": first.median,
            "ratio": first.median / forward.median}


def format_latency(rows: list[dict]) -> str:
    modes = [m for m in MODES if m in rows[0]]
    header = f"{'position':>8} " + " ".join(f"{m + ' ms':>17}" for m in modes)
    if "cache" in modes and "ssm" in modes:
        header += f" {'cache/ssm':>9}"
    lines = [header]
    for row in rows:
        cells = [f"{row[m]['median'] * 1e3:8.3f} ±{row[m]['iqr'] * 1e3:6.3f}" for m in modes]
        line = f"{row['position']:>8} " + " ".join(f"{cell:>17}" for cell in cells)
        if "cache" in modes and "ssm" in modes:
            line += f" {row['cache']['median'] / row['ssm']['median']:>8.1f}x"
        lines.append(line)
    return "\n".join(lines)
