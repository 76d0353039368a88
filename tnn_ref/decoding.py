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

import math
import numbers

import torch
import torch.nn.functional as F

from tnn_ref.baselines import TransformerEncoder
from tnn_ref.checks import require_positive_int, require_same_device, require_tokens
from tnn_ref.model import TnnEncoder, TnnLM
from tnn_ref.tno import Tno

MODES = ("fft", "cache", "ssm")


def require_fixed_kernel(tno: Tno) -> None:
    """Step-by-step decoding needs one causal kernel for every length: refuse what has none.

    rpe features 'normalized' and 'exp' feed the RPE k/n, so each coefficient changes with the
    sequence length n; free coefficients (no `features`) and features='index' are fixed.
    """
    if not isinstance(tno, Tno):
        raise TypeError(f"tno must be a Tno, got {type(tno).__name__}")
    if not tno.causal:
        raise ValueError("only a causal TNO can be decoded token by token; this one is bidirectional")
    features = getattr(tno.source, "features", "index")
    if features != "index":
        raise ValueError(f"rpe features={features!r} make every coefficient depend on the sequence length, so there "
                         "is no fixed kernel to decode with step by step; use features='index' (or mode='fft')")


def _require_step_input(name: str, v: torch.Tensor, shape: tuple[int, int]) -> None:
    """One position of every sequence: a tensor of exactly `shape` (a smaller one would broadcast silently)."""
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
    if tuple(v.shape) != shape:
        raise ValueError(f"{name} must have shape (batch, dim) = {shape}, got {tuple(v.shape)}")


class CacheTno:
    """TNO(v)_t = sum_{k <= t} c_k v_{t-k} from a cache of every past input."""

    def __init__(self, tno: Tno, batch: int, max_len: int):
        require_fixed_kernel(tno)
        require_positive_int("batch", batch)
        require_positive_int("max_len", max_len)
        with torch.no_grad():
            c, _ = tno.kernel(max_len)  # (N, D): the decayed causal kernel
        self.kernel = c
        self.inputs = torch.zeros(batch, max_len, tno.dim, device=c.device, dtype=c.dtype)  # (b, N, D)
        self.t = 0

    def step(self, v: torch.Tensor) -> torch.Tensor:
        """v (b, D): the input at the next position -> TNO output there (b, D)."""
        _require_step_input("v", v, (self.inputs.shape[0], self.inputs.shape[2]))
        if self.t >= self.inputs.shape[1]:
            raise ValueError(f"the cache holds {self.inputs.shape[1]} positions; decode with a larger max_len")
        self.inputs[:, self.t] = v
        self.t += 1
        past = self.inputs[:, : self.t].flip(1)  # (b, t, D): v_t, v_{t-1}, ..., v_0
        return (past * self.kernel[: self.t]).sum(1).to(v.dtype)  # (b, D)


def _require_horizon(horizon) -> None:
    if horizon is not None:
        require_positive_int("horizon", horizon)


class SsmTno:
    """TNO(v)_t from the recurrent state of the TNO's kernel as a diagonal SSM: constant work per token.

    horizon: the kernel length the SSM reproduces exactly (default max_len, exact at every position).
    A shorter one (see `tnn_ref.ssm.decay_horizon`) makes each step cheaper and lets decoding run past
    max_len; lags beyond it are replaced by the kernel's periodic repeat times lambda^horizon.
    """

    def __init__(self, tno: Tno, batch: int, max_len: int, horizon: int | None = None):
        require_fixed_kernel(tno)
        require_positive_int("batch", batch)
        require_positive_int("max_len", max_len)
        _require_horizon(horizon)
        self.ssm = tno.ssm(max_len if horizon is None else horizon)  # exact for lags < horizon
        self.state = self.ssm.initial_state(batch)  # (b, D, J) complex128
        self.t, self.max_len = 0, (max_len if horizon is None else None)

    def step(self, v: torch.Tensor) -> torch.Tensor:
        """v (b, D): the input at the next position -> TNO output there (b, D)."""
        _require_step_input("v", v, tuple(self.state.shape[:2]))
        if self.max_len is not None and self.t >= self.max_len:
            raise ValueError(f"the SSM is exact for {self.max_len} positions; decode with a larger max_len")
        self.t += 1
        self.state, y = self.ssm.step(self.state, v.double())
        return y.to(v.dtype)  # (b, D)


