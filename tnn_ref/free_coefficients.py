"""Free Toeplitz coefficients: one learnable value per offset and channel, for lengths up to max_len.

The ablation the RPE is measured against (notebook 10): 2 * max_len - 1 parameters per channel (max_len
when causal), which grow with the length and say nothing about offsets beyond max_len, so a TNO built on
them refuses longer sequences with a clear error instead of inventing coefficients.
"""

from __future__ import annotations

import torch
from torch import nn


class FreeCoefficients(nn.Module):
    """offsets (m,) -> coefficients (m, out_dim) read from a table; |offset| < max_len (offset >= 0 if causal)."""

    def __init__(self, out_dim: int, max_len: int, causal: bool, std: float = 0.02):
        super().__init__()
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"max_len must be a positive int for free coefficients, got {max_len!r}")
        self.max_len = max_len
        self.causal = causal
        rows = max_len if causal else 2 * max_len - 1  # offsets 0..max_len-1, then -1..-(max_len-1)
        self.table = nn.Parameter(torch.randn(rows, out_dim) * std)

    def forward(self, offsets: torch.Tensor, length: int | None = None) -> torch.Tensor:
        offsets = offsets.to(self.table.device).long()
        longest = int(offsets.abs().max()) if offsets.numel() else 0
        if longest >= self.max_len:
            raise ValueError(f"free coefficients exist for offsets below max_len={self.max_len}; a sequence of "
                             f"length {longest + 1} needs offset {longest}. They cannot extrapolate: use the RPE "
                             "(coefficients='rpe') or a larger max_len")
        if self.causal and bool((offsets < 0).any()):
            raise ValueError("a causal TNO has no coefficients for negative offsets")
        rows = torch.where(offsets >= 0, offsets, self.max_len - 1 - offsets)  # -k -> row max_len - 1 + k
        return self.table[rows]  # (m, out_dim)
