"""A straightforward transcription of the reference implementation's `Tno.forward`, the speed baseline.

The reference code evaluates the RPE separately for the zero offset and for the positive (and negative)
offsets, decays them, concatenates [t0, t1..t(n-1), t0, t(-(n-1))..t(-1)] (causal: [t0, t1..t(n-1), t0]
zero-padded), and multiplies by rfft/irfft at size 2n under torch's autograd. It computes the same
function as `Tno.forward` (tests/test_reference_tno.py checks it); `tnn_ref.bench` times the two.
"""

from __future__ import annotations

import torch

from tnn_ref.tno import Tno


def reference_tno_forward(tno: Tno, x: torch.Tensor) -> torch.Tensor:
    """x (b, n, dim) -> (b, n, dim), computed the way the reference `Tno.forward` does."""
    n = x.shape[-2]
    device = x.device
    zero = tno.rpe(torch.zeros(1, device=device), length=n)  # (1, dim)
    pos = tno.rpe(torch.arange(1, n, device=device), length=n)  # (n-1, dim)
    lags = torch.arange(1, n, device=device, dtype=torch.float32)[:, None]  # (n-1, 1)
    if tno.decay is not None:
        gamma = tno.decay(n, device, pos.dtype)[1:]  # (n-1, 1 or dim): lambda^k for k >= 1
        pos = gamma * pos
    if tno.causal:
        a = torch.cat([zero, pos, zero], dim=0)  # (n+1, dim); index n is never used
    else:
        neg = tno.rpe(-lags[:, 0].flip(0), length=n)  # (n-1, dim): offsets -(n-1) .. -1
        if tno.decay is not None:
            neg = gamma.flip(0) * neg
        a = torch.cat([zero, pos, zero, neg], dim=0)  # (2n, dim)
    a_f = torch.fft.rfft(a.float(), 2 * n, dim=0)  # (n+1, dim)
    x_f = torch.fft.rfft(x.float(), 2 * n, dim=-2)  # (b, n+1, dim)
    return torch.fft.irfft(x_f * a_f, 2 * n, dim=-2)[..., :n, :].to(x.dtype)  # (b, n, dim)
