"""The benchmark's clips as a PyTorch dataset (paper, section 4.1).

Labels (the ``labels`` manifest, an imported release's, or a labels file) are joined with the
``candidates`` manifest's frame folders: ``face_dir`` (224x224 face crops) and ``scene_dir`` (336x504 scene
frames), one JPEG per frame. Each item samples ``n_frames`` frames uniformly (or every ``frame_interval``
frames), resizes faces to 112x112 and scene frames to 112x168, and in training only augments them: a random
crop, an illumination change (brightness and contrast) and a horizontal flip, drawn once per clip so the
frames of a clip move together. Tensors are ``(3, T, H, W)``, normalised with the ImageNet mean and std.
With a packed store (:mod:`tasks.benchmark.pack`) items are the sampled uint8 frames and the clip's draw;
:mod:`tasks.benchmark.augment` turns whole batches into the same tensors where the model runs.

    >>> clips = benchmark_clips(load_labels(catalog).frame, catalog)           # doctest: +SKIP
    >>> ds = ClipDataset(clips.frame, cfg, train=True, streams=("face", "scene"))
    >>> item = ds[0]; item["face"].shape, item["scene"].shape
    (torch.Size([3, 8, 112, 112]), torch.Size([3, 8, 112, 168]))
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from keywords.taxonomy import load_taxonomy

if TYPE_CHECKING:
    from data_catalog.io import Catalog
    from tasks.benchmark.config import BenchmarkConfig
    from tasks.benchmark.pack import PackedStore

#: Pixel normalisation of every stream, ``(x / 255 - MEAN) / STD``; an exported refiner declares the same.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
#: Memory-mapped packed arrays a dataset keeps open (two per clip); fewer than the kernel's default map limit.
MAX_MAPS = 4096
CLIP_COLUMNS = ["clip_id", "scene", "scenario", "label", "label_index", "split", "face_dir", "scene_dir"]


@dataclass(frozen=True)
class LabelSource:
    """Labels per clip (``clip_id``, ``scene``, ``label``, ``split``) and where they came from."""

    frame: pd.DataFrame
    source: str  # 'labels', 'labels run <id>', 'file <path>', or 'selections' (predicted, before annotation)


@dataclass(frozen=True)
class BenchmarkClips:
    """Clips with frames to train and test on (:data:`CLIP_COLUMNS`) and those left out, per reason."""

    frame: pd.DataFrame
    dropped: dict[str, int]


def load_labels(catalog: Catalog, run_id: str | None = None, labels_path: str | None = None) -> LabelSource:
    """The labels to benchmark: a labels file or folder of parts (``labels_path``), the ``labels`` rows
    of one run, or else the catalog's current labels (:func:`data_catalog.formats.labels.current_labels`)."""
    from data_catalog.formats.labels import LABEL_COLUMNS, current_labels

    if labels_path is not None:
        from data_catalog.io import ManifestError, read_parquet, to_table
        from data_catalog.schemas import get_manifest

        path = Path(labels_path)
        if not path.exists():
            raise ValueError(f"{path}: labels file not found")
        try:
            table = to_table(get_manifest("labels"), read_parquet(path))
        except (ManifestError, OSError) as exc:
            raise ValueError(f"{path}: not a labels manifest: {exc}") from None
        return LabelSource(table.to_pandas()[LABEL_COLUMNS], f"file {path}")
    if run_id is not None:
        frame = catalog.read("labels", run_id=run_id, latest=True)
        if frame.empty:
            raise ValueError(f"{catalog.root}: no 'labels' rows of run {run_id!r}")
        return LabelSource(frame[LABEL_COLUMNS], f"labels run {run_id}")
    labels = current_labels(catalog)
    if labels.source == "none":
        raise ValueError(f"{catalog.root}: no labelled clips (no 'labels' rows and no selected clips)")
    return LabelSource(labels.frame, labels.source)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _has_jpegs(folder: object) -> bool:
    return isinstance(folder, str) and os.path.isdir(folder) and any(_jpegs(folder))


def _jpegs(folder: str) -> list[str]:
    return sorted(e.path for e in os.scandir(folder) if e.name.lower().endswith((".jpg", ".jpeg")))


def need_scene_frames(clips: pd.DataFrame) -> None:
    """A clear error when a clip of ``clips`` has no scene frames (two-stream models need them)."""
    missing = clips.loc[[not _has_jpegs(d) for d in clips["scene_dir"]], "clip_id"].tolist()
    if missing:
        raise ValueError(
            f"a two-stream model needs scene frames; {len(missing)} clip(s) have none, e.g. {missing[:3]}"
        )


