"""Constant-time decoding: a causal Toeplitz kernel rewritten as a diagonal state-space model.

The idea of Qin & Zhong (EMNLP 2023), derived here in our own way. A decayed causal kernel is
t_k = lambda^k s_k for lags k = 0 .. n-1, where s_k = rpe(k) are the undecayed coefficients. Write s
through its DFT of length L = n + 1 (with s_n = 0):

    s_k = (1/L) sum_j S_j w^(j k),   w = exp(2 pi i / L),   S = fft(s),   exact for k = 0 .. L-1,

so t_k = sum_j (S_j / L) (lambda w^j)^k: a sum of L geometric sequences, i.e. a diagonal linear recurrence
with poles p_j = lambda w^j and output weights S_j / L. Per channel, with state h (complex, one entry per pole):

    h_t = p * h_{t-1} + x_t,        y_t = Re(sum_j g_j h_t[j]),

reproduces y_t = sum_k t_k x_{t-k} exactly for every lag k < n. Because s is real, S is conjugate-symmetric and
only the poles j = 0 .. L//2 are kept (`rfft`), the others folded in by doubling their weights. Past lag L
the kernel repeats, times lambda^L: the decay makes that tail negligible (0.99^4096 ~ 1e-18).

Each new token costs O(d * L) whatever its position, against O(t) for a cache of past inputs and
O(t log t) for re-running the FFT.

Reading a prompt needs no recurrence either: the state after inputs x_0 .. x_{T-1} is
h[j] = sum_s p_j^s x_{T-1-s} = sum_s lambda^s w^(j s) x_{T-1-s}, and w^(j s) repeats with period L, so
folding the decayed, reversed prompt modulo L and taking one inverse FFT gives every h[j] at once
(`DiagonalSsm.state_after`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from tnn_ref.checks import (
    require_finite,
    require_float_tensor,
    require_ndim,
    require_positive_int,
    require_positive_length,
)


@dataclass
class DiagonalSsm:
    """poles (d or 1, J) complex, weights (d, J) complex: y_t = Re(sum_j weights * h_t), h_t = poles * h_{t-1} + x_t.

    Poles of shape (1, J) are shared by every channel (one decay rate for all). `rates` (d or 1,) and
    `period` L, set by `toeplitz_to_ssm`, record that poles_j = rates * exp(2 pi i j / L), which lets
    `state_after` read a whole prompt with one FFT; without them it steps through the prompt.
    """

    poles: torch.Tensor
    weights: torch.Tensor
    length: int  # exact for lags 0 .. length-1
    rates: torch.Tensor | None = None
    period: int | None = None

    def __post_init__(self):
        for name in ("poles", "weights"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor) or not value.is_complex() or value.ndim != 2:
                what = f"{value.dtype} {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"{name} must be a complex tensor of shape (d, J), got {what}")
        d, J = self.weights.shape
        if self.poles.shape[1] != J or self.poles.shape[0] not in (1, d):
            raise ValueError(f"poles must have shape (d, J) = {(d, J)} or (1, J) (shared by every channel), got "
                             f"{tuple(self.poles.shape)}")
        if self.poles.dtype != self.weights.dtype:
            raise ValueError(f"poles ({self.poles.dtype}) and weights ({self.weights.dtype}) must share one dtype")
        require_positive_int("length", self.length)
        if (self.rates is None) != (self.period is None):
            raise ValueError("rates and period describe the poles together: give both or neither")
        if self.period is not None:
            require_positive_int("period", self.period)

    @property
    def channels(self) -> int:
        return self.weights.shape[0]

    def initial_state(self, batch: int) -> torch.Tensor:
        require_positive_int("batch", batch)
        return torch.zeros(batch, *self.weights.shape, dtype=self.weights.dtype, device=self.weights.device)  # (b, d, J)

    def state_after(self, x: torch.Tensor) -> torch.Tensor:
        """The state after reading x (b, T, d) from the zero state, (b, d, J): what T calls of `step` leave.

        h[j] = sum_s lambda^s w^(j s) x[T-1-s]; w^(j s) has period L, so the decayed, reversed prompt is
        folded modulo L and one inverse FFT of length L evaluates every pole at once: O(T d + d L log L).
        """
        require_float_tensor("x", x)
        require_ndim("x", x, (3,), f"(batch, T, {self.channels})")
        require_positive_length("x", x.shape[1])
        if x.shape[2] != self.channels:
            raise ValueError(f"x must have shape (batch, T, {self.channels}), got {tuple(x.shape)}")
        if self.period is None:  # poles of unknown structure: step through the prompt
            state = self.initial_state(x.shape[0])
            for t in range(x.shape[1]):
                state, _ = self.step(state, x[:, t])
            return state
        b, T, d = x.shape
        L, J = self.period, self.weights.shape[1]
        ages = torch.arange(T, device=x.device, dtype=torch.float64)[:, None]  # (T, 1): s = T-1-t
        decayed = x.flip(1).to(torch.float64) * self.rates.to(x.device) ** ages  # (b, T, d): lambda^s x[T-1-s]
        folds = -(-T // L)  # ceil(T / L) periods of length L
        padded = torch.cat([decayed, decayed.new_zeros(b, folds * L - T, d)], dim=1)  # (b, folds*L, d)
        folded = padded.reshape(b, folds, L, d).sum(1)  # (b, L, d): sum over s of one residue mod L
        h = torch.fft.ifft(folded, dim=1)[:, :J] * L  # (b, J, d): sum_q folded[q] exp(2 pi i j q / L)
        return h.transpose(1, 2).to(self.weights.dtype).contiguous()  # (b, d, J)

    def step(self, state: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One token: state (b, d, J) updated in place, x (b, d) real -> (state, y (b, d) real)."""
        if state.shape[1:] != self.weights.shape:
            raise ValueError(f"state must have shape (batch, {', '.join(map(str, self.weights.shape))}) (from "
                             f"initial_state), got {tuple(state.shape)}")
        if x.shape != state.shape[:2]:
            raise ValueError(f"x must have shape (batch, d) = {tuple(state.shape[:2])}, got {tuple(x.shape)}")
        state.mul_(self.poles).add_(x[..., None].to(state.dtype))  # (b, d, J): in place, no allocation per token
        y = torch.linalg.vecdot(self.weights.conj(), state).real  # (b, d): vecdot conjugates its first argument
        return state, y.to(x.dtype)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The recurrence over a whole sequence, x (b, n, d) -> (b, n, d), one step at a time."""
        require_float_tensor("x", x)
        require_ndim("x", x, (3,), f"(batch, n, {self.poles.shape[0]})")
        require_positive_length("x", x.shape[1])
        state = self.initial_state(x.shape[0])
        outputs = []
        for t in range(x.shape[1]):
            state, y = self.step(state, x[:, t])
            outputs.append(y)
        return torch.stack(outputs, dim=1)


def _check_rates(decay, d: int | None, name: str = "decay") -> torch.Tensor:
    """lambda as a float64 tensor broadcastable to (d,); None means no decay (lambda = 1).

    d: the channel count (one rate, or d of them); None accepts any positive count.
    """
    accepted = f"None, a float or {'per-channel' if d is None else d} rates in (0, 1]"
    if decay is None:
        return torch.ones(1, dtype=torch.float64)
    if isinstance(decay, bool):
        raise TypeError(f"{name} must be {accepted}, got {decay!r}")
    try:
        rates = torch.as_tensor(decay, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} must be {accepted}, got {decay!r}") from error
    if rates.numel() == 0 or (d is not None and rates.numel() not in (1, d)):
        raise ValueError(f"{name} must be a scalar or hold one rate per channel ({d}), got {rates.numel()} values")
    if not torch.all((rates > 0) & (rates <= 1)):
        raise ValueError(f"{name} must lie in (0, 1], got {rates.tolist()[:8]}")
    return rates


def _check_first_row(r, c: torch.Tensor) -> None:
    """r, when given, is the first row of the same kernel: c's shape (n, d), zero past r[0] (causal)."""
    if not isinstance(r, torch.Tensor):
        raise TypeError(f"r must be None or a tensor of shape (n, d) = {tuple(c.shape)} like c, got {type(r).__name__}")
    if r.shape != c.shape:
        raise ValueError(f"r must be None or the first row, shaped like c (n, d) = {tuple(c.shape)}; got "
                         f"{tuple(r.shape)}")
    if bool((r[1:] != 0).any()):
        raise ValueError("the kernel must be causal (r[1:] all zero): a recurrence cannot look at future tokens")


