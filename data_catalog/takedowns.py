"""The takedown list: hashes of source videos removed on request, which crawls must not bring back.

The ``takedowns`` manifest keeps a SHA-256 of each removed source's video id and URL, never the id, the
URL or any face data. A crawl asks :func:`blocklist` once and drops every candidate it blocks.

    >>> blocked = blocklist(catalog)                                  # doctest: +SKIP
    >>> blocked.blocks("youtube-abc123", "https://www.youtube.com/watch?v=abc123")
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from data_catalog.io import Catalog

MANIFEST = "takedowns"
#: The takedowns manifest's one partition (takedowns belong to no scene).
PARTITION = "all"


def source_hash(text: str) -> str:
    """SHA-256 (hex) of a video id or URL, as the takedowns manifest stores it."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Blocklist:
    """The hashes of every taken-down source (pending or done)."""

    hashes: frozenset[str]

    def blocks(self, video_id: str | None, url: str | None = None) -> bool:
        return any(v and source_hash(v) in self.hashes for v in (video_id, url))

    def __len__(self) -> int:
        return len(self.hashes)


def blocklist(catalog: Catalog) -> Blocklist:
    """The sources later crawls must skip: every takedown recorded, finished or not."""
    rows = catalog.read(MANIFEST, latest=True)
    hashes = set(rows["source_hash"]) | set(rows["url_hash"].dropna())
    return Blocklist(frozenset(hashes))
