"""Byte-level BPE (GPT-2 style) through the Hugging Face `tokenizers` library.

Byte-level means the base alphabet is the 256 byte values, so every text encodes (no unknown
token) and decoding the ids gives back the exact text. The paper's vocabulary has 50,265 entries
(GPT-2's BPE as fairseq ships it); `Bpe.train` learns merges on the training split up to that size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from tnn_ref.checks import require_positive_int
from tnn_ref.tasks.batches import id_array

END_OF_TEXT = "<|endoftext|>"
PAPER_VOCAB_SIZE = 50265


def _library():
    try:
        import tokenizers
    except ImportError as error:
        raise ImportError("the BPE tokenizer needs the `tokenizers` library: pip install tokenizers "
                          "(it comes with pip install -e '.[scale]')") from error
    return tokenizers


def line_chunks(text: str, lines_per_chunk: int = 10_000) -> Iterator[list[str]]:
    """The text as lists of lines with their newlines kept, so joining everything gives the text back."""
    _require_text(text)
    require_positive_int("lines_per_chunk", lines_per_chunk)  # checked here, not when the first chunk is asked for
    lines = text.splitlines(keepends=True)
    return (lines[start : start + lines_per_chunk] for start in range(0, len(lines), lines_per_chunk))


class Bpe:
    """Text <-> ids with a byte-level BPE; `len(bpe)` is the vocabulary size."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = PAPER_VOCAB_SIZE, min_frequency: int = 2) -> Bpe:
        """Learn merges on `texts` (e.g. the training split's lines) until `vocab_size` entries or no pair is left."""
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= 257:
            raise ValueError(f"vocab_size must be an int above 257 (256 bytes + {END_OF_TEXT}), got {vocab_size!r}")
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 0:
            raise ValueError(f"min_frequency must be an int >= 0 (how often a pair must occur to merge), got "
                             f"{min_frequency!r}")
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be an iterable of strings (e.g. the lines of the text), not one string: each "
                            "character would be trained on as a separate text")
        lib = _library()
        tokenizer = lib.Tokenizer(lib.models.BPE())
        tokenizer.pre_tokenizer = lib.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = lib.decoders.ByteLevel()
        trainer = lib.trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                          special_tokens=[END_OF_TEXT],
                                          initial_alphabet=lib.pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(tokenizer)

    @classmethod
    def from_json(cls, text: str) -> Bpe:
        return cls(_library().Tokenizer.from_str(text))

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode_array(self, text: str) -> np.ndarray:
        """Ids (count,) int64, encoded line by line in parallel batches (lines never share a token)."""
        _require_text(text)
        parts = [np.zeros(0, dtype=np.int64)]
        for chunk in line_chunks(text):
            for encoding in self.tokenizer.encode_batch(chunk, add_special_tokens=False):
                parts.append(np.asarray(encoding.ids, dtype=np.int64))
        return np.concatenate(parts)

    def encode(self, text: str) -> torch.Tensor:
        return torch.from_numpy(self.encode_array(text))

    def decode(self, ids) -> str:
        """Ids (a 1-D list, array or tensor of ints in [0, len(bpe))) -> text (the library would skip unknown ids)."""
        return self.tokenizer.decode(id_array("ids", ids, len(self)).tolist(), skip_special_tokens=False)


def _require_text(text) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
