"""Toeplitz Neural Operator (TNO): RPE coefficients, decayed, applied by FFT along the sequence.

For input of length n the RPE is evaluated afresh at offsets 0 .. n-1 (and -1 .. -(n-1) when
bidirectional), the decay lambda^|k| is applied, and each of the `dim` channels is multiplied by its
own Toeplitz matrix. Nothing is sized by a maximum length.
"""

from __future__ import annotations

import torch
from torch import nn

from tnn_ref.decay import Decay, check_decay
from tnn_ref.free_coefficients import FreeCoefficients
from tnn_ref.rpe import Rpe
from tnn_ref.ssm import DiagonalSsm, toeplitz_to_ssm
from tnn_ref.toeplitz import (
    circulant_column,
    compute_dtype,
    fft_length,
    kernel_spectrum,
    spectrum_product,
    toeplitz_fft,
)


class Tno(nn.Module):
    """x (..., n, dim) -> (..., n, dim): y[..., :, ch] = T_ch @ x[..., :, ch]."""

    def __init__(self, dim: int, causal: bool, decay: float | None = 0.99, learnable_decay: bool = False,
                 rpe_dim: int = 64, rpe_layers: int = 6, rpe_act: str = "relu", rpe_features: str = "index",
                 coefficients: str = "rpe", max_len: int | None = None):
        """coefficients="rpe" (the paper) or "free": a table of 2*max_len-1 learnable values per channel
        (max_len when causal), the ablation of notebook 10; it refuses sequences longer than max_len."""
        super().__init__()
        check_decay(decay)
        if learnable_decay and decay is None:
            raise ValueError("learnable_decay=True needs a base decay rate, got decay=None")
        if coefficients not in ("rpe", "free"):
            raise ValueError(f"coefficients must be 'rpe' or 'free', got {coefficients!r}")
        self.dim = dim
        self.causal = causal
        if coefficients == "rpe":
            self.rpe = Rpe(dim, rpe_dim=rpe_dim, layers=rpe_layers, act=rpe_act, features=rpe_features)
        else:
            self.free = FreeCoefficients(dim, max_len, causal)
        self.decay = None if decay is None else Decay(dim, decay, learnable=learnable_decay)
        self._spectrum_cache: tuple | None = None  # (key, spectrum) of the last no-grad call

    def offsets(self, n: int, device=None) -> torch.Tensor:
        """0, 1, ..., n-1, then -1, ..., -(n-1) when bidirectional: one RPE call covers every offset."""
        past = torch.arange(n, device=device)  # (n,)
        if self.causal:
            return past
        return torch.cat([past, -past[1:]])  # (2n-1,)

    @property
    def source(self) -> nn.Module:
        """What turns offsets into coefficients: the RPE, or the table of free coefficients."""
        return self.rpe if hasattr(self, "rpe") else self.free

    def coefficients(self, n: int) -> torch.Tensor:
        """Undecayed coefficients at `offsets(n)`: (n, dim) causal, (2n-1, dim) bidirectional."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive sequence length, got {n!r}")
        device = next(self.source.parameters()).device
        return self.source(self.offsets(n, device), length=n)

    def kernel(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The decayed coefficients (c, r), each (n, dim): c[k] = t[k], r[k] = t[-k]; r is None when causal."""
        t = self.coefficients(n)  # (n or 2n-1, dim)
        device = t.device
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()  # coefficients stay in float32 under autocast; the FFT needs the precision
        factors = None if self.decay is None else self.decay(n, device, t.dtype)  # (n, 1) or (n, dim)
        c = t[:n] if factors is None else t[:n] * factors  # (n, dim)
        if self.causal:
            return c, None
        r = t[:1] if n == 1 else torch.cat([t[:1], t[n:]])  # (n, dim): t0, t-1, ..., t-(n-1)
        return c, (r if factors is None else r * factors)

    def ssm(self, n: int) -> DiagonalSsm:
        """This TNO's causal kernel for lags < n as a diagonal state-space model (see tnn_ref.ssm)."""
        if not self.causal:
            raise ValueError("only a causal TNO can be run as a recurrence; this one is bidirectional")
        if getattr(self.source, "features", "index") != "index":
            raise ValueError(f"rpe features={self.source.features!r} make every coefficient depend on the sequence "
                             "length, so there is no fixed kernel to turn into a recurrence; use features='index'")
        with torch.no_grad():
            s = self.coefficients(n)  # (n, dim): undecayed coefficients
            rates = None if self.decay is None else self.decay.rates(torch.float64)
        return toeplitz_to_ssm(s.double(), rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., n, {self.dim}), got {tuple(x.shape)}")
        n = x.shape[-2]
        if n < 1:
            raise ValueError("x must have a positive sequence length, got length 0")
        if torch.is_grad_enabled():
            c, r = self.kernel(n)
            return toeplitz_fft(x, c, r, check_finite=False)
        # inference: the coefficients' spectrum depends only on the weights and n, so reuse it across calls
        m = fft_length(n)
        spectrum = self.spectrum(n)
        y, _ = spectrum_product(x.to(compute_dtype(x, spectrum.real)), spectrum, m)
        return y.to(x.dtype)

    def spectrum(self, n: int) -> torch.Tensor:
        """rfft of the circulant embedding of kernel(n), (dim, m//2+1), cached until a weight changes."""
        key = (n, tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in self.parameters()))
        if self._spectrum_cache is not None and self._spectrum_cache[0] == key:
            return self._spectrum_cache[1]
        with torch.no_grad():
            c, r = self.kernel(n)
            m = fft_length(n)
            a = c if r is None else circulant_column(c, r, m)  # (n or m, dim)
            spectrum = kernel_spectrum(a, m)  # (dim, m//2+1)
        self._spectrum_cache = (key, spectrum)
        return spectrum

    def extra_repr(self) -> str:
        return f"dim={self.dim}, causal={self.causal}"


class Tno2d(nn.Module):
    """The image operator: T_H v + T_W v over a (batch, H, W, dim) grid, one bidirectional TNO per axis."""

    def __init__(self, dim: int, decay: float | None = 0.9, learnable_decay: bool = False,
                 rpe_dim: int = 48, rpe_layers: int = 1, rpe_act: str = "relu", rpe_features: str = "index"):
        super().__init__()
        options = dict(causal=False, decay=decay, learnable_decay=learnable_decay, rpe_dim=rpe_dim,
                       rpe_layers=rpe_layers, rpe_act=rpe_act, rpe_features=rpe_features)
        self.dim = dim
        self.tno_h = Tno(dim, **options)
        self.tno_w = Tno(dim, **options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (batch, H, W, {self.dim}), got {tuple(x.shape)}")
        along_w = self.tno_w(x)  # (b, H, W, dim): each row is a sequence of length W
        along_h = self.tno_h(x.transpose(1, 2)).transpose(1, 2)  # (b, W, H, dim) -> (b, H, W, dim)
        return along_h + along_w
