"""Tiny Shakespeare at character level: download with a checksum, vocabulary, splits, batches.

Where the text comes from, in order: an explicit `path`, the folder named by the environment
variable TNN_DATA_DIR, the cache folder (~/.cache/tnn_ref, or $XDG_CACHE_HOME/tnn_ref), and only
then a download from the canonical address into the cache. Every copy is checked against the
published sha256 before it is used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SHAKESPEARE_FILE = "tinyshakespeare.txt"
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
# sha256 of the file at SHAKESPEARE_URL (karpathy/char-rnn, data/tinyshakespeare/input.txt), 1,115,394 bytes
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


class ChecksumError(ValueError):
    """A data file's sha256 differs from the published one: the file is not used."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tnn_ref"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, sha256: str) -> Path:
    actual = sha256_of(path)
    if actual != sha256:
        raise ChecksumError(f"{path} has sha256 {actual}, expected {sha256}; the file is corrupt or a different "
                            "version: delete it and let the loader download it again")
    return path


def download(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch `url` into `dest` atomically; the file appears only if its sha256 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        verify(tmp, sha256)
        os.replace(tmp, dest)  # atomic: a reader never sees half a file
    except (urllib.error.URLError, OSError) as error:
        raise FileNotFoundError(
            f"could not download {url} ({error}). Without network access, put {dest.name} in a folder and set "
            f"TNN_DATA_DIR to it (or pass path=...), or place it at {dest}"
        ) from error
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def find_or_download(filename: str, url: str, sha256: str, path: str | os.PathLike | None = None) -> Path:
    """The verified local path of a data file: explicit path, TNN_DATA_DIR, cache, then download."""
    if path is not None:
        candidate = Path(path)
        candidate = candidate / filename if candidate.is_dir() else candidate
        if not candidate.is_file():
            raise FileNotFoundError(f"path={str(path)!r} holds no {filename}")
        return verify(candidate, sha256)
    if os.environ.get("TNN_DATA_DIR"):
        candidate = Path(os.environ["TNN_DATA_DIR"]) / filename
        if not candidate.is_file():
            raise FileNotFoundError(f"TNN_DATA_DIR={os.environ['TNN_DATA_DIR']} holds no {filename}")
        return verify(candidate, sha256)
    cached = cache_dir() / filename
    if cached.is_file():
        return verify(cached, sha256)
    return download(url, cached, sha256)


def load_tinyshakespeare(path: str | os.PathLike | None = None) -> str:
    """The Tiny Shakespeare text (1,115,394 characters), verified against its sha256."""
    return find_or_download(SHAKESPEARE_FILE, SHAKESPEARE_URL, SHAKESPEARE_SHA256, path).read_text(encoding="utf-8")


class CharVocab:
    """Characters <-> ids, the sorted set of characters of a text."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_chars(cls, chars) -> "CharVocab":
        """The vocabulary of exactly these characters (as saved in a checkpoint), in sorted order."""
        return cls("".join(chars))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        return torch.from_numpy(self.encode_array(text))

    def encode_array(self, text: str) -> np.ndarray:
        """Ids (len(text),) int64; vectorised, so a corpus of hundreds of millions of characters takes seconds."""
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
        return "".join(self.chars[int(i)] for i in ids)


def split_by_position(sequence, fractions=(0.9, 0.05, 0.05)) -> tuple:
    """Cut a sequence (text, tensor, array) in three by position: by default the first 90%, the next 5%, the last 5%."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    a = int(len(sequence) * fractions[0])
    b = a + int(len(sequence) * fractions[1])
    return sequence[:a], sequence[a:b], sequence[b:]


@dataclass
class CharCorpus:
    """A character corpus split by position: the first 90% train, next 5% validation, last 5% test."""

    vocab: CharVocab
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    @classmethod
    def from_text(cls, text: str, fractions=(0.9, 0.05, 0.05)) -> "CharCorpus":
        vocab = CharVocab(text)
        return cls(vocab, *split_by_position(vocab.encode(text), fractions))

    def split(self, name: str) -> torch.Tensor:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, name)


def tinyshakespeare(path=None) -> CharCorpus:
    """Tiny Shakespeare as a character corpus with the 90/5/5 split (65 characters)."""
    return CharCorpus.from_text(load_tinyshakespeare(path))


def random_chunks(data: torch.Tensor, batch_size: int, context: int, generator: torch.Generator):
    """A batch of contiguous chunks at random offsets: inputs (b, context), next-token targets (b, context)."""
    if batch_size < 1 or context < 1:
        raise ValueError(f"batch_size and context must be positive, got batch_size={batch_size}, context={context}")
    if len(data) < context + 1:
        raise ValueError(f"context={context} needs at least {context + 1} tokens of data, got {len(data)}")
    starts = torch.randint(0, len(data) - context, (batch_size,), generator=generator)
    rows = starts[:, None] + torch.arange(context + 1)  # (b, context+1) indices
    chunk = data[rows]
    return chunk[:, :-1], chunk[:, 1:]


def windows(data: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows for evaluation: inputs (w, context), targets (w, context).

    Window i covers tokens [i*context, (i+1)*context] (the last token of one window is the first of the
    next), so every token after the first is predicted exactly once, each from at most `context`
    tokens of its own window; a tail shorter than `context` is dropped.
    """
    if context < 1:
        raise ValueError(f"context must be a positive length, got {context}")
    count = (len(data) - 1) // context
    if count < 1:
        raise ValueError(f"context={context} is longer than the data ({len(data)} tokens)")
    starts = torch.arange(count) * context
    rows = starts[:, None] + torch.arange(context + 1)  # (w, context+1)
    chunk = data[rows]
    return chunk[:, :-1], chunk[:, 1:]
