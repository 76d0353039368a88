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

from tnn_ref.baselines import TransformerEncoder
from tnn_ref.checks import require_positive_int, require_same_device, require_tokens
from tnn_ref.model import TnnEncoder, TnnLM
from tnn_ref.ssm import decay_horizon
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
    """TNO(v)_t = sum_{k <= t} c_k v_{t-k} from a cache of every past input: O(t * D) per token.

    horizon: keep only the last `horizon` inputs (a ring buffer) and drop lags >= horizon, O(horizon * D)
    per token at any position: the comparator of a trimmed SSM (lags that far weigh lambda^horizon).
    """

    def __init__(self, tno: Tno, batch: int, max_len: int, horizon: int | None = None):
        require_fixed_kernel(tno)
        require_positive_int("batch", batch)
        require_positive_int("max_len", max_len)
        _require_horizon(horizon)
        size = max_len if horizon is None else horizon
        with torch.no_grad():
            c, _ = tno.kernel(size)  # (N, D): the decayed causal kernel
        self.kernel = c
        # ring buffer weights: position p of the buffer holds lag (t - p) mod N, read off one reversed kernel twice
        self.ring = torch.cat([c.flip(0), c.flip(0)]) if horizon is not None else None  # (2N, D)
        self.inputs = torch.zeros(batch, size, tno.dim, device=c.device, dtype=c.dtype)  # (b, N, D)
        self.t, self.trimmed = 0, horizon is not None

    def prefill(self, v: torch.Tensor) -> None:
        """Store a whole prompt's inputs v (b, T, D) at once (its outputs come from the FFT forward)."""
        size, T = self.inputs.shape[1], v.shape[1]
        if not self.trimmed and self.t + T > size:
            raise ValueError(f"the cache holds {size} positions; decode with a larger max_len")
        for start in range(0, T, size):  # a prompt longer than the ring buffer: only its last `size` stay
            chunk = v[:, start : start + size]
            slots = (self.t + start + torch.arange(chunk.shape[1], device=v.device)) % size
            self.inputs[:, slots] = chunk.to(self.inputs.dtype)
        self.t += T

    def step(self, v: torch.Tensor) -> torch.Tensor:
        """v (b, D): the input at the next position -> TNO output there (b, D)."""
        _require_step_input("v", v, (self.inputs.shape[0], self.inputs.shape[2]))
        size = self.inputs.shape[1]
        if not self.trimmed:
            if self.t >= size:
                raise ValueError(f"the cache holds {size} positions; decode with a larger max_len")
            self.inputs[:, self.t] = v
            self.t += 1
            past = self.inputs[:, : self.t].flip(1)  # (b, t, D): v_t, v_{t-1}, ..., v_0
            return (past * self.kernel[: self.t]).sum(1).to(v.dtype)  # (b, D)
        slot = self.t % size
        self.inputs[:, slot] = v
        self.t += 1
        weights = self.ring[size - 1 - slot : 2 * size - 1 - slot]  # (N, D): c[(slot - p) mod N] at buffer position p
        return torch.linalg.vecdot(self.inputs, weights, dim=1).to(v.dtype)  # (b, D); unwritten slots are zero


def _require_horizon(horizon) -> None:
    """None (exact: a kernel of max_len) or a positive int."""
    if horizon is not None:
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be 'auto', None or a positive int, got {horizon!r}")


def default_horizon(tno: Tno, max_len: int) -> int | None:
    """The kernel length a decoder needs: the decay's horizon (lags past it weigh < 1e-12 of the nearest)
    when it is shorter than max_len; else None (exact: a kernel of max_len), as without a decay."""
    rates = None if tno.decay is None else tno.decay.rates(torch.float64)
    horizon = decay_horizon(rates)
    return horizon if horizon is not None and horizon < max_len else None


class SsmTno:
    """TNO(v)_t from the recurrent state of the TNO's kernel as a diagonal SSM: constant work per token.

    horizon: None (exact at every position: a kernel of max_len, and decoding stops at max_len), or the
    kernel length the SSM reproduces exactly (`default_horizon`: where the decay has made the kernel
    negligible), which sets the cost of a step and lets decoding run on past max_len, lags beyond it
    being replaced by the kernel's periodic repeat times lambda^(horizon + 1).
    """

    def __init__(self, tno: Tno, batch: int, max_len: int, horizon: int | None = None):
        require_fixed_kernel(tno)
        require_positive_int("batch", batch)
        require_positive_int("max_len", max_len)
        _require_horizon(horizon)
        self.ssm = tno.ssm(max_len if horizon is None else horizon)  # exact for lags < horizon
        self.state = self.ssm.initial_state(batch)  # (b, D, J): complex64 for a float32 model
        self.t, self.max_len = 0, (max_len if horizon is None else None)

    def _check_room(self, count: int) -> None:
        if self.max_len is not None and self.t + count > self.max_len:
            raise ValueError(f"the SSM is exact for {self.max_len} positions; decode with a larger max_len")

    def prefill(self, v: torch.Tensor) -> None:
        """Set the state from a whole prompt's inputs v (b, T, D) in one pass (`DiagonalSsm.state_after`)."""
        if self.t != 0:
            raise ValueError("prefill starts a sequence: call it before any step")
        self._check_room(v.shape[1])
        self.state = self.ssm.state_after(v)  # (b, D, J)
        self.t = v.shape[1]

    def step(self, v: torch.Tensor) -> torch.Tensor:
        """v (b, D): the input at the next position -> TNO output there (b, D)."""
        _require_step_input("v", v, tuple(self.state.shape[:2]))
        self._check_room(1)
        self.t += 1
        self.state, y = self.ssm.step(self.state, v.to(self.state.real.dtype))
        return y.to(v.dtype)  # (b, D)


