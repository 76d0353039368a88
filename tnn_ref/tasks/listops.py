"""ListOps (Nangia & Bowman 2018, as Long-Range Arena generates it): nested list operations on digits.

    [MAX 4 3 [MIN 2 3 ] 1 0 [MED 1 5 8 9 2 ] ]  ->  5

Operators: MIN, MAX, MED (median, truncated to an integer), SM (sum modulo 10); values 0-9. The
answer (0-9) depends on every token, often on ones far apart, which is why LRA uses it as a
long-range task. The procedure of LRA's generator, written afresh here:

- a node below the depth limit becomes an operator with probability `operator_probability` (LRA's
  VALUE_P = 0.25: in LRA's code `r > VALUE_P` makes a leaf, so 0.25 is the chance of an *operator*),
  otherwise a digit; a node at depth `max_depth` (the root is depth 1) is always a digit;
- an operator takes between 2 and `max_args` arguments, uniformly, each a fresh node one level deeper;
- an expression is kept only if its token count lies in [min_length, max_length]; duplicates are dropped.

LRA: max_depth 10, max_args 10, lengths 500-2000, 96K/2K/2K examples (`ListOpsConfig.lra()`).
Tokens are LRA's: `[MIN`, `[MAX`, `[MED`, `[SM`, `]` and the digits, with id 0 kept for padding.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from tnn_ref.checks import require_positive_int
from tnn_ref.tasks.batches import id_array, require_seed

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE = "]"
DIGITS = tuple(str(v) for v in range(10))
PAD = "<pad>"
VOCAB = (PAD, *DIGITS, *OPERATORS, CLOSE)  # id = position in this tuple
PAD_ID = 0
TOKEN_IDS = {token: i for i, token in enumerate(VOCAB)}
NUM_CLASSES = 10


# ----------------------------------------------------------------------------------------------
# The evaluator: the label of an expression
# ----------------------------------------------------------------------------------------------

def apply_operator(operator: str, args: Sequence[int]) -> int:
    """The value of one operator on its (already evaluated) arguments, a digit 0-9."""
    if not args:
        raise ValueError(f"operator {operator} has no arguments")
    if operator == "[MIN":
        return min(args)
    if operator == "[MAX":
        return max(args)
    if operator == "[SM":
        return sum(args) % 10
    if operator == "[MED":
        ordered = sorted(args)
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[middle]
        return (ordered[middle - 1] + ordered[middle]) // 2  # the mean of the two middle values, truncated (all >= 0)
    raise ValueError(f"unknown operator {operator!r}; expected one of {OPERATORS}")


def evaluate_listops(tokens: Sequence[str]) -> int:
    """The value (0-9) of an expression given as its tokens, e.g. ["[SM", "3", "9", "]"] -> 2.

    A stack of open operators, each with the values of its arguments so far; `]` closes the top one
    and hands its value to the operator below. Raises ValueError on a malformed expression.
    """
    if isinstance(tokens, str):
        raise TypeError("tokens must be a sequence of tokens; split a string first (parse_expression)")
    stack: list[tuple[str, list[int]]] = []
    result: int | None = None
    for position, token in enumerate(tokens):
        if result is not None:
            raise ValueError(f"tokens continue after the expression ended (position {position}: {token!r})")
        if token in OPERATORS:
            stack.append((token, []))
            continue
        if token == CLOSE:
            if not stack:
                raise ValueError(f"unmatched {CLOSE!r} at position {position}")
            operator, args = stack.pop()
            value = apply_operator(operator, args)
        elif token in DIGITS:
            value = int(token)
        else:
            raise ValueError(f"unknown token {token!r} at position {position}")
        if stack:
            stack[-1][1].append(value)
        else:
            result = value
    if stack or result is None:
        raise ValueError(f"the expression is incomplete: {len(stack)} operator(s) left open" if stack else "tokens is empty")
    return result


def parse_expression(text: str) -> list[str]:
    """Whitespace-separated text -> tokens: "[MAX 2 [MIN 4 7 ] ]" -> ["[MAX", "2", "[MIN", "4", "7", "]", "]"]."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text.split()


