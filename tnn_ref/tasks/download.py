"""Data files fetched once and checked: a download with a sha256 check, and where the files are looked for.

Where a file comes from, in order: an explicit `path`, the folder named by the environment variable
TNN_DATA_DIR, the cache folder (~/.cache/tnn_ref, or $XDG_CACHE_HOME/tnn_ref), and only then a
download from its canonical address into the cache. Every copy is checked against the published
sha256 before it is used.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import re
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


def require_sha256(sha256) -> str:
    """A sha256 digest: 64 hexadecimal digits (either case), returned in lower case as hashlib writes it."""
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"sha256 must be 64 hexadecimal digits (a sha256 digest), got {sha256!r}")
    return sha256.lower()


def verify(path: str | os.PathLike, sha256: str) -> Path:
    """path, once its sha256 is the expected one; a ChecksumError otherwise."""
    sha256 = require_sha256(sha256)
    path = Path(path)
    actual = sha256_of(path)
    if actual != sha256:
        raise ChecksumError(f"{path} has sha256 {actual}, expected {sha256}; the file is corrupt or a different "
                            "version: delete it and let the loader download it again")
    return path


def download(url: str, dest: str | os.PathLike, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch `url` into `dest` atomically; the file appears only if its sha256 matches.

    url: a str (https://, file://, ...); timeout: seconds, a positive finite number.
    """
    if not isinstance(url, str) or not url:
        raise TypeError(f"url must be a non-empty str, got {url!r}")
    sha256 = require_sha256(sha256)
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive finite number of seconds, got {timeout!r}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        actual = sha256_of(tmp)
        if actual != sha256:
            raise ChecksumError(f"{url} served a file with sha256 {actual}, expected {sha256}: not the published file "
                                "(a moved address, or an error page from a proxy?); nothing was saved")
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
    if not isinstance(filename, str) or not filename or os.sep in filename or filename in (".", ".."):
        raise ValueError(f"filename must be a plain file name (no folder), got {filename!r}")
    sha256 = require_sha256(sha256)
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
