"""Where a refiner's weights come from: a local file, or a URL fetched once into a cache and checked.

A URL must come with its sha256: the download goes to a temporary file, is hashed, and only a matching
file is renamed into the cache, so a truncated or tampered download is never used. The weights' hash is
also the refiner's ``model_version``, recorded in every ``fer_scores`` row's lineage.

    >>> path = resolve_weights("https://example.org/fer_r50.pt", sha256="9f2c...", cache_dir=tmp)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from data_catalog.assets import VerifyError, write_verified
from data_catalog.cache import default_cache_dir


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file (cached per path, modification time and size, so hashing happens once)."""
    st = os.stat(path)
    return _sha256_cached(str(path), st.st_mtime_ns, st.st_size)


def is_url(source: str | os.PathLike) -> bool:
    return urlparse(str(source)).scheme in ("http", "https")


def _check_sha256(sha256: str) -> str:
    sha256 = sha256.strip().lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    return sha256


def resolve_weights(
    source: str | os.PathLike, sha256: str | None = None, cache_dir: str | os.PathLike | None = None
) -> Path:
    """A local path to the weights named by ``source`` (a path or an http(s) URL).

    A local file is checked against ``sha256`` when one is given. A URL needs ``sha256``; it is
    downloaded into ``<cache_dir>/weights/`` unless a verified copy is already there.
    """
    if not is_url(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        if sha256 and file_sha256(path) != _check_sha256(sha256):
            raise ValueError(f"{path}: sha256 is {file_sha256(path)}, expected {sha256}")
        return path
    url = str(source)
    if not sha256:
        raise ValueError(f"weights URL {url}: give its sha256 so the download can be verified")
    sha256 = _check_sha256(sha256)
    name = Path(urlparse(url).path).name or "weights"
    target = Path(cache_dir or default_cache_dir()) / "weights" / f"{sha256[:16]}-{name}"
    if target.is_file() and file_sha256(target) == sha256:
        return target
    _download(url, target, sha256)
    return target


def _download(url: str, target: Path, sha256: str) -> None:
    """Fetch ``url`` into ``target`` through the asset cache's verified write: a mismatch keeps nothing."""
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectionError(f"weights URL {url}: download failed: {exc}") from None
    with response:
        try:
            write_verified(response, target, sha256, desc=f"download {target.name}", progress=True)
        except VerifyError as exc:
            raise ValueError(
                f"weights URL {url}: downloaded sha256 is {exc.digest}, expected {sha256}"
            ) from None
