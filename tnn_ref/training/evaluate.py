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

from tnn_ref.tasks.batches import windows
from tnn_ref.training import distributed as dist


@torch.no_grad()
def evaluate_lm(model, data: torch.Tensor, context: int, batch_size: int = 8, max_tokens: int | None = None,
                device=None, distributed: bool = False) -> dict:
    """Mean next-token loss of `model` on `data` (1-D token ids): {"loss": nats, "bpc": bits, "ppl", "tokens"}.

    max_tokens limits the evaluation to the first max_tokens tokens of `data` (quick runs).
    distributed=True (every process of a torchrun job calls it): rank r scores windows r, r+R, ... and
    the sums are added over all R processes, so every process returns the whole split's numbers.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if max_tokens is not None:
        data = data[: max_tokens + 1]
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

