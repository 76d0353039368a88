"""TNN block against a Transformer block of the same width, forward and forward+backward.

Used by `python -m tnn_ref.bench layers`. The TNN block: width d, GTU expand 3, GLU hidden d, RPE 64 x 6,
causal. The Transformer block: width d, causal SDPA with 4 heads, feed-forward 4d.
"""

from __future__ import annotations

import torch

from tnn_ref.baselines import TransformerBlock, TransformerConfig
from tnn_ref.bench.harness import Timing, time_call
from tnn_ref.bench.peak_memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss, run_in_fresh_process
from tnn_ref.model import TnnConfig

LAYER_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768]


def layer_pair(dim: int = 256):
    """(TNN block, Transformer block), both causal, freshly initialised under a fixed seed."""
    torch.manual_seed(0)
    tnn = TnnConfig(dim=dim, expand=3, glu_dim=dim, rpe_dim=64, rpe_layers=6)
    tnn_block = tnn.block(tnn.tno(causal=True))
    transformer_block = TransformerBlock(TransformerConfig(dim=dim, heads=4, position="none"), causal=True)
    return tnn_block, transformer_block


def _timings(block, x: torch.Tensor, device) -> tuple[Timing, Timing]:
    def forward():
        with torch.no_grad():
            return block(x)

    def forward_backward():
        block(x).sum().backward()

    return time_call(forward, device, warmup=2, repeats=5), time_call(forward_backward, device, warmup=2, repeats=5)


def layer_pass(kind: str, n: int, dim: int = 256, batch: int = 1, device="cpu"):
    """A zero-argument forward+backward pass of one block ("tnn" or "transformer") on (batch, n, dim).

    Module-level so that `tnn_ref.bench.peak_memory.run_in_fresh_process` can build it in a child process.
    """
    tnn_block, transformer_block = layer_pair(dim)
    block = (tnn_block if kind == "tnn" else transformer_block).to(device)
    x = torch.randn(batch, n, dim, device=device, requires_grad=True)

    def run():
        block(x).sum().backward()

    return run


def layer_peak_bytes(kind: str, n: int, dim: int = 256, batch: int = 1, device="cpu") -> int:
    """Extra bytes one forward+backward of the block needs at its peak, beyond what exists before it.

    CPU: peak RSS minus RSS just before the pass (call it in a fresh process: `bench_layer_memory` does);
    CUDA: torch.cuda.max_memory_allocated minus the allocation before the pass.
    """
    torch.set_num_threads(1)  # memory does not depend on the thread count; one keeps the child light
    run = layer_pass(kind, n, dim, batch, device)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    reset_peak_rss()
    before = current_rss_bytes()
    run()
    return max(peak_rss_bytes() - before, 0)


def bench_layer_memory(sizes, dim: int = 256, batch: int = 1, device="cpu") -> list[dict]:
    """Peak extra memory of one forward+backward per block and n; on CPU each in a fresh process."""
    measure = layer_peak_bytes if torch.device(device).type == "cuda" else (
        lambda *args: run_in_fresh_process(layer_peak_bytes, *args))
    return [{"n": n, "tnn_bytes": measure("tnn", n, dim, batch, device),
             "transformer_bytes": measure("transformer", n, dim, batch, device)} for n in sizes]


def bench_layers(sizes, dim: int = 256, batch: int = 1, device="cpu") -> list[dict]:
    device = torch.device(device)
    tnn_block, transformer_block = (m.to(device) for m in layer_pair(dim))
    rows = []
    for n in sizes:
        x = torch.randn(batch, n, dim, device=device, requires_grad=True)
        row = {"n": n, "dim": dim, "batch": batch}
        tnn_f, tnn_fb = _timings(tnn_block, x, device)
        att_f, att_fb = _timings(transformer_block, x, device)
        row.update(tnn_forward=vars(tnn_f), tnn_forward_backward=vars(tnn_fb),
                   transformer_forward=vars(att_f), transformer_forward_backward=vars(att_fb),
                   speedup_forward=att_f.median / tnn_f.median,
                   speedup_forward_backward=att_fb.median / tnn_fb.median)
        rows.append(row)
    return rows


def format_layers(rows: list[dict]) -> str:
    lines = [f"{'n':>6} {'tnn fwd ms':>11} {'attn fwd ms':>12} {'attn/tnn':>9} {'tnn f+b ms':>11} {'attn f+b ms':>12} {'attn/tnn':>9}"]
    for row in rows:
        lines.append(
            f"{row['n']:>6} {row['tnn_forward']['median'] * 1e3:>11.1f} {row['transformer_forward']['median'] * 1e3:>12.1f}"
            f" {row['speedup_forward']:>8.2f}x {row['tnn_forward_backward']['median'] * 1e3:>11.1f}"
            f" {row['transformer_forward_backward']['median'] * 1e3:>12.1f} {row['speedup_forward_backward']:>8.2f}x"
        )
    return "\n".join(lines)
