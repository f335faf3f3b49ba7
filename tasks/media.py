"""Video I/O shared by the stages: probe, decode once, encode late (paper 3.2, clip generation).

A source video is probed with PyAV (imageio-ffmpeg ships no ffprobe), decoded once for everything a stage
needs, and only the clips that reach annotation are encoded to mp4 files, frame-exactly, with the ffmpeg
binary from PATH or from imageio-ffmpeg (so ``pip install`` alone sets up a working machine).

Frame indices are 0-based in presentation order; frame times are the stream's pts in seconds. Rotation
metadata is applied, so frames come out upright. A bad file raises :class:`MediaError` with a snake_case
``reason`` that the caller records in its manifest row.

    >>> info = probe("talk.mp4")                                          # doctest: +SKIP
    >>> frames = list(decode_frames("talk.mp4", [0, 24, 48]))
    >>> encode_clip("talk.mp4", 24, 72, "clips/talk_24-72.mp4")
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data_catalog.temp_files import temp_sibling

if TYPE_CHECKING:
    import av

# File signatures of containers we recognise: a file that starts like one but does not open was cut short.
_SIGNATURES = ((4, b"ftyp"), (0, b"\x1aE\xdf\xa3"), (0, b"RIFF"), (0, b"FLV"), (0, b"OggS"))


class MediaError(Exception):
    """A video that cannot be used; ``reason`` is snake_case: for an input, one of
    :data:`data_catalog.schemas.MEDIA_REASONS`; ``encode_clip``'s own faults name the encoding step."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Frame:
    index: int  # 0-based frame index in the source video, presentation order
    time: float  # presentation time in seconds (from the stream's pts)
    image: np.ndarray  # H x W x 3, uint8, RGB, rotation already applied


