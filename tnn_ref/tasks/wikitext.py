"""WikiText-103 (raw) and folders of text files: where the text of each split comes from.

WikiText-103 is looked for, in order, in an explicit folder, under TNN_DATA_DIR (the folder itself or
its `wikitext-103-raw/` or `wikitext-103/` subfolder), in the cache folder, and only then fetched with
the Hugging Face `datasets` library (`pip install -e '.[scale]'`), whose copy is written into the
cache as the original `wiki.{train,valid,test}.raw` files. An offline cluster copies those three
files into a folder and points TNN_DATA_DIR at it.
"""

from __future__ import annotations

import os
from pathlib import Path

from tnn_ref.tasks.download import cache_dir

SPLITS = ("train", "valid", "test")
WIKITEXT_FILES = {split: f"wiki.{split}.raw" for split in SPLITS}
WIKITEXT_SUBFOLDERS = ("", "wikitext-103-raw", "wikitext-103")
# the Hugging Face dataset and configuration that hold the raw (untokenised) WikiText-103 text
HF_DATASET, HF_CONFIG = "Salesforce/wikitext", "wikitext-103-raw-v1"
HF_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


def _holds_wikitext(folder: Path) -> bool:
    return all((folder / name).is_file() for name in WIKITEXT_FILES.values())


def _candidates(path) -> list[Path]:
    if path is not None:
        roots = [Path(path)]
    elif os.environ.get("TNN_DATA_DIR"):
        roots = [Path(os.environ["TNN_DATA_DIR"])]
    else:
        roots = []
    return [root / sub for root in roots for sub in WIKITEXT_SUBFOLDERS] + [cache_dir() / "wikitext-103-raw"]


def wikitext103_folder(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """A folder holding wiki.train.raw, wiki.valid.raw and wiki.test.raw (fetched once if nowhere else)."""
    for folder in _candidates(path):
        if _holds_wikitext(folder):
            return folder
    where = f"path={str(path)!r}" if path is not None else f"TNN_DATA_DIR={os.environ.get('TNN_DATA_DIR', '(unset)')}"
    advice = (f"Put {', '.join(WIKITEXT_FILES.values())} in a folder and set TNN_DATA_DIR to it (or pass its path); "
              f"looked in {where} and {cache_dir() / 'wikitext-103-raw'}.")
    if not download:
        raise FileNotFoundError(f"WikiText-103 not found. {advice}")
    return _fetch_with_datasets(cache_dir() / "wikitext-103-raw", advice)


def _fetch_with_datasets(dest: Path, advice: str) -> Path:
    try:
        import datasets  # optional: pip install -e '.[scale]'
    except ImportError as error:
        raise FileNotFoundError(f"WikiText-103 not found and the `datasets` library is not installed "
                                f"(pip install -e '.[scale]'). {advice}") from error
    dest.mkdir(parents=True, exist_ok=True)
    try:
        for split, name in WIKITEXT_FILES.items():
            rows = datasets.load_dataset(HF_DATASET, HF_CONFIG, split=HF_SPLITS[split])
            tmp = dest / (name + ".part")
            with open(tmp, "w", encoding="utf-8") as out:
                for text in rows["text"]:  # each row is one line of the raw file, newline included
                    out.write(text)
            os.replace(tmp, dest / name)  # atomic: a reader never sees half a file
    except Exception as error:  # datasets raises many kinds (connection, offline mode, hub errors)
        raise FileNotFoundError(f"WikiText-103 not found and could not be fetched with `datasets` ({error}). "
                                f"{advice}") from error
    return dest


def read_wikitext103(split: str, path: str | os.PathLike | None = None, download: bool = True) -> str:
    """The raw text of one split ('train', 'valid' or 'test')."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return (wikitext103_folder(path, download) / WIKITEXT_FILES[split]).read_text(encoding="utf-8")


def text_folder_splits(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """The files of each split in a folder of text files.

    A folder with wiki.{train,valid,test}.raw or {train,valid,test}.txt uses them as the splits;
    otherwise every *.txt file (sorted by name) forms one stream, cut 90/5/5 (`data.split_by_position`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"data folder {str(folder)!r} {problem}")
    if _holds_wikitext(folder):
        return {split: [folder / name] for split, name in WIKITEXT_FILES.items()}
    if all((folder / f"{split}.txt").is_file() for split in SPLITS):
        return {split: [folder / f"{split}.txt"] for split in SPLITS}
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"data folder {str(folder)!r} holds no *.txt files and no wiki.*.raw splits")
    return {"all": files}
