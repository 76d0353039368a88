"""Token-by-token decoding of a causal `TnnLM`: every layer keeps a state instead of re-reading the prefix.

Everything in a TNN block except the TNO acts on one position at a time (projections, SiLU, norms, GLU),
so a decoder only needs, per layer, a way to produce TNO(v)_t from v_t and what it kept of v_<t:

* `CacheTno`: keep every past v (b, t, D) and take the dot product with the kernel: O(t * D) per token;
* `SsmTno`: keep the diagonal state-space model's state (b, D, J) (tnn_ref.ssm): O(J * D) per token,
  the same at every position.

`LmDecoder` runs one token through the whole model with one such state per layer; `generate` samples
text three ways:

* mode="fft": re-run the model on the whole sequence for every new token (any causal model; for TNN
  an FFT of the prefix, O(t log t) per token);
* mode="cache": a TnnLM fed one token at a time through `CacheTno` (O(t) per token);
* mode="ssm": a TnnLM fed one token at a time through `SsmTno` (constant work per token).
All three give the same tokens under greedy decoding (tests/test_generate.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tnn_ref.checks import require_tokens
from tnn_ref.model import TnnLM
from tnn_ref.tno import Tno

MODES = ("fft", "cache", "ssm")


class CacheTno:
    """TNO(v)_t = sum_{k <= t} c_k v_{t-k} from a cache of every past input."""

    def __init__(self, tno: Tno, batch: int, max_len: int):
        with torch.no_grad():
            c, _ = tno.kernel(max_len)  # (N, D): the decayed causal kernel
        self.kernel = c
        self.inputs = torch.zeros(batch, max_len, tno.dim, device=c.device, dtype=c.dtype)  # (b, N, D)
        self.t = 0

    def step(self, v: torch.Tensor) -> torch.Tensor:
        if self.t >= self.inputs.shape[1]:
            raise ValueError(f"the cache holds {self.inputs.shape[1]} positions; decode with a larger max_len")
        self.inputs[:, self.t] = v
        self.t += 1
        past = self.inputs[:, : self.t].flip(1)  # (b, t, D): v_t, v_{t-1}, ..., v_0
        return (past * self.kernel[: self.t]).sum(1).to(v.dtype)  # (b, D)


class SsmTno:
    """TNO(v)_t from the recurrent state of the TNO's kernel as a diagonal SSM: constant work per token.

    horizon: the kernel length the SSM reproduces exactly (default max_len, exact at every position).
    A shorter one (see `tnn_ref.ssm.decay_horizon`) makes each step cheaper and lets decoding run past
    max_len; lags beyond it are replaced by the kernel's periodic repeat times lambda^horizon.
    """

    def __init__(self, tno: Tno, batch: int, max_len: int, horizon: int | None = None):
        self.ssm = tno.ssm(horizon or max_len)  # exact for lags < horizon
        self.state = self.ssm.initial_state(batch)  # (b, D, J) complex128
        self.t, self.max_len = 0, (max_len if horizon is None else None)

    def step(self, v: torch.Tensor) -> torch.Tensor:
        if self.max_len is not None and self.t >= self.max_len:
            raise ValueError(f"the SSM is exact for {self.max_len} positions; decode with a larger max_len")
        self.t += 1
        self.state, y = self.ssm.step(self.state, v.double())
        return y.to(v.dtype)  # (b, D)


class LmDecoder:
    """Feeds a TnnLM one token at a time: `step(tokens (b,)) -> logits (b, vocab)` for the next token."""

    def __init__(self, model: TnnLM, batch: int, max_len: int, mode: str = "ssm", horizon: int | None = None):
        if not isinstance(model, TnnLM):
            raise TypeError(f"model must be a TnnLM (a causal TNN), got {type(model).__name__}")
        if mode not in ("cache", "ssm"):
            raise ValueError(f"mode must be 'cache' or 'ssm' for step-by-step decoding, got {mode!r}")
        if max_len < 1:
            raise ValueError(f"max_len must be a positive number of positions, got {max_len}")
        self.model = model
        if horizon is not None and (mode != "ssm" or horizon < 1):
            raise ValueError(f"horizon must be None or a positive int, and only with mode='ssm'; got {horizon!r}")
        tnos = [block.token_mixer.toep for block in model.blocks]
        if mode == "cache":
            self.tno_states = [CacheTno(tno, batch, max_len) for tno in tnos]
        else:
            self.tno_states = [SsmTno(tno, batch, max_len, horizon) for tno in tnos]

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        model = self.model
        x = model.embed(tokens[:, None])[:, 0]  # (b, d): the same embedding, sqrt(d) scale and checks
        for block, tno_state in zip(model.blocks, self.tno_states):
            gtu = block.token_mixer

            def token_mix(h):
                u = F.silu(gtu.u_proj(h))  # (b, e*d)
                v = F.silu(gtu.v_proj(h))  # (b, e*d)
                return gtu.o(u * tno_state.step(v))  # (b, d)

            if block.prenorm:
                x = x + token_mix(block.token_norm(x))
                x = x + block.feature_mixer(block.feature_norm(x))
            else:
                x = block.token_norm(x + token_mix(x))
                x = block.feature_norm(x + block.feature_mixer(x))
        return model.final_norm(x) @ model.embed.weight.T  # (b, vocab)


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
