"""Whole TNN models: the causal language model, the bidirectional encoder, the image classifier.

Configurations live in one dataclass, `TnnConfig`, with the paper's presets as constructors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from tnn_ref.blocks import CHANNEL_MIXERS, Gtu, TnnBlock
from tnn_ref.checks import (
    require_bool,
    require_dropout,
    require_nonnegative_int,
    require_positive_int,
    require_positive_int_or_none,
)
from tnn_ref.decay import check_learnable_decay
from tnn_ref.heads import ClassificationHead, MaskedLmHead, PatchEmbedding, TokenEmbedding, mean_pool
from tnn_ref.rpe import ACTIVATIONS, FEATURES
from tnn_ref.tno import Tno, Tno2d


def count_parameters(model: nn.Module) -> int:
    """Number of distinct trainable parameters (a tied embedding counts once)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class TnnConfig:
    """Every size and option of a TNN model. The defaults are a small character-level model."""

    vocab_size: int = 65
    dim: int = 128  # d, the model width
    layers: int = 4  # number of TNN blocks
    expand: int = 3  # e: the GTU works on e*d channels
    glu_dim: int | None = None  # GLU hidden size; None means d
    rpe_dim: int = 32  # r, the RPE's width
    rpe_layers: int = 3  # L, the RPE's hidden blocks
    rpe_act: str = "relu"
    rpe_features: str = "index"
    decay: float | None = 0.99  # lambda; None switches the decay off
    learnable_decay: bool | str = False  # False, True / "floor" (lambda..1), "sigmoid" (both ways): tnn_ref.decay
    dropout: float = 0.0
    prenorm: bool = True
    gtu_gate: bool = True  # False: the GTU without its gate (an ablation)
    channel_mixer: str = "glu"  # "glu" (the paper), "mlp" (ungated) or "none" (ablations)
    tno_coefficients: str = "rpe"  # "rpe" (the paper) or "free": a table up to max_len (an ablation)
    max_len: int | None = None  # only for tno_coefficients="free"
    num_classes: int = 2  # classification heads (encoder, images)
    image_size: int = 224
    patch_size: int = 16
    channels: int = 3

    def __post_init__(self):
        for name in ("vocab_size", "dim", "layers", "expand", "rpe_dim", "num_classes", "image_size", "patch_size", "channels"):
            require_positive_int(name, getattr(self, name))
        require_positive_int_or_none("glu_dim", self.glu_dim)
        require_nonnegative_int("rpe_layers", self.rpe_layers)
        if not isinstance(self.rpe_act, str) or self.rpe_act not in ACTIVATIONS:
            raise ValueError(f"rpe_act must be one of {sorted(ACTIVATIONS)}, got {self.rpe_act!r}")
        if self.rpe_features not in FEATURES:
            raise ValueError(f"rpe_features must be one of {FEATURES}, got {self.rpe_features!r}")
        require_dropout("dropout", self.dropout)
        check_learnable_decay(self.decay, self.learnable_decay)
        require_bool("prenorm", self.prenorm)
        require_bool("gtu_gate", self.gtu_gate)
        if self.channel_mixer not in CHANNEL_MIXERS:
            raise ValueError(f"channel_mixer must be one of {CHANNEL_MIXERS}, got {self.channel_mixer!r}")
        self._check_coefficients()
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} must be a multiple of patch_size={self.patch_size}")

    def _check_coefficients(self) -> None:
        """max_len belongs to the free-coefficient ablation only: the RPE has no maximum length."""
        if self.tno_coefficients not in ("rpe", "free"):
            raise ValueError(f"tno_coefficients must be 'rpe' or 'free', got {self.tno_coefficients!r}")
        require_positive_int_or_none("max_len", self.max_len)
        if self.tno_coefficients == "free" and self.max_len is None:
            raise ValueError("tno_coefficients='free' needs a positive max_len (the table's length), got None")
        if self.tno_coefficients == "rpe" and self.max_len is not None:
            raise ValueError(f"max_len={self.max_len!r} only applies to tno_coefficients='free'; the RPE has no "
                             "maximum length, so leave max_len=None")

    @property
    def glu_hidden(self) -> int:
        return self.dim if self.glu_dim is None else self.glu_dim

    def with_(self, **changes) -> TnnConfig:
        """A copy with some fields changed: TnnConfig.paper_lm().with_(vocab_size=65)."""
        return replace(self, **changes)

    @classmethod
    def paper_lm(cls) -> TnnConfig:
        """The paper's WikiText-103 model (as the authors' code builds it): 48.67M parameters with fairseq's GPT-2 BPE dictionary (50,265 entries)."""
        return cls(vocab_size=50265, dim=512, layers=7, expand=3, glu_dim=512, rpe_dim=64, rpe_layers=6,
                   decay=0.99, dropout=0.1, prenorm=True)

    @classmethod
    def paper_roberta(cls) -> TnnConfig:
        """The bidirectional (RoBERTa-style) model: 12 post-norm blocks of width 768, lambda = 0.99."""
        return cls(vocab_size=50265, dim=768, layers=12, expand=3, glu_dim=768, rpe_dim=64, rpe_layers=6,
                   decay=0.99, dropout=0.1, prenorm=False)

    @classmethod
    def paper_deit_tiny(cls) -> TnnConfig:
        """The DeiT-tiny-sized image model: width 192, 12 blocks, patches of 16, RPE 48 x 1, lambda = 0.9."""
        return cls(dim=192, layers=12, expand=3, glu_dim=192, rpe_dim=48, rpe_layers=1, decay=0.9,
                   dropout=0.0, prenorm=True, num_classes=1000, image_size=224, patch_size=16, channels=3)

    def tno(self, causal: bool) -> Tno:
        """The 1-D operator a GTU of this configuration mixes its e*d channels with."""
        return Tno(self.expand * self.dim, causal=causal, decay=self.decay, learnable_decay=self.learnable_decay,
                   rpe_dim=self.rpe_dim, rpe_layers=self.rpe_layers, rpe_act=self.rpe_act, rpe_features=self.rpe_features,
                   coefficients=self.tno_coefficients, max_len=self.max_len)

    def tno2d(self) -> Tno2d:
        """The 2-D image operator; it has RPE coefficients only (no free-coefficient table)."""
        if self.tno_coefficients != "rpe":
            raise ValueError(f"image models use RPE coefficients only; tno_coefficients={self.tno_coefficients!r} "
                             "would be ignored, so it is refused")
        return Tno2d(self.expand * self.dim, decay=self.decay, learnable_decay=self.learnable_decay,
                     rpe_dim=self.rpe_dim, rpe_layers=self.rpe_layers, rpe_act=self.rpe_act, rpe_features=self.rpe_features)

    def block(self, tno: nn.Module) -> TnnBlock:
        gtu = Gtu(self.dim, self.expand, tno, gate=self.gtu_gate)
        return TnnBlock(self.dim, gtu, self.glu_hidden, dropout=self.dropout, prenorm=self.prenorm,
                        channel_mixer=self.channel_mixer)


