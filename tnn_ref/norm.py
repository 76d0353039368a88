"""SimpleRMSNorm: the parameter-free normalisation TNN uses inside the RPE and around its blocks."""

from __future__ import annotations

import torch
from torch import nn


class SimpleRMSNorm(nn.Module):
    """x / (||x||_2 * dim^(-1/2) + eps) over the last axis; no learnable scale or bias.

    Scale-invariant: SimpleRMSNorm(a * x) = SimpleRMSNorm(x) for a > 0, which is what keeps the RPE's
    output bounded for offsets far beyond those seen in training.
    """

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be a positive number of features, got {dim}")
        self.dim = dim
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have {self.dim} features in its last axis, got shape {tuple(x.shape)}")
        rms = x.norm(2, dim=-1, keepdim=True) * self.dim ** -0.5  # (..., 1)
        return x / (rms + self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"
