"""Reference levels for language modelling: add-alpha smoothed unigram and bigram models of the training split.

A model that is no better than these has learned only character frequencies (unigram) or which character
follows which (bigram): the lines every learning curve of notebooks 06 and 10 is read against.
"""

from __future__ import annotations

import math

import torch

from tnn_ref.checks import require_float_at_least, require_positive_int


def ngram_log_probs(train: torch.Tensor, vocab_size: int, order: int, alpha: float = 1.0) -> torch.Tensor:
    """log p(next | previous order - 1 tokens) from counts over `train` (1-D ids), add-alpha smoothed.

    order 1: shape (vocab,); order 2: (vocab, vocab), row = the previous token. float64.
    """
    require_positive_int("vocab_size", vocab_size)
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (unigram) or 2 (bigram), got {order!r}")
    require_float_at_least("alpha", alpha, 0.0, strict=True)
    if not isinstance(train, torch.Tensor) or train.ndim != 1 or len(train) < order:
        raise ValueError(f"train must be a 1-D tensor of at least {order} token ids")
    train = train.long().cpu()
    if order == 1:
        counts = torch.bincount(train, minlength=vocab_size).double()  # (V,)
    else:
        pairs = train[:-1] * vocab_size + train[1:]  # (N-1,): one id per (previous, next) pair
        counts = torch.bincount(pairs, minlength=vocab_size**2).double().view(vocab_size, vocab_size)  # (V, V)
    counts = counts + alpha
    return counts.log() - counts.sum(-1, keepdim=True).log()


def ngram_loss(log_probs: torch.Tensor, data: torch.Tensor, positions: torch.Tensor | None = None) -> float:
    """Mean nats of predicting data[i] for i in `positions` (default: every i >= 1) with an n-gram table.

    Position i is predicted from data[i - 1] (bigram) or from nothing (unigram), so with the same
    positions as a neural model's targets the two numbers compare."""
    data = data.long().cpu()
    positions = torch.arange(1, len(data)) if positions is None else torch.as_tensor(positions).long()
    if len(positions) == 0 or positions.min() < 1 or positions.max() >= len(data):
        raise ValueError(f"positions must be non-empty and lie in [1, len(data) - 1] = [1, {len(data) - 1}]")
    if log_probs.ndim == 1:
        picked = log_probs[data[positions]]  # (P,)
    else:
        picked = log_probs[data[positions - 1], data[positions]]  # (P,): row = the previous token
    return float(-picked.mean())


def bits(nats: float) -> float:
    """Nats per token as bits per token."""
    return nats / math.log(2)
