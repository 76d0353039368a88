"""Language-model evaluation over a whole split at any context length.

The split is cut into non-overlapping windows of `context` tokens (see `tnn_ref.tasks.batches.windows`):
every token after the first is predicted exactly once, from the tokens before it in its own window
(on average context/2 of them). The same windows are used for every model, so the numbers compare.

`python -m tnn_ref.evaluate CHECKPOINT` scores a checkpoint of `python -m tnn_ref.train` (see
`tnn_ref.training.cli`); under torchrun the windows are split across the processes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tnn_ref.checks import require_positive_int, require_positive_int_or_none
from tnn_ref.tasks.batches import target_ends, windows, windows_ending_at
from tnn_ref.training import distributed as dist


def require_token_stream(name: str, data) -> torch.Tensor:
    """`data` must be a 1-D integer torch tensor of token ids, shape (n,)."""
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{name} must be a 1-D torch.Tensor of token ids, got {type(data).__name__}")
    if data.dtype == torch.bool or data.is_floating_point() or data.is_complex():
        raise TypeError(f"{name} must hold integer token ids (torch.long), got dtype {data.dtype}")
    if data.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got shape {tuple(data.shape)}")
    return data


def require_eval_window(tokens: int, context: int, max_tokens: int | None = None, *, data_name: str = "data",
                        context_name: str = "context", limit_name: str = "max_tokens") -> None:
    """Refuse a (context, max_tokens) pair that leaves not one window of context + 1 of `tokens` tokens.

    The names are those the caller's user knows (e.g. "--eval-tokens"), so the message points at them.
    """
    require_positive_int(context_name, context)
    require_positive_int_or_none(limit_name, max_tokens)
    if max_tokens is not None and max_tokens < context <= tokens - 1:
        raise ValueError(f"{limit_name}={max_tokens} is shorter than one window of {context_name}={context} "
                         f"tokens: pass {limit_name} >= {context_name} (or no limit: all of {data_name})")
    if tokens < context + 1:
        raise ValueError(f"{context_name}={context} needs at least {context + 1} tokens, but {data_name} holds "
                         f"{tokens}: lower {context_name} to at most {max(tokens - 1, 0)}")


@torch.no_grad()
def evaluate_lm(model, data: torch.Tensor, context: int, batch_size: int = 8, max_tokens: int | None = None,
                device=None, distributed: bool = False) -> dict:
    """Mean next-token loss of `model` on `data` (1-D token ids): {"loss": nats, "bpc": bits, "ppl", "tokens"}.

    max_tokens (a positive int, or None for all) limits the evaluation to the first max_tokens tokens
    of `data` (quick runs); it must leave at least one window of `context` tokens.
    distributed=True (every process of a torchrun job calls it): rank r scores windows r, r+R, ... and
    the sums are added over all R processes, so every process returns the whole split's numbers.
    """
    require_token_stream("data", data)
    require_positive_int("batch_size", batch_size)
    require_eval_window(len(data), context, max_tokens)
    if max_tokens is not None:
        data = data[: max_tokens + 1]  # (max_tokens + 1,): max_tokens predicted tokens
    device = device or next(model.parameters()).device
    inputs, targets = windows(data, context)  # (w, context) each
    if distributed:
        here = dist.place()
        inputs, targets = inputs[here.rank :: here.world], targets[here.rank :: here.world]  # this rank's windows
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(inputs), batch_size):
            x = inputs[start : start + batch_size].to(device)
            y = targets[start : start + batch_size].to(device)
            logits = model(x).float()  # (b, context, vocab)
            total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
            count += y.numel()
    finally:
        model.train(was_training)
    if distributed:
        total, count = dist.sum_across_ranks([total, count], device)
    loss = total / count
    return {"loss": loss, "bpc": loss / math.log(2), "ppl": math.exp(min(loss, 700.0)), "tokens": int(count)}


@torch.no_grad()
def evaluate_lm_same_targets(model, data: torch.Tensor, lengths, score: int = 512, blocks: int = 8,
                             device=None) -> dict:
    """Next-token loss on the *same* target tokens at every context length, for length extrapolation.

    The targets are `blocks` blocks of `score` consecutive tokens spread over `data` (`target_ends`). For a
    length L >= score, each block is scored as the last `score` positions of one window of L tokens that ends
    at it (each target sees L - score .. L - 1 tokens of context); for L < score (L must divide score), the
    block is tiled by score / L windows of L tokens, every position scored (0 .. L - 1 tokens of context).
    So a difference between lengths is the model's, never the text's. Windows run one at a time (batch 1).
    Returns {"targets": blocks * score, "ends": [...], "by_length": {L: {"loss", "bpc"}},
    "block_losses": {L: [mean nats of each block]}} (the blocks, paired across lengths and models, are the
    units a bootstrap can resample).
    """
    require_token_stream("data", data)
    lengths = [require_positive_int(f"lengths[{i}]", L) for i, L in enumerate(lengths)]
    require_positive_int("score", score)
    bad = [L for L in lengths if L < score and score % L]
    if not lengths or bad:
        raise ValueError(f"lengths must be non-empty, each at least score={score} or a divisor of it, got {lengths}")
    ends = target_ends(len(data), max(max(lengths), score), score, blocks)
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    by_length, block_losses = {}, {}
    try:
        for length in lengths:
            tail = min(length, score)  # scored positions per window
            tiles = score // tail  # windows per block, ending at e, e - L, ...
            losses = []
            for end in ends:
                inputs, targets = windows_ending_at(data, [end - k * tail for k in range(tiles)], length)  # (tiles, L)
                logits = model(inputs.to(device))[:, -tail:]  # (tiles, tail, vocab): the scored tail only
                logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 up, float64 kept
                losses.append(F.cross_entropy(logits.flatten(0, 1), targets[:, -tail:].flatten().to(device)).item())
            block_losses[length] = losses
            loss = sum(losses) / len(losses)  # blocks are equal-sized, so this is the mean over all targets
            by_length[length] = {"loss": loss, "bpc": loss / math.log(2)}
    finally:
        model.train(was_training)
    return {"targets": blocks * score, "ends": ends, "by_length": by_length, "block_losses": block_losses}
