"""A tokenised corpus for the command-line trainer: text source + tokenizer -> memory-mapped token arrays.

Sources: 'tinyshakespeare', 'wikitext103', or a folder of text files (see `tnn_ref.tasks.wikitext`).
Tokenizers: 'char' (the corpus's characters) or 'bpe' (byte-level BPE learned on the training split).
The BPE and every split's token ids are written once into a cache folder and memory-mapped after
that, so each process of a multi-GPU run reads the same pages instead of holding its own copy. Under
torchrun, `tnn_ref.training.distributed.first_on_each_machine` lets one process per machine build the
cache while the others wait.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tnn_ref.tasks.bpe import PAPER_VOCAB_SIZE, Bpe, line_chunks
from tnn_ref.tasks.characters import (
    SHAKESPEARE_FILE,
    SHAKESPEARE_SHA256,
    SHAKESPEARE_URL,
    CharVocab,
    split_by_position,
)
from tnn_ref.tasks.download import cache_dir, find_or_download, sha256_of
from tnn_ref.tasks.wikitext import SPLITS, text_folder_splits, wikitext103_folder

TOKENIZERS = ("char", "bpe")
CACHE_SUBFOLDER = "tnn_ref_cache"


@dataclass
class TokenCorpus:
    """Token ids of each split as 1-D integer arrays (memory-mapped from the cache) and the tokenizer."""

    name: str
    tokenizer: CharVocab | Bpe
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)


def tokenizer_to_json(tokenizer) -> str:
    """A CharVocab or Bpe as the JSON text a checkpoint keeps."""
    if isinstance(tokenizer, Bpe):
        return json.dumps({"kind": "bpe", "bpe": tokenizer.to_json()})
    if isinstance(tokenizer, CharVocab):
        return json.dumps({"kind": "char", "chars": tokenizer.chars})
    raise TypeError(f"tokenizer must be a CharVocab or a Bpe, got {type(tokenizer).__name__}")


def _tokenizer_state(text) -> dict:
    """The parsed JSON of a saved tokenizer: {"kind": "char", "chars": [...]} or {"kind": "bpe", "bpe": "..."}."""
    what = "tokenizer_json must be the JSON text tokenizer_to_json writes"
    if not isinstance(text, str):
        raise TypeError(f"{what}, got {type(text).__name__}")
    try:
        state = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{what}; it is not JSON ({error})") from None
    fields = {"char": "chars", "bpe": "bpe"}
    if not isinstance(state, dict) or state.get("kind") not in fields or fields[state["kind"]] not in state:
        raise ValueError(f"{what}: an object with kind 'char' (and chars) or 'bpe' (and bpe)")
    return state


def tokenizer_from_json(text: str):
    state = _tokenizer_state(text)
    return Bpe.from_json(state["bpe"]) if state["kind"] == "bpe" else CharVocab.from_chars(state["chars"])


def _source_files(data: str, data_dir) -> tuple[str, dict[str, list[Path]], Path]:
    """(corpus name, files of each split or of 'all', default cache folder)."""
    if data == "tinyshakespeare":
        path = find_or_download(SHAKESPEARE_FILE, SHAKESPEARE_URL, SHAKESPEARE_SHA256, data_dir)  # verified
        return data, {"all": [path]}, cache_dir() / "tokens"  # small: keep shared data folders untouched
    if data == "wikitext103":
        folder = wikitext103_folder(data_dir)
        return data, text_folder_splits(folder), _default_cache(folder)
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(f"data must be 'tinyshakespeare', 'wikitext103' or a folder path, got {type(data).__name__}")
    folder = Path(data)
    if not folder.exists():
        raise FileNotFoundError(f"data={str(data)!r} is neither 'tinyshakespeare' nor 'wikitext103' nor an existing "
                                "folder of text files")
    return folder.name, text_folder_splits(folder), _default_cache(folder)


def _read(files: list[Path]) -> str:
    return "".join(path.read_text(encoding="utf-8") for path in files)


def _split_texts(files: dict[str, list[Path]]) -> dict[str, str]:
    if "all" in files:
        return dict(zip(SPLITS, split_by_position(_read(files["all"]))))
    return {split: _read(files[split]) for split in SPLITS}


def _default_cache(folder: Path) -> Path:
    """Beside the data when that folder is writable, else the user's cache folder."""
    if os.access(folder, os.W_OK):
        return folder / CACHE_SUBFOLDER
    return cache_dir() / "tokens" / folder.name


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    write(tmp)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _cached_array(path: Path, build) -> np.ndarray:
    """The token array stored at path (memory-mapped, read-only), built and written first if missing."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        ids = build()
        dtype = np.uint16 if ids.size == 0 or ids.max() < 2**16 else np.uint32  # GPT-2's 50,265 ids fit 16 bits
        _atomic_write(path, lambda tmp: ids.astype(dtype).tofile(tmp))
        _atomic_write(meta_path, lambda tmp: tmp.write_text(json.dumps({"dtype": np.dtype(dtype).name,
                                                                        "count": int(ids.size)})))
    meta = json.loads(meta_path.read_text())
    if meta["count"] == 0:
        return np.zeros(0, dtype=meta["dtype"])
    return np.memmap(path, dtype=meta["dtype"], mode="r", shape=(meta["count"],))


def _build_tokenizer(kind: str, texts: dict[str, str], vocab_size: int):
    if kind == "char":
        return CharVocab("".join(texts.values()))  # every split's characters, so no split meets an unknown one
    return Bpe.train((line for chunk in line_chunks(texts["train"]) for line in chunk), vocab_size=vocab_size)


def _tokenizer_kind(tokenizer, tokenizer_json) -> str:
    """'char' or 'bpe': as asked, or the saved tokenizer's kind; both given must agree."""
    if tokenizer is not None and tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    if tokenizer_json is None:
        return tokenizer or "char"
    saved = _tokenizer_state(tokenizer_json)["kind"]
    if tokenizer is not None and tokenizer != saved:
        raise ValueError(f"tokenizer={tokenizer!r} contradicts tokenizer_json, which holds a {saved!r} tokenizer; "
                         "pass tokenizer=None (or the saved kind)")
    return saved


