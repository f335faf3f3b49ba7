"""Face detection over a clip's sampled frames -> ``faces`` rows (paper 3.2, stage 3).

The segment stage hands over each clip with ``n_sample_frames`` frames decoded in the same pass
(:class:`tasks.segment.ClipSample`); here the detector runs on them, and the per-frame pixel measures the
rules need (sharpness of the dominant face, a colour histogram for shot cuts) are taken while the pixels
are at hand, so nothing is decoded twice.

    >>> faces = detect_clip(sample, detector, scale=1.0)             # doctest: +SKIP
    >>> face_rows(faces)[0]["score"]
"""

from __future__ import annotations

import math
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
    images = [f.image for f in sample.frames]
    out = []
    for frame, dets in zip(sample.frames, detector.detect_batch(images), strict=True):
        sharp = sharpness(frame.image, dets.boxes[0]) if len(dets) else math.nan
        out.append(FrameFaces(frame.index, frame.time, dets, sharp, colour_histogram(frame.image)))
    return ClipFaces(sample.clip, out, scale)


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
