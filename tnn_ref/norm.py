"""SimpleRMSNorm: the parameter-free normalisation TNN uses inside the RPE and around its blocks."""

from __future__ import annotations

import torch
from torch import nn

from tnn_ref.checks import require_features, require_float_at_least, require_positive_int


class SimpleRMSNorm(nn.Module):
    """x / (||x||_2 * dim^(-1/2) + eps) over the last axis; no learnable scale or bias.

    Scale-invariant: SimpleRMSNorm(a * x) = SimpleRMSNorm(x) for a > 0, which is what keeps the RPE's
    output bounded for offsets far beyond those seen in training.
    """

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        require_positive_int("dim", dim)
        self.dim = dim
        self.eps = require_float_at_least("eps", eps, 0.0, strict=True)  # > 0: an all-zero x must not divide by 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_features("x", x, self.dim)
        rms = x.norm(2, dim=-1, keepdim=True) * self.dim ** -0.5  # (..., 1)
        return x / (rms + self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"
