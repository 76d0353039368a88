"""The token mixer (GTU), the channel mixer (GLU), and the TNN block that chains them with norms."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tnn_ref.checks import require_bool, require_dropout, require_features, require_positive_int
from tnn_ref.norm import SimpleRMSNorm


class Gtu(nn.Module):
    """Gated Toeplitz Unit: o = W_o(SiLU(W_u x) * TNO(SiLU(W_v x))), with d -> e*d -> d projections.

    `tno` is the operator that mixes the e*d channels along the sequence (a `Tno`, or a `Tno2d` for
    images); its `dim` must equal `expand * dim`.
    """

    def __init__(self, dim: int, expand: int, tno: nn.Module):
        super().__init__()
        require_positive_int("dim", dim)
        require_positive_int("expand", expand)
        if not isinstance(tno, nn.Module):
            raise TypeError(f"tno must be an nn.Module (a Tno or Tno2d), got {type(tno).__name__}")
        hidden = expand * dim
        if getattr(tno, "dim", hidden) != hidden:
            raise ValueError(f"tno must mix expand * dim = {hidden} channels, got a TNO of dim {tno.dim}")
        self.u_proj = nn.Linear(dim, hidden)
        self.v_proj = nn.Linear(dim, hidden)
        self.o = nn.Linear(hidden, dim)
        self.dim = dim
        self.toep = tno

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_features("x", x, self.dim)
        u = F.silu(self.u_proj(x))  # (..., n, e*d): the gate
        v = F.silu(self.v_proj(x))  # (..., n, e*d): what the TNO mixes along the sequence
        return self.o(u * self.toep(v))  # (..., n, d)


class Glu(nn.Module):
    """Gated Linear Unit, the channel mixer: W3(SiLU(W1 x) * (W2 x))."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        require_positive_int("dim", dim)
        require_positive_int("hidden", hidden)
        self.dim = dim
        self.l1 = nn.Linear(dim, hidden)
        self.l2 = nn.Linear(dim, hidden)
        self.l3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_features("x", x, self.dim)
        return self.l3(F.silu(self.l1(x)) * self.l2(x))  # (..., d)


class TnnBlock(nn.Module):
    """One TNN layer: a GTU then a GLU, each with a residual connection and SimpleRMSNorm.

    prenorm=True (LM, images): x + Dropout(GTU(norm(x))), then x + Dropout(GLU(norm(x))).
    prenorm=False (the reference's RoBERTa-style encoder): norm(x + Dropout(GTU(x))), likewise for the GLU.
    """

    def __init__(self, dim: int, gtu: Gtu, glu_dim: int, dropout: float = 0.0, prenorm: bool = True):
        super().__init__()
        require_positive_int("dim", dim)
        if not isinstance(gtu, Gtu) or gtu.dim != dim:
            width = getattr(gtu, "dim", None)
            raise ValueError(f"gtu must be a Gtu of width dim = {dim}, got {type(gtu).__name__} of width {width}")
        require_dropout("dropout", dropout)
        self.prenorm = require_bool("prenorm", prenorm)
        self.token_norm = SimpleRMSNorm(dim)
        self.token_mixer = gtu
        self.feature_norm = SimpleRMSNorm(dim)
        self.feature_mixer = Glu(dim, glu_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., n, dim) -> (..., n, dim); for a TNO on images, (b, H, W, dim)."""
        if self.prenorm:
            x = x + self.dropout(self.token_mixer(self.token_norm(x)))
            return x + self.dropout(self.feature_mixer(self.feature_norm(x)))
        x = self.token_norm(x + self.dropout(self.token_mixer(x)))
        return self.feature_norm(x + self.dropout(self.feature_mixer(x)))
