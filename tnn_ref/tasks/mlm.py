"""Masked-language-model pretraining (BERT/RoBERTa recipe) for the bidirectional models.

15% of positions are chosen; of those 80% become the mask token, 10% a random token, 10% stay as
they are; the loss is taken on the chosen positions only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tnn_ref.checks import require_positive_int, require_tokens
from tnn_ref.tasks.batches import random_chunks, require_seed, windows

IGNORE = -100  # cross_entropy's ignore_index: positions that carry no loss


def mask_tokens(tokens: torch.Tensor, mask_id: int, vocab_size: int, generator: torch.Generator,
                rate: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets): inputs with chosen positions replaced 80/10/10, targets = IGNORE elsewhere.

    tokens: (b, n) ids in [0, vocab_size); mask_id: the id of the mask token (may equal vocab_size when
    the model's vocabulary has one extra entry for it); random replacements are drawn from [0, vocab_size).
    """
    require_positive_int("vocab_size", vocab_size)
    require_tokens("tokens", tokens, vocab_size)
    if isinstance(mask_id, bool) or not isinstance(mask_id, int) or mask_id < 0:
        raise ValueError(f"mask_id must be an int >= 0 (an id the model embeds), got {mask_id!r}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate!r}")
    chosen = torch.rand(tokens.shape, generator=generator) < rate  # (b, n)
    action = torch.rand(tokens.shape, generator=generator)  # (b, n): which of 80/10/10
    random_ids = torch.randint(0, vocab_size, tokens.shape, generator=generator)
    inputs = tokens.clone()
    inputs[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    targets = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    return inputs, targets


def mlm_loss_and_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean loss over masked positions, number of correct predictions there, and their count.

    logits (b, n, V), targets (b, n) (IGNORE where nothing was masked). A batch with no masked position
    has loss 0 (with a zero gradient), not the NaN of a mean over nothing.
    """
    if logits.ndim != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits must have shape (b, n, vocab) and targets (b, n); got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    flat_logits, flat_targets = logits.float().flatten(0, 1), targets.flatten()  # (b*n, V), (b*n,)
    chosen = flat_targets != IGNORE
    count = int(chosen.sum())
    if count == 0:
        return flat_logits.sum() * 0.0, torch.zeros((), dtype=torch.long, device=logits.device), 0
    loss = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE)
    correct = (flat_logits[chosen].argmax(-1) == flat_targets[chosen]).sum()
    return loss, correct, count


class MlmTask:
    """Masked-LM training on random chunks of a token stream; evaluation on fixed windows of a split
    with a fixed masking seed, so every model is scored on the same masked positions."""

    def __init__(self, train: torch.Tensor, val: torch.Tensor, vocab_size: int, batch_size: int, context: int,
                 eval_context: int | None = None, eval_tokens: int | None = None, eval_batch_size: int = 8):
        """train, val: 1-D token streams; vocab_size, batch_size, context, eval_batch_size: positive ints;
        eval_context, eval_tokens: None or positive ints. Everything evaluation needs is checked here, so
        a bad setting fails before training, not at the first evaluation."""
        for name, value in (("vocab_size", vocab_size), ("batch_size", batch_size), ("context", context),
                            ("eval_batch_size", eval_batch_size)):
            require_positive_int(name, value)
        for name, value in (("eval_context", eval_context), ("eval_tokens", eval_tokens)):
            if value is not None:
                require_positive_int(name, value)
        for name, value in (("train", train), ("val", val)):
            if not isinstance(value, torch.Tensor) or value.ndim != 1:
                raise ValueError(f"{name} must be a 1-D torch.Tensor of token ids, got {_describe(value)}")
        if batch_size * (context + 1) > len(train):
            raise ValueError(f"a batch of {batch_size} x {context + 1} tokens is larger than the training data ({len(train)})")
        self.train, self.val = train, val
        self.vocab_size, self.mask_id = vocab_size, vocab_size  # the model's vocabulary has one more id: the mask
        self.batch_size, self.context = batch_size, context
        self.eval_context = context if eval_context is None else eval_context
        self.eval_tokens, self.eval_batch_size = eval_tokens, eval_batch_size
        scored = len(val) if eval_tokens is None else min(len(val), eval_tokens + 1)
        if scored < self.eval_context + 1:
            raise ValueError(f"evaluation needs at least eval_context + 1 = {self.eval_context + 1} validation tokens, "
                             f"but val (cut to eval_tokens + 1) holds {scored}")

    def batch(self, generator: torch.Generator):
        chunk, _ = random_chunks(self.train, self.batch_size, self.context, generator)  # (b, context)
        return mask_tokens(chunk, self.mask_id, self.vocab_size, generator)

    def loss(self, model, batch) -> torch.Tensor:
        inputs, targets = batch
        return mlm_loss_and_accuracy(model(inputs), targets)[0]

    def evaluate(self, model, data: torch.Tensor | None = None, context: int | None = None) -> dict:
        return evaluate_mlm(model, self.val if data is None else data, self.eval_context if context is None else context,
                            self.mask_id, self.vocab_size, self.eval_batch_size, self.eval_tokens)


@torch.no_grad()
def evaluate_mlm(model, data: torch.Tensor, context: int, mask_id: int, vocab_size: int, batch_size: int = 8,
                 max_tokens: int | None = None, seed: int = 1234) -> dict:
    """Masked-token loss (nats) and accuracy over non-overlapping windows of `data`, masking seeded by `seed`.

    All windows are masked in one draw before batching, so `batch_size` changes memory, never the positions scored.
    context, batch_size: positive ints; max_tokens: None or a positive int; seed: an int.
    """
    require_positive_int("batch_size", batch_size)
    seed = require_seed("seed", seed)
    if max_tokens is not None:
        require_positive_int("max_tokens", max_tokens)
        data = data[: max_tokens + 1]
    inputs, _ = windows(data, context)  # (w, context)
    masked_all, targets_all = mask_tokens(inputs, mask_id, vocab_size, torch.Generator().manual_seed(seed))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    try:
        for start in range(0, len(inputs), batch_size):
            masked, targets = masked_all[start : start + batch_size], targets_all[start : start + batch_size]
            if not bool((targets != IGNORE).any()):
                continue  # no masked position here: nothing to score (and cross_entropy would give NaN)
            loss, right, chosen = mlm_loss_and_accuracy(model(masked.to(device)), targets.to(device))
            total_loss += loss.item() * chosen
            correct += int(right)
            count += chosen
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError(f"no position of the {inputs.numel()} evaluated tokens was masked (each is, with "
                         "probability 0.15): evaluate on more data")
    return {"val_loss": total_loss / count, "val_accuracy": correct / count, "val_bpc": total_loss / count / math.log(2)}


def _describe(value) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
