"""What the face rules measure on a clip's sampled frames (paper 3.2, candidate generation).

Per sampled frame the dominant face is the largest detected box (``face_index`` 0 in ``faces``). Over the
clip we measure: how often a face is present, its detection score, how much it dominates the second face,
its size (source pixels and fraction of the frame), its yaw from the 5 landmarks, the sharpness of its
crop, the continuity of its box from sample to sample, and the largest colour change between samples (a
shot cut inside the clip). All of them go into the ``measures`` map of the ``candidates`` row.

    >>> measure_clip(clip_faces)                                         # doctest: +SKIP
    {'presence': 1.0, 'score': 0.87, 'dominance': 100.0, 'face_px': 290.0, ...}
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tasks.face_filter.detect import ClipFaces

#: Largest-to-second face area ratio recorded when a frame holds a single face.
DOMINANCE_CAP = 100.0
#: Side of the normalised grey crop that sharpness is measured on.
SHARP_SIDE = 96
_HIST_BINS = 32


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def centre_shift(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between box centres, in units of the boxes' mean size (sqrt of area)."""
    ca = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
    cb = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    size = (
        math.sqrt(max((a[2] - a[0]) * (a[3] - a[1]), 0)) + math.sqrt(max((b[2] - b[0]) * (b[3] - b[1]), 0))
    ) / 2
    return float(np.linalg.norm(ca - cb) / size) if size > 0 else math.inf


def yaw_degrees(landmarks: np.ndarray) -> float:
    """Signed yaw estimate from 5 landmarks (eyes, nose, mouth corners), in degrees.

    The points are first rotated so the eyes are level (removing roll); the nose's horizontal position
    between the left (eye + mouth corner) and right (eye + mouth corner) columns, ``r`` in [0, 1], maps to
    ``asin(2r - 1)``: 0 for a frontal face, +-90 when the nose reaches one side (a profile).
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    d = pts[1] - pts[0]
    angle = math.atan2(d[1], d[0])
    c, s = math.cos(-angle), math.sin(-angle)
    x = pts[:, 0] * c - pts[:, 1] * s
    left, right = (x[0] + x[3]) / 2, (x[1] + x[4]) / 2
    if right - left <= 1e-6:
        return 90.0
    r = (x[2] - left) / (right - left)
    return math.degrees(math.asin(float(np.clip(2 * r - 1, -1.0, 1.0))))


def sharpness(image: np.ndarray, box: np.ndarray) -> float:
    """Variance of the Laplacian of the face box, on a normalised crop: grey, resized to
    ``SHARP_SIDE`` square and scaled to unit contrast, so the value compares faces of any size, brightness
    and contrast. Blur lowers it; NaN for a box outside the image or a flat crop."""
    import cv2

    h, w = image.shape[:2]
    x1, y1 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    x2, y2 = min(int(math.ceil(box[2])), w), min(int(math.ceil(box[3])), h)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return math.nan
    grey = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (SHARP_SIDE, SHARP_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    std = float(grey.std())
    if std < 1e-3:
        return math.nan
    return float(cv2.Laplacian((grey - grey.mean()) / std, cv2.CV_32F).var())


def colour_histogram(image: np.ndarray) -> np.ndarray:
    """A small per-channel HSV histogram (each channel sums to 1) of a shrunken frame."""
    import cv2

    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    ranges = ((0, 180), (0, 256), (0, 256))
    hists = [cv2.calcHist([hsv], [ch], None, [_HIST_BINS], list(ranges[ch])).ravel() for ch in range(3)]
    return np.stack([h / max(h.sum(), 1.0) for h in hists]).astype(np.float32)


def histogram_change(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance of two :func:`colour_histogram` results, averaged over channels: 0..1."""
    return float(np.abs(a - b).sum(axis=1).mean() / 2)


def _median(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.median(values)) if values else math.nan


def measure_clip(faces: ClipFaces) -> dict[str, float]:
    """Every measure the rules use (see :data:`tasks.face_filter.rules.RULES`), for one clip."""
    frames = faces.frames
    present = [f for f in frames if len(f.detections)]
    dominant = [f.detections.boxes[0] for f in present]
    m: dict[str, float] = {
        "n_samples": float(len(frames)),
        "presence": len(present) / len(frames) if frames else 0.0,
        "cut_change": max(
            (histogram_change(a.histogram, b.histogram) for a, b in pairwise(frames)), default=0.0
        ),
        "max_faces": float(max((len(f.detections) for f in frames), default=0)),
    }
    ratios = []
    for f in present:
        areas = f.detections.areas
        ratios.append(
            min(float(areas[0] / areas[1]), DOMINANCE_CAP)
            if len(areas) > 1 and areas[1] > 0
            else DOMINANCE_CAP
        )
    m["score"] = _median([float(f.detections.scores[0]) for f in present])
    m["dominance"] = _median(ratios)
    m["face_px"] = _median([min(b[2] - b[0], b[3] - b[1]) * faces.scale for b in dominant])
    m["face_frac"] = _median(
        [(b[3] - b[1]) / f.detections.height for b, f in zip(dominant, present, strict=True)]
    )
    m["yaw"] = _median(
        [abs(yaw_degrees(f.detections.landmarks[0])) for f in present if f.detections.landmarks is not None]
    )
    m["sharpness"] = _median([f.sharpness for f in present])
    pairs = list(pairwise(dominant))
    m["track_iou"] = min((box_iou(a, b) for a, b in pairs), default=1.0 if present else math.nan)
    m["track_shift"] = max((centre_shift(a, b) for a, b in pairs), default=0.0 if present else math.nan)
    return {k: float(v) for k, v in m.items()}
