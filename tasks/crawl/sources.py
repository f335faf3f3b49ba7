"""Where candidate videos come from: every source behind one interface, metadata only, no download.

The paper downloads "over 6k metadata ... from 8 worldwide open-source engines via the generated keyword
list" (section 3.2). A source spec names one of:

- a yt-dlp search prefix, searched once per keyword: ``ytsearch``, ``bilisearch``, ``scsearch`` ... (any
  prefix yt-dlp knows; ``ytsearch:`` with a trailing colon works too);
- a feed, playlist or page URL that yt-dlp expands into entries (``url:<URL>`` or just the URL);
- ``urls:<file>``: a text file with one URL per line (``#`` starts a comment);
- ``local:<dir>``: a directory of video files, for offline demos.

:func:`discover` returns :class:`Candidate` records; a URL that fails on its own (a 404, a timeout) is a
candidate with a ``reason``, a source that fails as a whole (an unreachable engine) is a
:class:`SourceFailure`.

    >>> parse_source("bilisearch").kind
    'search'
    >>> parse_source("local:footage").target
    'footage'
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from tasks.crawl.config import CrawlConfig
from tasks.crawl.ytdlp import QuietLogger, base_options, describe_error

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg", ".ts"}
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class SourceError(ValueError):
    """A source spec that cannot be used; the message names the spec and says what is wrong."""


@dataclass(frozen=True)
class Source:
    spec: str  # as the user wrote it
    kind: Literal["search", "url", "urls", "local"]
    target: str  # the search prefix, URL, file or directory

    @property
    def per_keyword(self) -> bool:
        return self.kind == "search"


@dataclass(frozen=True)
class Candidate:
    """One discovered video's metadata; ``reason``/``error`` set when only this item failed."""

    engine: str
    source_id: str
    url: str
    keyword: str
    title: str | None = None
    uploader: str | None = None
    duration: float | None = None
    upload_date: str | None = None
    license: str | None = None
    reason: str | None = None
    error: str | None = None

    @property
    def video_id(self) -> str:
        return make_video_id(self.engine, self.source_id)


@dataclass(frozen=True)
class SourceFailure:
    spec: str
    keyword: str | None
    reason: str
    message: str

    def __str__(self) -> str:
        where = f"{self.spec!r}" + (f" (keyword {self.keyword!r})" if self.keyword else "")
        return f"source {where}: {self.reason}: {self.message}"


@dataclass
class Discovery:
    candidates: list[Candidate] = field(default_factory=list)
    failures: list[SourceFailure] = field(default_factory=list)


def make_video_id(engine: str, source_id: str) -> str:
    """``'<engine>-<source_id>'`` made filesystem-safe; a short hash keeps lossy rewrites unique."""
    raw = f"{engine}-{source_id}"
    safe = _UNSAFE.sub("_", raw).strip("._-")[:100] or "video"
    if safe != raw:
        safe = f"{safe}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return safe


def search_prefixes() -> list[str]:
    """The search prefixes this yt-dlp knows (``ytsearch``, ``bilisearch``, ...)."""
    from yt_dlp.extractor import gen_extractor_classes

    return sorted({c.SEARCH_KEY for c in gen_extractor_classes() if getattr(c, "SEARCH_KEY", None)})


def _is_search_prefix(prefix: str) -> bool:
    """True when a yt-dlp extractor other than the generic one claims ``<prefix>1:<query>``."""
    from yt_dlp.extractor import gen_extractor_classes

    query = f"{prefix}1:test"
    return any(ie.ie_key() != "Generic" and ie.suitable(query) for ie in gen_extractor_classes())


def parse_source(spec: str) -> Source:
    """Parse and check a source spec (see module docstring); bad specs raise :class:`SourceError`."""
    text = spec.strip()
    kind, _, rest = text.partition(":")
    if kind in ("local", "urls"):
        path = Path(rest).expanduser()
        if not rest:
            raise SourceError(f"source {spec!r}: expected {kind}:<path>")
        if kind == "local" and not path.is_dir():
            raise SourceError(f"source {spec!r}: {path} is not a directory")
        if kind == "urls" and not path.is_file():
            raise SourceError(f"source {spec!r}: URL list {path} not found")
        return Source(spec, kind, str(path))
    if kind == "url":
        text = rest
    if re.match(r"^(https?|file)://", text):
        if not urlsplit(text).netloc and not text.startswith("file://"):
            raise SourceError(f"source {spec!r}: URL has no host")
        return Source(spec, "url", text)
    prefix = text.removesuffix(":")
    if ":" not in prefix and re.fullmatch(r"[a-z]+", prefix):
        if _is_search_prefix(prefix):
            return Source(spec, "search", prefix)
        known = search_prefixes()
        raise SourceError(
            f"source {spec!r}: unknown search engine; yt-dlp search prefixes: {', '.join(known)}"
        )
    raise SourceError(
        f"source {spec!r}: not a source; expected a yt-dlp search prefix (e.g. ytsearch, bilisearch), "
        "a feed/playlist URL, urls:<file> or local:<dir>"
    )


def _generic_id(url: str) -> str:
    """yt-dlp's generic extractor id for a URL: the last path segment without its extension."""
    from urllib.parse import unquote

    last = urlsplit(url).path.rstrip("/").split("/")[-1]
    return unquote(os.path.splitext(last)[0]) or hashlib.sha1(url.encode()).hexdigest()[:12]


def _looks_like_media(url: str) -> bool:
    return os.path.splitext(urlsplit(url).path)[1].lower() in VIDEO_EXTENSIONS