class LmDecoder:
    """Feeds a TnnLM one token at a time: `step(tokens (b,)) -> logits (b, vocab)` for the next token.

    batch: sequences decoded side by side; max_len: positions each holds (with mode='ssm' and a
    horizon, decoding may run past it); horizon: see `SsmTno` (mode='ssm' only).
    """

    def __init__(self, model: TnnLM, batch: int, max_len: int, mode: str = "ssm", horizon: int | None = None):
        if not isinstance(model, TnnLM):
            raise TypeError(f"model must be a TnnLM (a causal TNN), got {type(model).__name__}")
        if mode not in ("cache", "ssm"):
            raise ValueError(f"mode must be 'cache' or 'ssm' for step-by-step decoding, got {mode!r}")
        require_positive_int("batch", batch)
        require_positive_int("max_len", max_len)
        if horizon is not None and mode != "ssm":
            raise ValueError(f"horizon must be None or a positive int, and only with mode='ssm'; got {horizon!r}")
        _require_horizon(horizon)
        self.model, self.batch = model, batch
        tnos = [block.token_mixer.toep for block in model.blocks]
        for tno in tnos:
            require_fixed_kernel(tno)  # before any state is built: one clear refusal, whichever mode
        if mode == "cache":
            self.tno_states = [CacheTno(tno, batch, max_len) for tno in tnos]
        else:
            self.tno_states = [SsmTno(tno, batch, max_len, horizon) for tno in tnos]

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (b,): one id per sequence, the next position's input -> logits (b, vocab)."""
        model = self.model
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != 1 or len(tokens) != self.batch:
            shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must be a 1-D tensor of {self.batch} ids (one per sequence), got {shape}")
        require_same_device("tokens", tokens, "the model", model.embed.weight)
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


def check_sampling(temperature, top_k, vocab_size: int, generator=None) -> None:
    """temperature: a finite number >= 0 (0 = greedy); top_k: None or an int in [1, vocab_size];
    generator: None or a CPU torch.Generator (the draw happens on the CPU)."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a number >= 0 (0 means greedy), got {temperature!r}")
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= vocab_size):
        raise ValueError(f"top_k must be in [1, {vocab_size}] (an int up to the vocabulary size) or None, got {top_k!r}")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be None or a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != "cpu":
            raise ValueError(f"generator must be a CPU torch.Generator (tokens are drawn on the CPU), got one on "
                             f"{generator.device}")


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None, generator) -> torch.Tensor:
    """logits (b, vocab) -> token ids (b, 1): argmax when temperature == 0, else a (top-k) sample."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.ndim != 2:
        what = f"{logits.dtype} {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a floating-point tensor of shape (batch, vocab), got {what}")
    check_sampling(temperature, top_k, logits.shape[1], generator)
    logits = logits.float()
    top = logits.max(-1, keepdim=True).values  # (b, 1): NaN if any logit is NaN
    if not bool(torch.isfinite(top).all()):
        raise ValueError("logits hold NaN or infinite values (or a row of -inf only): the model's output is not a "
                         "distribution; check the model's weights")
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = (logits - top) / temperature  # (b, vocab) <= 0, top at 0: no overflow however small the temperature
    if top_k is not None:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (b, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1).cpu()
    return torch.multinomial(probs, 1, generator=generator).to(logits.device)


def _require_steps(steps) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be >= 0 and an int (the number of tokens to add), got {steps!r}")


def _check_generate_options(model, mode: str, context, horizon) -> None:
    """Which model each mode takes, and the options that belong to one mode only."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(model, (TnnEncoder, TransformerEncoder)):
        raise TypeError(f"model must be a causal language model; {type(model).__name__} is bidirectional (it sees "
                        "the tokens it would predict)")
    if mode != "fft" and not isinstance(model, TnnLM):
        raise TypeError(f"mode={mode!r} decodes a TnnLM step by step, got {type(model).__name__}; use mode='fft'")
    if context is not None:
        if mode != "fft":
            raise ValueError(f"context limits what mode='fft' re-reads; mode={mode!r} reads every token once, so "
                             "pass context=None")
        require_positive_int("context", context)
    if horizon is not None:
        if mode != "ssm":
            raise ValueError(f"horizon must be None or a positive int, and only with mode='ssm'; got {horizon!r} "
                             f"with mode={mode!r}")
        _require_horizon(horizon)


@torch.no_grad()
def generate(model, prompt: torch.Tensor, steps: int, mode: str = "fft", temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None,
             context: int | None = None, horizon: int | None = None) -> torch.Tensor:
    """prompt (b, t) token ids -> (b, t + steps): greedy when temperature == 0, else sampled.

    steps: an int >= 0; temperature: a finite number >= 0; top_k: None or an int in [1, vocab];
    context (mode='fft' only): a positive int, feed at most the last `context` tokens (None: all; TNN needs no limit).
    horizon (mode='ssm' only): kernel length each SSM reproduces exactly (see `LmDecoder`); None: all positions.
    """
    config = getattr(model, "config", None)
    if not isinstance(model, torch.nn.Module) or not hasattr(config, "vocab_size"):
        raise TypeError(f"model must be a language model with a config.vocab_size (TnnLM, TransformerLM), got "
                        f"{type(model).__name__}")
    vocab = config.vocab_size
    require_tokens("prompt", prompt, vocab)
    _check_generate_options(model, mode, context, horizon)
    _require_steps(steps)
    check_sampling(temperature, top_k, vocab, generator)
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
