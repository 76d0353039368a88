"""Associative recall over a long gap: key-value pairs at the start, a query key at the very end.

    k3 v7 k0 v2 k9 v5 k4 v1 | ~ ~ ~ ... ~ (about 1,000 distractor tokens) ... ~ | ? k9   ->  5

The answer is the value that followed the queried key. A model must bring the pairs (positions
0 .. 2P-1) and the query (position n-1) together across the whole sequence: the synthetic tasks of
the long-convolution literature (H3, Hyena) use this to test exactly what a long kernel can carry.

Token ids: distractors [0, noise), keys [noise, noise + keys), values [noise + keys, noise + keys +
values), then one query marker. Keys are distinct within a sequence, and so are values: with
values == pairs every sequence holds every value once, so nothing but the key-value pairing tells
the answer, and a model that ignores the query is right 1 / values of the time, like chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tnn_ref.checks import require_positive_int, require_tokens
from tnn_ref.tasks.batches import require_seed


@dataclass(frozen=True)
class RecallConfig:
    """The sequence layout: `pairs` key-value pairs, distractors, the query marker, the query key."""

    length: int = 1024  # n, tokens per sequence
    pairs: int = 4  # P, key-value pairs at the start
    keys: int = 8  # key symbols (each sequence uses P distinct ones)
    values: int = 4  # value symbols = classes (each sequence uses P distinct ones)
    noise: int = 8  # distractor symbols filling the gap

    def __post_init__(self):
        for name in ("length", "pairs", "keys", "values", "noise"):
            require_positive_int(name, getattr(self, name))
        for name in ("keys", "values"):
            if getattr(self, name) < self.pairs:
                raise ValueError(f"{name} ({getattr(self, name)}) must be >= pairs ({self.pairs}): {name} are distinct "
                                 "within a sequence")
        if self.length < 2 * self.pairs + 2:
            raise ValueError(f"length must be >= 2 * pairs + 2 = {2 * self.pairs + 2} (the pairs, the marker, the query), "
                             f"got {self.length}")

    @property
    def key_offset(self) -> int:
        return self.noise

    @property
    def value_offset(self) -> int:
        return self.noise + self.keys

    @property
    def query_marker(self) -> int:
        return self.noise + self.keys + self.values

    @property
    def vocab_size(self) -> int:
        return self.query_marker + 1


def associative_recall(count: int, config: RecallConfig = RecallConfig(), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (count, length) long, labels (count,) long in [0, values)), seeded and deterministic."""
    require_positive_int("count", count)
    _require_config(config)
    generator = torch.Generator().manual_seed(require_seed("seed", seed))
    p = config.pairs
    keys = torch.rand(count, config.keys, generator=generator).argsort(dim=1)[:, :p]  # (count, P): distinct per row
    values = torch.rand(count, config.values, generator=generator).argsort(dim=1)[:, :p]  # (count, P): distinct per row
    asked = torch.randint(p, (count,), generator=generator)  # (count,): which pair the query names
    gap = config.length - 2 * p - 2
    tokens = torch.empty(count, config.length, dtype=torch.long)
    tokens[:, 0 : 2 * p : 2] = keys + config.key_offset  # keys at even positions
    tokens[:, 1 : 2 * p : 2] = values + config.value_offset  # each value right after its key
    tokens[:, 2 * p : 2 * p + gap] = torch.randint(config.noise, (count, gap), generator=generator)
    tokens[:, -2] = config.query_marker
    tokens[:, -1] = keys[torch.arange(count), asked] + config.key_offset
    return tokens, values[torch.arange(count), asked]


def recall_answer(tokens: torch.Tensor, config: RecallConfig) -> torch.Tensor:
    """The answers (N,) read back from the tokens (N, n) alone, without assuming where the pairs are.

    The query key is the last token; it must occur exactly once earlier (not counting the marker before
    it), followed by a value token. Raises ValueError when a row breaks that rule.
    """
    _require_recall_tokens(tokens, config)
    query = tokens[:, -1:]  # (N, 1)
    found = tokens[:, :-2] == query  # (N, n-2): earlier occurrences of the query key
    counts = found.sum(dim=1)
    if not bool((counts == 1).all()):
        row = int((counts != 1).nonzero()[0])
        raise ValueError(f"row {row}: the query key occurs {int(counts[row])} times before the query, expected once")
    position = found.long().argmax(dim=1)  # (N,): where the queried key sits
    answer = tokens[torch.arange(len(tokens)), position + 1] - config.value_offset  # the token right after it
    if not bool(((answer >= 0) & (answer < config.values)).all()):
        raise ValueError("a queried key is not followed by a value token")
    return answer


def query_blind_accuracy(tokens: torch.Tensor, config: RecallConfig) -> float:
    """The best expected accuracy of any predictor that sees the pairs but not the query.

    The query names one of the P pairs uniformly, so the best blind guess is the most frequent value
    among them, right with probability (its count) / P. Chance, knowing nothing, is 1 / values.
    """
    _require_recall_tokens(tokens, config)
    p = config.pairs
    values = tokens[:, 1 : 2 * p : 2] - config.value_offset  # (N, P)
    if not bool(((values >= 0) & (values < config.values)).all()):
        raise ValueError(f"tokens must hold value tokens at positions 1, 3, .., {2 * p - 1} (ids in "
                         f"[{config.value_offset}, {config.query_marker})), as associative_recall lays them out")
    counts = torch.nn.functional.one_hot(values, config.values).sum(dim=1)  # (N, values)
    return float(counts.max(dim=1).values.float().mean() / p)


def _require_config(config) -> None:
    if not isinstance(config, RecallConfig):
        raise TypeError(f"config must be a RecallConfig, got {type(config).__name__}")


def _require_recall_tokens(tokens, config: RecallConfig) -> None:
    """tokens (N, n) of ids in [0, config.vocab_size), n >= 2 * pairs + 2 (the pairs, the marker, the query)."""
    _require_config(config)
    require_tokens("tokens", tokens, config.vocab_size)
    shortest = 2 * config.pairs + 2
    if tokens.shape[1] < shortest:
        raise ValueError(f"tokens must have shape (N, n) with n >= 2 * pairs + 2 = {shortest}, got "
                         f"{tuple(tokens.shape)}")