def _candidate(entry: dict[str, Any], keyword: str, fallback_engine: str) -> Candidate:
    from yt_dlp.utils import unsmuggle_url

    url, _ = unsmuggle_url(entry.get("webpage_url") or entry.get("url") or "")
    engine = str(entry.get("ie_key") or entry.get("extractor_key") or fallback_engine).lower()
    duration = entry.get("duration")
    return Candidate(
        engine=engine,
        source_id=str(entry.get("id") or _generic_id(url)),
        url=url,
        keyword=keyword,
        title=entry.get("title"),
        uploader=entry.get("uploader") or entry.get("channel"),
        duration=float(duration) if duration else None,
        upload_date=entry.get("upload_date"),
        license=entry.get("license"),
    )


def _entries(info: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Flatten nested playlists (a channel of playlists, a feed of feeds) into video entries."""
    if info.get("_type") in ("playlist", "multi_video"):
        for entry in info.get("entries") or ():
            if entry:
                yield from _entries(entry)
    else:
        yield info


def _failed(url: str, keyword: str, reason: str, message: str) -> Candidate:
    return Candidate("generic", _generic_id(url), url, keyword, reason=reason, error=message)


class _Extractor:
    """One yt-dlp session for a discovery pass: flat extraction, the crawl's network policy."""

    def __init__(self, cfg: CrawlConfig) -> None:
        import yt_dlp

        self.cfg = cfg
        opts = base_options(cfg, QuietLogger()) | {"extract_flat": "in_playlist", "skip_download": True}
        self.ydl = yt_dlp.YoutubeDL(opts)

    def info(self, url: str) -> dict[str, Any]:
        info = self.ydl.extract_info(url, download=False)
        if not info:
            raise ValueError(f"{url}: yt-dlp returned no metadata")
        return info

    def with_duration(self, c: Candidate) -> Candidate:
        """Fill a missing duration of a direct media link from its header, when configured."""
        if c.duration or c.reason or not self.cfg.probe_direct_links or not _looks_like_media(c.url):
            return c
        from tasks.crawl.verify import probe_duration

        return replace(c, duration=probe_duration(c.url, self.cfg.socket_timeout_s))

    def close(self) -> None:
        self.ydl.close()


def _search(ex: _Extractor, source: Source, keywords: Iterable[str], out: Discovery) -> None:
    for kw in keywords:
        query = f"{source.target}{ex.cfg.max_per_keyword}:{kw}"
        try:
            info = ex.info(query)
        except Exception as exc:  # yt-dlp raises many types; each becomes a recorded failure
            reason, message = describe_error(exc)
            out.failures.append(SourceFailure(source.spec, kw, reason, message))
            if reason in ("unreachable", "proxy_unreachable", "timeout"):
                break  # the engine is down: the next keywords would fail the same way, slowly
            continue
        out.candidates += [_candidate(e, kw, source.target) for e in _entries(info)]


def _expand_url(ex: _Extractor, url: str, keyword: str, out: Discovery, per_item: bool) -> None:
    """Expand one URL (a feed, playlist or video). With ``per_item`` a failure is a failed candidate
    (a line of a URL list), otherwise a failure of the whole source."""
    try:
        info = ex.info(url)
    except Exception as exc:  # yt-dlp raises many types; each becomes a recorded failure
        reason, message = describe_error(exc)
        if per_item:
            out.candidates.append(_failed(url, keyword, reason, message))
        else:
            out.failures.append(SourceFailure(keyword, None, reason, message))
        return
    fallback = str(info.get("extractor_key") or "generic")
    out.candidates += [ex.with_duration(_candidate(e, keyword, fallback)) for e in _entries(info)]


def read_url_list(path: Path) -> list[str]:
    urls = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not re.match(r"^(https?|file)://\S+$", line):
            raise SourceError(f"{path}:{n}: not a URL: {line!r}")
        urls.append(line)
    return urls


def _local(source: Source, known_urls: Set[str]) -> list[Candidate]:
    """Every entry of the directory tree named like a video. One that is not a non-empty regular file (a
    directory named ``*.mp4``, a FIFO, a symlink loop, a 0-byte file) is a failed candidate with its reason,
    never opened; the others are probed for their duration."""
    from tasks.crawl.verify import probe_duration
    from tasks.media import MediaError, check_file

    root = Path(source.target).resolve()
    entries = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
    out = []
    for p in entries:
        if p.as_uri() in known_urls:
            continue
        candidate = Candidate(
            engine="local",
            source_id=str(p.relative_to(root).with_suffix("")).replace(os.sep, "_"),
            url=p.as_uri(),
            keyword=source.spec,
            title=p.stem,
        )
        try:
            check_file(p)
        except MediaError as exc:
            out.append(replace(candidate, reason=exc.reason, error=exc.message))
            continue
        out.append(replace(candidate, duration=probe_duration(str(p), 10.0)))
    return out


def discover(
    source: Source, keywords: list[str], cfg: CrawlConfig, known_urls: Set[str] = frozenset()
) -> Discovery:
    """Metadata of up to ``cfg.max_per_keyword`` candidates per keyword (search engines) or of every
    entry of a feed, URL list or directory. No video is downloaded; lines of a URL list and files of a
    directory in ``known_urls`` (crawled before) are not even asked for metadata."""
    out = Discovery()
    if source.kind == "local":
        out.candidates = _local(source, known_urls)
        return out
    ex = _Extractor(cfg)
    try:
        if source.kind == "search":
            _search(ex, source, keywords, out)
        elif source.kind == "url":
            _expand_url(ex, source.target, source.spec, out, per_item=False)
        else:
            for url in read_url_list(Path(source.target)):
                if url in known_urls:
                    continue
                _expand_url(ex, url, source.spec, out, per_item=True)
    finally:
        ex.close()
    return out
