"""Face crops and scene frames of the kept clips (paper 4.1: "cropped face images with 224 x 224
resolution and scene images with 336 x 504 resolution").

For every frame of a kept clip: a square crop around the clip's dominant face (the largest box of each
sampled frame, linearly interpolated between samples and held before the first and after the last one),
``(1 + margin)`` times the box's longer side, black where it leaves the frame, resized to ``face_size``;
and the whole frame fitted to ``scene_height x scene_width`` (3:2 landscape). Scene frames are
letterboxed by default, so no context (hands, other people, the setting) is cut away; ``scene_fit: crop``
fills the frame by cutting the sides instead.

Layout: ``<crops_dir>/faces/<scene>/<clip_id>/00001.jpg`` and ``<crops_dir>/scenes/<scene>/<clip_id>/...``.
Each folder is written under a temporary name and renamed into place, so an existing folder is complete
and a rerun skips it; :func:`remove_stale_crops` removes the temporaries of killed runs. A source video is decoded once for all of its kept clips.

    >>> results = write_video_crops("talk.mp4", jobs, crops_dir, "Interview", CropSettings())  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data_catalog.temp_files import remove_stale_temps, temp_sibling

if TYPE_CHECKING:
    from tasks.face_filter.config import CropSettings


@dataclass(frozen=True)
class CropJob:
    """One kept clip: its frame range and its dominant-face boxes on the sampled frames."""

    clip_id: str
    start_frame: int  # inclusive
    end_frame: int  # exclusive
    track_frames: np.ndarray  # (K,) source frame indices of the sampled frames with a face
    track_boxes: np.ndarray  # (K, 4) x1 y1 x2 y2 in the sampled frames' pixels
    track_width: int  # width of the sampled frames the boxes refer to


@dataclass(frozen=True)
class CropResult:
    clip_id: str
    face_dir: str | None
    scene_dir: str | None
    n_crops: int
    error: str | None = None


def interpolate_boxes(track_frames: np.ndarray, track_boxes: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Boxes at ``frames``: linear between the tracked frames, held constant outside them."""
    order = np.argsort(track_frames)
    xs, boxes = np.asarray(track_frames, dtype=np.float64)[order], np.asarray(track_boxes, np.float64)[order]
    return np.stack([np.interp(frames, xs, boxes[:, k]) for k in range(4)], axis=1)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    shrink = width <= image.shape[1] and height <= image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def square_crop(image: np.ndarray, box: np.ndarray, margin: float, size: int) -> np.ndarray:
    """A ``size`` x ``size`` crop centred on ``box``, side ``(1 + margin) x`` its longer side, black
    outside the image."""
    h, w = image.shape[:2]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(2, int(round(max(box[2] - box[0], box[3] - box[1]) * (1 + margin))))
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    out = np.zeros((side, side, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return _resize(out, size, size)


def fit_scene(image: np.ndarray, height: int, width: int, mode: str = "letterbox") -> np.ndarray:
    """The frame at ``height`` x ``width``: ``letterbox`` (whole frame, black bars) or ``crop`` (centre)."""
    h, w = image.shape[:2]
    if mode not in ("letterbox", "crop"):
        raise ValueError(f"scene_fit must be 'letterbox' or 'crop', got {mode!r}")
    scale = min(width / w, height / h) if mode == "letterbox" else max(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = _resize(image, nw, nh)
    if mode == "crop":
        x0, y0 = (nw - width) // 2, (nh - height) // 2
        return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])
    out = np.zeros((height, width, 3), dtype=np.uint8)
    x0, y0 = (width - nw) // 2, (height - nh) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = resized
    return out


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"{path}: JPEG encoding failed")
    path.write_bytes(buf.tobytes())


class _Folder:
    """A folder of JPEGs written under a temporary name and renamed into place when complete."""

    def __init__(self, final: Path) -> None:
        self.final = final
        final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_sibling(final)
        self.tmp.mkdir()

    def add(self, n: int, rgb: np.ndarray, quality: int) -> None:
        _write_jpeg(self.tmp / f"{n:05d}.jpg", rgb, quality)

    def commit(self) -> None:
        os.rename(self.tmp, self.final)

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _count_jpegs(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.suffix == ".jpg")