def load_corpus(data: str = "tinyshakespeare", tokenizer: str | None = None, vocab_size: int = PAPER_VOCAB_SIZE,
                data_dir=None, cache: str | os.PathLike | None = None, tokenizer_json: str | None = None) -> TokenCorpus:
    """Tokenise (once) and memory-map a corpus.

    data: 'tinyshakespeare', 'wikitext103' or a folder of text files; tokenizer: 'char' or 'bpe' (None:
    'char', or the kind of tokenizer_json); tokenizer_json: a saved tokenizer (from a checkpoint) to use
    instead of building one; vocab_size: the BPE's size (tokenizer='bpe' only);
    cache: where the tokenizer and token arrays go (default: beside the data if writable).
    """
    tokenizer = _tokenizer_kind(tokenizer, tokenizer_json)
    name, files, default_cache = _source_files(data, data_dir)
    cache = Path(cache) if cache is not None else default_cache
    cache.mkdir(parents=True, exist_ok=True)
    sources = hashlib.sha256("".join(sha256_of(p) for paths in files.values() for p in paths).encode())
    texts = functools.cache(lambda: _split_texts(files))  # read only if something must be built
    if tokenizer_json is None:
        tok_path = cache / f"{name}.{tokenizer}{vocab_size if tokenizer == 'bpe' else ''}.{sources.hexdigest()[:16]}.json"
        if not tok_path.is_file():
            built = _build_tokenizer(tokenizer, texts(), vocab_size)
            _atomic_write(tok_path, lambda tmp: tmp.write_text(tokenizer_to_json(built)))
        tokenizer_json = tok_path.read_text()
    tok = tokenizer_from_json(tokenizer_json)
    key = hashlib.sha256(sources.digest() + tokenizer_json.encode()).hexdigest()[:16]
    arrays = {split: _cached_array(cache / f"{name}.{split}.{key}.bin",
                                   lambda split=split: tok.encode_array(texts()[split]))
              for split in SPLITS}
    return TokenCorpus(name, tok, arrays["train"], arrays["valid"], arrays["test"])
