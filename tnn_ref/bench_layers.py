"""TNN block against a Transformer block of the same width, forward and forward+backward.

Used by `python -m tnn_ref.bench layers`. The TNN block: width d, GTU expand 3, GLU hidden d, RPE 64 x 6,
causal. The Transformer block: width d, causal SDPA with 4 heads, feed-forward 4d.
"""

from __future__ import annotations

import torch

from tnn_ref.baselines import TransformerBlock, TransformerConfig
from tnn_ref.bench import Timing, time_call
from tnn_ref.model import TnnConfig


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