def benchmark_clips(labels: pd.DataFrame, catalog: Catalog) -> BenchmarkClips:
    """Join ``labels`` with the latest ``candidates`` rows' frame folders, as absolute paths
    (:meth:`Catalog.resolve_path`). Clips without face crops are left out and counted (``no_candidate``,
    ``no_face_dir``, ``no_face_crops``); a missing scene folder only matters to two-stream models."""
    tax = load_taxonomy()
    cand = catalog.read("candidates", latest=True)[["clip_id", "face_dir", "scene_dir"]]
    rows = labels.merge(cand, on="clip_id", how="left", indicator=True)
    rows["scenario"] = [tax.scene(s).scenario for s in rows["scene"]]
    rows["label_index"] = [tax.expression_index(lb) for lb in rows["label"]]
    for column in ("face_dir", "scene_dir"):
        rows[column] = [_str(catalog.resolve_path(p)) for p in rows[column]]
    rows["reason"] = [
        "no_candidate" if merged == "left_only"
        else "no_face_dir" if face is None
        else "no_face_crops" if not _has_jpegs(face)
        else None
        for merged, face in zip(rows["_merge"], rows["face_dir"], strict=True)
    ]  # fmt: skip
    keep = rows["reason"].isna()
    dropped = dict(Counter(rows.loc[~keep, "reason"]))
    return BenchmarkClips(rows.loc[keep, CLIP_COLUMNS].reset_index(drop=True), dropped)


def sample_frames(
    n_available: int, n_frames: int, interval: int = 0, rng: np.random.Generator | None = None
) -> np.ndarray:
    """``n_frames`` indices into ``n_available`` frames.

    ``interval == 0``: one frame per equal segment of the clip, its centre (``rng`` None, evaluation) or a
    random frame of the segment (training). ``interval > 0``: ``n_frames`` frames ``interval`` apart,
    centred or at a random start, falling back to segments when the clip is too short. Clips with fewer
    frames than ``n_frames`` repeat frames in order.
    """
    if n_available < 1:
        raise ValueError("a clip needs at least one frame")
    if not 2 <= n_frames <= 16:
        raise ValueError(f"n_frames must be between 2 and 16 (paper, Figure 6), got {n_frames}")
    span = (n_frames - 1) * interval + 1
    if interval > 0 and span <= n_available:
        slack = n_available - span
        start = slack // 2 if rng is None else int(rng.integers(0, slack + 1))
        return start + interval * np.arange(n_frames)
    if n_available < n_frames:
        return np.arange(n_frames) * n_available // n_frames
    edges = np.arange(n_frames + 1) * n_available / n_frames
    lo, hi = np.floor(edges[:-1]).astype(int), np.maximum(np.floor(edges[1:]).astype(int), 1)
    if rng is None:
        return (lo + hi - 1) // 2
    return lo + (rng.random(n_frames) * (hi - lo)).astype(int)


@dataclass(frozen=True)
class _Augment:
    """One clip's augmentation: crop box as shares of the frame, illumination gains, flip."""

    crop: tuple[float, float, float]  # side share, x offset share, y offset share
    brightness: float
    contrast: float
    flip: bool

    @classmethod
    def draw(cls, rng: np.random.Generator, cfg: BenchmarkConfig) -> _Augment:
        side = rng.uniform(cfg.crop_scale, 1.0)
        return cls(
            (side, rng.uniform(0, 1 - side), rng.uniform(0, 1 - side)),
            rng.uniform(1 - cfg.illumination, 1 + cfg.illumination),
            rng.uniform(1 - cfg.illumination, 1 + cfg.illumination),
            bool(rng.random() < cfg.flip),
        )

    def as_tensor(self) -> torch.Tensor:
        """``(side, x, y, brightness, contrast, flip)``, what :mod:`tasks.benchmark.augment` applies."""
        return torch.tensor([*self.crop, self.brightness, self.contrast, float(self.flip)])


#: The draw that changes nothing: the whole frame, no jitter, no flip (evaluation on packed frames).
IDENTITY = _Augment((1.0, 0.0, 0.0), 1.0, 1.0, False)


def _load(path: str, height: int, width: int, aug: _Augment | None) -> np.ndarray:
    import cv2

    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: unreadable frame")
    if aug is not None:
        h, w = bgr.shape[:2]
        side, ox, oy = aug.crop
        ch, cw = max(1, round(h * side)), max(1, round(w * side))
        y0, x0 = round(oy * h), round(ox * w)
        bgr = bgr[y0 : y0 + ch, x0 : x0 + cw]
    img = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float32)
    if aug is not None:
        mean = img.mean()
        img = np.clip((img - mean) * aug.contrast + mean * aug.brightness, 0, 255)
        if aug.flip:
            img = img[:, ::-1]
    return img