def clip_dirs(crops_dir: str | os.PathLike, scene: str, clip_id: str) -> tuple[Path, Path]:
    """The face-crop and scene-frame folders of one clip."""
    root = Path(crops_dir)
    return root / "faces" / scene / clip_id, root / "scenes" / scene / clip_id


def remove_stale_crops(crops_dir: str | os.PathLike, scene: str) -> list[Path]:
    """Remove the temporary folders that killed runs left in the scene's crop folders (the writers are
    gone; see data_catalog/temp_files.py). The run that writes a scene's crops calls this first."""
    root = Path(crops_dir)
    return [p for kind in ("faces", "scenes") for p in remove_stale_temps(root / kind / scene)]


def write_video_crops(
    path: str | os.PathLike,
    jobs: Sequence[CropJob],
    crops_dir: str | os.PathLike,
    scene: str,
    cfg: CropSettings,
) -> list[CropResult]:
    """Write the folders of ``jobs`` (kept clips of one source video) from a single decode pass.

    Clips whose two folders exist already are skipped. A decoding failure is returned as the ``error`` of
    the clips it left unfinished (their temporary folders are removed), never raised.
    """
    from tasks.media import MediaError, decode_frames

    results: dict[str, CropResult] = {}
    todo: list[tuple[CropJob, Path, Path]] = []
    for job in jobs:
        face_dir, scene_dir = clip_dirs(crops_dir, scene, job.clip_id)
        if face_dir.is_dir() and scene_dir.is_dir():
            results[job.clip_id] = CropResult(
                job.clip_id, str(face_dir), str(scene_dir), _count_jpegs(face_dir)
            )
        elif len(job.track_frames) == 0:
            results[job.clip_id] = CropResult(job.clip_id, None, None, 0, "no_face_track")
        else:
            todo.append((job, face_dir, scene_dir))
    if not todo:
        return [results[j.clip_id] for j in jobs]

    # Open folders lazily, at a clip's first frame, and commit them at its last one.
    open_folders: dict[str, tuple[_Folder | None, _Folder | None]] = {}
    boxes = {
        job.clip_id: interpolate_boxes(
            job.track_frames, job.track_boxes, np.arange(job.start_frame, job.end_frame, dtype=np.float64)
        )
        for job, _, _ in todo
    }
    by_frame: dict[int, list[tuple[CropJob, Path, Path]]] = {}
    for item in todo:
        for i in range(item[0].start_frame, item[0].end_frame):
            by_frame.setdefault(i, []).append(item)
    try:
        for frame in decode_frames(path, sorted(by_frame)):
            for job, face_dir, scene_dir in by_frame[frame.index]:
                if job.clip_id not in open_folders:
                    open_folders[job.clip_id] = (
                        None if face_dir.is_dir() else _Folder(face_dir),
                        None if scene_dir.is_dir() else _Folder(scene_dir),
                    )
                faces, scenes = open_folders[job.clip_id]
                n = frame.index - job.start_frame + 1
                if faces is not None:
                    box = boxes[job.clip_id][n - 1] * (frame.image.shape[1] / job.track_width)
                    faces.add(n, square_crop(frame.image, box, cfg.margin, cfg.face_size), cfg.jpeg_quality)
                if scenes is not None:
                    scene_img = fit_scene(frame.image, cfg.scene_height, cfg.scene_width, cfg.scene_fit)
                    scenes.add(n, scene_img, cfg.jpeg_quality)
                if frame.index == job.end_frame - 1:
                    for folder in (faces, scenes):
                        if folder is not None:
                            folder.commit()
                    del open_folders[job.clip_id]
                    n_crops = job.end_frame - job.start_frame
                    results[job.clip_id] = CropResult(job.clip_id, str(face_dir), str(scene_dir), n_crops)
    except (MediaError, ValueError, OSError) as exc:
        error = f"{path}: {exc}"
    except Exception as exc:  # PyAV's decoding errors: recorded on the clips, not raised
        import av

        if not isinstance(exc, av.FFmpegError):
            raise
        error = f"{path}: decoding failed ({exc})"
    else:
        error = f"{path}: the video ended before the clip's last frame"
    finally:
        for faces, scenes in open_folders.values():
            for folder in (faces, scenes):
                if folder is not None:
                    folder.discard()
    for job, _, _ in todo:
        if job.clip_id not in results:
            results[job.clip_id] = CropResult(job.clip_id, None, None, 0, error)
    return [results[j.clip_id] for j in jobs]
