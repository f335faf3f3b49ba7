"""What every face detector returns, and the padding that helps on close-ups.

A detector takes an upright RGB ``uint8`` image and returns :class:`FaceDetections`: boxes
``(x1, y1, x2, y2)`` in the image's pixels, scores and the 5 landmarks (left eye, right eye, nose, left and
right mouth corner), largest face first. Faces that fill the frame (close-ups, common in the paper's
web footage, section 3.2) are found more reliably when the frame gets a black border before detection;
:meth:`FaceDetector.detect` adds it (``pad``, a fraction of the longer side) and maps boxes back.

    >>> dets = detector.detect(frame.image)                       # doctest: +SKIP
    >>> dets.boxes[0], dets.scores[0], dets.landmarks[0]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceDetections:
    """The faces found on one image, largest box first."""

    boxes: np.ndarray  # (N, 4) float32, x1 y1 x2 y2 in image pixels
    scores: np.ndarray  # (N,) float32
    landmarks: np.ndarray | None  # (N, 5, 2) float32, or None for detectors without landmarks
    width: int  # of the image the boxes refer to
    height: int

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def areas(self) -> np.ndarray:
        return np.clip(self.boxes[:, 2] - self.boxes[:, 0], 0, None) * np.clip(
            self.boxes[:, 3] - self.boxes[:, 1], 0, None
        )

    @classmethod
    def create(
        cls,
        boxes: np.ndarray,
        scores: np.ndarray,
        landmarks: np.ndarray | None,
        width: int,
        height: int,
    ) -> FaceDetections:
        """Normalise dtypes and order the faces by box area, largest first (ties: higher score first)."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        if landmarks is not None:
            landmarks = np.asarray(landmarks, dtype=np.float32).reshape(-1, 5, 2)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        order = np.lexsort((-scores, -area))
        return cls(
            boxes[order],
            scores[order],
            None if landmarks is None else landmarks[order],
            int(width),
            int(height),
        )


class FaceDetector(ABC):
    """Base of the registered detectors: padding and batching here, the model call in subclasses."""

    #: registry name, e.g. 'scrfd'
    name: str = ""

    def __init__(self, pad: float = 0.0) -> None:
        if not 0.0 <= pad <= 1.0:
            raise ValueError(f"pad must be a fraction of the longer image side in [0, 1], got {pad}")
        self.pad = pad

    @property
    @abstractmethod
    def version(self) -> str:
        """Identifies the weights (recorded as the ``model_version`` lineage column)."""

    @abstractmethod
    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Boxes (N, 4), scores (N,), landmarks (N, 5, 2) or None on an RGB uint8 image."""

    def _detect_many(
        self, images: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """:meth:`_detect` on several images; batched detectors override this."""
        return [self._detect(image) for image in images]

    def _detect_padded(
        self, images: list[np.ndarray], borders: list[int]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """:meth:`_detect_many` on the images with a black border of ``borders`` pixels each (results in the
        padded images' pixels); detectors that pad where the graph runs override this."""
        padded = [
            np.pad(im, ((b, b), (b, b), (0, 0))) if b else im for im, b in zip(images, borders, strict=True)
        ]
        return self._detect_many(padded)

    def _check(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: expected an H x W x 3 uint8 RGB image, got shape {image.shape} {image.dtype}"
            )
        return image

    def detect(self, image: np.ndarray) -> FaceDetections:
        """The faces on one upright RGB ``uint8`` image (H x W x 3)."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[FaceDetections]:
        """The faces on each of several images, in order (batched where the detector can)."""
        images = [self._check(image) for image in images]
        borders = [int(round(self.pad * max(im.shape[:2]))) for im in images]
        out = []
        for im, border, (boxes, scores, landmarks) in zip(
            images, borders, self._detect_padded(images, borders), strict=True
        ):
            if border:
                boxes = boxes[:, :4] - border
                if landmarks is not None:
                    landmarks = landmarks - border
            out.append(FaceDetections.create(boxes[:, :4], scores, landmarks, im.shape[1], im.shape[0]))
        return out
