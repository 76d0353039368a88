"""Exponential decay of the Toeplitz coefficients: t[k] <- lambda^|k| t[k] (t[0] untouched, lambda^0 = 1).

A fixed lambda (0.99 for the LM, 0.9 for images and LRA), or a learnable one per channel in one of two forms:
- "floor" (also `True`): lambda_ch = lambda + (1 - lambda) * sigmoid(p_ch), p = 0 at the start, so it can only
  move between lambda and 1 (toward *less* decay);
- "sigmoid": lambda_ch = sigmoid(p_ch), p started at logit(lambda), so it starts at lambda and can move either
  way, toward more locality as well as less.
"""

from __future__ import annotations

import torch
from torch import nn

from tnn_ref.checks import require_positive_int
from tnn_ref.toeplitz import autocast_off

LEARNABLE_FORMS = ("floor", "sigmoid")


def learnable_form(name: str, value) -> str | None:
    """A learnable-decay option as its form: False -> None (fixed), True or "floor" -> "floor", "sigmoid"."""
    if value is False:
        return None
    if value is True:
        return "floor"
    if isinstance(value, str) and value in LEARNABLE_FORMS:
        return value
    raise TypeError(f"{name} must be False, True (= 'floor'), 'floor' or 'sigmoid', got {value!r}")


def check_decay(decay: float | None) -> None:
    """decay must be None (off) or a rate in (0, 1]."""
    if decay is None:
        return
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < float(decay) <= 1.0:
        raise ValueError(f"decay must be None or a float in (0, 1], got {decay!r}")


def check_learnable_decay(decay: float | None, learnable_decay) -> None:
    """A decay rate and a learnable-decay option that go together (a learnable decay needs a base rate)."""
    check_decay(decay)
    if learnable_form("learnable_decay", learnable_decay) is not None and decay is None:
        raise ValueError(f"learnable_decay={learnable_decay!r} needs a base decay rate, got decay=None")


class Decay(nn.Module):
    """Factors lambda^k for lags k = 0 .. n-1, shaped (n, 1) (fixed) or (n, dim) (learnable per channel).

    The powers are taken in float64 with autocast off, then cast to the dtype asked for.
    """

    def __init__(self, dim: int, rate: float, learnable: bool | str = False):
        """learnable: False (fixed), True or "floor", or "sigmoid" (see the module docstring)."""
        super().__init__()
        require_positive_int("dim", dim)
        self.form = learnable_form("learnable", learnable)
        self.rate = rate
        if self.form == "floor" and self.rate == 1.0:
            raise ValueError("learnable_decay=True with decay=1.0 cannot learn anything: lambda + (1 - lambda) * "
                             "sigmoid(p) is 1 for every p; use a base rate below 1 or learnable=False")
        if self.form == "sigmoid" and self.rate == 1.0:
            raise ValueError("learnable_decay='sigmoid' with decay=1.0 has no finite start: sigmoid(p) = 1 needs "
                             "p = +inf; use a base rate below 1")
        self.learnable = self.form is not None
        # floor: p = 0 starts every channel at lambda + (1 - lambda) / 2; sigmoid: p = logit(lambda) starts at lambda
        start = 0.0 if self.form != "sigmoid" else torch.logit(torch.tensor(self.rate, dtype=torch.float64)).item()
        self.logit = nn.Parameter(torch.full((dim,), start)) if self.learnable else None

    @property
    def rate(self) -> float:
        """lambda, the fixed rate (the floor of "floor" rates, the start of "sigmoid" ones), in (0, 1]."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        if value is None:
            raise ValueError("a Decay needs a rate in (0, 1]; to switch the decay off, build the TNO with decay=None")
        check_decay(value)  # also when a rate is changed after construction
        self._rate = float(value)

    def _learnable_rates(self, dtype) -> torch.Tensor:
        """The per-channel rates, (dim,), differentiable in p: lambda + (1 - lambda) * sigmoid(p) or sigmoid(p)."""
        if self.form == "sigmoid":
            return torch.sigmoid(self.logit.to(dtype))
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
        return f"rate={self.rate}, learnable={self.form or False}"
