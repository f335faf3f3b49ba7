"""A loopback video site for crawl tests: real mp4 files made with ffmpeg, served on 127.0.0.1.

Routes: ``/v/<name>.mp4`` (with HTTP Range, so interrupted downloads resume), ``/slow/<name>.mp4`` (the
same, trickled), ``/feed.xml`` (an RSS feed whose enclosures yt-dlp's generic extractor expands),
``/missing.mp4`` (404), ``/truncated.mp4`` (the first half of a real mp4), ``/notvideo.mp4`` (random bytes
served as video/mp4) and ``/hang.mp4`` (answers after ``hang_s``, to trip a short socket timeout).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import imageio_ffmpeg

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from tasks.crawl.config import CrawlConfig
from tasks.crawl.stage import crawl


def make_video(
    path: Path, seconds: float, size: str = "160x120", rate: int = 10, bitrate: str | None = None
) -> Path:
    """A real H.264 mp4 (moov first) of a moving test pattern."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi"]
    cmd += [
        "-i",
        f"testsrc2=size={size}:rate={rate}",
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ]
    if bitrate:
        cmd += ["-b:v", bitrate]
    cmd += ["-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)]
    subprocess.run(cmd, check=True)
    return path


def make_media(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    media = {
        "a": make_video(root / "a.mp4", 3),
        "b": make_video(root / "b.mp4", 4),
        "c": make_video(root / "c.mp4", 5),
        "big": make_video(root / "big.mp4", 4, size="320x240", rate=25, bitrate="1500k"),
    }
    whole = media["c"].read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (root / "notvideo.mp4").write_bytes(os.urandom(20_000))
    media["truncated"] = root / "truncated.mp4"
    media["notvideo"] = root / "notvideo.mp4"
    return media


class Site:
    """A threaded HTTP server on 127.0.0.1 serving :func:`make_media` files; counts requests per path."""

    def __init__(
        self, media: dict[str, Path], hang_s: float = 5.0, trickle_bytes_per_s: int = 60_000
    ) -> None:
        self.media = media
        self.hang_s = hang_s
        self.trickle = trickle_bytes_per_s
        self.hits: Counter[str] = Counter()
        self.ranges: list[tuple[str, str]] = []  # (path, Range header) of partial requests
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                site.hits[self.path] += 1
                if self.headers.get("Range"):
                    site.ranges.append((self.path, self.headers["Range"]))
                site.route(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def feed(self) -> bytes:
        items = "".join(
            f'<item><title>clip {n}</title><enclosure url="{self.url(f"v/{n}.mp4")}" type="video/mp4" length="1"/>'
            f"<itunes:duration>{d}</itunes:duration></item>"
            for n, d in (("a", 3), ("b", 4), ("c", 5))
        )
        return (
            '<?xml version="1.0"?><rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
            f"<channel><title>Loopback feed</title>{items}</channel></rss>"
        ).encode()

    def route(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        if path == "/feed.xml":
            return self.send(h, self.feed(), "application/rss+xml")
        if path == "/hang.mp4":
            time.sleep(self.hang_s)
            return self.send(h, self.media["a"].read_bytes(), "video/mp4")
        m = re.fullmatch(r"/(v|slow)/(\w+)\.mp4", path)
        name = m.group(2) if m else path.strip("/").removesuffix(".mp4")
        if name not in self.media:
            return self.send(h, b"not found", "text/plain", status=404)
        self.send(h, self.media[name].read_bytes(), "video/mp4", slow=bool(m and m.group(1) == "slow"))

    def send(
        self, h: BaseHTTPRequestHandler, body: bytes, ctype: str, status: int = 200, slow: bool = False
    ) -> None:
        start, end = 0, len(body) - 1
        rng = re.fullmatch(r"bytes=(\d+)-(\d*)", h.headers.get("Range", ""))
        if rng and status == 200:
            start = int(rng.group(1))
            end = int(rng.group(2)) if rng.group(2) else end
            status = 206
        chunk = body[start : end + 1]
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(chunk)))
            h.send_header("Accept-Ranges", "bytes")
            if status == 206:
                h.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
            h.end_headers()
            step = max(1, self.trickle // 10) if slow else len(chunk) or 1
            for i in range(0, len(chunk), step):
                h.wfile.write(chunk[i : i + step])
                if slow:
                    time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass


FAST = {"min_duration_s": 1.0, "socket_timeout_s": 1.0, "retries": 0, "backoff_s": 0.0}


def run(tmp_path: Path, sources: list[str], scenes=("Terror",), retry_failed=False, **cfg):
    catalog = Catalog(tmp_path / "catalog")
    result = crawl(
        catalog,
        tmp_path / "media",
        list(scenes),
        CrawlConfig(**(FAST | cfg)),
        RunContext.create({"test": 1}),
        sources=sources,
        retry_failed=retry_failed,
    )
    return result, catalog.read("videos").set_index("video_id")
