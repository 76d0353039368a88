"""Benchmarks, measured side by side in one run: timing harness, contestants, command line.

    python -m tnn_ref.bench {toeplitz,tno,layers,all} [--device cuda [--autocast bf16]] [--out FILE] [--sizes 256 1024 ...]

Timings are medians of repeated calls after a warm-up; each row also keeps the spread (min, max) so a
reader sees the noise. Goals are stated as ratios between contestants timed in the same run, never as
absolute times (these machines are noisy).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import scipy.linalg
import torch

from tnn_ref.allocator import reuse_freed_memory
from tnn_ref.toeplitz import toeplitz_fft, toeplitz_matrix

TOEPLITZ_SIZES = [256, 512, 1024, 2048, 4096, 8192, 16384]
LAYER_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768]
TNO_SIZES = [1024, 2048, 4096, 8192, 16384]


@dataclass
class Timing:
    """Seconds per call: the median over `repeats` calls, and the fastest and slowest of them."""

    median: float
    low: float
    high: float
    repeats: int


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device | str = "cpu", *, warmup: int = 1,
              repeats: int = 7, budget_s: float = 3.0) -> Timing:
    """Median time of fn() after `warmup` calls; stops early once `budget_s` is spent (at least 3 calls)."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    start_all = time.perf_counter()
    for _ in range(repeats):
        if device.type == "cuda":  # CUDA events time the GPU's work, not the host's launches
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end) / 1e3)
        else:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        if len(times) >= 3 and time.perf_counter() - start_all > budget_s:
            break
    return Timing(statistics.median(times), min(times), max(times), len(times))


def environment(device: torch.device) -> dict:
    """What the numbers were measured on."""
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.uname().machine,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# ----------------------------------------------------------------------------------------------
# Toeplitz products: dense matrix, scipy per channel, torch FFT
# ----------------------------------------------------------------------------------------------

def dense_bytes(n: int, d: int, itemsize: int = 4) -> int:
    """Memory held by d explicit n x n matrices."""
    return d * n * n * itemsize


def bench_toeplitz(sizes=TOEPLITZ_SIZES, d: int = 64, device="cpu", dense_limit_bytes: int = 2 << 30,
                   seed: int = 0) -> list[dict]:
    """Time T @ x for d channels (batch 1, float32, bidirectional) three ways at each n.

    dense: toeplitz_matrix then a batched matmul, O(d n^2) (skipped past `dense_limit_bytes`);
    scipy_loop: scipy.linalg.matmul_toeplitz once per channel (CPU, numpy);
    fft: tnn_ref.toeplitz.toeplitz_fft on all channels at once.
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for n in sizes:
        c = torch.randn(n, d, generator=gen)
        r = torch.randn(n, d, generator=gen)
        x = torch.randn(1, n, d, generator=gen)
        c_np, r_np, x_np = c.numpy(), r.numpy(), x[0].numpy()
        cd, rd, xd = c.to(device), r.to(device), x.to(device)
        row: dict = {"n": n, "d": d}

        row["fft"] = asdict(time_call(lambda: toeplitz_fft(xd, cd, rd), device))

        def scipy_loop():
            # one FFT product per channel: what a user without a batched implementation writes
            return [scipy.linalg.matmul_toeplitz((c_np[:, ch], r_np[:, ch]), x_np[:, ch]) for ch in range(d)]

        row["scipy_loop"] = asdict(time_call(scipy_loop, "cpu", warmup=1, repeats=5))

        need = dense_bytes(n, d)
        if need <= dense_limit_bytes:
            def dense():
                matrices = toeplitz_matrix(cd, rd)  # (d, n, n)
                return torch.bmm(matrices, xd[0].T.unsqueeze(-1))  # (d, n, 1)
            row["dense"] = asdict(time_call(dense, device, warmup=1, repeats=3))
        else:
            row["dense"] = None
            row["dense_skipped"] = f"needs {need / 2**30:.1f} GiB for the matrices (limit {dense_limit_bytes / 2**30:.0f} GiB)"
        row["scipy_loop_over_fft"] = row["scipy_loop"]["median"] / row["fft"]["median"]
        row["dense_over_fft"] = None if row["dense"] is None else row["dense"]["median"] / row["fft"]["median"]
        rows.append(row)
    return rows


def format_toeplitz(rows: list[dict]) -> str:
    lines = [f"{'n':>6} {'dense ms':>10} {'scipy loop ms':>14} {'torch fft ms':>13} {'scipy/fft':>10} {'dense/fft':>10}"]
    for row in rows:
        dense = "skipped" if row["dense"] is None else f"{row['dense']['median'] * 1e3:.2f}"
        dense_ratio = "-" if row["dense_over_fft"] is None else f"{row['dense_over_fft']:.1f}x"
        lines.append(
            f"{row['n']:>6} {dense:>10} {row['scipy_loop']['median'] * 1e3:>14.2f} {row['fft']['median'] * 1e3:>13.3f}"
            f" {row['scipy_loop_over_fft']:>9.1f}x {dense_ratio:>10}"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tnn_ref.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["toeplitz", "tno", "layers", "all"], help="which benchmark to run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--sizes", type=int, nargs="+", help="sequence lengths to measure (default: the full sweep)")
    parser.add_argument("--autocast", choices=["none", "bf16"], default="none",
                        help="tno and layers: run under CUDA bf16 autocast (linear layers in bf16; the TNO's FFTs "
                             "stay float32)")
    parser.add_argument("--no-reuse-freed-memory", action="store_true",
                        help="leave glibc's malloc at its defaults (see tnn_ref.allocator)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for, but torch sees no CUDA device")
    if args.sizes and min(args.sizes) < 1:
        parser.error("--sizes must be positive sequence lengths")
    if args.autocast != "none" and device.type != "cuda":
        parser.error("--autocast bf16 is for --device cuda")
    mixed = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.autocast == "bf16")  # noqa: E731

    tuned = False if args.no_reuse_freed_memory else reuse_freed_memory()
    results = {"environment": {**environment(device), "reuse_freed_memory": tuned, "autocast": args.autocast}}
    if args.what in ("toeplitz", "all"):
        rows = bench_toeplitz(args.sizes or TOEPLITZ_SIZES, device=device)
        results["toeplitz"] = rows
        print("Toeplitz product, d = 64 channels, batch 1, float32, bidirectional (median of repeats)")
        print(format_toeplitz(rows))
    if args.what in ("tno", "all"):
        from tnn_ref.bench_tno import bench_tno, format_tno

        with mixed():
            rows = bench_tno(args.sizes or TNO_SIZES, device=device)
        results["tno"] = rows
        print("TNO, batch 8, 768 channels, causal: against the FFT floor and the reference transcription")
        print(format_tno(rows))
    if args.what in ("layers", "all"):
        from tnn_ref.bench_layers import bench_layer_memory, bench_layers, format_layers

        with mixed():
            rows = bench_layers(args.sizes or LAYER_SIZES, device=device)
            memory = bench_layer_memory(args.sizes or LAYER_SIZES, device=device)
        results["layers"] = rows
        print("TNN block vs Transformer block (SDPA), d = 256, batch 1 (median of repeats)")
        print(format_layers(rows))
        results["layer_memory"] = memory
        print("peak extra memory of one forward+backward (MiB; CPU: peak RSS in a fresh process)")
        for row in memory:
            print(f"{row['n']:>6} tnn {row['tnn_bytes'] / 2**20:>9.1f}  transformer {row['transformer_bytes'] / 2**20:>9.1f}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
