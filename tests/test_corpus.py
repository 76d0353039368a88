"""WikiText-103 files, byte-level BPE, and the memory-mapped token caches (no network anywhere)."""

import os

import numpy as np
import pytest

from tnn_ref.tasks import bpe as bpe_module
from tnn_ref.tasks.bpe import Bpe
from tnn_ref.tasks.characters import tinyshakespeare
from tnn_ref.tasks.corpus import load_corpus, tokenizer_from_json, tokenizer_to_json
from tnn_ref.tasks.wikitext import read_wikitext103, wikitext103_folder

pytest.importorskip("tokenizers")

# a few lines in the raw WikiText format: headings, blank lines, " @-@ " joins, non-ASCII
RAW = {
    "train": " \n = Valkyria Chronicles III = \n \n Senjō no Valkyria 3 : Unrecorded Chronicles is a tactical role @-@ "
             "playing video game developed by Sega . \n The game began development in 2010 , carrying over a large "
             "portion of the work done on Valkyria Chronicles II . \n" * 20,
    "valid": " \n = Homarus gammarus = \n \n Homarus gammarus , known as the European lobster , is a species of clawed "
             "lobster from the eastern Atlantic Ocean . \n",
    "test": " \n = Robert Boulter = \n \n Robert Boulter is an English film , television and theatre actor . \n",
}


def write_wikitext(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in RAW.items():
        (folder / f"wiki.{split}.raw").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No data anywhere and no network: an empty cache, TNN_DATA_DIR unset, Hugging Face offline."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TNN_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return monkeypatch


def test_wikitext_is_read_from_a_folder_of_raw_files(tmp_path, offline):
    folder = write_wikitext(tmp_path / "wikitext-103-raw")
    assert read_wikitext103("valid", path=folder) == RAW["valid"]
    offline.setenv("TNN_DATA_DIR", str(tmp_path))  # the subfolder under TNN_DATA_DIR is found too
    assert wikitext103_folder() == folder
    assert read_wikitext103("test") == RAW["test"]
    with pytest.raises(ValueError, match="split must be one of"):
        read_wikitext103("validation")


def test_missing_wikitext_without_network_names_tnn_data_dir(tmp_path, offline):
    offline.setenv("TNN_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="TNN_DATA_DIR"):
        read_wikitext103("train")  # tries `datasets` if installed: offline, so it fails and says where to put files
    with pytest.raises(FileNotFoundError, match="TNN_DATA_DIR"):
        read_wikitext103("train", download=False)


@pytest.mark.parametrize("text", [
    RAW["train"][:400],
    "héllo wörld, 你好!\n\n\ttabs  and   spaces \r\n trailing ",
    "",
    "\n",
])
def test_bpe_round_trips_text_exactly(text):
    bpe = Bpe.train(RAW["train"].splitlines(keepends=True), vocab_size=300)
    ids = bpe.encode_array(text)
    assert ids.dtype == np.int64 and (ids < len(bpe)).all()
    assert bpe.decode(ids) == text
    again = Bpe.from_json(bpe.to_json())  # the saved tokenizer encodes the same way
    assert np.array_equal(again.encode_array(text), ids)


def test_bpe_learns_merges_up_to_the_requested_size():
    bpe = Bpe.train(RAW["train"].splitlines(keepends=True), vocab_size=300)
    assert len(bpe) == 300  # 256 bytes + the end-of-text token + 43 merges
    assert len(bpe.encode_array(RAW["train"])) < 0.6 * len(RAW["train"].encode())  # merges shorten the text
    with pytest.raises(ValueError, match="vocab_size"):
        Bpe.train(["abc"], vocab_size=100)


def test_corpus_is_tokenised_once_and_memory_mapped(tmp_path, offline):
    folder = write_wikitext(tmp_path / "data")
    corpus = load_corpus(str(folder), "bpe", vocab_size=300, cache=tmp_path / "cache")
    assert isinstance(corpus.train, np.memmap) and corpus.train.dtype == np.uint16
    for split, text in RAW.items():
        assert corpus.tokenizer.decode(corpus.split(split)) == text
    built = sorted(p.name for p in (tmp_path / "cache").iterdir())
    offline.setattr(bpe_module.Bpe, "train", lambda *a, **k: pytest.fail("the cached BPE was trained again"))
    again = load_corpus(str(folder), "bpe", vocab_size=300, cache=tmp_path / "cache")
    assert np.array_equal(again.train, corpus.train)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == built  # nothing new written
    (folder / "wiki.train.raw").write_text(RAW["train"] + " more\n", encoding="utf-8")  # changed data: new cache
    changed = load_corpus(str(folder), "char", cache=tmp_path / "cache")
    assert changed.tokenizer.decode(changed.train) == RAW["train"] + " more\n"


def test_a_folder_of_text_files_is_cut_by_position(tmp_path, offline):
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "a.txt").write_text("abcdefghij" * 50)
    (folder / "b.txt").write_text("0123456789" * 50)
    corpus = load_corpus(str(folder), "char", cache=tmp_path / "cache")
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (900, 50, 50)
    assert corpus.tokenizer.decode(corpus.test) == "0123456789" * 5
    with pytest.raises(FileNotFoundError, match="no \\*.txt files"):
        load_corpus(str(tmp_path / "cache"), "char", cache=tmp_path / "cache2")
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        load_corpus(str(folder), "words")


def test_saved_tokenizers_rebuild_the_same_one(tmp_path, offline):
    folder = write_wikitext(tmp_path / "data")
    for kind in ("char", "bpe"):
        corpus = load_corpus(str(folder), kind, vocab_size=300, cache=tmp_path / "cache")
        rebuilt = tokenizer_from_json(tokenizer_to_json(corpus.tokenizer))
        assert np.array_equal(rebuilt.encode_array(RAW["valid"]), corpus.valid)


@pytest.mark.skipif(not os.environ.get("TNN_DATA_DIR"), reason="no local Tiny Shakespeare (TNN_DATA_DIR unset)")
def test_character_corpus_matches_the_notebooks_tiny_shakespeare(tmp_path):
    corpus = load_corpus("tinyshakespeare", "char", cache=tmp_path)
    reference = tinyshakespeare()
    assert corpus.tokenizer.chars == reference.vocab.chars
    for ours, theirs in ((corpus.train, reference.train), (corpus.valid, reference.val), (corpus.test, reference.test)):
        assert np.array_equal(np.asarray(ours, dtype=np.int64), theirs.numpy())


def test_wikitext_under_tnn_data_dir_is_cached_beside_it(tmp_path, offline):
    folder = write_wikitext(tmp_path / "data" / "wikitext-103-raw")
    offline.setenv("TNN_DATA_DIR", str(tmp_path / "data"))
    corpus = load_corpus("wikitext103", "bpe", vocab_size=300)
    assert corpus.name == "wikitext103" and len(corpus.tokenizer) == 300
    assert corpus.tokenizer.decode(corpus.test) == RAW["test"]
    cached = sorted(p.name for p in (folder / "tnn_ref_cache").iterdir())  # beside the data: it is writable
    assert any(name.endswith(".json") and ".bpe300." in name for name in cached)
    assert sum(name.endswith(".bin") for name in cached) == 3
