"""SCRFD at the frame's own aspect, batched, on any backend (paper 3.2: the face rules' detector).

Each image is resized so its longer side is ``size`` (the same scale insightface's 640 x 640 letterbox
gives it) and padded with black only to the graph's largest stride, so a 16:9 frame costs about 60% of a
square input; images of one shape go through the graph ``batch`` at a time. The graph is first made
shape-free (:mod:`models.detectors.shape_free`); a graph that cannot be freed runs at its fixed input,
letterboxed, one image at a time, as before. Decoding (anchor centres, distances x stride, threshold,
NMS) follows insightface's ``SCRFD`` so the boxes, scores and landmarks are the ones it finds.

    >>> det = ScrfdDetector(open_backend(path), version, size=640, batch=16)   # doctest: +SKIP
    >>> det.detect_batch(frames)[0].boxes
"""

from __future__ import annotations

import math

import numpy as np

from models.detectors.backends import Backend
from models.detectors.base import FaceDetector

MEAN, STD = 127.5, 128.0  # insightface's SCRFD input normalisation
#: outputs per graph -> (strides, anchors per location, has landmarks), as insightface reads them
LAYOUTS = {
    6: ((8, 16, 32), 2, False),
    9: ((8, 16, 32), 2, True),
    10: ((8, 16, 32, 64, 128), 1, False),
    15: ((8, 16, 32, 64, 128), 1, True),
}


def nms(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (insightface's +1 pixel areas), best score first."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= thresh]
    return np.asarray(keep, dtype=np.int64)


def fit_scale(height: int, width: int, box_h: int, box_w: int) -> tuple[int, int]:
    """(new_height, new_width) of an image fitted into box_h x box_w keeping its aspect (insightface's rule)."""
    if height / width > box_h / box_w:
        return box_h, int(box_h / (height / width))
    return int(box_w * (height / width)), box_w


class ScrfdDetector(FaceDetector):
    """An SCRFD graph on a :class:`models.detectors.backends.Backend`; boxes, scores and 5 landmarks."""

    def __init__(
        self,
        backend: Backend,
        version: str,
        name: str = "scrfd",
        *,
        n_outputs: int,
        fixed_input: tuple[int, int] | None = None,
        size: int = 640,
        batch: int = 16,
        det_thresh: float = 0.5,
        nms_thresh: float = 0.4,
        pad: float = 0.0,
    ) -> None:
        super().__init__(pad=pad)
        if not 0.0 < det_thresh < 1.0:
            raise ValueError(f"det_thresh must be in (0, 1), got {det_thresh}")
        if not 0.0 < nms_thresh < 1.0:
            raise ValueError(f"nms_thresh must be in (0, 1), got {nms_thresh}")
        if size < 32:
            raise ValueError(f"size (the detector's input long side) must be at least 32 pixels, got {size}")
        if batch < 1:
            raise ValueError(f"batch must be at least 1 image, got {batch}")
        if n_outputs not in LAYOUTS:
            raise ValueError(f"{version}: {n_outputs} outputs is not an SCRFD layout ({sorted(LAYOUTS)})")
        self.backend = backend
        self.name = name
        self._version = version
        self.strides, self.n_anchors, self.has_kps = LAYOUTS[n_outputs]
        self.fixed_input = fixed_input
        self.size = size if fixed_input is None else max(fixed_input)
        self.batch = batch if fixed_input is None else 1
        self.det_thresh = det_thresh
        self.nms_thresh = nms_thresh
        self._centres: dict[tuple[int, int, int], np.ndarray] = {}

    @property
    def version(self) -> str:
        """Weights, then how they ran: ``scrfd:<file>:<sha256[:12]>@<size>/<backend>/<device>``."""
        shape = f"{self.size}" if self.fixed_input is None else "x".join(map(str, self.fixed_input))
        return f"{self._version}@{shape}/{self.backend.describe()}"

    @property
    def providers(self) -> list[str]:
        """What runs the graph, e.g. ``['onnxruntime/cpu']`` (kept as a list for callers that print it)."""
        return [self.backend.describe()]

    def layout(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(canvas height, canvas width, resized height, resized width) for an image of that size: fitted
        into ``size`` x ``size`` and padded to the largest stride, or letterboxed into a fixed input."""
        if self.fixed_input is not None:
            return (*self.fixed_input, *fit_scale(height, width, *self.fixed_input))
        new_h, new_w = fit_scale(height, width, self.size, self.size)
        step = self.strides[-1]
        return math.ceil(new_h / step) * step, math.ceil(new_w / step) * step, new_h, new_w

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return self._detect_padded([image], [0])[0]

    def _detect_padded(
        self, images: list[np.ndarray], borders: list[int]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """Images of one shape and border go through the graph ``batch`` at a time; the backend pads,
        resizes and places them on the canvas (:meth:`Backend.canvas`: on the GPU where the graph runs
        there), so the host does not copy every frame twice."""
        results: list = [None] * len(images)
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, (im, border) in enumerate(zip(images, borders, strict=True)):  # one group per video
            groups.setdefault((*im.shape[:2], border), []).append(i)
        for (height, width, border), members in groups.items():
            h, w, new_h, new_w = self.layout(height + 2 * border, width + 2 * border)
            scale = new_h / (height + 2 * border)
            for start in range(0, len(members), self.batch):
                chunk = members[start : start + self.batch]
                canvas = self.backend.canvas([images[i] for i in chunk], border, (h, w), (new_h, new_w))
                outputs = self.backend(canvas, MEAN, STD)
                for j, i in enumerate(chunk):
                    results[i] = self._decode(outputs, j, h, w, scale)
        return results

    def _anchor_centres(self, height: int, width: int, stride: int) -> np.ndarray:
        key = (height, width, stride)
        if key not in self._centres:
            centres = np.stack(np.mgrid[:height, :width][::-1], axis=-1).astype(np.float32)
            centres = (centres * stride).reshape(-1, 2)
            if self.n_anchors > 1:
                centres = np.stack([centres] * self.n_anchors, axis=1).reshape(-1, 2)
            self._centres[key] = centres
        return self._centres[key]

    def _decode(
        self, outputs: list[np.ndarray], j: int, canvas_h: int, canvas_w: int, scale: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        fmc = len(self.strides)
        all_scores, all_boxes, all_kps = [], [], []
        for k, stride in enumerate(self.strides):

            def take(out: np.ndarray) -> np.ndarray:
                return out[j] if out.ndim == 3 else out  # graphs without a batch axis give (A, C)

            scores = take(outputs[k]).reshape(-1)
            keep = np.flatnonzero(scores >= self.det_thresh)
            if not keep.size:
                continue
            centres = self._anchor_centres(canvas_h // stride, canvas_w // stride, stride)[keep]
            dist = take(outputs[k + fmc])[keep] * stride
            all_scores.append(scores[keep])
            all_boxes.append(np.concatenate([centres - dist[:, :2], centres + dist[:, 2:4]], axis=1))
            if self.has_kps:
                kd = take(outputs[k + 2 * fmc])[keep].reshape(-1, 5, 2) * stride
                all_kps.append(centres[:, None, :] + kd)
        if not all_scores:
            kps = np.zeros((0, 5, 2), np.float32) if self.has_kps else None
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), kps
        scores = np.concatenate(all_scores)
        order = np.argsort(-scores, kind="stable")
        scores = scores[order]
        boxes = (np.concatenate(all_boxes) / scale)[order]
        kps = (np.concatenate(all_kps) / scale)[order] if self.has_kps else None
        keep = nms(boxes, scores, self.nms_thresh)
        return boxes[keep], scores[keep], None if kps is None else kps[keep]
