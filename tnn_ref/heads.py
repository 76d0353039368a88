"""The parts every sequence model here shares, TNN or Transformer: token embedding, output heads, pooling."""

from __future__ import annotations

import math

import torch
from torch import nn

from tnn_ref.checks import (
    require_dropout,
    require_features,
    require_float_tensor,
    require_module_device,
    require_positive_int,
    require_same_device,
    require_tokens,
)


class TokenEmbedding(nn.Module):
    """Token ids (batch, n) -> vectors (batch, n, d), scaled by sqrt(d); no positional embedding at all."""

    def __init__(self, vocab_size: int, dim: int, dropout: float):
        super().__init__()
        self.vocab_size = require_positive_int("vocab_size", vocab_size)
        require_positive_int("dim", dim)
        self.weight = nn.Parameter(torch.empty(vocab_size, dim))
        nn.init.normal_(self.weight, std=dim ** -0.5)  # fairseq's init: unit-variance vectors after the sqrt(d) scale
        self.scale = math.sqrt(dim)
        self.dropout = nn.Dropout(require_dropout("dropout", dropout))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (b, n) ids in [0, vocab_size), b >= 0 (a batch of 0 gives an empty (0, n, d)) -> (b, n, d)."""
        require_tokens("tokens", tokens, self.vocab_size, allow_empty_batch=True)
        require_module_device("tokens", tokens, self)
        if tokens.dtype not in (torch.int32, torch.int64):
            tokens = tokens.long()  # embedding reads int32/int64 ids only; uint8 or int16 ids convert exactly
        return self.dropout(self.scale * nn.functional.embedding(tokens, self.weight))  # (b, n, d)


class MaskedLmHead(nn.Module):
    """RoBERTa's LM head: dense -> GELU -> LayerNorm -> projection tied to the embedding, plus a bias."""

    def __init__(self, dim: int, vocab_size: int):
        super().__init__()
        self.dim = require_positive_int("dim", dim)
        self.vocab_size = require_positive_int("vocab_size", vocab_size)
        self.dense = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, hidden: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """hidden (..., d), embedding (vocab, d) the tied token vectors -> logits (..., vocab)."""
        require_features("hidden", hidden, self.dim)
        require_module_device("hidden", hidden, self)
        require_float_tensor("embedding", embedding)
        if tuple(embedding.shape) != (self.vocab_size, self.dim):
            raise ValueError(f"embedding must have shape (vocab_size, dim) = {(self.vocab_size, self.dim)}, "
                             f"got {tuple(embedding.shape)}")
        require_same_device("embedding", embedding, "hidden", hidden)
        h = self.norm(nn.functional.gelu(self.dense(hidden)))  # (b, n, d)
        return h @ embedding.T + self.bias  # (b, n, vocab)


class ClassificationHead(nn.Module):
    """Pooled features (batch, d) -> logits (batch, classes): dropout, dense, tanh, dropout, projection."""

    def __init__(self, dim: int, num_classes: int, dropout: float):
        super().__init__()
        self.dim = require_positive_int("dim", dim)
        require_positive_int("num_classes", num_classes)
        require_dropout("dropout", dropout)
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, dim), nn.Tanh(), nn.Dropout(dropout),
                                 nn.Linear(dim, num_classes))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled (..., d) -> (..., num_classes); a batch of 0 gives (0, num_classes)."""
        require_features("pooled", pooled, self.dim)
        require_module_device("pooled", pooled, self)
        return self.net(pooled)


def mean_pool(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the sequence axis of x (b, n, d) -> (b, d); with a (b, n) boolean mask, over the True positions.

    A row whose mask is all False (a sequence with no real token) pools to zeros; checking for it here
    would cost a device sync on every call.
    """
    require_float_tensor("x", x)
    if x.ndim != 3 or x.shape[1] < 1:
        raise ValueError(f"x must have shape (batch, n, d) with n >= 1, got {tuple(x.shape)}")
    if mask is None:
        return x.mean(dim=1)
    if not isinstance(mask, torch.Tensor) or mask.shape != x.shape[:2] or mask.dtype != torch.bool:
        got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a boolean tensor of shape {tuple(x.shape[:2])}, got {got}")
    require_same_device("mask", mask, "x", x)
    weights = mask.to(x.dtype)[..., None]  # (b, n, 1)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (b, d)


class PatchEmbedding(nn.Module):
    """Images (b, channels, H, W) -> a grid of patch vectors (b, H/p, W/p, d), by a strided convolution."""

    def __init__(self, channels: int, dim: int, patch_size: int):
        super().__init__()
        self.channels = require_positive_int("channels", channels)
        require_positive_int("dim", dim)
        self.patch_size = require_positive_int("patch_size", patch_size)
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (b, channels, H, W), H and W positive multiples of patch_size, b >= 0 -> (b, H/p, W/p, d)."""
        require_float_tensor("images", images)
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise ValueError(f"images must have shape (batch, {self.channels}, H, W), got {tuple(images.shape)}")
        p = self.patch_size
        if images.shape[2] % p or images.shape[3] % p or images.shape[2] == 0 or images.shape[3] == 0:
            raise ValueError(f"images height and width must be positive multiples of patch_size={p}, got {tuple(images.shape[2:])}")
        require_module_device("images", images, self)
        return self.proj(images).permute(0, 2, 3, 1)  # (b, d, H/p, W/p) -> (b, H/p, W/p, d)
