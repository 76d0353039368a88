"""Batches of a token stream: random contiguous chunks for training, non-overlapping windows for evaluation."""

from __future__ import annotations

import torch


def random_chunks(data: torch.Tensor, batch_size: int, context: int, generator: torch.Generator):
    """A batch of contiguous chunks at random offsets: inputs (b, context), next-token targets (b, context)."""
    if batch_size < 1 or context < 1:
        raise ValueError(f"batch_size and context must be positive, got batch_size={batch_size}, context={context}")
    if len(data) < context + 1:
        raise ValueError(f"context={context} needs at least {context + 1} tokens of data, got {len(data)}")
    starts = torch.randint(0, len(data) - context, (batch_size,), generator=generator)
    rows = starts[:, None] + torch.arange(context + 1)  # (b, context+1) indices
    chunk = data[rows]
    return chunk[:, :-1], chunk[:, 1:]


def windows(data: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows for evaluation: inputs (w, context), targets (w, context).

    Window i covers tokens [i*context, (i+1)*context] (the last token of one window is the first of the
    next), so every token after the first is predicted exactly once, each from at most `context`
    tokens of its own window; a tail shorter than `context` is dropped.
    """
    if context < 1:
        raise ValueError(f"context must be a positive length, got {context}")
    count = (len(data) - 1) // context
    if count < 1:
        raise ValueError(f"context={context} is longer than the data ({len(data)} tokens)")
    starts = torch.arange(count) * context
    rows = starts[:, None] + torch.arange(context + 1)  # (w, context+1)
    chunk = data[rows]
    return chunk[:, :-1], chunk[:, 1:]
