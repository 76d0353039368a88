"""The Toeplitz product three ways, timed side by side: dense matrix, scipy per channel, torch FFT."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import scipy.linalg
import torch

from tnn_ref.bench.harness import time_call
from tnn_ref.toeplitz import toeplitz_fft, toeplitz_matrix

TOEPLITZ_SIZES = [256, 512, 1024, 2048, 4096, 8192, 16384]


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


def fft_times(sizes, d: int = 64, device="cpu", seed: int = 0) -> list[dict]:
    """Only the torch FFT column of `bench_toeplitz`: [{"n", "fft": Timing as a dict}], the same inputs."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for n in sizes:
        c, r, x = (t.to(device) for t in (torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen),
                                          torch.randn(1, n, d, generator=gen)))
        rows.append({"n": n, "fft": asdict(time_call(lambda: toeplitz_fft(x, c, r), device))})
    return rows


def fft_times_untuned(sizes, d: int = 64, device="cpu") -> list[dict]:
    """`fft_times` in a fresh Python process whose malloc keeps glibc's defaults (what a user gets who never
    calls `reuse_freed_memory`): a setting, once made in a process, cannot be taken back there."""
    code = ("import json, sys; from tnn_ref.bench.toeplitz import fft_times; "
            f"print(json.dumps(fft_times({list(sizes)!r}, {d}, {str(device)!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def add_untuned(rows: list[dict], untuned: list[dict]) -> None:
    """Put the untuned FFT times beside the tuned rows (the same n in the same order): fft_untuned, untuned_over_fft."""
    for row, other in zip(rows, untuned, strict=True):
        if row["n"] != other["n"]:
            raise ValueError(f"untuned rows must follow the same sizes, got n = {other['n']} beside {row['n']}")
        row["fft_untuned"] = other["fft"]
        row["untuned_over_fft"] = other["fft"]["median"] / row["fft"]["median"]


def format_toeplitz(rows: list[dict]) -> str:
    untuned = all("fft_untuned" in row for row in rows)
    extra = f" {'fft untuned ms':>15} {'untuned/fft':>12}" if untuned else ""
    lines = [f"{'n':>6} {'dense ms':>10} {'scipy loop ms':>14} {'torch fft ms':>13} {'scipy/fft':>10} {'dense/fft':>10}{extra}"]
    for row in rows:
        dense = "skipped" if row["dense"] is None else f"{row['dense']['median'] * 1e3:.2f}"
        dense_ratio = "-" if row["dense_over_fft"] is None else f"{row['dense_over_fft']:.1f}x"
        more = f" {row['fft_untuned']['median'] * 1e3:>15.3f} {row['untuned_over_fft']:>11.2f}x" if untuned else ""
        lines.append(
            f"{row['n']:>6} {dense:>10} {row['scipy_loop']['median'] * 1e3:>14.2f} {row['fft']['median'] * 1e3:>13.3f}"
            f" {row['scipy_loop_over_fft']:>9.1f}x {dense_ratio:>10}{more}"
        )
    return "\n".join(lines)