@dataclass(frozen=True, eq=False)
class MediaInfo:
    """What :func:`probe` learns about a video without decoding it (beyond its first frame)."""

    path: str
    container: str
    codec: str
    width: int  # displayed, after rotation
    height: int
    coded_width: int  # as stored
    coded_height: int
    rotation: int  # counter-clockwise degrees applied for display: 0, 90, 180 or 270
    fps: float  # average frame rate
    n_frames: int
    duration: float  # seconds
    start_time: float  # the container's start time in seconds (what ffmpeg's -ss is relative to)
    variable_frame_rate: bool
    has_audio: bool
    #: presentation time of every frame, by index; None when the stream carries no timestamps
    frame_times: np.ndarray | None = field(default=None, repr=False)

    def as_row(self) -> dict[str, object]:
        """The probe fields of a ``media`` manifest row."""
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "fps": self.fps,
            "variable_frame_rate": self.variable_frame_rate,
            "n_frames": self.n_frames,
            "duration": self.duration,
        }


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary: from PATH, else the static build inside the imageio-ffmpeg wheel."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def _prctl():
    """libc's ``prctl`` on Linux (resolved once, in the parent: a forked child must not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def run_with_parent(args: list[str]) -> subprocess.CompletedProcess:
    """Run a command to completion, capturing its output; on Linux the child is killed (SIGKILL, through
    ``PR_SET_PDEATHSIG``) if this process dies first, so a killed run leaves no ffmpeg behind. Elsewhere
    it runs like :func:`subprocess.run`."""
    prctl, parent = _prctl(), os.getpid()

    def tie() -> None:
        prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the tie
            os._exit(1)

    return subprocess.run(args, capture_output=True, preexec_fn=tie if prctl else None)


def probe(path: str | os.PathLike) -> MediaInfo:
    """Read a video's container and stream headers, demux its packets (no decoding) for frame count,
    timestamps and completeness, and decode the first frame. Cached per (path, size, mtime).

    Raises :class:`MediaError` for a missing, non-regular, empty, non-video, still-image, truncated,
    audio-only or undecodable file (reasons: :data:`data_catalog.schemas.MEDIA_REASONS`).
    """
    p = Path(path)
    st = check_file(p)
    return _probe_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)


def check_file(path: Path) -> os.stat_result:
    """The ``stat`` of ``path`` when it is a non-empty regular file (after symlinks); else
    :class:`MediaError` ``missing_file``, ``not_a_file`` or ``empty_file``. Never opens the file, so a FIFO
    cannot block."""
    try:
        st = path.stat()
    except FileNotFoundError:
        kind = "a broken symlink" if path.is_symlink() else "no such file"
        raise MediaError("missing_file", f"{path}: {kind}") from None
    except OSError as exc:  # ELOOP: a symlink loop; EACCES, ...
        raise MediaError("not_a_file", f"{path}: cannot be read as a file ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(st.st_mode)), "not a regular file")
        raise MediaError("not_a_file", f"{path}: {kind}, not a video file")
    if st.st_size == 0:
        raise MediaError("empty_file", f"{path}: the file is empty (0 bytes)")
    return st


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def is_still_image(container: av.container.InputContainer) -> bool:
    """Whether FFmpeg opened the file as a still image (``png_pipe``, ``jpeg_pipe``, ``image2``, ...)."""
    name = container.format.name
    return name.endswith("_pipe") or name.startswith("image2")


def _looks_like_container(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(16)
    return any(head[off : off + len(sig)] == sig for off, sig in _SIGNATURES)


def open_container(path: str) -> av.container.InputContainer:
    """``av.open``, or :class:`MediaError` ``truncated`` (starts like a known container) / ``not_a_video``."""
    import av

    try:
        return av.open(path)
    except av.FFmpegError as exc:
        if _looks_like_container(path):
            raise MediaError(
                "truncated", f"{path}: a known container whose index cannot be read ({exc})"
            ) from None
        raise MediaError("not_a_video", f"{path}: not a readable media file ({exc})") from None


def _video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    import av

    streams = [
        s
        for s in container.streams.video
        if not (s.disposition & av.stream.Disposition.attached_pic)  # cover art is not video
    ]
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise MediaError("no_video_stream", f"{path}: no video stream (streams: {', '.join(kinds)})")
    return streams[0]


@functools.lru_cache(maxsize=64)
def _probe_cached(path: str, size: int, mtime_ns: int) -> MediaInfo:
    import av

    with open_container(path) as container:
        if is_still_image(container):
            raise MediaError("not_a_video", f"{path}: a still image ({container.format.name}), not a video")
        stream = _video_stream(container, path)
        tb = float(stream.time_base) if stream.time_base else 0.0
        pts: list[int] = []
        n_packets = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0 and packet.pts is None:  # the demuxer's final flush packet
                    continue
                if packet.is_discard:  # dropped by an edit list: never displayed
                    continue
                n_packets += 1
                if packet.pts is not None:
                    pts.append(packet.pts)
        except av.FFmpegError as exc:
            raise MediaError(
                "truncated", f"{path}: demuxing stopped after {n_packets} frames ({exc})"
            ) from None
        declared = stream.frames
        # Encoders and muxers often declare a few frames more than they store (edit lists, dropped
        # trailing frames): only a real shortfall is a truncated file.
        if declared and declared - n_packets > max(5, 0.05 * declared):
            raise MediaError(
                "truncated", f"{path}: the header declares {declared} frames, the file holds {n_packets}"
            )
        if n_packets == 0:
            raise MediaError("no_frames", f"{path}: the video stream holds no frames")
        has_audio = bool(container.streams.audio)
        container_start = container.start_time / av.time_base if container.start_time is not None else 0.0
        container_format = container.format.name
        codec = stream.codec_context.name
        coded_w, coded_h = stream.codec_context.width, stream.codec_context.height
        header_duration = (
            stream.duration * tb
            if stream.duration
            else (container.duration / av.time_base if container.duration else None)
        )
        avg_rate = float(stream.average_rate) if stream.average_rate else None

    first = _first_frame(path)
    rotation = _rotation(first)
    coded_w, coded_h = first.width or coded_w, first.height or coded_h
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)

    times = np.sort(np.asarray(pts, dtype=np.float64)) * tb if len(pts) == n_packets else None
    vfr = False
    if times is not None and len(times) > 2:
        deltas = np.diff(times)
        median = float(np.median(deltas))
        if median > 0:
            vfr = bool(np.mean(np.abs(deltas - median) > 0.25 * median) > 0.01)
        span = float(times[-1] - times[0]) + median
        if header_duration and span < header_duration - max(1.0, 0.05 * header_duration):
            raise MediaError(
                "truncated", f"{path}: frames cover {span:.2f} s of the {header_duration:.2f} s declared"
            )
        duration = span
        fps = avg_rate if (avg_rate and not vfr) else n_packets / span
    else:
        duration = header_duration or 0.0
        fps = avg_rate or (n_packets / duration if duration else 0.0)
    return MediaInfo(
        path=path,
        container=container_format,
        codec=codec,
        width=width,
        height=height,
        coded_width=coded_w,
        coded_height=coded_h,
        rotation=rotation,
        fps=float(fps),
        n_frames=n_packets,
        duration=float(duration),
        start_time=float(container_start),
        variable_frame_rate=vfr,
        has_audio=has_audio,
        frame_times=times,
    )


def _first_frame(path: str) -> av.VideoFrame:
    import av

    with open_container(path) as container:
        stream = _video_stream(container, path)
        try:
            for frame in container.decode(stream):
                return frame
        except av.FFmpegError as exc:
            raise MediaError("undecodable", f"{path}: the first frame does not decode ({exc})") from None
    raise MediaError("undecodable", f"{path}: no frame decodes from the video stream")


def _rotation(frame: av.VideoFrame) -> int:
    """The display rotation (counter-clockwise degrees) snapped to a multiple of 90; flips are ignored."""
    return int(round((frame.rotation or 0) / 90.0)) % 4 * 90


class FrameConverter:
    """Turns decoded frames into upright RGB arrays no larger than ``max_side``; it keeps one swscale
    context for the whole video, which makes conversion several times cheaper than per-frame setup."""

    def __init__(self, info: MediaInfo, max_side: int | None = None) -> None:
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()
        self._k = info.rotation // 90
        scale = 1.0
        if max_side and max(info.coded_width, info.coded_height) > max_side:
            scale = max_side / max(info.coded_width, info.coded_height)
        self.size = (max(1, round(info.coded_width * scale)), max(1, round(info.coded_height * scale)))

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        w, h = self.size
        rgb = self._reformatter.reformat(
            frame, width=w, height=h, format="rgb24", interpolation="AREA"
        ).to_ndarray()
        return np.ascontiguousarray(np.rot90(rgb, self._k)) if self._k else rgb


def iter_decoded(
    path: str | os.PathLike, info: MediaInfo | None = None
) -> Iterator[tuple[int, float, av.VideoFrame]]:
    """Decode the video stream once, with threaded decoding: ``(index, time, frame)`` in presentation
    order. A frame without a pts gets the previous time plus one average frame interval."""
    info = info or probe(path)
    step = 1.0 / info.fps if info.fps else 0.0
    with open_container(str(path)) as container:
        stream = _video_stream(container, str(path))
        stream.thread_type = "AUTO"
        time = None
        for index, frame in enumerate(container.decode(stream)):
            time = frame.time if frame.pts is not None else (0.0 if time is None else time + step)
            yield index, float(time), frame


def decode_frames(
    path: str | os.PathLike, indices: Iterable[int], max_side: int | None = None
) -> Iterator[Frame]:
    """The wanted frames (by index), upright RGB, from one decode pass that stops after the last one."""
    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        return
    if wanted[0] < 0:
        raise ValueError(f"{path}: frame indices must be >= 0, got {wanted[0]}")
    info = probe(path)
    if wanted[-1] >= info.n_frames:
        raise ValueError(
            f"{path}: frame index {wanted[-1]} out of range; the video has {info.n_frames} frames"
        )
    convert = FrameConverter(info, max_side)
    pending = iter(wanted)
    target = next(pending)
    for index, time, frame in iter_decoded(path, info):
        if index == target:
            yield Frame(index, time, convert(frame))
            target = next(pending, None)
            if target is None:
                return


def count_frames(path: str | os.PathLike) -> int:
    """The number of frames that actually decode from a video's first video stream."""
    with open_container(str(path)) as container:
        stream = _video_stream(container, str(path))
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def encode_clip(
    path: str | os.PathLike,
    start_frame: int,
    end_frame: int,
    out_path: str | os.PathLike,
    *,
    crf: int = 18,
    preset: str = "veryfast",
) -> Path:
    """Encode frames ``[start_frame, end_frame)`` of ``path`` to an H.264 mp4, frame-exactly.

    One ffmpeg process per clip that seeks to the keyframe before the clip, keeps exactly the frames whose
    pts fall in the clip (``select`` on the timestamps learnt by :func:`probe`), re-encodes them with libx264
    keeping their real timing (VFR stays VFR), applies rotation and drops audio; ffmpeg stops after the
    last frame. The result is checked (decoded frame count == ``end_frame - start_frame``) and renamed into
    place, so ``out_path`` never holds a partial clip.
    """
    import ffmpeg

    info = probe(path)
    if not 0 <= start_frame < end_frame <= info.n_frames:
        raise ValueError(
            f"{path}: invalid frame range [{start_frame}, {end_frame}); the video has {info.n_frames} frames"
        )
    n = end_frame - start_frame
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(out, ".mp4")  # a killed run's leftover is removed by the next run
    times = info.frame_times
    input_args: dict[str, object] = {}
    if times is not None:
        # Boundaries halfway between neighbouring frames: robust to float rounding of pts * time_base.
        lo = float(times[start_frame - 1] + times[start_frame]) / 2 if start_frame else None
        hi = float(times[end_frame - 1] + times[end_frame]) / 2 if end_frame < info.n_frames else None
        select = "*".join([f"gte(t,{lo!r})"] * (lo is not None) + [f"lt(t,{hi!r})"] * (hi is not None)) or "1"
        seek = float(times[start_frame]) - info.start_time - 1.0 / max(info.fps, 1.0)
        if seek > 0:
            input_args = {"ss": f"{seek:.6f}", "noaccurate_seek": None}
    else:  # no timestamps: count frames from the start of the file
        select = f"between(n,{start_frame},{end_frame - 1})"
    stream = (
        ffmpeg.input(str(path), **input_args)
        .video.filter("select", select)
        .filter("setpts", "PTS-STARTPTS")
        .filter("scale", "trunc(iw/2)*2", "trunc(ih/2)*2")  # libx264 4:2:0 needs even sizes
    )
    cmd = ffmpeg.output(
        stream,
        str(tmp),
        vcodec="libx264",
        crf=crf,
        preset=preset,
        pix_fmt="yuv420p",
        movflags="+faststart",
        fps_mode="passthrough",
        **{"frames:v": n},
    ).global_args("-hide_banner", "-nostdin", "-loglevel", "error", "-copyts")
    try:
        done = run_with_parent(cmd.overwrite_output().compile(cmd=ffmpeg_exe()))
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise MediaError("encode_failed", f"{path}: ffmpeg failed: {' | '.join(tail)}")
        got = count_frames(tmp)
        if got != n:
            raise MediaError(
                "frame_count_mismatch",
                f"{path}: clip [{start_frame}, {end_frame}) encoded {got} frames, not {n}",
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
