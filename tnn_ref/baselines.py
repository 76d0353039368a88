"""Transformer baselines of matching width, on torch's scaled_dot_product_attention (SDPA).

Same call signatures as the TNN models (`TransformerLM(tokens)`, `TransformerEncoder(tokens)` and
`.classify(tokens)`, `TransformerImageClassifier(images)`), so every experiment can swap one for the
other. Positions: "sinusoidal" (added to the embedding, defined at any length), "alibi" (a linear
distance penalty on the attention scores, Press et al. 2022) or "none". Attention: "sdpa" (torch's fused
kernels, which never hold the n x n scores) or "materialised" (softmax(Q K^T / sqrt(d)) V written out, the
attention the paper's baselines ran, whose n x n scores are what costs O(n^2) memory).
A (batch, n) padding mask (True at real tokens) keeps padded keys out of every attention row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from tnn_ref.checks import (
    require_bool,
    require_dropout,
    require_features,
    require_float_tensor,
    require_nonnegative_int,
    require_positive_int,
    require_positive_int_or_none,
)
from tnn_ref.heads import ClassificationHead, MaskedLmHead, PatchEmbedding, TokenEmbedding, mean_pool

POSITIONS = ("sinusoidal", "alibi", "none")
ATTENTIONS = ("sdpa", "materialised")


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int = 65
    dim: int = 128
    layers: int = 4
    heads: int = 4
    ffn_dim: int | None = None  # None means 4 * dim
    dropout: float = 0.0
    position: str = "sinusoidal"
    num_classes: int = 2
    image_size: int = 224
    patch_size: int = 16
    channels: int = 3
    attention: str = "sdpa"

    def __post_init__(self):
        for name in ("vocab_size", "dim", "layers", "heads", "num_classes", "image_size", "patch_size", "channels"):
            require_positive_int(name, getattr(self, name))
        require_positive_int_or_none("ffn_dim", self.ffn_dim)
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        require_dropout("dropout", self.dropout)
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} must be a multiple of patch_size={self.patch_size}")

    @property
    def ffn_hidden(self) -> int:
        return 4 * self.dim if self.ffn_dim is None else self.ffn_dim

    def with_(self, **changes) -> TransformerConfig:
        return replace(self, **changes)

    @classmethod
    def paper_lm(cls) -> TransformerConfig:
        """The paper's Transformer LM baseline: 6 layers, width 512, 8 heads, FFN 2048 (44.65M in the paper)."""
        return cls(vocab_size=50265, dim=512, layers=6, heads=8, ffn_dim=2048, dropout=0.1)


def sinusoidal_positions(n: int, dim: int, device=None) -> torch.Tensor:
    """The original Transformer's position vectors (n, dim): sin on even, cos on odd features."""
    require_nonnegative_int("n", n)
    require_positive_int("dim", dim)
    position = torch.arange(n, device=device, dtype=torch.float32)[:, None]  # (n, 1)
    frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n, dim, device=device)
    table[:, 0::2] = torch.sin(position * frequency)  # (n, ceil(dim/2))
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])  # (n, floor(dim/2))
    return table


def alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi's head slopes: the geometric sequence 2^(-8/h), 2^(-16/h), ... (interleaved when h is no power of 2)."""
    require_positive_int("heads", heads)

    def power_of_two(h):
        return [2.0 ** (-8.0 * (i + 1) / h) for i in range(h)]

    if math.log2(heads).is_integer():
        return torch.tensor(power_of_two(heads))
    closest = 2 ** math.floor(math.log2(heads))
    extra = power_of_two(2 * closest)[0::2][: heads - closest]
    return torch.tensor(power_of_two(closest) + extra)


def alibi_bias(n: int, heads: int, causal: bool, device=None, rows: slice | None = None,
               keys: int | None = None) -> torch.Tensor:
    """Additive attention bias (heads, len(rows), keys): -slope * |i - j|, -inf above the diagonal when causal.

    rows selects the query positions (default all n); keys how many key positions (default n).
    """
    require_nonnegative_int("n", n)
    rows = _check_rows(rows, n)
    if keys is not None:
        require_nonnegative_int("keys", keys)
    query = torch.arange(rows.start, rows.stop, device=device)[:, None]  # (q, 1)
    key = torch.arange(n if keys is None else keys, device=device)[None, :]  # (1, k)
    distance = (query - key).abs().float()  # (q, k)
    bias = -alibi_slopes(heads).to(device)[:, None, None] * distance  # (h, q, k)
    if causal:
        bias = bias.masked_fill(key > query, float("-inf"))
    return bias


