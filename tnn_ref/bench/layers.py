"""TNN block against Transformer blocks of the same width, forward and forward+backward, time and memory.

Used by `python -m tnn_ref.bench layers`. The TNN block: width d, GTU expand 3, GLU hidden d, RPE 64 x 6,
causal (or bidirectional, `causal=False`: the encoder's block). The Transformer blocks: width d, 4 heads,
feed-forward 4d, attention of the same causality either through torch's SDPA (fused: never holds the n x n
scores) or materialised (softmax(QK^T)V written out, what the paper's Figure 1 compared against; its n^2
memory limits it to n <= `MATERIALISED_LIMIT`).
"""

from __future__ import annotations

import torch

from tnn_ref.baselines import TransformerBlock, TransformerConfig
from tnn_ref.bench.allocator import return_freed_memory
from tnn_ref.bench.harness import ratio_spread, time_interleaved
from tnn_ref.bench.peak_memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss, run_in_fresh_process
from tnn_ref.model import TnnConfig

LAYER_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768]
MEMORY_SIZES = [*LAYER_SIZES, 65536]  # memory goes one size further: one step per contestant, not repeats
MATERIALISED_LIMIT = 8192  # (4 heads, n, n) float32 scores, their softmax and gradients: ~3 GiB at 8K
KINDS = ("tnn", "transformer", "materialised")


def layer_blocks(dim: int = 256, causal: bool = True) -> dict:
    """{"tnn", "transformer" (SDPA), "materialised"}: blocks of one causality, each initialised under a fixed seed."""
    torch.manual_seed(0)
    tnn = TnnConfig(dim=dim, expand=3, glu_dim=dim, rpe_dim=64, rpe_layers=6)
    blocks = {"tnn": tnn.block(tnn.tno(causal=causal))}
    for kind, attention in (("transformer", "sdpa"), ("materialised", "materialised")):
        torch.manual_seed(0)
        blocks[kind] = TransformerBlock(TransformerConfig(dim=dim, heads=4, position="none", attention=attention),
                                        causal=causal)
    return blocks


def layer_pair(dim: int = 256):
    """(TNN block, SDPA Transformer block), both causal, freshly initialised under a fixed seed."""
    blocks = layer_blocks(dim)
    return blocks["tnn"], blocks["transformer"]


def _passes(block, x: torch.Tensor) -> tuple:
    """(forward without grad, forward+backward) of one block on x, as zero-argument calls."""
    def forward():
        with torch.no_grad():
            return block(x)

    def forward_backward():
        block(x).sum().backward()

    return forward, forward_backward


def layer_pass(kind: str, n: int, dim: int = 256, batch: int = 1, device="cpu", causal: bool = True):
    """A zero-argument forward+backward pass of one block ("tnn", "transformer" or "materialised") on (batch, n, dim).

    Module-level so that `tnn_ref.bench.peak_memory.run_in_fresh_process` can build it in a child process.
    """
    block = layer_blocks(dim, causal)[kind].to(device)
    x = torch.randn(batch, n, dim, device=device, requires_grad=True)

    def run():
        block.zero_grad(set_to_none=True)  # as an optimiser step leaves it: every step allocates its gradients
        x.grad = None
        block(x).sum().backward()

    return run


def layer_peak_bytes(kind: str, n: int, dim: int = 256, batch: int = 1, device="cpu", causal: bool = True) -> int:
    """Extra bytes one training step (forward+backward) of the block needs at its peak, beyond what exists before it.

    One step runs first, unmeasured: the first call also pays one-time costs (FFT plans and their
    workspaces, thread pools, the allocator's own growth) that no later step pays again. The second step
    is measured. CPU: glibc is told to return freed memory at once (`return_freed_memory`), so the RSS
    follows the live tensors, then peak RSS minus RSS just before the step (call it in a fresh process:
    `bench_layer_memory` does); CUDA: torch.cuda.max_memory_allocated minus the allocation before it.
    """
    torch.set_num_threads(1)  # memory does not depend on the thread count; one keeps the child light
    cuda = torch.device(device).type == "cuda"
    if not cuda:
        return_freed_memory()
    run = layer_pass(kind, n, dim, batch, device, causal)
    run()  # the unmeasured first step
    if cuda:
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


