"""Sampling text from a causal language model by re-running it on the growing sequence.

This is the simplest decoder: each new token costs a full forward pass over everything so far
(for TNN an FFT of the whole prefix, O(t log t) per token).
"""

from __future__ import annotations

import torch

from tnn_ref.checks import require_tokens


@torch.no_grad()
def generate(model, prompt: torch.Tensor, steps: int, temperature: float = 1.0, top_k: int | None = None,
             generator: torch.Generator | None = None, context: int | None = None) -> torch.Tensor:
    """prompt (b, t) token ids -> (b, t + steps): greedy when temperature == 0, else sampled.

    context: feed at most the last `context` tokens (None: the whole sequence, TNN needs no limit).
    """
    vocab = model.config.vocab_size
    require_tokens("prompt", prompt, vocab)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and not 1 <= top_k <= vocab:
        raise ValueError(f"top_k must be in [1, {vocab}], got {top_k}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tokens = prompt.to(device)
    try:
        for _ in range(steps):
            window = tokens if context is None else tokens[:, -context:]
            logits = model(window)[:, -1].float()  # (b, vocab): the next-token distribution
            if temperature == 0:
                next_token = logits.argmax(-1, keepdim=True)  # (b, 1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (b, 1)
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = torch.softmax(logits, dim=-1).cpu()
                next_token = torch.multinomial(probs, 1, generator=generator).to(device)  # (b, 1)
            tokens = torch.cat([tokens, next_token], dim=1)
    finally:
        model.train(was_training)
    return tokens