def _check_rows(rows: slice | None, n: int) -> slice:
    """rows: None (all n) or a slice(start, stop) of query positions with 0 <= start <= stop <= n and no step."""
    if rows is None:
        return slice(0, n)
    ok = (isinstance(rows, slice) and rows.step in (None, 1) and isinstance(rows.start, int) and isinstance(rows.stop, int)
          and 0 <= rows.start <= rows.stop <= n)
    if not ok:
        raise ValueError(f"rows must be None or slice(start, stop) with 0 <= start <= stop <= n = {n}, got {rows!r}")
    return rows


def padding_bias(mask: torch.Tensor, keys: int, dtype) -> torch.Tensor:
    """(b, n) bool, True at real tokens -> additive (b, 1, 1, keys) bias: 0 for real keys, -inf for padding."""
    bias = torch.zeros(mask.shape[0], 1, 1, keys, dtype=dtype, device=mask.device)
    return bias.masked_fill(~mask[:, None, None, :keys], float("-inf"))


def materialised_attention(q, k, v, causal: bool, bias: torch.Tensor | None = None, dropout_p: float = 0.0):
    """softmax(q k^T / sqrt(d/h) + bias) v with the (b, h, n, n) scores held in full: q, k, v (b, h, n, d/h).

    bias: additive, broadcastable to (b, h, n, n) (ALiBi, padding); causal adds -inf above the diagonal.
    """
    n = q.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (b, h, n, n): every pair, stored
    if bias is not None:
        scores = scores + bias
    if causal:
        future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)  # (n, n): j > i
        scores = scores.masked_fill(future, float("-inf"))
    weights = F.dropout(torch.softmax(scores, dim=-1), p=dropout_p)  # (b, h, n, n)
    return weights @ v  # (b, h, n, d/h)


