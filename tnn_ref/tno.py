"""Toeplitz Neural Operator (TNO): RPE coefficients, decayed, applied by FFT along the sequence.

For input of length n the RPE is evaluated afresh at offsets 0 .. n-1 (and -1 .. -(n-1) when
bidirectional), the decay lambda^|k| is applied, and each of the `dim` channels is multiplied by its
own Toeplitz matrix. Nothing is sized by a maximum length.
"""

from __future__ import annotations

import torch
from torch import nn

from tnn_ref.checks import (
    require_bool,
    require_float_tensor,
    require_module_device,
    require_positive_int,
    require_positive_length,
)
from tnn_ref.decay import Decay, check_learnable_decay
from tnn_ref.free_coefficients import FreeCoefficients
from tnn_ref.rpe import Rpe
from tnn_ref.ssm import DiagonalSsm, toeplitz_to_ssm
from tnn_ref.toeplitz import toeplitz_fft


def _check_length(n) -> int:
    """A sequence length: an int (not a bool) of at least 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive sequence length (an int), got {n!r}")
    return n


def _widened(t: torch.Tensor) -> torch.Tensor:
    """Coefficients from a table cast to 16 bits (model.half()) in float32: the FFT needs float32 coefficients."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class Tno(nn.Module):
    """x (..., n, dim) -> (..., n, dim): y[..., :, ch] = T_ch @ x[..., :, ch].

    Every call builds the kernel from the current weights and decay, with or without grad, so no state
    can go stale (an edit through .data, a new decay rate, an earlier call under autocast). To apply one
    kernel to many inputs, hold it yourself: `c, r = tno.kernel(n)`, then `toeplitz_fft(x, c, r)` per x.
    """

    def __init__(self, dim: int, causal: bool, decay: float | None = 0.99, learnable_decay: bool | str = False,
                 rpe_dim: int = 64, rpe_layers: int = 6, rpe_act: str = "relu", rpe_features: str = "index",
                 coefficients: str = "rpe", max_len: int | None = None):
        """coefficients="rpe" (the paper) or "free": a table of 2*max_len-1 learnable values per channel
        (max_len when causal), the ablation of notebook 10; it refuses sequences longer than max_len."""
        super().__init__()
        require_positive_int("dim", dim)
        require_bool("causal", causal)
        check_learnable_decay(decay, learnable_decay)
        if coefficients not in ("rpe", "free"):
            raise ValueError(f"coefficients must be 'rpe' or 'free', got {coefficients!r}")
        if coefficients == "free" and rpe_features != "index":
            raise ValueError(f"rpe_features={rpe_features!r} applies to the RPE; free coefficients are read by "
                             "offset, so leave rpe_features='index' (or use coefficients='rpe')")
        if coefficients == "rpe" and max_len is not None:
            raise ValueError(f"max_len={max_len!r} sizes the table of coefficients='free'; the RPE has no maximum "
                             "length, so pass max_len=None (or coefficients='free')")
        self.dim = dim
        self.causal = causal
        if coefficients == "rpe":
            self.rpe = Rpe(dim, rpe_dim=rpe_dim, layers=rpe_layers, act=rpe_act, features=rpe_features)
        else:
            self.free = FreeCoefficients(dim, max_len, causal)
        self.decay = None if decay is None else Decay(dim, decay, learnable=learnable_decay)

    def offsets(self, n: int, device=None) -> torch.Tensor:
        """0, 1, ..., n-1, then -1, ..., -(n-1) when bidirectional: one RPE call covers every offset."""
        _check_length(n)
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
        _check_length(n)
        offsets = self.offsets(n, self._device())
        return self.source(offsets, length=n)  # the RPE keeps one (offsets, rpe_dim) tensor per layer (`Rpe(lean=True)`)

    def kernel(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The decayed coefficients (c, r), each (n, dim): c[k] = t[k], r[k] = t[-k]; r is None when causal."""
        t = _widened(self.coefficients(n))  # (n or 2n-1, dim)
        device = t.device
        factors = None if self.decay is None else self.decay(n, device, t.dtype)  # (n, 1) or (n, dim)
        # causal t has exactly n rows: slicing it anyway would cost its backward a zero-filled copy of t
        head = t if self.causal else t[:n]  # (n, dim)
        c = head if factors is None else head * factors  # (n, dim)
        if self.causal:
            return c, None
        r = t[:1] if n == 1 else torch.cat([t[:1], t[n:]])  # (n, dim): t0, t-1, ..., t-(n-1)
        return c, (r if factors is None else r * factors)

    def fft_kernel(self, n: int, m: int) -> torch.Tensor:
        """What an FFT product of length m >= 2n - 1 reads: the decayed causal kernel (n, dim), or, bidirectional,
        the first column of the m-circulant embedding (m, dim) [t0, ..., t(n-1), 0 ... 0, t(-(n-1)), ..., t(-1)],
        equal to `circulant_column(*self.kernel(n), m)`.

        The bidirectional column comes from one call of the source at the column's own offsets (the m - 2n + 1
        padding rows read offset 0, and their decay factor is 0), so no coefficients are sliced or concatenated:
        their backward writes no zero-filled copies, and the column keeps the RPE's channel-major layout.
        """
        _check_length(n)
        if isinstance(m, bool) or not isinstance(m, int) or m < 2 * n - 1:
            raise ValueError(f"m must be an int >= 2n - 1 = {2 * n - 1} for an exact product, got {m!r}")
        if self.causal:
            return self.kernel(n)[0]
        device = self._device()
        past = torch.arange(n, device=device)  # (n,)
        pad = past.new_zeros(m - 2 * n + 1)  # (m - 2n + 1,): padding rows, zeroed by their factor below
        offsets = torch.cat([past, pad, -past[1:].flip(0)])  # (m,): 0 .. n-1, padding, -(n-1) .. -1
        t = _widened(self.source(offsets, length=n))  # (m, dim)
        keep = torch.ones(m, 1, device=device, dtype=t.dtype)  # (m, 1)
        keep[n: n + pad.numel()] = 0
        if self.decay is None:
            return t if pad.numel() == 0 else t * keep
        factors = self.decay(n, device, t.dtype)  # (n, 1) or (n, dim): lambda^k for lags k = 0 .. n-1
        return t * (factors[offsets.abs()] * keep)  # (m, dim): each row decayed by lambda^|offset|

    def _device(self) -> torch.device:
        """Where the coefficients are computed: the device of their source's weights."""
        return next(self.source.parameters()).device

    def ssm(self, n: int) -> DiagonalSsm:
        """This TNO's causal kernel for lags < n as a diagonal state-space model (see tnn_ref.ssm).

        Its state is complex64 for a float32 TNO (half the memory and traffic per token) and complex128 for
        a float64 one; the conversion itself is computed in float64.
        """
        if not self.causal:
            raise ValueError("only a causal TNO can be run as a recurrence; this one is bidirectional")
        if getattr(self.source, "features", "index") != "index":
            raise ValueError(f"rpe features={self.source.features!r} make every coefficient depend on the sequence "
                             "length, so there is no fixed kernel to turn into a recurrence; use features='index'")
        with torch.no_grad():
            s = self.coefficients(n)  # (n, dim): undecayed coefficients
            rates = None if self.decay is None else self.decay.rates(torch.float64)
        dtype = torch.complex128 if s.dtype == torch.float64 else torch.complex64
        return toeplitz_to_ssm(s.double(), rates, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., n, dim) floating point -> (..., n, dim) in x's dtype; the kernel is rebuilt from the weights every call."""
        self._check_input(x)
        c, r = self.kernel(x.shape[-2])  # (n, dim) each: grad and no-grad calls compute it the same way
        return toeplitz_fft(x, c, r, check_finite=False)

    def _check_input(self, x) -> None:
        """x must be a floating-point (..., n, dim) tensor, n >= 1, on this TNO's device."""
        require_float_tensor("x", x)
        if x.ndim < 2 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., n, {self.dim}), got {tuple(x.shape)}")
        require_positive_length("x", x.shape[-2])
        require_module_device("x", x, self.source)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, causal={self.causal}"


class Tno2d(nn.Module):
    """The image operator: T_H v + T_W v over a (batch, H, W, dim) grid, one bidirectional TNO per axis."""

    def __init__(self, dim: int, decay: float | None = 0.9, learnable_decay: bool | str = False,
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