class ClipDataset(Dataset):
    """Items ``{'face': (3, T, 112, 112), 'scene': (3, T, 112, 168) or empty, 'label': int, 'index': int}``.

    ``streams`` names what to load (``('face',)`` or ``('face', 'scene')``); ``train`` turns on random
    sampling within segments and augmentation. Randomness comes from ``seed``, the epoch
    (:meth:`set_epoch`) and the item, so a resumed run draws what an uninterrupted one would. An item may
    also be asked for by key ``(index, epoch, train, scene)``, which is how long-lived workers
    (:class:`JobLoader`) serve every epoch and evaluation of a job without being told of them.

    With a packed ``store`` (:mod:`tasks.benchmark.pack`) nothing is decoded: ``face`` and ``scene`` are the
    sampled frames ``(T, H, W, 3)`` uint8 at the stored size and ``aug`` the clip's draw, which
    :func:`tasks.benchmark.augment.device_inputs` applies to the whole batch where the model runs.
    """

    def __init__(
        self,
        clips: pd.DataFrame,
        cfg: BenchmarkConfig,
        *,
        n_frames: int | None = None,
        streams: tuple[str, ...] = ("face",),
        train: bool = False,
        seed: int = 0,
        store: PackedStore | None = None,
    ) -> None:
        unknown = sorted(set(streams) - {"face", "scene"})
        if unknown or "face" not in streams:
            raise ValueError(f"streams must be ('face',) or ('face', 'scene'), got {streams}")
        if "scene" in streams:
            need_scene_frames(clips)
        self.clips = clips.reset_index(drop=True)
        self.cfg = cfg
        self.n_frames = n_frames or cfg.n_frames
        self.streams = tuple(streams)
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.store = store
        self._frames: dict[str, list[str]] = {}
        self._maps: dict[tuple[str, str], np.ndarray] = {}
        self._rows = self.clips[["clip_id", "face_dir", "scene_dir", "label_index"]].to_dict("records")

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _files(self, folder: str) -> list[str]:
        if folder not in self._frames:
            self._frames[folder] = _jpegs(folder)
        return self._frames[folder]

    def _stream(self, folder: str, idx: np.ndarray, height: int, width: int, aug: _Augment | None):
        files = self._files(folder)
        frames = [_load(files[min(i, len(files) - 1)], height, width, aug) for i in idx]
        arr = (np.stack(frames) / 255.0 - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(3, 0, 1, 2), dtype=np.float32))

    def _packed(self, clip_id: str, stream: str, idx: np.ndarray | None) -> np.ndarray | int:
        """Packed frames at ``idx`` (memory-mapped reads), or the frame count when ``idx`` is None."""
        key = (clip_id, stream)
        frames = self._maps.get(key)
        if frames is None:
            if len(self._maps) >= MAX_MAPS:  # memory maps count against the process's map limit
                self._maps.clear()
            frames = self._maps[key] = self.store.frames(clip_id, stream)
        return len(frames) if idx is None else torch.from_numpy(np.ascontiguousarray(frames[idx]))

    def __getitem__(self, key: int | tuple[int, int, bool, bool]) -> dict:
        if isinstance(key, tuple):
            i, epoch, train, scene = key
        else:
            i, epoch, train, scene = key, self.epoch, self.train, "scene" in self.streams
        row = self._rows[i]
        rng = np.random.default_rng([self.seed, epoch, i]) if train else None
        aug = _Augment.draw(rng, self.cfg) if rng is not None and self.cfg.augment else None
        packed = self.store is not None
        count = (
            (lambda s, d: self._packed(row["clip_id"], s, None))
            if packed
            else (lambda s, d: len(self._files(d)))
        )
        n_face = count("face", row["face_dir"])
        idx = sample_frames(n_face, self.n_frames, self.cfg.frame_interval, rng)
        # Scene frames and face crops of a clip are numbered alike; a folder with fewer files is mapped
        # proportionally so both streams show the same moments.
        scene_idx = idx * count("scene", row["scene_dir"]) // max(n_face, 1) if scene else None
        item = {"label": int(row["label_index"]), "index": i}
        if packed:
            item["face"] = self._packed(row["clip_id"], "face", np.minimum(idx, n_face - 1))
            item["scene"] = self._packed(row["clip_id"], "scene", scene_idx) if scene else torch.empty(0)
            item["aug"] = (aug or IDENTITY).as_tensor()
            return item
        size = self.cfg.face_size
        item["face"] = self._stream(row["face_dir"], idx, size, size, aug)
        if scene:
            item["scene"] = self._stream(
                row["scene_dir"], scene_idx, self.cfg.scene_height, self.cfg.scene_width, aug
            )
        else:
            item["scene"] = torch.empty(0)
        return item
