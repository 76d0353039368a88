"""The TNO against its floor and against the reference implementation's way of computing it.

Floor: one rfft and one irfft of x at the FFT size the TNO uses, over contiguous memory: no TNO can
multiply by a Toeplitz matrix with less work than transforming x there and back.
Reference: `tnn_ref.bench.reference_tno.reference_tno_forward` (RPE per offset group, concatenation, FFT size
2n, torch's autograd through torch.fft).
"""

from __future__ import annotations

import torch

from tnn_ref.bench.harness import time_call
from tnn_ref.bench.reference_tno import reference_tno_forward
from tnn_ref.tno import Tno
from tnn_ref.toeplitz import fft_length

TNO_SIZES = [1024, 2048, 4096, 8192, 16384]


def make_tno(dim: int, causal: bool = True, device="cpu") -> Tno:
    torch.manual_seed(0)
    return Tno(dim, causal=causal, decay=0.99, rpe_dim=64, rpe_layers=6).to(device)


def bench_tno(sizes, batch: int = 8, dim: int = 768, causal: bool = True, device="cpu") -> list[dict]:
    device = torch.device(device)
    tno = make_tno(dim, causal, device)
    rows = []
    for n in sizes:
        m = fft_length(n)
        x = torch.randn(batch, n, dim, device=device, requires_grad=True)
        x_t = x.detach().transpose(1, 2).contiguous()  # (b, dim, n): the floor's best layout

        def floor():
            return torch.fft.irfft(torch.fft.rfft(x_t, n=m, dim=-1), n=m, dim=-1)  # (b, dim, m)

        def forward_train():
            return tno(x)  # kernel from the RPE, then the product, graph recorded

        def forward_inference():
            with torch.no_grad():
                return tno(x)  # cached coefficient spectrum

        def forward_backward():
            tno(x).sum().backward()

        def reference_forward_backward():
            reference_tno_forward(tno, x).sum().backward()

        with torch.no_grad():
            floor_t = time_call(floor, device)
        row = {"n": n, "batch": batch, "dim": dim, "fft_size": m, "floor": vars(floor_t)}
        for name, fn in [("forward", forward_train), ("forward_inference", forward_inference),
                         ("forward_backward", forward_backward), ("reference_forward_backward", reference_forward_backward)]:
            row[name] = vars(time_call(fn, device, warmup=1, repeats=5))
        row["forward_over_floor"] = row["forward"]["median"] / floor_t.median
        row["inference_over_floor"] = row["forward_inference"]["median"] / floor_t.median
        row["reference_over_ours_fb"] = row["reference_forward_backward"]["median"] / row["forward_backward"]["median"]
        rows.append(row)
        tno.zero_grad(set_to_none=True)
    return rows


def format_tno(rows: list[dict]) -> str:
    lines = [f"{'n':>6} {'floor ms':>9} {'fwd ms':>8} {'fwd/floor':>9} {'infer ms':>9} {'infer/floor':>11}"
             f" {'f+b ms':>8} {'ref f+b ms':>11} {'ref/ours':>8}"]
    for row in rows:
        lines.append(
            f"{row['n']:>6} {row['floor']['median'] * 1e3:>9.1f} {row['forward']['median'] * 1e3:>8.1f}"
            f" {row['forward_over_floor']:>8.2f}x {row['forward_inference']['median'] * 1e3:>9.1f}"
            f" {row['inference_over_floor']:>10.2f}x {row['forward_backward']['median'] * 1e3:>8.1f}"
            f" {row['reference_forward_backward']['median'] * 1e3:>11.1f} {row['reference_over_ours_fb']:>7.2f}x"
        )
    return "\n".join(lines)
