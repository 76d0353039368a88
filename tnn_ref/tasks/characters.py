"""Tiny Shakespeare at character level: the verified text, its vocabulary, splits and batches.

The file is found or downloaded by `tnn_ref.tasks.download.find_or_download` (explicit path,
TNN_DATA_DIR, the cache, then the canonical address), always checked against its sha256.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass

import numpy as np
import torch

from tnn_ref.tasks.batches import id_array
from tnn_ref.tasks.download import find_or_download

SHAKESPEARE_FILE = "tinyshakespeare.txt"
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
# sha256 of the file at SHAKESPEARE_URL (karpathy/char-rnn, data/tinyshakespeare/input.txt), 1,115,394 bytes
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def load_tinyshakespeare(path: str | os.PathLike | None = None) -> str:
    """The Tiny Shakespeare text (1,115,394 characters), verified against its sha256."""
    return find_or_download(SHAKESPEARE_FILE, SHAKESPEARE_URL, SHAKESPEARE_SHA256, path).read_text(encoding="utf-8")


class CharVocab:
    """Characters <-> ids, the sorted set of characters of a text."""

    def __init__(self, text: str):
        _require_text("text", text)
        self.chars = sorted(set(text))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_chars(cls, chars) -> CharVocab:
        """The vocabulary of exactly these characters (as saved in a checkpoint): distinct single characters
        in sorted order, so that id i is still chars[i] (a reordered list would silently swap ids)."""
        chars = list(chars)
        wrong = [ch for ch in chars if not (isinstance(ch, str) and len(ch) == 1)]
        if wrong:
            raise ValueError(f"chars must be single characters, got {wrong[:5]!r}")
        if chars != sorted(set(chars)):
            raise ValueError("chars must be distinct and in sorted order (as CharVocab.chars saves them), so that "
                             "each id keeps its character")
        return cls("".join(chars))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        return torch.from_numpy(self.encode_array(text))

    def encode_array(self, text: str) -> np.ndarray:
        """Ids (len(text),) int64; vectorised, so a corpus of hundreds of millions of characters takes seconds."""
        _require_text("text", text)
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (len(text),) code points
        table = np.array([ord(ch) for ch in self.chars], dtype=np.uint32)  # sorted, as self.chars is
        ids = np.searchsorted(table, points)  # (len(text),) position of each code point in the table
        known = ids < len(table)
        known[known] = table[ids[known]] == points[known]
        if not known.all():
            unknown = sorted({chr(p) for p in points[~known][:1000]})
            raise ValueError(f"text holds characters outside the vocabulary: {unknown[:10]}")
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """Ids (a 1-D list, array or tensor of ints in [0, len(vocab))) -> text."""
        return "".join(self.chars[i] for i in id_array("ids", ids, len(self.chars)).tolist())


def _require_text(name: str, text) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")


def _check_fractions(fractions) -> tuple[float, float, float]:
    """Three finite positive numbers summing to 1."""
    values = tuple(fractions) if isinstance(fractions, (tuple, list)) else ()
    numbers_ok = all(not isinstance(f, bool) and isinstance(f, numbers.Real) and math.isfinite(f) for f in values)
    if len(values) != 3 or not numbers_ok or min(values) <= 0 or abs(sum(values) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions!r}")
    return values


def split_by_position(sequence, fractions=(0.9, 0.05, 0.05)) -> tuple:
    """Cut a sequence (text, tensor, array) in three by position: by default the first 90%, the next 5%, the last 5%.

    fractions: three positive numbers summing to 1; every part must come out non-empty.
    """
    fractions = _check_fractions(fractions)
    n = len(sequence)
    a = int(n * fractions[0])
    b = a + int(n * fractions[1])
    if not 0 < a < b < n:
        raise ValueError(f"a sequence of {n} items is too short to cut by fractions={fractions}: the parts would hold "
                         f"{a}, {b - a} and {n - b} items, and each needs at least one")
    return sequence[:a], sequence[a:b], sequence[b:]


@dataclass
class CharCorpus:
    """A character corpus split by position: the first 90% train, next 5% validation, last 5% test."""

    vocab: CharVocab
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    @classmethod
    def from_text(cls, text: str, fractions=(0.9, 0.05, 0.05)) -> CharCorpus:
        vocab = CharVocab(text)
        return cls(vocab, *split_by_position(vocab.encode(text), fractions))

    def split(self, name: str) -> torch.Tensor:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, name)


def tinyshakespeare(path=None) -> CharCorpus:
    """Tiny Shakespeare as a character corpus with the 90/5/5 split (65 characters)."""
    return CharCorpus.from_text(load_tinyshakespeare(path))
