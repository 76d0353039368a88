"""Exponential decay of the Toeplitz coefficients: t[k] <- lambda^|k| t[k] (t[0] untouched, lambda^0 = 1).

A fixed lambda (0.99 for the LM, 0.9 for images and LRA), or a learnable one per channel,
lambda_ch = lambda + (1 - lambda) * sigmoid(p_ch), which can only move between lambda and 1.
"""

from __future__ import annotations

import torch
from torch import nn

from tnn_ref.checks import require_bool, require_positive_int
from tnn_ref.toeplitz import autocast_off


def check_decay(decay: float | None) -> None:
    """decay must be None (off) or a rate in (0, 1]."""
    if decay is None:
        return
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < float(decay) <= 1.0:
        raise ValueError(f"decay must be None or a float in (0, 1], got {decay!r}")


class Decay(nn.Module):
    """Factors lambda^k for lags k = 0 .. n-1, shaped (n, 1) (fixed) or (n, dim) (learnable per channel).

    The powers are taken in float64 with autocast off, then cast to the dtype asked for.
    """

    def __init__(self, dim: int, rate: float, learnable: bool = False):
        super().__init__()
        require_positive_int("dim", dim)
        require_bool("learnable", learnable)
        self.rate = rate
        if learnable and self.rate == 1.0:
            raise ValueError("learnable_decay=True with decay=1.0 cannot learn anything: lambda + (1 - lambda) * "
                             "sigmoid(p) is 1 for every p; use a base rate below 1 or learnable=False")
        self.learnable = learnable
        # p = 0 starts every channel at lambda + (1 - lambda) / 2
        self.logit = nn.Parameter(torch.zeros(dim)) if learnable else None

    @property
    def rate(self) -> float:
        """lambda, the fixed rate (or the floor of the learnable ones), in (0, 1]."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        if value is None:
            raise ValueError("a Decay needs a rate in (0, 1]; to switch the decay off, build the TNO with decay=None")
        check_decay(value)  # also when a rate is changed after construction
        self._rate = float(value)

    def _learnable_rates(self, dtype) -> torch.Tensor:
        """lambda + (1 - lambda) * sigmoid(p) per channel, (dim,), differentiable in p."""
        return self.rate + (1.0 - self.rate) * torch.sigmoid(self.logit.to(dtype))

    def rates(self, dtype=torch.float32) -> torch.Tensor:
        """lambda per channel, detached: (dim,) if learnable, else a 0-d tensor."""
        if self.logit is None:
            return torch.tensor(self.rate, dtype=dtype)
        return self._learnable_rates(dtype).detach()

    def forward(self, n: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """(n, 1) fixed or (n, dim) learnable factors lambda^k, k = 0 .. n-1, in `dtype` on `device`."""
        require_positive_int("n", n)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype (factors are fractions), got {dtype!r}")
        device = torch.device("cpu") if device is None else torch.device(device)
        with autocast_off(device):
            lags = torch.arange(n, device=device, dtype=torch.float64)[:, None]  # (n, 1)
            if self.logit is None:
                return (self.rate ** lags).to(dtype)  # (n, 1), powers taken in float64
            rates = self._learnable_rates(torch.float64).to(device)  # (dim,)
            return torch.exp(lags * torch.log(rates)).to(dtype)  # (n, dim): lambda_ch^k

    def extra_repr(self) -> str:
        return f"rate={self.rate}, learnable={self.learnable}"
