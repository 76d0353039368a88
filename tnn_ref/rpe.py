"""Relative Position Encoder (RPE): a small MLP from a relative offset k to D Toeplitz coefficients.

    Linear(1 -> r), then `layers` x [SimpleRMSNorm(r) -> act -> Linear(r -> r)],
    then SimpleRMSNorm(r) -> act -> Linear(r -> D).

Its parameter count depends on r, layers and D, never on the sequence length: the same weights give
coefficients for any offset, which is what lets TNN run at lengths it never saw.
"""

from __future__ import annotations

import torch
from torch import nn

from tnn_ref.norm import SimpleRMSNorm

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU}
FEATURES = ("index", "normalized", "exp")


def rpe_features(offsets: torch.Tensor, features: str, length: int | None) -> torch.Tensor:
    """The scalar the RPE reads for each offset k: k ("index"), k/n ("normalized") or exp(k/n) ("exp")."""
    if features == "index":
        return offsets
    if length is None or length < 1:
        raise ValueError(f"features={features!r} divides by the sequence length: pass length=n (a positive int)")
    scaled = offsets / length
    return scaled if features == "normalized" else torch.exp(scaled)


class Rpe(nn.Module):
    """offsets (m,) -> coefficients (m, out_dim), as the authors' code (Doraemonzzz/tnn-pytorch) builds it; LM setting rpe_dim=64, layers=6."""

    def __init__(self, out_dim: int, rpe_dim: int = 64, layers: int = 6, act: str = "relu", features: str = "index"):
        super().__init__()
        if out_dim < 1 or rpe_dim < 1:
            raise ValueError(f"out_dim and rpe_dim must be positive, got out_dim={out_dim}, rpe_dim={rpe_dim}")
        if layers < 0:
            raise ValueError(f"layers must be >= 0, got {layers}")
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        self.features = features
        self.pos_proj = nn.Linear(1, rpe_dim)
        self.layers = nn.ModuleList(
            nn.Sequential(SimpleRMSNorm(rpe_dim), ACTIVATIONS[act](), nn.Linear(rpe_dim, rpe_dim)) for _ in range(layers)
        )
        self.out = nn.Sequential(SimpleRMSNorm(rpe_dim), ACTIVATIONS[act](), nn.Linear(rpe_dim, out_dim))

    def forward(self, offsets: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """offsets: (m,) relative positions k (ints or floats); length: n, needed by the i/n features."""
        if not isinstance(offsets, torch.Tensor) or offsets.ndim != 1:
            raise ValueError("offsets must be a 1-D tensor of relative positions k")
        weight = self.pos_proj.weight
        x = rpe_features(offsets.to(device=weight.device, dtype=weight.dtype), self.features, length)
        x = self.pos_proj(x[:, None])  # (m, 1) -> (m, rpe_dim)
        for layer in self.layers:
            x = layer(x)  # (m, rpe_dim)
        return self.out(x)  # (m, out_dim)
