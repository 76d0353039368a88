"""Free Toeplitz coefficients: one learnable value per offset and channel, for lengths up to max_len.

The ablation the RPE is measured against (notebook 10): 2 * max_len - 1 parameters per channel (max_len
when causal), which grow with the length and say nothing about offsets beyond max_len, so a TNO built on
them refuses longer sequences with a clear error instead of inventing coefficients.
"""

from __future__ import annotations

import torch
from torch import nn

from tnn_ref.checks import require_bool, require_float_at_least, require_positive_int


class FreeCoefficients(nn.Module):
    """offsets (m,) -> coefficients (m, out_dim) read from a table; |offset| < max_len (offset >= 0 if causal)."""

    def __init__(self, out_dim: int, max_len: int, causal: bool, std: float = 0.02):
        super().__init__()
        require_positive_int("out_dim", out_dim)
        require_positive_int("max_len", max_len)
        require_bool("causal", causal)
        require_float_at_least("std", std, 0.0)
        self.max_len = max_len
        self.causal = causal
        rows = max_len if causal else 2 * max_len - 1  # offsets 0..max_len-1, then -1..-(max_len-1)
        self.table = nn.Parameter(torch.randn(rows, out_dim) * std)

    def forward(self, offsets: torch.Tensor, length: int | None = None) -> torch.Tensor:
        offsets = self._check_offsets(offsets).to(self.table.device).long()  # (m,)
        longest = int(offsets.abs().max()) if offsets.numel() else 0
        if longest >= self.max_len:
            raise ValueError(f"free coefficients exist for offsets below max_len={self.max_len}; a sequence of "
                             f"length {longest + 1} needs offset {longest}. They cannot extrapolate: use the RPE "
                             "(coefficients='rpe') or a larger max_len")
        if self.causal and bool((offsets < 0).any()):
            raise ValueError("a causal TNO has no coefficients for negative offsets")
        rows = torch.where(offsets >= 0, offsets, self.max_len - 1 - offsets)  # -k -> row max_len - 1 + k
        return self.table[rows]  # (m, out_dim)

    @staticmethod
    def _check_offsets(offsets) -> torch.Tensor:
        """A 1-D tensor of whole-number offsets: a table has rows only at integers (1.5 must not read row 1)."""
        if not isinstance(offsets, torch.Tensor) or offsets.ndim != 1:
            raise ValueError("offsets must be a 1-D tensor of relative positions k")
        if offsets.dtype == torch.bool or offsets.is_complex():
            raise TypeError(f"offsets must hold integers, got dtype {offsets.dtype}")
        if offsets.is_floating_point() and not bool((torch.isfinite(offsets) & (offsets == offsets.round())).all()):
            raise ValueError("offsets must be whole numbers: free coefficients exist only at integer offsets")
        return offsets