def alibi_attention(q, k, v, causal: bool, dropout_p: float = 0.0, block: int = 1024,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """SDPA with the ALiBi bias, computed `block` queries at a time so memory is O(block * n), not O(n^2).

    q, k, v: (b, h, n, d/h). With the bias as an explicit mask SDPA takes its plain path, which would hold
    (b, h, n, n) scores at once: 4 GiB per head group at n = 16K. mask: (b, n) padding mask or None.
    """
    require_positive_int("block", block)
    for name, t in (("q", q), ("k", k), ("v", v)):
        require_float_tensor(name, t)
    if q.ndim != 4:
        raise ValueError(f"q must have shape (b, h, n, d/h), got {tuple(q.shape)}")
    for name, t in (("k", k), ("v", v)):
        if t.shape != q.shape:
            raise ValueError(f"{name} must have the shape of q {tuple(q.shape)}, got {tuple(t.shape)}")
    n, heads = q.shape[2], q.shape[1]
    outputs = []
    for start in range(0, n, block):
        stop = min(start + block, n)
        keys = stop if causal else n  # causal queries never look past their block
        bias = alibi_bias(n, heads, causal, q.device, rows=slice(start, stop), keys=keys).to(q.dtype)  # (h, q, keys)
        if mask is not None:
            bias = bias + padding_bias(mask, keys, q.dtype)  # (b, h, q, keys)
        outputs.append(F.scaled_dot_product_attention(q[:, :, start:stop], k[:, :, :keys], v[:, :, :keys],
                                                      attn_mask=bias, dropout_p=dropout_p))
    return torch.cat(outputs, dim=2)  # (b, h, n, d/h)


def require_transformer_config(config) -> None:
    """The baselines are built from a TransformerConfig (a TnnConfig has other fields)."""
    if not isinstance(config, TransformerConfig):
        raise TypeError(f"config must be a TransformerConfig, got {type(config).__name__}")


class SelfAttention(nn.Module):
    """Multi-head self-attention through F.scaled_dot_product_attention."""

    def __init__(self, dim: int, heads: int, dropout: float, causal: bool, alibi: bool, attention: str = "sdpa"):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        self.attention = attention
        require_positive_int("dim", dim)
        require_positive_int("heads", heads)
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        require_bool("causal", causal)
        self.dim = dim
        self.heads = heads
        self.causal = causal
        self.alibi = alibi
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (b, n, d) -> (b, n, d); mask (b, n) bool, True at real tokens: padded keys get no weight."""
        require_features("x", x, self.dim)
        if x.ndim != 3:
            raise ValueError(f"x must have shape (batch, n, {self.dim}), got {tuple(x.shape)}")
        b, n, d = x.shape
        require_padding_mask(mask, b, n, x.device)
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # each (b, h, n, d/h)
        drop = self.dropout if self.training else 0.0
        if self.attention == "materialised":
            bias = alibi_bias(n, self.heads, False, x.device).to(x.dtype) if self.alibi else None  # (h, n, n)
            if mask is not None:
                padding = padding_bias(mask, n, x.dtype)  # (b, 1, 1, n)
                bias = padding if bias is None else bias + padding
            y = materialised_attention(q, k, v, self.causal, bias, dropout_p=drop)
        elif self.alibi:
            y = alibi_attention(q, k, v, self.causal, dropout_p=drop, mask=mask)
        elif mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, dropout_p=drop)
        else:
            allowed = mask[:, None, None, :]  # (b, 1, 1, n): which keys each query may use
            if self.causal:
                allowed = allowed & torch.ones(n, n, dtype=torch.bool, device=x.device).tril()  # (b, 1, n, n)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=drop)
        return self.out(y.transpose(1, 2).reshape(b, n, d))  # (b, h, n, d/h) -> (b, n, d)


def require_padding_mask(mask, batch: int, n: int, device) -> None:
    """None, or a (batch, n) boolean tensor on `device` with at least one real token per row."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (batch, n):
        got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a boolean tensor of shape (batch, n) = {(batch, n)}, got {got}")
    if mask.device != torch.device(device):
        raise ValueError(f"mask is on {mask.device} but x is on {device}; move them to one device")
    if not bool(mask.any(dim=1).all()):
        raise ValueError("mask must mark at least one real token in every row (a row of padding only has no output)")


class TransformerBlock(nn.Module):
    """Pre-norm Transformer layer: x + attn(LN(x)), then x + FFN(LN(x)) with a GELU FFN."""

    def __init__(self, config: TransformerConfig, causal: bool):
        super().__init__()
        require_transformer_config(config)
        self.attn_norm = nn.LayerNorm(config.dim)
        self.attn = SelfAttention(config.dim, config.heads, config.dropout, causal, config.position == "alibi",
                                  config.attention)
        self.ffn_norm = nn.LayerNorm(config.dim)
        self.ffn = nn.Sequential(nn.Linear(config.dim, config.ffn_hidden), nn.GELU(), nn.Linear(config.ffn_hidden, config.dim))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.attn_norm(x), mask))
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class _TransformerTrunk(nn.Module):
    """Embedding (+ sinusoidal positions) and blocks; the LM and the encoder differ only in causality and head."""

    def __init__(self, config: TransformerConfig, causal: bool):
        super().__init__()
        require_transformer_config(config)
        self.config = config
        self.embed = TokenEmbedding(config.vocab_size, config.dim, config.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(config, causal) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.dim)

    def hidden(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (b, n) -> (b, n, d); mask (b, n) bool, True at real tokens (padded keys get no attention)."""
        x = self.embed(tokens)  # (b, n, d)
        if self.config.position == "sinusoidal":
            x = x + sinusoidal_positions(x.shape[1], x.shape[2], x.device).to(x.dtype)  # (n, d) broadcast over b
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)


class TransformerLM(_TransformerTrunk):
    """Causal Transformer LM: tokens (batch, n) -> logits (batch, n, vocab), output tied to the embedding."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config, causal=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hidden(tokens) @ self.embed.weight.T  # (b, n, vocab)


class TransformerEncoder(_TransformerTrunk):
    """Bidirectional Transformer with the same masked-LM and mean-pool classification heads as TnnEncoder."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config, causal=False)
        self.lm_head = MaskedLmHead(config.dim, config.vocab_size)
        self.classifier = ClassificationHead(config.dim, config.num_classes, config.dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.hidden(tokens), self.embed.weight)  # (b, n, vocab)

    def classify(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits from the mean over real tokens; with a mask, padded keys are also kept out of attention."""
        return self.classifier(mean_pool(self.hidden(tokens, mask), mask))


class TransformerImageClassifier(nn.Module):
    """ViT-style baseline: patches, 1-D sinusoidal positions over the flattened grid, mean pooling."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        require_transformer_config(config)
        self.config = config
        self.patch_embed = PatchEmbedding(config.channels, config.dim, config.patch_size)
        self.blocks = nn.ModuleList(TransformerBlock(config, causal=False) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.dim)
        self.classifier = ClassificationHead(config.dim, config.num_classes, config.dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images).flatten(1, 2)  # (b, H/p, W/p, d) -> (b, H/p * W/p, d)
        if self.config.position == "sinusoidal":
            x = x + sinusoidal_positions(x.shape[1], x.shape[2], x.device).to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.final_norm(x).mean(dim=1))  # (b, classes)
