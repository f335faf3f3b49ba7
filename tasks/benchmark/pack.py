"""A packed frame store: each clip's face crops and scene frames decoded once into uint8 arrays on disk.

Training reads frames from memory maps instead of decoding JPEGs every epoch (issue 11). Frames are stored
at the size training needs plus the random crop's margin (``face_size / crop_scale``, likewise the scene),
so the batch augmentation (:mod:`tasks.benchmark.augment`) crops and resizes from them as the JPEG path
does from the 224x224 crops; the only difference is the resize (INTER_AREA to the stored size, then
bilinear to the model's size, instead of one INTER_AREA resize).

Layout under ``root`` (``<storage.root>/benchmark/packs``)::

    <geometry>/arrays/<clip>-<fingerprint>.face.npy   (frames, H, W, 3) uint8 RGB; .scene.npy likewise
    <geometry>/stores/<state>.json                    the index of one catalog state

A clip's fingerprint hashes the names, sizes and modification times of its JPEGs (the crops' lineage on
disk); a store's ``state`` hashes its geometry and every clip's fingerprint. Changed crops give a new
fingerprint and a new state: packing again decodes only the changed clips. Arrays and the index are
written atomically (temporary sibling, rename) and the index last, so a killed pack leaves no store in
use and a rerun reuses the arrays already written.

    >>> store = pack_clips(clips, cfg, "work/benchmark/packs", workers=8)      # doctest: +SKIP
    >>> store.frames(clip_id, "face").shape
    (10, 140, 140, 3)
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from data_catalog.io import atomic_write_bytes

if TYPE_CHECKING:
    from tasks.benchmark.config import BenchmarkConfig

STREAMS = ("face", "scene")
FORMAT = 1


def _jpegs(folder: str) -> list[os.DirEntry]:
    return sorted(
        (e for e in os.scandir(folder) if e.name.lower().endswith((".jpg", ".jpeg"))), key=lambda e: e.name
    )


def folder_fingerprint(folder: object) -> str:
    """Hash of a frame folder's JPEG names, sizes and modification times ('' when there is none)."""
    if not isinstance(folder, str) or not os.path.isdir(folder):
        return ""
    h = hashlib.sha256()
    for e in _jpegs(folder):
        st = e.stat()
        h.update(f"{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def clip_fingerprint(face_dir: object, scene_dir: object) -> str:
    """One clip's crop lineage on disk: its face folder's and scene folder's fingerprints."""
    return hashlib.sha256(
        f"{folder_fingerprint(face_dir)}/{folder_fingerprint(scene_dir)}".encode()
    ).hexdigest()[:16]


@dataclass(frozen=True)
class Geometry:
    """Stored frame sizes: the model's sizes grown by the random crop's margin."""

    face: tuple[int, int]
    scene: tuple[int, int]

    @classmethod
    def of(cls, cfg: BenchmarkConfig) -> Geometry:
        grow = 1.0 / cfg.crop_scale if cfg.augment else 1.0
        return cls(
            (math.ceil(cfg.face_size * grow),) * 2,
            (math.ceil(cfg.scene_height * grow), math.ceil(cfg.scene_width * grow)),
        )

    @property
    def name(self) -> str:
        return f"face{self.face[0]}x{self.face[1]}-scene{self.scene[0]}x{self.scene[1]}"


def decode_folder(folder: str, size: tuple[int, int]) -> np.ndarray:
    """Every JPEG of ``folder``, in name order, as ``(n, H, W, 3)`` uint8 RGB resized (INTER_AREA) to ``size``."""
    import cv2

    frames = []
    for e in _jpegs(folder):
        bgr = cv2.imread(e.path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{e.path}: unreadable frame")
        frames.append(cv2.resize(bgr, (size[1], size[0]), interpolation=cv2.INTER_AREA)[:, :, ::-1])
    if not frames:
        raise ValueError(f"{folder}: no JPEG frames")
    return np.ascontiguousarray(np.stack(frames))


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _array_name(clip_id: str, fingerprint: str, stream: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in clip_id)
    return f"{safe}-{fingerprint}.{stream}.npy"


def _pack_one(job: tuple[str, str, str | None, str, str, Geometry]) -> dict:
    """Decode one clip's streams into ``arrays`` (skipping arrays already there); its index entry."""
    clip_id, face_dir, scene_dir, fingerprint, arrays, geometry = job
    entry: dict = {"fingerprint": fingerprint, "decoded": False}
    for stream, folder, size in (("face", face_dir, geometry.face), ("scene", scene_dir, geometry.scene)):
        if stream == "scene" and not folder_fingerprint(folder):
            entry["scene"] = None
            continue
        name = _array_name(clip_id, fingerprint, stream)
        path = Path(arrays) / name
        if not path.is_file():
            atomic_write_bytes(path, _npy_bytes(decode_folder(folder, size)))
            entry["decoded"] = True
        entry[stream] = name
    return entry


class PackedStore:
    """One catalog state's packed frames: memory-mapped arrays per clip and stream, checked against clips."""

    def __init__(self, index_path: str | os.PathLike) -> None:
        self.index_path = Path(index_path)
        if not self.index_path.is_file():
            raise ValueError(f"{self.index_path}: packed store not found; run `ferv benchmark pack`")
        index = json.loads(self.index_path.read_text())
        if index.get("format") != FORMAT:
            raise ValueError(f"{self.index_path}: packed store of format {index.get('format')}, not {FORMAT}")
        self.geometry = Geometry(tuple(index["face"]), tuple(index["scene"]))
        self.clips: dict[str, dict] = index["clips"]
        self.arrays = self.index_path.parent.parent / "arrays"

    def check(
        self, clips: pd.DataFrame, cfg: BenchmarkConfig | None = None, fingerprints: list[str] | None = None
    ) -> PackedStore:
        """Refuse (ValueError naming the clip and what differs) a store that no longer matches ``clips``'
        crops or ``cfg``'s frame sizes (``fingerprints``: the clips', when just computed)."""
        where = f"packed store {self.index_path}"
        if cfg is not None and Geometry.of(cfg) != self.geometry:
            raise ValueError(f"{where} holds {self.geometry.name}, the config needs {Geometry.of(cfg).name}")
        if fingerprints is None:
            fingerprints = [
                clip_fingerprint(f, s) for f, s in zip(clips["face_dir"], clips["scene_dir"], strict=True)
            ]
        for row, fingerprint in zip(clips.itertuples(), fingerprints, strict=True):
            entry = self.clips.get(row.clip_id)
            if entry is None:
                raise ValueError(f"{where} does not match the catalog: clip {row.clip_id!r} is not in it; "
                                 "run `ferv benchmark pack`")  # fmt: skip
            if entry["fingerprint"] != fingerprint:
                raise ValueError(f"{where} does not match the catalog: the crops of clip {row.clip_id!r} changed "
                                 "since it was packed; run `ferv benchmark pack`")  # fmt: skip
            missing = [s for s in STREAMS if entry.get(s) and not (self.arrays / entry[s]).is_file()]
            if missing:
                raise ValueError(f"{where}: the {missing[0]} array of clip {row.clip_id!r} is missing; "
                                 "run `ferv benchmark pack`")  # fmt: skip
        return self

    def has(self, clip_id: str, stream: str) -> bool:
        return bool(self.clips.get(clip_id, {}).get(stream))

    def frames(self, clip_id: str, stream: str) -> np.ndarray:
        """The clip's ``(n, H, W, 3)`` uint8 frames of ``stream``, memory-mapped (nothing read yet)."""
        name = self.clips[clip_id].get(stream)
        if not name:
            raise ValueError(f"{self.index_path}: clip {clip_id!r} has no {stream} frames")
        return np.load(self.arrays / name, mmap_mode="r")


def state_of(clips: pd.DataFrame, geometry: Geometry) -> tuple[str, list[str]]:
    """The store key of ``clips`` (hash of the geometry and every clip's fingerprint) and the fingerprints."""
    fps = [clip_fingerprint(f, s) for f, s in zip(clips["face_dir"], clips["scene_dir"], strict=True)]
    text = (
        geometry.name
        + "\n"
        + "\n".join(sorted(f"{c} {fp}" for c, fp in zip(clips["clip_id"], fps, strict=True)))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16], fps


def store_path(clips: pd.DataFrame, cfg: BenchmarkConfig, root: str | os.PathLike) -> Path:
    """Where the store of ``clips``' current crops at ``cfg``'s sizes is (or would be) indexed."""
    geometry = Geometry.of(cfg)
    return Path(root) / geometry.name / "stores" / f"{state_of(clips, geometry)[0]}.json"


def existing_store(clips: pd.DataFrame, cfg: BenchmarkConfig, root: str | os.PathLike) -> PackedStore | None:
    """The packed store of ``clips``' current crops at ``cfg``'s sizes if one was packed, else None."""
    path = store_path(clips, cfg, root)
    return PackedStore(path) if path.is_file() else None


@dataclass(frozen=True)
class PackReport:
    store: PackedStore
    n_clips: int
    n_decoded: int  # clips decoded now (the others were packed before, e.g. by a killed run)


def pack_clips(
    clips: pd.DataFrame,
    cfg: BenchmarkConfig,
    root: str | os.PathLike,
    *,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> PackReport:
    """Pack ``clips`` (``clip_id``, ``face_dir``, ``scene_dir``) at ``cfg``'s sizes under ``root``, reusing
    arrays already packed, and write the state's index last. ``workers`` > 0 decodes in that many processes;
    ``progress(done, total)`` is called after each clip."""
    if clips["clip_id"].duplicated().any():
        raise ValueError(
            f"clips to pack repeat clip ids, e.g. {clips['clip_id'][clips['clip_id'].duplicated()].iloc[0]!r}"
        )
    geometry = Geometry.of(cfg)
    state, fps = state_of(clips, geometry)
    base = Path(root) / geometry.name
    index_path = base / "stores" / f"{state}.json"
    if index_path.is_file():
        return PackReport(PackedStore(index_path).check(clips, cfg, fps), len(clips), 0)
    arrays = base / "arrays"
    arrays.mkdir(parents=True, exist_ok=True)
    for stale in arrays.glob(".*.tmp"):  # a killed pack's unfinished array (never under a final name);
        if time.time() - stale.stat().st_mtime > 3600:  # recent ones may be a concurrent pack's
            stale.unlink(missing_ok=True)
    jobs = [
        (
            r.clip_id,
            r.face_dir,
            r.scene_dir if isinstance(r.scene_dir, str) else None,
            fp,
            str(arrays),
            geometry,
        )
        for r, fp in zip(clips.itertuples(), fps, strict=True)
    ]
    entries: dict[str, dict] = {}

    def done(job, entry):
        entries[job[0]] = entry
        if progress is not None:
            progress(len(entries), len(jobs))

    if workers > 0 and len(jobs) > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("forkserver")) as pool:
            for job, entry in zip(jobs, pool.map(_pack_one, jobs, chunksize=8), strict=True):
                done(job, entry)
    else:
        for job in jobs:
            done(job, _pack_one(job))
    n_decoded = sum(e.pop("decoded") for e in entries.values())
    index = {"format": FORMAT, "state": state, "face": list(geometry.face), "scene": list(geometry.scene),
             "clips": entries}  # fmt: skip
    atomic_write_bytes(index_path, json.dumps(index, sort_keys=True).encode())
    return PackReport(PackedStore(index_path), len(jobs), n_decoded)