def _resolve_horizon(horizon, mode: str, tno: Tno, max_len: int) -> int | None:
    """None: exact everywhere (kernel of max_len); "auto": the decay's horizon for mode='ssm', the full
    cache for mode='cache' (the O(t) comparator); an int: that horizon in either mode."""
    if horizon == "auto":
        return default_horizon(tno, max_len) if mode == "ssm" else None
    _require_horizon(horizon)
    return horizon


class LmDecoder:
    """Feeds a TnnLM a prompt in one pass, then one token at a time: `prefill(tokens (b, T))` and
    `step(tokens (b,))` each return the logits (b, vocab) for the next token.

    batch: sequences decoded side by side; max_len: positions each holds (a decoder whose horizon is
    shorter than max_len may run past it); horizon: None, "auto" (default) or an int, see `SsmTno`,
    `CacheTno` and `default_horizon`: "auto" gives the SSM the decay's horizon and keeps the full cache.
    """

    def __init__(self, model: TnnLM, batch: int, max_len: int, mode: str = "ssm", horizon="auto"):
        if not isinstance(model, TnnLM):
            raise TypeError(f"model must be a TnnLM (a causal TNN), got {type(model).__name__}")
        if mode not in ("cache", "ssm"):
            raise ValueError(f"mode must be 'cache' or 'ssm' for step-by-step decoding, got {mode!r}")
        require_positive_int("batch", batch)
        require_positive_int("max_len", max_len)
        self.model, self.batch = model, batch
        tnos = [block.token_mixer.toep for block in model.blocks]
        for tno in tnos:
            require_fixed_kernel(tno)  # before any state is built: one clear refusal, whichever mode
        state = CacheTno if mode == "cache" else SsmTno
        self.tno_states = [state(tno, batch, max_len, _resolve_horizon(horizon, mode, tno, max_len)) for tno in tnos]
        self.t = 0

    def _through_blocks(self, x: torch.Tensor, tno_output) -> torch.Tensor:
        """x (b, [T,] d) through every block, the TNO's output given by tno_output(tno_state, gtu, v)."""
        for block, tno_state in zip(self.model.blocks, self.tno_states):
            gtu = block.token_mixer
            x = block.around(x, lambda h: gtu.around(h, lambda v: tno_output(tno_state, gtu, v)))
        return x

    def _check_tokens(self, tokens, ndim: int) -> None:
        shape = "(batch,)" if ndim == 1 else "(batch, T)"
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != ndim or len(tokens) != self.batch:
            got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must be a tensor of shape {shape} with batch = {self.batch} (one row per "
                             f"sequence), got {got}")
        require_same_device("tokens", tokens, "the model", self.model.embed.weight)

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor) -> torch.Tensor:
        """Read a prompt (b, T) in one parallel pass: the FFT forward of every block, each TNO's state set
        from its inputs; returns the logits (b, vocab) after the last prompt token."""
        self._check_tokens(tokens, 2)
        if self.t != 0:
            raise ValueError("prefill reads the start of a sequence: call it before any step")

        def fft_and_keep(tno_state, gtu, v):
            tno_state.prefill(v)  # (b, T, e*d): the state after the prompt
            return gtu.toep(v)  # (b, T, e*d): the prompt's TNO outputs, by FFT

        x = self._through_blocks(self.model.embed(tokens), fft_and_keep)  # (b, T, d)
        self.t = tokens.shape[1]
        return self.model.final_norm(x[:, -1]) @ self.model.embed.weight.T  # (b, vocab)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (b,): one id per sequence, the next position's input -> logits (b, vocab)."""
        self._check_tokens(tokens, 1)
        x = self.model.embed(tokens[:, None])[:, 0]  # (b, d): the same embedding, sqrt(d) scale and checks
        x = self._through_blocks(x, lambda tno_state, gtu, v: tno_state.step(v))  # (b, d)
        self.t += 1
        return self.model.final_norm(x) @ self.model.embed.weight.T  # (b, vocab)


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
    if horizon != "auto":
        if mode == "fft":
            raise ValueError(f"horizon sets the kernel length of mode='cache' or 'ssm'; mode='fft' re-reads the "
                             f"whole sequence, so leave horizon='auto'; got {horizon!r}")
        _require_horizon(horizon)


@torch.no_grad()
def generate(model, prompt: torch.Tensor, steps: int, mode: str = "fft", temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None,
             context: int | None = None, horizon="auto") -> torch.Tensor:
    """prompt (b, t) token ids -> (b, t + steps): greedy when temperature == 0, else sampled.

    steps: an int >= 0; temperature: a finite number >= 0; top_k: None or an int in [1, vocab];
    context (mode='fft' only): a positive int, feed at most the last `context` tokens (None: all; TNN needs no limit).
    horizon (mode='cache' or 'ssm'): "auto" (default: the SSM keeps the decay's horizon, the cache every
    position), None (exact at every position) or an int (see `LmDecoder`). The prompt is read in one
    parallel pass (`LmDecoder.prefill`), then one step per new token.
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
            logits = decoder.prefill(tokens)  # (b, vocab): the whole prompt in one pass
            for i in range(steps):
                new = next_token(logits, temperature, top_k, generator)  # (b, 1)
                tokens = torch.cat([tokens, new], dim=1)
                if i + 1 < steps:
                    logits = decoder.step(new[:, 0])
    finally:
        model.train(was_training)
    return tokens