def toeplitz_to_ssm(c: torch.Tensor, decay=None, r: torch.Tensor | None = None,
                    dtype: torch.dtype = torch.complex128) -> DiagonalSsm:
    """Diagonal SSM whose kernel equals lambda^k c[k] for every lag k < n.

    c: (n, d) **undecayed** causal coefficients s_k (what the RPE outputs; `Tno.ssm` passes them);
    decay: lambda, a float or (d,) per-channel rates in (0, 1], or None for no decay. Taking s and lambda
    apart avoids dividing a decayed kernel by lambda^k, which underflows (0.9^1000 ~ 1e-46).
    r: None, or the first row with c's shape (n, d) (r[0] ignored), accepted only to refuse a bidirectional
    kernel (a recurrence only sees the past).
    dtype: complex128 (default) or complex64, the dtype of poles, weights and the state; the conversion is
    computed in float64 either way. A scalar decay gives poles shared by all channels, (1, J).
    """
    require_float_tensor("c", c)
    require_ndim("c", c, (2,), "(n, d)")
    n, d = c.shape
    require_positive_length("c", n)
    if d < 1:
        raise ValueError(f"c must have at least one channel, got shape {tuple(c.shape)}")
    require_finite("c", c)
    if dtype not in (torch.complex64, torch.complex128):
        raise ValueError(f"dtype must be torch.complex64 or torch.complex128, got {dtype!r}")
    if r is not None:
        _check_first_row(r, c)
    rates = _check_rates(decay, d).to(c.device)
    L = n + 1
    s = torch.cat([c.to(torch.float64), c.new_zeros(1, d, dtype=torch.float64)])  # (L, d): s_n = 0
    spectrum = torch.fft.rfft(s, dim=0).T  # (d, L//2+1): S_j for j = 0 .. L//2
    j = torch.arange(L // 2 + 1, device=c.device, dtype=torch.float64)
    unit = torch.exp(2j * torch.pi * j / L)  # (J,): w^j
    poles = rates[:, None] * unit  # (d or 1, J): lambda w^j
    fold = torch.full((L // 2 + 1,), 2.0, dtype=torch.float64, device=c.device)  # each kept pole stands for j and L-j
    fold[0] = 1.0
    if L % 2 == 0:
        fold[-1] = 1.0  # the Nyquist pole is its own conjugate
    weights = spectrum * fold / L  # (d, J)
    return DiagonalSsm(poles.to(dtype), weights.to(dtype), n, rates=rates, period=L)  # poles (1, J) for a scalar rate


def ssm_kernel(ssm: DiagonalSsm, lags: int) -> torch.Tensor:
    """The kernel the SSM realises, K_k = Re(sum_j weights_j poles_j^k) for k = 0 .. lags-1: (lags, d)."""
    if not isinstance(ssm, DiagonalSsm):
        raise TypeError(f"ssm must be a DiagonalSsm, got {type(ssm).__name__}")
    require_positive_int("lags", lags)
    k = torch.arange(lags, device=ssm.poles.device, dtype=torch.float64)[:, None, None]  # (lags, 1, 1)
    powers = torch.exp(k * torch.log(ssm.poles.to(torch.complex128))[None])  # (lags, d or 1, J): poles^k
    return (ssm.weights.to(torch.complex128)[None] * powers).sum(-1).real  # (lags, d)


def decay_horizon(rates, tol: float = 1e-12) -> int | None:
    """Smallest H with lambda_max^H <= tol: lags beyond H weigh at most tol times the nearest ones.

    rates: None, a rate or per-channel rates in (0, 1]; tol: a number in (0, 1).
    None when some rate is 1 (no decay), since then no lag can be dropped.
    """
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0.0 < tol < 1.0:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    rates = _check_rates(rates, None, name="rates")
    top = float(rates.max())
    if top >= 1.0:
        return None
    return max(1, math.ceil(math.log(tol) / math.log(top)))
