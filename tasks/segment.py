"""Stage 2: cut each downloaded video at random into 0.5-4 s clips, decoding it once (paper 3.2).

"We randomly segment them into video clips among 0.5-4 seconds." Clips are laid down one after another
while the video is decoded: each gets a random length (uniform by default), seeded by (run seed, video id)
with a stable hash, so a rerun gives the same clips. A clip is exactly the frames whose timestamps fall in
``[start_time, end_time)``; optionally (default on) no clip spans a shot cut, detected online with
PySceneDetect's content detector on tiny frames. While a clip is open its frames are kept at ``max_side``;
when it closes, ``n_sample_frames`` uniformly spaced frames go out with it for the face filter, so
segmentation and face detection share one decode pass. Clip files are encoded later, on request
(:func:`tasks.media.encode_clip`).

Coverage: by default clips tile the whole video (``gap_min = gap_max = 0``). Decoding is paid for the
whole video anyway, and the face filter keeps only a fraction of clips while it must be able to choose
twenty times the final per-scene target (paper 3.2), so every second is offered. A positive gap thins
the candidates (and the face-detection cost) when videos are plentiful.

    >>> seg = segment_video("talk.mp4", "local-talk", "Interview", SegmentConfig(), seed=0)  # doctest: +SKIP
    >>> for sample in seg.clips:
    ...     sample.clip["clip_id"], len(sample.frames)
    >>> seg.media["n_clips"]
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field, model_validator

from data_catalog.section import Section
from tasks.media import Frame, FrameConverter, MediaError, MediaInfo, iter_decoded, probe
from tasks.prefetch import mapped_ahead, prefetched

if TYPE_CHECKING:
    import av


STAGE = "segment"
#: threads that shrink frames for shot-cut detection ahead of the segmenting loop: none on a small machine
#: (its cores are busy detecting faces), up to 4 where a GPU detects and a single loop would bound a shard;
#: where there are any, decoding also runs on a thread of its own, ahead of the cut decisions
CUT_WORKERS = min(4, (os.cpu_count() or 1) // 4)


class SegmentConfig(Section):
    """The ``segment`` config section."""

    min_len: float = Field(default=0.5, gt=0, description="shortest clip, seconds (paper: 0.5)")
    max_len: float = Field(default=4.0, gt=0, description="longest clip, seconds (paper: 4)")
    length_distribution: Literal["uniform", "lognormal"] = "uniform"
    length_median: float = Field(
        default=1.5, gt=0, description="lognormal only: median length (FERV39k clips average 1.5 s)"
    )
    length_sigma: float = Field(default=0.5, gt=0, description="lognormal only: sigma of log length")
    gap_min: float = Field(default=0.0, ge=0, description="seconds skipped between clips, at least")
    gap_max: float = Field(default=0.0, ge=0, description="seconds skipped between clips, at most")
    seed: int = Field(default=0, description="run seed; clips are seeded by (seed, video id)")
    shot_cuts: bool = Field(default=True, description="close clips at detected shot cuts")
    cut_threshold: float = Field(default=27.0, gt=0, description="PySceneDetect ContentDetector threshold")
    min_shot_len: float = Field(default=0.5, ge=0, description="seconds between two accepted cuts")
    detect_side: int = Field(default=128, ge=16, description="longest side of frames fed to cut detection")
    n_sample_frames: int = Field(default=8, ge=1, description="frames per clip handed to the face filter")
    max_side: int = Field(default=640, ge=32, description="longest side of sampled frames, pixels")

    @model_validator(mode="after")
    def _ranges(self) -> SegmentConfig:
        if self.max_len < self.min_len:
            raise ValueError(f"max_len ({self.max_len}) must be >= min_len ({self.min_len})")
        if self.gap_max < self.gap_min:
            raise ValueError(f"gap_max ({self.gap_max}) must be >= gap_min ({self.gap_min})")
        return self


@dataclass
class ClipSample:
    clip: dict  # one `clips` manifest row (no lineage columns)
    frames: list[Frame]  # n_sample_frames uniformly spaced over [start_frame, end_frame)


@dataclass
class SegmentedVideo:
    media: dict  # one `media` manifest row (no lineage columns)
    clips: Iterator[ClipSample] = field(default_factory=lambda: iter(()))


def clip_rng(seed: int, video_id: str) -> np.random.Generator:
    """The random stream of one video: a stable hash of (run seed, video id), unlike Python's ``hash``."""
    digest = hashlib.sha256(f"{seed}\x00{video_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def clip_id(video_id: str, start_frame: int, end_frame: int) -> str:
    return f"{video_id}_{start_frame}-{end_frame}"


def sample_positions(n_frames: int, n: int) -> list[int]:
    """``min(n, n_frames)`` positions in ``range(n_frames)``, at the centres of equal bins."""
    k = min(n, n_frames)
    return [int((i + 0.5) * n_frames / k) for i in range(k)]


def _draw_length(rng: np.random.Generator, cfg: SegmentConfig) -> float:
    if cfg.length_distribution == "uniform" or cfg.min_len == cfg.max_len:
        return float(rng.uniform(cfg.min_len, cfg.max_len))
    for _ in range(1000):  # lognormal truncated to [min_len, max_len] by rejection
        length = float(rng.lognormal(math.log(cfg.length_median), cfg.length_sigma))
        if cfg.min_len <= length <= cfg.max_len:
            return length
    return float(np.clip(cfg.length_median, cfg.min_len, cfg.max_len))


def _draw_gap(rng: np.random.Generator, cfg: SegmentConfig) -> float:
    return cfg.gap_min if cfg.gap_max == cfg.gap_min else float(rng.uniform(cfg.gap_min, cfg.gap_max))


class ShotCutDetector:
    """Online hard-cut detection: PySceneDetect's ContentDetector (HSV difference of consecutive frames)
    on frames shrunk to ``detect_side``, in suppress mode so a cut is reported at the frame it happens."""

    def __init__(self, info: MediaInfo, cfg: SegmentConfig) -> None:
        from av.video.reformatter import VideoReformatter
        from scenedetect.detector import FlashFilter
        from scenedetect.detectors import ContentDetector

        self._fps = info.fps or 25.0
        self._detector = ContentDetector(
            threshold=cfg.cut_threshold,
            min_scene_len=max(1, round(cfg.min_shot_len * self._fps)),
            filter_mode=FlashFilter.Mode.SUPPRESS,
        )
        scale = min(1.0, cfg.detect_side / max(info.coded_width, info.coded_height))
        self._size = (max(8, round(info.coded_width * scale)), max(8, round(info.coded_height * scale)))
        self._local = threading.local()  # one swscale context per thread (see shrink)
        self._reformatter = VideoReformatter

    def shrink(self, frame: av.VideoFrame) -> np.ndarray:
        """The small BGR frame cut detection looks at; safe to call from several threads at once."""
        reformatter = getattr(self._local, "reformatter", None)
        if reformatter is None:
            reformatter = self._local.reformatter = self._reformatter()
        w, h = self._size
        return reformatter.reformat(
            frame, width=w, height=h, format="bgr24", interpolation="AREA"
        ).to_ndarray()

    def is_cut(self, index: int, small: np.ndarray) -> bool:
        """True when the ``index``-th frame, shrunk by :meth:`shrink`, starts a new shot."""
        from scenedetect import FrameTimecode

        return bool(self._detector.process_frame(FrameTimecode(index, self._fps), small))


@dataclass
class _OpenClip:
    start_frame: int
    start_time: float
    end_time: float  # planned: start_time + drawn length
    shot_id: int
    frames: list[tuple[float, av.VideoFrame | np.ndarray]] = field(default_factory=list)  # see _lay_clips


def failed_media_row(video_id: str, scene: str, path: str | os.PathLike, reason: str, error: str) -> dict:
    return {
        "video_id": video_id,
        "scene": scene,
        "status": "failed",
        "reason": reason,
        "error": error,
        "path": str(path),
        "n_clips": 0,
    }


def segment_video(
    path: str | os.PathLike, video_id: str, scene: str, cfg: SegmentConfig, seed: int | None = None
) -> SegmentedVideo:
    """Probe a video and lay random clips over it while decoding it once (see the module docstring).

    ``seed`` is the run seed (default ``cfg.seed``). A file that cannot be used yields a failed ``media``
    row and no clips; nothing raises for a bad file. ``media["n_clips"]``/``["n_shots"]`` are final once
    ``clips`` is exhausted; a decode error part-way keeps the clips already produced and records
    ``reason='decode_error'`` on an ``ok`` row.
    """
    try:
        info = probe(path)
    except MediaError as exc:
        return SegmentedVideo(failed_media_row(video_id, scene, path, exc.reason, exc.message))
    media = {
        "video_id": video_id,
        "scene": scene,
        "status": "ok",
        "reason": None,
        "error": None,
        **info.as_row(),
        "path": str(path),
        "n_shots": None,
        "n_clips": None,
    }
    rng = clip_rng(cfg.seed if seed is None else seed, video_id)
    return SegmentedVideo(media, _lay_clips(path, info, video_id, scene, cfg, rng, media))


def _lay_clips(
    path: str | os.PathLike,
    info: MediaInfo,
    video_id: str,
    scene: str,
    cfg: SegmentConfig,
    rng: np.random.Generator,
    media: dict,
) -> Iterator[ClipSample]:
    import av

    detector = ShotCutDetector(info, cfg) if cfg.shot_cuts else None
    convert = FrameConverter(info, cfg.max_side)
    # An open clip keeps its frames as decoded and converts only those it samples, unless the source is
    # larger than the sampled size: then each frame is shrunk as it arrives, so a clip of a 4K source holds
    # 640-pixel frames, not seconds of full-size ones (memory as before lazy conversion, at most).
    lazy = max(info.coded_width, info.coded_height) <= cfg.max_side
    state = {"shot": 0, "clips": 0}

    def close(clip: _OpenClip, end_frame: int, end_time: float) -> ClipSample | None:
        duration = end_time - clip.start_time
        n_frames = end_frame - clip.start_frame
        if n_frames <= 0 or duration < cfg.min_len - 1e-9:  # cut short by a shot cut or the end of video
            return None
        picks = sample_positions(n_frames, cfg.n_sample_frames)
        frames = [
            Frame(
                clip.start_frame + i,
                clip.frames[i][0],
                convert(clip.frames[i][1]) if lazy else clip.frames[i][1],
            )
            for i in picks
        ]
        fps = n_frames / duration if info.variable_frame_rate else info.fps
        row = {
            "clip_id": clip_id(video_id, clip.start_frame, end_frame),
            "video_id": video_id,
            "scene": scene,
            "start_time": clip.start_time,
            "end_time": end_time,
            "start_frame": clip.start_frame,
            "end_frame": end_frame,
            "n_frames": n_frames,
            "fps": float(fps),
            "duration": duration,
            "shot_id": clip.shot_id,
            "clip_path": None,
        }
        state["clips"] += 1
        return ClipSample(row, frames)

    clip: _OpenClip | None = None
    next_start = -math.inf
    n_decoded = 0
    last_time, last_step = 0.0, 1.0 / (info.fps or 25.0)
    try:
        # Where cores allow, frames are decoded on a thread and shrunk for cut detection on others, ahead
        # of this loop, which then only decides (PyAV and swscale release the GIL while they work)
        frames = iter_decoded(path, info)
        if CUT_WORKERS:
            frames = prefetched(frames, depth=8 * CUT_WORKERS)
        shrink = detector.shrink if detector is not None else (lambda item: None)
        decoded = mapped_ahead(frames, lambda item: shrink(item[2]), CUT_WORKERS)
        for (index, time, frame), small in decoded:
            n_decoded = index + 1
            if index:
                last_step = max(time - last_time, 0.0) or last_step
            last_time = time
            cut = detector is not None and index > 0 and detector.is_cut(index, small)
            if cut:
                state["shot"] += 1
            if clip is not None and (cut or time >= clip.end_time):
                end_time = time if time < clip.end_time else clip.end_time
                sample = close(clip, index, end_time)
                if sample is not None:
                    yield sample
                next_start = end_time + _draw_gap(rng, cfg)
                clip = None
            if clip is None and time >= next_start:
                clip = _OpenClip(index, time, time + _draw_length(rng, cfg), state["shot"])
            if clip is not None:
                clip.frames.append((time, frame if lazy else convert(frame)))
        if clip is not None:  # the video ended inside the last clip
            sample = close(clip, n_decoded, min(clip.end_time, last_time + last_step))
            if sample is not None:
                yield sample
    except av.FFmpegError as exc:
        media["reason"] = "decode_error"
        media["error"] = f"{path}: decoding stopped at frame {n_decoded} ({exc}); later clips dropped"
    finally:
        media["n_shots"] = state["shot"] + 1
        media["n_clips"] = state["clips"]
    if n_decoded and n_decoded != media["n_frames"]:
        media["n_frames"] = n_decoded  # what decodes is what the clip indices refer to
    if state["clips"] == 0 and media["reason"] is None:  # readable, yet no clip: say why
        if info.duration < cfg.min_len:
            media["reason"] = "too_short"
            media["error"] = (
                f"{path}: {info.duration:.2f} s is shorter than one clip (min_len {cfg.min_len:g} s)"
            )
        else:
            media["reason"] = "no_clip_fits"
            media["error"] = (
                f"{path}: {media['n_shots']} shots in {info.duration:.2f} s; none leaves a clip of "
                f"min_len {cfg.min_len:g} s"
            )
