"""Data files fetched once and checked: a download with a sha256 check, and where the files are looked for.

Where a file comes from, in order: an explicit `path`, the folder named by the environment variable
TNN_DATA_DIR, the cache folder (~/.cache/tnn_ref, or $XDG_CACHE_HOME/tnn_ref), and only then a
download from its canonical address into the cache. Every copy is checked against the published
sha256 before it is used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path


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
