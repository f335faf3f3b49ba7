"""Download one selected video with yt-dlp's Python API, then prove it is a real, complete video.

Policy from :class:`~tasks.crawl.config.CrawlConfig`: a format cap (<= ``max_height``), duration and size
filters, retries with exponential backoff (yt-dlp's own for a dropped transfer, one more loop here for a
site that times out or answers 5xx), a rate limit, cookies and a proxy. yt-dlp writes to
``<video_id>.<ext>.part`` and renames when done, so a killed download resumes (HTTP Range) or restarts;
``<media>/download-archive.txt`` is yt-dlp's download archive, so a re-crawl, or the yt-dlp command line
pointed at the same archive, skips what is already here. A file that fails :func:`check_video` is deleted
and forgotten by the archive, so ``--retry-failed`` fetches it again (paper, section 3.2).

    >>> download_video(url, "generic-clip", Path("media/Terror"), cfg)   # doctest: +SKIP
    DownloadOutcome(status='downloaded', reason=None, ...)
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_catalog.io import atomic_write_bytes
from tasks.crawl.config import CrawlConfig
from tasks.crawl.verify import check_video
from tasks.crawl.ytdlp import TRANSIENT_REASONS, QuietLogger, base_options, describe_error

ARCHIVE_NAME = "download-archive.txt"
_UNFINISHED = re.compile(r"\.(part|ytdl|temp|tmp)$|\.part-Frag\d+|\.f\d+\.\w+$")


@dataclass(frozen=True)
class DownloadOutcome:
    status: str  # 'downloaded' or 'failed'
    reason: str | None = None
    error: str | None = None
    local_path: str | None = None
    n_bytes: int | None = None
    sha256: str | None = None
    duration: float | None = None  # measured from the file


def finished_file(dest_dir: Path, video_id: str) -> Path | None:
    """The completed download of ``video_id`` (not a ``.part`` or per-format intermediate), if any."""
    for path in sorted(dest_dir.glob(f"{glob_escape(video_id)}.*")):
        if path.is_file() and not _UNFINISHED.search(path.name):
            return path
    return None


def glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def forget(archive: Path, archive_id: str) -> None:
    """Drop one entry from a yt-dlp download archive (atomically)."""
    if not archive.is_file():
        return
    lines = archive.read_text(encoding="utf-8").splitlines()
    kept = [ln for ln in lines if ln.strip() != archive_id]
    if len(kept) != len(lines):
        atomic_write_bytes(archive, "".join(f"{ln}\n" for ln in kept).encode())


def _archive_id(info: dict[str, Any] | None) -> str | None:
    if not info or not info.get("id") or not info.get("extractor_key"):
        return None
    return f"{str(info['extractor_key']).lower()} {info['id']}"


def _options(cfg: CrawlConfig, dest_dir: Path, video_id: str, logger: QuietLogger) -> dict[str, Any]:
    import imageio_ffmpeg
    from yt_dlp.utils import match_filter_func

    h = cfg.max_height
    opts = base_options(cfg, logger) | {
        "format": f"bv*[height<=?{h}]+ba/b[height<=?{h}]",
        "merge_output_format": "mp4",
        "ffmpeg_location": imageio_ffmpeg.get_ffmpeg_exe(),
        "outtmpl": {"default": str(dest_dir / f"{video_id}.%(ext)s")},
        "download_archive": str(dest_dir.parent / ARCHIVE_NAME),
        "continuedl": True,
        "match_filter": match_filter_func(f"duration <=? {cfg.max_duration_s}"),
        "noplaylist": True,
    }
    if cfg.max_filesize_mb:
        opts["max_filesize"] = int(cfg.max_filesize_mb * 1024 * 1024)
    if cfg.rate_limit_bytes:
        opts["ratelimit"] = cfg.rate_limit_bytes
    return opts


def _fetch(
    url: str, opts: dict[str, Any], cfg: CrawlConfig
) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """One yt-dlp download, retried with backoff on transient failures: ``(info, (reason, message))``."""
    import yt_dlp

    for attempt in range(cfg.retries + 1):
        try:
            with yt_dlp.YoutubeDL(opts) as ydl:
                return ydl.extract_info(url, download=True), None
        except Exception as exc:  # yt-dlp raises many types; each becomes a reason
            reason, message = describe_error(exc)
            if reason not in TRANSIENT_REASONS or attempt == cfg.retries:
                return None, (reason, message)
            time.sleep(cfg.backoff_s * 2**attempt)
    raise AssertionError("unreachable")


def _no_file_reason(warnings: list[str]) -> tuple[str, str]:
    text = " ".join(warnings)
    if "max-filesize" in text or "larger than max" in text:
        return "too_large", f"larger than max_filesize_mb: {text}"
    if "does not pass filter" in text:
        return "filtered_duration", f"outside the duration range: {text}"
    return "no_file", f"yt-dlp produced no file: {text or 'no message'}"


def _verified(path: Path) -> DownloadOutcome:
    check = check_video(path)
    if not check.ok:
        return DownloadOutcome(
            "failed", check.reason, check.error, n_bytes=check.n_bytes, duration=check.duration
        )
    return DownloadOutcome("downloaded", None, None, str(path), check.n_bytes, check.sha256, check.duration)


def download_video(url: str, video_id: str, dest_dir: Path, cfg: CrawlConfig) -> DownloadOutcome:
    """Download ``url`` to ``dest_dir/<video_id>.<ext>`` and verify it; failures are outcomes, not raised."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive = dest_dir.parent / ARCHIVE_NAME
    done = finished_file(dest_dir, video_id)
    if done is None:
        logger = QuietLogger()
        opts = _options(cfg, dest_dir, video_id, logger)
        info, error = _fetch(url, opts, cfg)
        done = finished_file(dest_dir, video_id)
        aid = _archive_id(info)
        if (
            done is None
            and aid
            and archive.is_file()
            and aid in archive.read_text(encoding="utf-8").splitlines()
        ):
            # Recorded in the archive, but the file is gone: the entry is stale, fetch again.
            forget(archive, aid)
            info, error = _fetch(url, opts, cfg)
            done = finished_file(dest_dir, video_id)
        if error:
            return DownloadOutcome("failed", *error)
        if done is None:
            return DownloadOutcome("failed", *_no_file_reason(logger.warnings))
    else:
        info = None
    outcome = _verified(done)
    if outcome.status == "failed":
        done.unlink(missing_ok=True)
        if aid := _archive_id(info):
            forget(archive, aid)
    return outcome