def format_expression(tokens: Sequence[str]) -> str:
    return " ".join(tokens)


# ----------------------------------------------------------------------------------------------
# Tokenisation
# ----------------------------------------------------------------------------------------------

def encode_listops(tokens: Sequence[str]) -> list[int]:
    """Tokens -> ids in [1, len(VOCAB)); id 0 is the padding id, which no token encodes to."""
    if isinstance(tokens, str):
        raise TypeError("tokens must be a sequence of tokens; split a string first (parse_expression)")
    unknown = [token for token in tokens if token == PAD or token not in TOKEN_IDS]
    if unknown:
        raise ValueError(f"tokens holds {unknown[0]!r}, which is not in the ListOps vocabulary {VOCAB[1:]}")
    return [TOKEN_IDS[token] for token in tokens]


def decode_listops(ids: Sequence[int]) -> list[str]:
    """Ids (ints in [0, len(VOCAB))) -> tokens, padding dropped."""
    return [VOCAB[i] for i in id_array("ids", ids, len(VOCAB)).tolist() if i != PAD_ID]


# ----------------------------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ListOpsConfig:
    """How expressions are drawn and which lengths are kept. Defaults: LRA's tree shape, CPU-sized lengths."""

    min_length: int = 100  # tokens, inclusive
    max_length: int = 300
    max_depth: int = 10  # the root is depth 1; nodes at max_depth are digits
    max_args: int = 10  # an operator has 2..max_args arguments
    operator_probability: float = 0.25  # LRA's VALUE_P

    def __post_init__(self):
        for name in ("min_length", "max_length", "max_depth"):
            require_positive_int(name, getattr(self, name))
        if isinstance(self.max_args, bool) or not isinstance(self.max_args, int) or self.max_args < 2:
            raise ValueError(f"max_args must be an int >= 2 (an operator takes at least 2 arguments), got {self.max_args!r}")
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) must not exceed max_length ({self.max_length})")
        p = self.operator_probability
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"operator_probability must be a number in [0, 1], got {p!r}")
        longest = longest_expression(self.max_depth, self.max_args, at_most=self.min_length)
        if self.min_length > longest:
            raise ValueError(f"min_length={self.min_length} is longer than any expression max_depth={self.max_depth} and "
                             f"max_args={self.max_args} allow ({longest} tokens)")
        if self.min_length > 1 and (self.operator_probability == 0.0 or self.max_depth == 1):
            raise ValueError(f"min_length={self.min_length} needs operators, but operator_probability="
                             f"{self.operator_probability} and max_depth={self.max_depth} give single digits only")
        if self.max_length < 4 and self.min_length > 1:
            raise ValueError(f"no expression has 2 or 3 tokens (the shortest operator is '[MIN 1 2 ]'): "
                             f"min_length={self.min_length}, max_length={self.max_length}")

    @classmethod
    def lra(cls) -> ListOpsConfig:
        """LRA's setting: lengths 500-2000 (use with 96,000 / 2,000 / 2,000 examples)."""
        return cls(min_length=500, max_length=2000, max_depth=10, max_args=10, operator_probability=0.25)


LRA_SPLIT_SIZES = (96_000, 2_000, 2_000)  # train, validation, test


def longest_expression(max_depth: int, max_args: int, at_most: int | None = None) -> int:
    """Token count of the largest tree: every node an operator with max_args arguments, down to max_depth.

    at_most: stop once the count passes it and return the count reached (a bound, not the exact count), so
    a deep tree costs a few steps instead of a number with max_depth digits.
    """
    require_positive_int("max_depth", max_depth)
    require_positive_int("max_args", max_args)
    length = 1  # a digit at the deepest level
    for _ in range(max_depth - 1):
        if at_most is not None and length > at_most:
            break
        length = 2 + max_args * length  # operator token, its arguments, the closing bracket
    return length


