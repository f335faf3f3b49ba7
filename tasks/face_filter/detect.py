"""Face detection over a clip's sampled frames -> ``faces`` rows (paper 3.2, stage 3).

The segment stage hands over each clip with ``n_sample_frames`` frames decoded in the same pass
(:class:`tasks.segment.ClipSample`); here the detector runs on them, and the per-frame pixel measures the
rules need (sharpness of the dominant face, a colour histogram for shot cuts) are taken while the pixels
are at hand, so nothing is decoded twice.

Clips are detected together (:func:`detect_clips`), so the detector sees whole batches of frames from
several clips at once (``face_filter.detector.batch``); :func:`batched_clips` groups a clip stream so.

    >>> faces = detect_clip(sample, detector, scale=1.0)             # doctest: +SKIP
    >>> face_rows(faces)[0]["score"]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.detectors.base import FaceDetections, FaceDetector
from tasks.face_filter.measures import colour_histogram, sharpness

if TYPE_CHECKING:
    from tasks.segment import ClipSample


@dataclass(frozen=True)
class FrameFaces:
    """The detections on one sampled frame, with the pixel measures taken on it."""

    index: int  # frame index in the source video
    time: float
    detections: FaceDetections
    sharpness: float  # of the dominant (largest) face; NaN without a face
    histogram: np.ndarray


@dataclass(frozen=True)
class ClipFaces:
    """A clip's sampled-frame detections. ``scale`` converts sampled-frame pixels to source pixels."""

    clip: dict
    frames: list[FrameFaces]
    scale: float = 1.0


def detect_clip(sample: ClipSample, detector: FaceDetector, scale: float = 1.0) -> ClipFaces:
    """Run ``detector`` on every sampled frame of ``sample``."""
    return detect_clips([sample], detector, scale)[0]


def detect_clips(
    samples: Sequence[ClipSample], detector: FaceDetector, scale: float = 1.0
) -> list[ClipFaces]:
    """Run ``detector`` on the sampled frames of several clips in one batched call, clip by clip out."""
    frames = [f for s in samples for f in s.frames]
    found = iter(zip(frames, detector.detect_batch([f.image for f in frames]), strict=True))
    out = []
    for sample in samples:
        faces = []
        for frame, dets in itertools.islice(found, len(sample.frames)):
            sharp = sharpness(frame.image, dets.boxes[0]) if len(dets) else math.nan
            faces.append(FrameFaces(frame.index, frame.time, dets, sharp, colour_histogram(frame.image)))
        out.append(ClipFaces(sample.clip, faces, scale))
    return out


def batched_clips(samples: Iterable[ClipSample], n_frames: int) -> Iterator[list[ClipSample]]:
    """Consecutive clips grouped until a group holds at least ``n_frames`` sampled frames (the last group
    may hold fewer): one detector call per group keeps its batches full."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    group: list[ClipSample] = []
    count = 0
    for sample in samples:
        group.append(sample)
        count += len(sample.frames)
        if count >= n_frames:
            yield group
            group, count = [], 0
    if group:
        yield group


def face_rows(faces: ClipFaces) -> list[dict]:
    """One ``faces`` row per detection (no lineage columns); ``face_index`` 0 is the largest face."""
    rows = []
    for f in faces.frames:
        d = f.detections
        for k in range(len(d)):
            x1, y1, x2, y2 = (float(v) for v in d.boxes[k])
            rows.append(
                {
                    "clip_id": faces.clip["clip_id"],
                    "frame_index": f.index,
                    "time": f.time,
                    "face_index": k,
                    "x1": x1,
                    "y1": y1,
                    "x2": x2,
                    "y2": y2,
                    "score": float(d.scores[k]),
                    "landmarks": None if d.landmarks is None else d.landmarks[k].ravel().tolist(),
                    "frame_width": d.width,
                    "frame_height": d.height,
                }
            )
    return rows
