"""Multi-query associative recall (MQAR; Arora et al. 2023, "Zoology"): every key is asked once, later.

    k3 v9 k0 v7 k5 v8 | k0 ~ ~ k3 ~ ~ ~ ~ ~ ~ k5 ~ ~ ...
    targets:            v7 . . v9 . . . . . . v8 . . ...   (. = IGNORE, not scored)

The first 2 * pairs tokens bind `pairs` keys to values; in the rest of the sequence each key appears
once more, as a query, and the model must output the value bound to it *at the query's position*
(causal language-model style, read per position). Every other position has target IGNORE (-100, what
`F.cross_entropy` skips by default), so the loss and the accuracy count query positions only.

The procedure follows Zoology's `multiquery_ar` (written afresh here), with three deliberate changes:

- vocabulary: keys are ids [0, vocab_size // 2), values [vocab_size // 2, vocab_size); each sequence
  draws its keys, and its values, without replacement;
- filler: the non-query positions after the pairs hold random *unbound* value ids (value ids that this
  sequence does not bind). So a key occurs exactly twice (its pair, its query) and a bound value exactly
  once (in its pair): nothing but the key-value binding tells the answer, and no filler token repeats it.
  (Zoology fills with random ids from the whole vocabulary, which can put a stray key or value there.)
- distances: Zoology places queries at every second position; here any position after the pairs can
  hold one. The query at position 2 * pairs + d - 1 sits at distance d (1, 2, ...) from the end of the
  pairs, with Zoology's power law P(d) ~ d^(power_a - 1): power_a = 0.01 strongly prefers short
  distances, power_a = 1 is uniform. The positions are drawn without replacement and assigned to the
  pairs in random order, so the order of the queries says nothing about the order of the pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tnn_ref.checks import require_float_at_least, require_positive_int

IGNORE = -100  # the target of every position that is not a query (F.cross_entropy's default ignore_index)
ROWS_PER_CHUNK = 1024  # sequences drawn at once


@dataclass(frozen=True)
class MqarConfig:
    """`pairs` key-value pairs, then `length - 2 * pairs` positions holding one query per key and filler."""

    length: int = 256  # n, tokens per sequence
    pairs: int = 8  # P, key-value pairs at the start (and queries after them)
    vocab_size: int = 128  # keys in the lower half of the ids, values in the upper half
    power_a: float = 0.01  # Zoology's power law over query distances: P(d) ~ d^(power_a - 1)

    def __post_init__(self):
        for name in ("length", "pairs", "vocab_size"):
            require_positive_int(name, getattr(self, name))
        if self.length < 3 * self.pairs:
            raise ValueError(f"length must be >= 3 * pairs = {3 * self.pairs} (2 * pairs tokens for the pairs, one "
                             f"query per pair after them), got {self.length}")
        if self.vocab_size < 2 * self.pairs + 1:
            raise ValueError(f"vocab_size must be >= 2 * pairs + 1 = {2 * self.pairs + 1} (pairs distinct keys in the "
                             f"lower half, pairs distinct values plus one unbound filler id in the upper half), "
                             f"got {self.vocab_size}")
        require_float_at_least("power_a", self.power_a, 0.0, strict=True)  # 1 = uniform distances

    @property
    def key_count(self) -> int:
        return self.vocab_size // 2

    @property
    def value_offset(self) -> int:
        return self.vocab_size // 2

    @property
    def value_count(self) -> int:
        return self.vocab_size - self.vocab_size // 2

    @property
    def query_slots(self) -> int:
        """Positions after the pairs, each a possible query position."""
        return self.length - 2 * self.pairs


def query_distance_weights(config: MqarConfig) -> torch.Tensor:
    """(query_slots,) float64, summing to 1: P(d) ~ d^(power_a - 1) for distances d = 1 .. query_slots."""
    distances = torch.arange(1, config.query_slots + 1, dtype=torch.float64)
    weights = distances ** (config.power_a - 1)
    return weights / weights.sum()


def _as_generator(seed_or_generator) -> torch.Generator:
    if isinstance(seed_or_generator, torch.Generator):
        return seed_or_generator
    if isinstance(seed_or_generator, bool) or not isinstance(seed_or_generator, int):
        raise TypeError(f"seed_or_generator must be an int seed or a torch.Generator, "
                        f"got {type(seed_or_generator).__name__}")
    return torch.Generator().manual_seed(seed_or_generator)


def _distinct_ids(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(count, size) long: a random permutation of range(size) in every row."""
    return torch.rand(count, size, generator=generator).argsort(dim=1)


