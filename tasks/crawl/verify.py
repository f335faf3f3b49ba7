"""Is a downloaded file a real, complete video? And how long is a video, read from its header?

A download only counts when PyAV opens the file, finds a video stream, decodes its first frame and decodes
frames up to the end the container announces; a file cut short (a truncated transfer, a broken upload) or
one that is not a video at all becomes a ``failed`` row with a reason, never a silent bad input for the
segment stage (paper, section 3.2).

    >>> check_video(Path("media/Terror/generic-clip.mp4"))            # doctest: +SKIP
    VideoCheck(ok=True, reason=None, error=None, duration=12.0, n_bytes=81234, sha256='9f2c...')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

#: A file whose last decodable frame ends this far (seconds, or this fraction of the duration, whichever is
#: larger) before the duration its container announces is truncated.
_TAIL_SLACK_S = 1.0
_TAIL_SLACK_FRACTION = 0.05


@dataclass(frozen=True)
class VideoCheck:
    ok: bool
    reason: str | None  # when not ok: one of data_catalog.schemas.MEDIA_REASONS (as in ``media``)
    error: str | None
    duration: float | None
    n_bytes: int
    sha256: str | None


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _container_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def check_video(path: Path) -> VideoCheck:
    """Check it is a non-empty regular file (never opening a FIFO), open it, refuse a still image, decode
    the first frame, seek near the announced end and decode to the last frame."""
    import av

    from tasks.media import MediaError, check_file, is_still_image, open_container

    path = Path(path)
    try:
        n_bytes = check_file(path).st_size
    except MediaError as exc:
        return VideoCheck(
            False, exc.reason, f"{path.name}: {exc.message.removeprefix(f'{path}: ')}", None, 0, None
        )

    def bad(reason: str, error: str, duration: float | None = None) -> VideoCheck:
        return VideoCheck(False, reason, f"{path.name}: {error}", duration, n_bytes, None)

    try:
        container = open_container(str(path))
    except MediaError as exc:  # not_a_video, or truncated when it starts like a known container
        return bad(exc.reason, exc.message.removeprefix(f"{path}: "))
    with container:
        if is_still_image(container):
            return bad("not_a_video", f"a still image ({container.format.name}), not a video")
        if not container.streams.video:
            return bad("no_video_stream", "the file has no video stream")
        stream = container.streams.video[0]
        duration = _container_duration(container, stream)
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            return bad("undecodable", f"the first frame cannot be decoded ({exc})", duration)
        if first is None:
            return bad("no_frames", "the video stream has no decodable frame", duration)
        if duration:
            last_time = None
            try:
                start = max(0.0, duration - 2 * _TAIL_SLACK_S)
                container.seek(int(start / stream.time_base), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.time is not None:
                        last_time = frame.time
            except av.FFmpegError:
                pass  # judged below by how far decoding got
            slack = max(_TAIL_SLACK_S, _TAIL_SLACK_FRACTION * duration)
            if last_time is None or last_time < duration - slack:
                got = "no frame" if last_time is None else f"frames up to {last_time:.2f} s"
                return bad(
                    "truncated", f"truncated: container announces {duration:.2f} s, decoded {got}", duration
                )
    return VideoCheck(True, None, None, duration, n_bytes, sha256_of(path))


def probe_duration(url: str, timeout_s: float) -> float | None:
    """The duration of a media file or link from its header (a few kilobytes), or None when unreadable."""
    import av

    try:
        with av.open(url, timeout=(timeout_s, timeout_s)) as container:
            if not container.streams.video:
                return None
            return _container_duration(container, container.streams.video[0])
    except (av.FFmpegError, OSError):
        return None