class _TooLong(Exception):
    """Raised inside the generator once an expression passes max_length: no need to finish drawing it."""


def draw_expression(config: ListOpsConfig, rng: random.Random) -> list[str]:
    """One expression drawn by LRA's procedure (any length up to config.max_length; longer ones raise _TooLong).

    Depth first, as the recursive definition reads (a node, then its arguments left to right), but with an
    explicit stack, so a deep tree cannot exhaust Python's recursion limit.
    """
    tokens: list[str] = []
    open_args: list[int] = []  # for each open operator, the arguments still to draw
    while True:
        depth = len(open_args) + 1  # the node about to be drawn
        if depth < config.max_depth and rng.random() < config.operator_probability:
            tokens.append(rng.choice(OPERATORS))
            open_args.append(rng.randint(2, config.max_args))
            continue  # draw its first argument
        tokens.append(rng.choice(DIGITS))
        _check_length(tokens, config)
        while open_args:  # the node just finished may complete its parent, and so on upwards
            open_args[-1] -= 1
            if open_args[-1]:
                break
            open_args.pop()
            tokens.append(CLOSE)
            _check_length(tokens, config)
        if not open_args:
            return tokens


def _check_length(tokens: list[str], config: ListOpsConfig) -> None:
    if len(tokens) > config.max_length:
        raise _TooLong  # stop early: a draw costs at most max_length tokens of work, however big the tree


def generate_listops(count: int, config: ListOpsConfig = ListOpsConfig(), seed: int = 0,
                     max_tries: int | None = None) -> list[list[str]]:
    """`count` distinct expressions (token lists) with lengths in [min_length, max_length], in draw order.

    Rejection sampling, seeded and deterministic. max_tries bounds the draws (default 5,000 per
    expression); when they run out the range is too unlikely (or has too few distinct expressions) and a
    ValueError says so.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative int, got {count!r}")
    if not isinstance(config, ListOpsConfig):
        raise TypeError(f"config must be a ListOpsConfig, got {type(config).__name__}")
    if max_tries is not None:
        require_positive_int("max_tries", max_tries)
    max_tries = 5_000 * max(count, 1) if max_tries is None else max_tries
    rng = random.Random(require_seed("seed", seed))
    kept: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    tries = 0
    while len(kept) < count:
        if tries >= max_tries:
            raise ValueError(f"found only {len(kept)} of count={count} distinct expressions with lengths in "
                             f"[{config.min_length}, {config.max_length}] after max_tries={max_tries} draws: the range "
                             "is too unlikely under this tree shape (or holds too few distinct expressions); widen it, "
                             "change operator_probability, or raise max_tries")
        tries += 1
        try:
            tokens = draw_expression(config, rng)
        except _TooLong:
            continue
        key = tuple(tokens)
        if len(tokens) < config.min_length or key in seen:
            continue
        seen.add(key)
        kept.append(tokens)
    return kept


@dataclass
class ListOpsSplit:
    """Expressions (token lists) and their labels (the evaluator's values, 0-9)."""

    expressions: list[list[str]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.expressions)


def listops_splits(sizes: Sequence[int], config: ListOpsConfig = ListOpsConfig(), seed: int = 0) -> list[ListOpsSplit]:
    """Disjoint splits of the given sizes (e.g. train, validation, test), cut from one duplicate-free draw."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a sequence of ints (e.g. [train, validation, test]), got {sizes!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in sizes):
        raise ValueError(f"sizes must be non-negative ints, got {list(sizes)!r}")
    expressions = generate_listops(sum(sizes), config, seed)
    splits, start = [], 0
    for size in sizes:
        chunk = expressions[start : start + size]
        splits.append(ListOpsSplit(chunk, [evaluate_listops(e) for e in chunk]))
        start += size
    return splits