def bench_layer_memory(sizes, dim: int = 256, batch: int = 1, device="cpu",
                       materialised_limit: int = MATERIALISED_LIMIT, causal: bool = True) -> list[dict]:
    """Peak extra memory of one forward+backward per block and n; on CPU each in a fresh process.
    The materialised-attention block is measured up to n = materialised_limit."""
    measure = layer_peak_bytes if torch.device(device).type == "cuda" else (
        lambda *args: run_in_fresh_process(layer_peak_bytes, *args))
    rows = []
    for n in sizes:
        kinds = KINDS if n <= materialised_limit else KINDS[:2]
        rows.append({"n": n, "causal": causal, **{f"{kind}_bytes": measure(kind, n, dim, batch, device, causal)
                                                  for kind in kinds}})
    return rows


def bench_layers(sizes, dim: int = 256, batch: int = 1, device="cpu",
                 materialised_limit: int = MATERIALISED_LIMIT, repeats: int = 9, causal: bool = True) -> list[dict]:
    """Median and IQR of forward and forward+backward per block and n, the contestants timed in rounds (one
    call of each per round: `time_interleaved`); speed-ups of the TNN block over the SDPA block (and over the
    materialised one, up to materialised_limit) as ratios of medians, and the round-by-round ratio's median
    and quartiles (`ratio_spread`) beside them."""
    device = torch.device(device)
    blocks = {kind: block.to(device) for kind, block in layer_blocks(dim, causal).items()}
    rows = []
    for n in sizes:
        x = torch.randn(batch, n, dim, device=device, requires_grad=True)
        row = {"n": n, "dim": dim, "batch": batch, "causal": causal}
        kinds = KINDS if n <= materialised_limit else KINDS[:2]
        passes = {kind: _passes(blocks[kind], x) for kind in kinds}
        for index, part in enumerate(("forward", "forward_backward")):
            timings, rounds = time_interleaved({kind: passes[kind][index] for kind in kinds}, device, warmup=2,
                                               repeats=repeats)
            for kind in kinds:
                row[f"{kind}_{part}"] = vars(timings[kind])
            for suffix, kind in (("", "transformer"), ("_materialised", "materialised")):
                if kind in kinds:
                    row[f"speedup_{part}{suffix}"] = timings[kind].median / timings["tnn"].median
                    row[f"paired_speedup_{part}{suffix}"] = ratio_spread(rounds, kind, "tnn")
        rows.append(row)
    return rows


def format_layers(rows: list[dict]) -> str:
    """Forward+backward medians (ms, with IQR) and speed-ups; '-' where a contestant was not run."""
    lines = [f"{'n':>6} {'tnn f+b ms':>16} {'sdpa f+b ms':>16} {'sdpa/tnn':>9} {'paired (q1-q3)':>17} "
             f"{'materialised f+b ms':>20} {'mat/tnn':>8} {'fwd sdpa/tnn':>13}"]

    def cell(row, kind, width):
        timing = row.get(f"{kind}_forward_backward")
        text = "-" if timing is None else f"{timing['median'] * 1e3:.1f} ±{timing.get('iqr', 0.0) * 1e3:.1f}"
        return f"{text:>{width}}"

    for row in rows:
        materialised = row.get("speedup_forward_backward_materialised")
        paired = row.get("paired_speedup_forward_backward")
        spread = "-" if paired is None else f"{paired['median']:.2f} ({paired['q1']:.2f}-{paired['q3']:.2f})"
        lines.append(f"{row['n']:>6} {cell(row, 'tnn', 16)} {cell(row, 'transformer', 16)}"
                     f" {row['speedup_forward_backward']:>8.2f}x {spread:>17} {cell(row, 'materialised', 20)}"
                     f" {'-' if materialised is None else f'{materialised:.2f}x':>8} {row['speedup_forward']:>12.2f}x")
    return "\n".join(lines)
