"""Batches of a token stream: random contiguous chunks for training, non-overlapping windows for evaluation.

Also the argument checks the task modules share: token ids handed to a decoder (`id_array`) and seeds
(`require_seed`).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from tnn_ref.checks import require_positive_int


def require_seed(name: str, seed) -> int:
    """A seed must be an int (not None, which would seed from the clock, nor a bool): returned as a Python int."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int (the draw is seeded and deterministic), got {seed!r}")
    return int(seed)


def id_array(name: str, ids, vocab_size: int) -> np.ndarray:
    """Token ids (a 1-D list, numpy array or tensor of integers) as an int64 array, each in [0, vocab_size).

    Floats and bools are refused (int() would truncate 2.7 to 2), and so are negative ids (Python indexing
    would read them from the end of the vocabulary).
    """
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    try:
        arr = ids if isinstance(ids, np.ndarray) else np.asarray(list(ids))  # list(): generators too
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a 1-D sequence of integer ids, got {type(ids).__name__}") from error
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of ids, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr < 0) | (arr >= vocab_size))
    if bad.size:
        raise ValueError(f"{name} must be ids in [0, {vocab_size}) (the vocabulary size); found id {int(arr[bad[0]])} "
                         f"at position {int(bad[0])}")
    return arr


def _require_stream(name: str, data) -> None:
    """A token stream is a 1-D torch tensor (numpy arrays index differently: convert them first)."""
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{name} must be a 1-D torch.Tensor of token ids, got {type(data).__name__} (convert a numpy "
                        "array with torch.from_numpy(array.astype('int64')))")
    if data.ndim != 1:
        raise ValueError(f"{name} must be a 1-D token stream, got shape {tuple(data.shape)}")


def random_chunks(data: torch.Tensor, batch_size: int, context: int, generator: torch.Generator):
    """A batch of contiguous chunks at random offsets: inputs (b, context), next-token targets (b, context).

    data: (N,) token ids; batch_size, context: positive ints; generator: a torch.Generator (or None).
    """
    _require_stream("data", data)
    require_positive_int("batch_size", batch_size)
    require_positive_int("context", context)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if len(data) < context + 1:
        raise ValueError(f"context={context} needs at least {context + 1} tokens of data, got {len(data)}")
    starts = torch.randint(0, len(data) - context, (batch_size,), generator=generator)
    rows = starts[:, None] + torch.arange(context + 1)  # (b, context+1) indices
    chunk = data[rows.to(data.device)]
    return chunk[:, :-1], chunk[:, 1:]


def windows(data: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows for evaluation: inputs (w, context), targets (w, context).

    Window i covers tokens [i*context, (i+1)*context] (the last token of one window is the first of the
    next), so every token after the first is predicted exactly once, each from at most `context`
    tokens of its own window; a tail shorter than `context` is dropped.
    """
    _require_stream("data", data)
    require_positive_int("context", context)
    count = (len(data) - 1) // context
    if count < 1:
        raise ValueError(f"context={context} is longer than the data ({len(data)} tokens)")
    starts = torch.arange(count) * context
    rows = starts[:, None] + torch.arange(context + 1)  # (w, context+1)
    chunk = data[rows.to(data.device)]
    return chunk[:, :-1], chunk[:, 1:]


def target_ends(tokens: int, longest: int, score: int, blocks: int) -> list[int]:
    """End positions e_0 < ... of `blocks` blocks of `score` targets, spread evenly over a stream of `tokens`.

    Block j scores targets data[e_j - score + 1 : e_j + 1]; every e_j >= longest, so a window of any length up
    to `longest` that ends at e_j fits in the stream, and consecutive blocks never overlap.
    """
    for name, value in (("tokens", tokens), ("longest", longest), ("score", score), ("blocks", blocks)):
        require_positive_int(name, value)
    if score > longest:
        raise ValueError(f"score={score} must be at most longest={longest} (the targets are the last score positions of every window)")
    room = tokens - 1 - longest  # how far the last end may move past the first
    if room < (blocks - 1) * score:
        raise ValueError(f"blocks={blocks} blocks of score={score} targets after a first window of {longest} tokens "
                         f"need {longest + 1 + (blocks - 1) * score} tokens, the data holds {tokens}: lower blocks")
    if blocks == 1:
        return [longest]
    return [longest + (j * room) // (blocks - 1) for j in range(blocks)]


def windows_ending_at(data: torch.Tensor, ends: list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of `length` tokens that end at the given positions: inputs (w, length), next-token targets (w, length).

    Window j reads data[e_j - length : e_j] and predicts data[e_j - length + 1 : e_j + 1], so its last k
    targets are the same tokens for every length (see `target_ends`).
    """
    _require_stream("data", data)
    require_positive_int("length", length)
    if not ends or min(ends) < length or max(ends) > len(data) - 1:
        raise ValueError(f"ends must lie in [length, len(data) - 1] = [{length}, {len(data) - 1}], got "
                         f"{min(ends) if ends else None}..{max(ends) if ends else None}")
    rows = torch.tensor(ends)[:, None] - length + torch.arange(length + 1)  # (w, length+1) indices
    chunk = data[rows.to(data.device)]
    return chunk[:, :-1], chunk[:, 1:]
