"""Sampling text from a causal language model, three ways.

* mode="fft": re-run the model on the whole sequence for every new token (any causal model; for TNN
  an FFT of the prefix, O(t log t) per token);
* mode="cache": a TnnLM fed one token at a time, each TNO keeping its past inputs (O(t) per token);
* mode="ssm": a TnnLM fed one token at a time, each TNO run as a diagonal state-space model
  (constant work per token; tnn_ref.ssm).
All three give the same tokens under greedy decoding (tests/test_decoding.py).
"""

from __future__ import annotations

import torch

from tnn_ref.checks import require_tokens
from tnn_ref.decoding import MODES, LmDecoder


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None, generator) -> torch.Tensor:
    """logits (b, vocab) -> token ids (b, 1): argmax when temperature == 0, else a (top-k) sample."""
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (b, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1).cpu()
    return torch.multinomial(probs, 1, generator=generator).to(logits.device)


@torch.no_grad()
def generate(model, prompt: torch.Tensor, steps: int, mode: str = "fft", temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None,
             context: int | None = None, horizon: int | None = None) -> torch.Tensor:
    """prompt (b, t) token ids -> (b, t + steps): greedy when temperature == 0, else sampled.

    context (fft mode only): feed at most the last `context` tokens (None: all; TNN needs no limit).
    horizon (ssm mode only): kernel length each SSM reproduces exactly (see `LmDecoder`); None: all positions.
    """
    vocab = model.config.vocab_size
    require_tokens("prompt", prompt, vocab)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
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
        if mode == "fft":
            for _ in range(steps):
                window = tokens if context is None else tokens[:, -context:]
                logits = model(window)[:, -1]  # (b, vocab): the next-token distribution
                tokens = torch.cat([tokens, next_token(logits, temperature, top_k, generator)], dim=1)
        elif steps > 0:
            decoder = LmDecoder(model, tokens.shape[0], tokens.shape[1] + steps, mode, horizon)
            for t in range(tokens.shape[1]):  # read the prompt; only the last logits matter
                logits = decoder.step(tokens[:, t])
            for i in range(steps):
                new = next_token(logits, temperature, top_k, generator)  # (b, 1)
                tokens = torch.cat([tokens, new], dim=1)
                if i + 1 < steps:
                    logits = decoder.step(new[:, 0])
    finally:
        model.train(was_training)
    return tokens
