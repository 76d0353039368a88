"""Tiny Shakespeare loader (no network: downloads come from file:// URLs), vocabulary, splits, windows."""

import hashlib
import os

import pytest
import torch

import tnn_ref.tasks.characters as shakespeare
from tnn_ref.tasks.batches import random_chunks, windows
from tnn_ref.tasks.characters import SHAKESPEARE_SHA256, CharCorpus, tinyshakespeare
from tnn_ref.tasks.download import ChecksumError, download, find_or_download


def test_shared_copy_verifies_and_splits():
    # make test points TNN_DATA_DIR at ../shared/data; tests never download
    if not os.environ.get("TNN_DATA_DIR"):
        pytest.skip("no local Tiny Shakespeare: set TNN_DATA_DIR to a folder holding tinyshakespeare.txt")
    corpus = tinyshakespeare()
    assert len(corpus.vocab) == 65
    total = len(corpus.train) + len(corpus.val) + len(corpus.test)
    assert total == 1_115_394
    assert len(corpus.train) == int(0.9 * total) and len(corpus.val) == int(0.05 * total)
    again = tinyshakespeare()
    assert torch.equal(again.test, corpus.test)  # deterministic split by position
    assert corpus.vocab.decode(corpus.train[:14]) == "First Citizen:"


def test_checksum_mismatch_is_rejected(tmp_path, monkeypatch):
    bad = tmp_path / "tinyshakespeare.txt"
    bad.write_text("not shakespeare")
    monkeypatch.setenv("TNN_DATA_DIR", str(tmp_path))
    with pytest.raises(ChecksumError, match="expected " + SHAKESPEARE_SHA256):
        tinyshakespeare()
    with pytest.raises(ChecksumError):
        tinyshakespeare(path=bad)


def test_download_from_local_url_and_cache(tmp_path, monkeypatch):
    source = tmp_path / "source.txt"
    source.write_bytes(b"hello tnn\n")
    digest = hashlib.sha256(b"hello tnn\n").hexdigest()
    dest = tmp_path / "cache" / "file.txt"
    assert download(source.as_uri(), dest, digest) == dest and dest.read_bytes() == b"hello tnn\n"
    # a wrong checksum leaves no file behind
    other = tmp_path / "cache" / "other.txt"
    with pytest.raises(ChecksumError):
        download(source.as_uri(), other, "0" * 64)
    assert not other.exists() and not list(other.parent.glob("other.txt*.part"))
    # find_or_download: cache first, then the URL
    monkeypatch.delenv("TNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = find_or_download("fresh.txt", source.as_uri(), digest)
    assert path == tmp_path / "xdg" / "tnn_ref" / "fresh.txt"
    assert find_or_download("fresh.txt", "file:///nonexistent", digest) == path  # cached: URL not touched


def test_offline_without_copy_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv("TNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(shakespeare, "SHAKESPEARE_URL", (tmp_path / "missing.txt").as_uri())
    with pytest.raises(FileNotFoundError, match="set TNN_DATA_DIR"):
        shakespeare.load_tinyshakespeare()
    monkeypatch.setenv("TNN_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="holds no tinyshakespeare.txt"):
        shakespeare.load_tinyshakespeare()


def test_vocab_round_trip_and_unknown():
    corpus = CharCorpus.from_text("abcabcabba" * 10)
    assert corpus.vocab.decode(corpus.vocab.encode("cab")) == "cab"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        corpus.vocab.encode("z")
    with pytest.raises(ValueError, match="fractions must be"):
        CharCorpus.from_text("abc", fractions=(0.5, 0.5, 0.0))


def test_windows_cover_every_token_once():
    tokens = torch.arange(23)
    x, y = windows(tokens, 5)
    assert x.shape == y.shape == (4, 5)
    assert torch.equal(y.flatten(), torch.arange(1, 21))  # each target once, in order
    assert torch.equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError, match="longer than the data"):
        windows(tokens, 30)


def test_random_chunks_are_contiguous_and_seeded():
    tokens = torch.arange(100)
    x, y = random_chunks(tokens, 4, 10, torch.Generator().manual_seed(0))
    assert x.shape == (4, 10) and torch.equal(y, x + 1)
    x2, _ = random_chunks(tokens, 4, 10, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    with pytest.raises(ValueError, match="needs at least 101 tokens"):
        random_chunks(tokens, 1, 100, torch.Generator())
