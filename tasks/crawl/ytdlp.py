"""What the crawl shares about yt-dlp: the options every call gets, a quiet logger, error reasons.

yt-dlp is used through its Python API (``YoutubeDL.extract_info``) for both the metadata pass and the
download. Its errors carry the underlying cause (an HTTP status, a timeout, a refused proxy); here they
become a snake_case reason and a one-line message for the ``videos`` manifest (paper, section 3.2).

    >>> describe_error(RuntimeError("ERROR: [generic] boom; please report this issue on  https://x"))
    ('download_error', '[generic] boom')
"""

from __future__ import annotations

import logging
import re
import socket
from typing import Any

from tasks.crawl.config import CrawlConfig

log = logging.getLogger("ferv.crawl")

#: Reasons worth another attempt: the site may answer next time.
TRANSIENT_REASONS = frozenset(
    {"timeout", "unreachable", "http_429", "http_500", "http_502", "http_503", "http_504"}
)

_NOISE = re.compile(r";?\s*please report this issue on.*$", re.S)


class QuietLogger:
    """Routes yt-dlp's output to :mod:`logging` and remembers the warnings of the current call."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None:
        log.debug(msg)

    def info(self, msg: str) -> None:
        log.debug(msg)

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)
        log.debug(msg)

    def error(self, msg: str) -> None:
        log.debug(msg)


def base_options(cfg: CrawlConfig, logger: QuietLogger) -> dict[str, Any]:
    """yt-dlp options shared by discovery and download: network policy, retries with backoff, quiet."""

    def backoff(n: int) -> float:
        return cfg.backoff_s * 2**n

    opts: dict[str, Any] = {
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "logger": logger,
        "socket_timeout": cfg.socket_timeout_s,
        "retries": cfg.retries,
        "fragment_retries": cfg.retries,
        "extractor_retries": cfg.retries,
        "retry_sleep_functions": {"http": backoff, "fragment": backoff, "extractor": backoff},
        "enable_file_urls": True,  # `local:` sources go through the same path as remote ones
        "color": {"stdout": "never", "stderr": "never"},
    }
    if cfg.proxy:
        opts["proxy"] = cfg.proxy
    if cfg.cookies:
        if not cfg.cookies.is_file():
            raise FileNotFoundError(f"crawl.cookies: cookie file {cfg.cookies} not found")
        opts["cookiefile"] = str(cfg.cookies)
    return opts


def clean_message(exc: BaseException) -> str:
    """yt-dlp's message without the 'ERROR:' prefix and the bug-report boilerplate."""
    text = str(exc).strip()
    text = re.sub(r"^(ERROR:\s*)+", "", text)
    return _NOISE.sub("", text).strip() or type(exc).__name__


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        chain.append(e)
        exc_info = getattr(e, "exc_info", None)
        todo += [
            getattr(e, "cause", None),
            e.__cause__,
            e.__context__,
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
        ]
    return chain


def describe_error(exc: BaseException) -> tuple[str, str]:
    """``(reason, message)`` for a failed yt-dlp call: ``http_<status>``, ``timeout``, ``unreachable``,
    ``proxy_unreachable``, ``unsupported_url``, ``truncated`` or ``download_error``."""
    from yt_dlp.networking.exceptions import HTTPError, ProxyError, TransportError
    from yt_dlp.utils import ContentTooShortError, UnsupportedError

    message = clean_message(exc)
    chain = _causes(exc)
    for e in chain:
        if isinstance(e, HTTPError):
            return f"http_{e.status}", message
    for e in chain:
        if isinstance(e, ContentTooShortError):
            return "truncated", message
        if isinstance(e, ProxyError):
            return "proxy_unreachable", message
        if isinstance(e, UnsupportedError):
            return "unsupported_url", message
        if isinstance(e, (TimeoutError, socket.timeout)):
            return "timeout", message
    if re.search(r"timed? ?out", message, re.I):
        return "timeout", message
    if any(isinstance(e, (TransportError, ConnectionError)) for e in chain):
        return "unreachable", message
    return "download_error", message