def _mqar_rows(config: MqarConfig, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` sequences and their targets, as `multi_query_recall` describes."""
    p, n = config.pairs, config.length
    keys = _distinct_ids(count, config.key_count, generator)[:, :p]  # (count, P): distinct per row
    value_ids = _distinct_ids(count, config.value_count, generator) + config.value_offset  # (count, V)
    values, unbound = value_ids[:, :p], value_ids[:, p:]  # (count, P) bound, (count, V - P) free for the filler
    weights = query_distance_weights(config).float().expand(count, config.query_slots)  # (count, slots)
    slots = torch.multinomial(weights, p, replacement=False, generator=generator)  # (count, P) distinct per row
    asked = _distinct_ids(count, p, generator)  # (count, P): the pair that each drawn slot queries
    filler_index = torch.randint(unbound.shape[1], (count, n), generator=generator)  # (count, n)
    tokens = unbound.gather(1, filler_index)  # (count, n): filler everywhere, overwritten below
    tokens[:, 0 : 2 * p : 2] = keys  # keys at even positions
    tokens[:, 1 : 2 * p : 2] = values  # each value right after its key
    positions = 2 * p + slots  # (count, P)
    tokens.scatter_(1, positions, keys.gather(1, asked))
    targets = torch.full((count, n), IGNORE, dtype=torch.long)
    targets.scatter_(1, positions, values.gather(1, asked))
    return tokens, targets


def multi_query_recall(config: MqarConfig, count: int, seed_or_generator=0) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (count, length) long in [0, vocab_size), targets (count, length) long: a value id at each of
    the `pairs` query positions, IGNORE elsewhere). Deterministic for an int seed; a torch.Generator is
    advanced. Drawn ROWS_PER_CHUNK sequences at a time, so the per-row permutations of the vocabulary
    stay small in memory (Zoology's scale: 100,000 sequences over 8,192 ids)."""
    if not isinstance(config, MqarConfig):
        raise TypeError(f"config must be an MqarConfig, got {type(config).__name__}")
    require_positive_int("count", count)
    generator = _as_generator(seed_or_generator)
    chunks = [_mqar_rows(config, min(ROWS_PER_CHUNK, count - start), generator)
              for start in range(0, count, ROWS_PER_CHUNK)]
    return torch.cat([tokens for tokens, _ in chunks]), torch.cat([targets for _, targets in chunks])


def mqar_reference_accuracy(config: MqarConfig) -> float:
    """1 / pairs: the accuracy of the best query-blind guess.

    A model that has learned the layout (which tokens are bound values) but ignores which key is asked can
    do no better than one of the P bound values, and each is the answer to exactly one of the P queries:
    any such guess, fixed or uniform over the bound values, is right 1 / P of the time. (A model that also
    remembers which keys were already asked could eliminate them: `mqar_elimination_accuracy`.)
    """
    return 1.0 / config.pairs


def mqar_elimination_accuracy(config: MqarConfig) -> float:
    """H_P / P (H_P = 1 + 1/2 + ... + 1/P): the best guess that ignores the current key but knows the earlier ones.

    The queries ask the pairs in a uniformly random order, so the i-th query asks one of the P - i + 1 pairs
    not asked yet, each equally likely: right with probability 1 / (P - i + 1), H_P / P on average. It is an
    upper bound for any model that has not learned to read the key at the query position.
    """
    return sum(1.0 / k for k in range(1, config.pairs + 1)) / config.pairs


@dataclass
class MqarData:
    """tokens (N, n) long and targets (N, n) long: a token id at each query position, IGNORE elsewhere;
    every row holds at least one query. Batches are (tokens, targets)."""

    tokens: torch.Tensor
    targets: torch.Tensor
    lengths = None  # not a field: no padding (what `tnn_ref.experiments.long_range.largest_batch` reads)

    def __post_init__(self):
        for name in ("tokens", "targets"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor) or value.dtype != torch.long or value.ndim != 2:
                raise ValueError(f"{name} must be a (N, n) long tensor, got "
                                 f"{getattr(value, 'dtype', type(value).__name__)} {tuple(getattr(value, 'shape', ()))}")
        if self.tokens.shape != self.targets.shape:
            raise ValueError(f"tokens {tuple(self.tokens.shape)} and targets {tuple(self.targets.shape)} must have one shape")
        if len(self.tokens) < 1 or int(self.tokens.min()) < 0:
            raise ValueError("tokens must hold at least one sequence of ids >= 0")
        query = self.targets != IGNORE  # (N, n)
        if not bool(query.any(dim=1).all()):
            raise ValueError(f"targets row {int((~query.any(dim=1)).nonzero()[0])} has no query position")
        if int(self.targets[query].min()) < 0:
            raise ValueError(f"targets must be token ids >= 0 at query positions and {IGNORE} (IGNORE) elsewhere")
        self.max_target = int(self.targets.max())

    def __len__(self) -> int:
        return len(self.tokens)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tokens[index], self.targets[index]


def _position_logits(model, tokens: torch.Tensor, max_target: int) -> torch.Tensor:
    """(b, n, vocab) float32 logits of `model(tokens)`, checked to be per position and wide enough."""
    logits = model(tokens)
    if logits.ndim != 3 or logits.shape[:2] != tokens.shape:
        raise ValueError(f"the model must return per-position logits (b, n, vocab) = ({tokens.shape[0]}, "
                         f"{tokens.shape[1]}, vocab) like a causal LM, got {tuple(logits.shape)}")
    if logits.shape[-1] <= max_target:
        raise ValueError(f"the model's vocabulary ({logits.shape[-1]}) does not cover target id {max_target}")
    return logits.float()


def mqar_loss(model, tokens: torch.Tensor, targets: torch.Tensor, max_target: int | None = None) -> torch.Tensor:
    """Mean cross-entropy (nats) over the query positions (targets != IGNORE) only."""
    max_target = int(targets.max()) if max_target is None else max_target
    logits = _position_logits(model, tokens, max_target)  # (b, n, vocab)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)  # (b*n, vocab)


@torch.no_grad()
def mqar_scores(model, data: MqarData, batch_size: int = 64) -> dict:
    """{"val_loss": mean cross-entropy over all query positions, "val_accuracy": fraction of them right,
    "queries": their number}; the model in eval mode, then back to its previous mode."""
    require_positive_int("batch_size", batch_size)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct, queries = 0.0, 0, 0
    try:
        for start in range(0, len(data), batch_size):
            tokens, targets = (t.to(device) for t in data.batch(torch.arange(start, min(start + batch_size, len(data)))))
            logits = _position_logits(model, tokens, data.max_target)  # (b, n, vocab)
            query = targets != IGNORE  # (b, n)
            total_loss += F.cross_entropy(logits[query], targets[query], reduction="sum").item()  # (q, vocab)
            correct += int((logits[query].argmax(-1) == targets[query]).sum())
            queries += int(query.sum())
    finally:
        model.train(was_training)
    return {"val_loss": total_loss / queries, "val_accuracy": correct / queries, "queries": queries}


def mqar_accuracy(model, tokens: torch.Tensor, targets: torch.Tensor, batch_size: int = 64) -> float:
    """The fraction of query positions at which the model's most likely token is the bound value."""
    return mqar_scores(model, MqarData(tokens, targets), batch_size)["val_accuracy"]


class MqarTask:
    """A task for `tnn_ref.training.loop.train`: random training batches (with replacement) from `train`,
    loss and accuracy over the query positions of `held_out`.

    The model is a causal LM: tokens (b, n) -> logits (b, n, vocab), scored where the targets are not
    IGNORE. `positions_drawn` counts the tokens of every training batch drawn so far (for tokens/s), as
    `tnn_ref.tasks.classify.ClassificationTask` does, so `tnn_ref.experiments.long_range.run_measured`
    takes either.
    """

    def __init__(self, train: MqarData, held_out: MqarData, batch_size: int, eval_batch_size: int = 64):
        require_positive_int("batch_size", batch_size)
        require_positive_int("eval_batch_size", eval_batch_size)
        for name, data in (("train", train), ("held_out", held_out)):
            if not isinstance(data, MqarData):
                raise TypeError(f"{name} must be an MqarData (tokens and targets), got {type(data).__name__}")
        self.train, self.held_out = train, held_out
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.max_target = max(train.max_target, held_out.max_target)
        self.positions_drawn = 0

    def batch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(self.train), (self.batch_size,), generator=generator)
        batch = self.train.batch(index)
        self.positions_drawn += batch[0].numel()
        return batch

    def loss(self, model, batch) -> torch.Tensor:
        tokens, targets = batch
        return mqar_loss(model, tokens, targets, self.max_target)

    def evaluate(self, model, data: MqarData | None = None) -> dict:
        """{"val_loss", "val_accuracy"} over the query positions of `data` (default: held_out)."""
        scores = mqar_scores(model, self.held_out if data is None else data, self.eval_batch_size)
        return {"val_loss": scores["val_loss"], "val_accuracy": scores["val_accuracy"]}
