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
from tnn_ref.tasks.batches import windows
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
