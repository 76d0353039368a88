"""Exponential decay of the Toeplitz coefficients: t[k] <- lambda^|k| t[k] (t[0] untouched, lambda^0 = 1).

A fixed lambda (0.99 for the LM, 0.9 for images and LRA), or a learnable one per channel,
lambda_ch = lambda + (1 - lambda) * sigmoid(p_ch), which can only move between lambda and 1.
"""

from __future__ import annotations

import torch
from torch import nn


def check_decay(decay: float | None) -> None:
    """decay must be None (off) or a rate in (0, 1]."""
    if decay is None:
        return
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < float(decay) <= 1.0:
        raise ValueError(f"decay must be None or a float in (0, 1], got {decay!r}")


class Decay(nn.Module):
    """Factors lambda^k for lags k = 0 .. n-1, shaped (n, 1) (fixed) or (n, dim) (learnable per channel)."""

    def __init__(self, dim: int, rate: float, learnable: bool = False):
        super().__init__()
        check_decay(rate)
        self.rate = float(rate)
        self.learnable = learnable
        # p = 0 starts every channel at lambda + (1 - lambda) / 2
        self.logit = nn.Parameter(torch.zeros(dim)) if learnable else None

    def _learnable_rates(self, dtype) -> torch.Tensor:
        """lambda + (1 - lambda) * sigmoid(p) per channel, (dim,), differentiable in p."""
        return self.rate + (1.0 - self.rate) * torch.sigmoid(self.logit.to(dtype))

    def rates(self, dtype=torch.float32) -> torch.Tensor:
        """lambda per channel, detached: (dim,) if learnable, else a 0-d tensor."""
        if self.logit is None:
            return torch.tensor(self.rate, dtype=dtype)
        return self._learnable_rates(dtype).detach()

    def forward(self, n: int, device=None, dtype=torch.float32) -> torch.Tensor:
        lags = torch.arange(n, device=device, dtype=torch.float64)[:, None]  # (n, 1)
        if self.logit is None:
            return (self.rate ** lags).to(dtype)  # (n, 1), powers taken in float64
        rates = self._learnable_rates(torch.float64)  # (dim,)
        return torch.exp(lags * torch.log(rates)).to(dtype)  # (n, dim): lambda_ch^k

    def extra_repr(self) -> str:
        return f"rate={self.rate}, learnable={self.learnable}"