def require_tnn_config(config) -> None:
    """The models are built from a TnnConfig (a TransformerConfig or a dict has other fields)."""
    if not isinstance(config, TnnConfig):
        raise TypeError(f"config must be a TnnConfig, got {type(config).__name__}")


class TnnLM(nn.Module):
    """Causal TNN language model: tokens (batch, n) -> next-token logits (batch, n, vocab).

    Embedding * sqrt(d), `layers` pre-norm TNN blocks with causal TNOs, final LayerNorm, output
    projection tied to the embedding.
    """

    def __init__(self, config: TnnConfig):
        super().__init__()
        require_tnn_config(config)
        self.config = config
        self.embed = TokenEmbedding(config.vocab_size, config.dim, config.dropout)
        self.blocks = nn.ModuleList(config.block(config.tno(causal=True)) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.dim)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)  # (b, n, d)
        for block in self.blocks:
            x = block(x)  # (b, n, d)
        return self.final_norm(x)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hidden(tokens) @ self.embed.weight.T  # (b, n, vocab): tied output projection


class TnnEncoder(nn.Module):
    """Bidirectional TNN: a masked-LM head (`forward`) and a mean-pool classification head (`classify`).

    Post-norm blocks when config.prenorm is False (the reference's RoBERTa-style model), pre-norm
    blocks plus a final LayerNorm otherwise.
    """

    def __init__(self, config: TnnConfig):
        super().__init__()
        require_tnn_config(config)
        self.config = config
        self.embed = TokenEmbedding(config.vocab_size, config.dim, config.dropout)
        self.blocks = nn.ModuleList(config.block(config.tno(causal=False)) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.dim) if config.prenorm else nn.Identity()
        self.lm_head = MaskedLmHead(config.dim, config.vocab_size)
        self.classifier = ClassificationHead(config.dim, config.num_classes, config.dropout)

    def hidden(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (b, n) -> (b, n, d); mask (b, n) bool, True at real tokens: padding is zeroed before every
        TNO, so the real positions do not depend on how much padding follows them."""
        x = self.embed(tokens)  # (b, n, d)
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)  # (b, n, d)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Masked-LM logits (batch, n, vocab) at every position."""
        return self.lm_head(self.hidden(tokens), self.embed.weight)  # (b, n, vocab)

    def classify(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits (batch, num_classes) from the mean over tokens (over mask == True ones if given; the
        padding is then also kept out of every TNO)."""
        return self.classifier(mean_pool(self.hidden(tokens, mask), mask))


class TnnImageClassifier(nn.Module):
    """Images (batch, channels, H, W) -> class logits: patches, 2-D GTUs (T_H v + T_W v), mean pooling."""

    def __init__(self, config: TnnConfig):
        super().__init__()
        require_tnn_config(config)
        self.config = config
        self.patch_embed = PatchEmbedding(config.channels, config.dim, config.patch_size)
        self.blocks = nn.ModuleList(config.block(config.tno2d()) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.dim)
        self.classifier = ClassificationHead(config.dim, config.num_classes, config.dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)  # (b, H/p, W/p, d)
        for block in self.blocks:
            x = block(x)  # (b, H/p, W/p, d)
        x = self.final_norm(x).flatten(1, 2)  # (b, H/p * W/p, d)
        return self.classifier(x.mean(dim=1))  # (b, classes)
