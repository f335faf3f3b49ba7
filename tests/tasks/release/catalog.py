"""A small catalog as the pipeline leaves it (videos with licences, clips, candidates with real JPEG crops,
labels), written through the real manifest schemas, for the release tests that need no footage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.schemas import get_manifest
from keywords.taxonomy import load_taxonomy

#: (video id, licence as crawled, uploader, [(label, split), ...]) of the sources and their clips.
SOURCES = (
    (
        "youtube-aaa",
        "Creative Commons Attribution license (reuse allowed)",
        "Ann Example",
        [("Happy", "train")] * 3,
    ),
    ("youtube-bbb", None, "Bob Example", [("Sad", "train"), ("Sad", "test")]),
    ("youtube-ccc", "Standard YouTube License", "Cy Example", [("Angry", "test")]),
)
SCENE, SCENARIO = "Interview", "SIA"


def _jpeg(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=80)


def _write(catalog: Catalog, name: str, rows: list[dict], run_id: str) -> None:
    table = pa.Table.from_pylist(rows, schema=get_manifest(name).schema)
    catalog.write(name, table, scene=SCENE, run_id=run_id, part="0000")


def write_catalog(root: Path) -> Catalog:
    """``<root>/catalog`` with the :data:`SOURCES`; crops under ``<root>/crops``, clip files under
    ``<root>/clips``, media under ``<root>/media``. Returns the catalog."""
    catalog = Catalog(root / "catalog")
    crawl = RunContext.create({"crawl": 1}, run_id="crawl-1")
    build = RunContext.create({"build": 1}, run_id="bc-1")
    annotate = RunContext.create({"annotate": 1}, run_id="labels-1")
    videos, clips, candidates, labels = [], [], [], []
    for v, (video_id, licence, uploader, clip_labels) in enumerate(SOURCES):
        media = root / "media" / SCENE / f"{video_id}.mp4"
        media.parent.mkdir(parents=True, exist_ok=True)
        media.write_bytes(b"not a real video: only its removal is tested")
        videos.append(
            {"video_id": video_id, "engine": "Youtube", "source_id": video_id.split("-", 1)[1],
             "url": f"https://www.youtube.com/watch?v={video_id[-3:]}", "title": f"video {v}",
             "uploader": uploader, "upload_date": f"2024010{v + 1}", "license": licence, "scene": SCENE,
             "scenario": SCENARIO, "status": "downloaded", "selected": True, "local_path": str(media),
             "crawl_run_id": crawl.run_id, **crawl.lineage("crawl")}
        )  # fmt: skip
        for c, (label, split) in enumerate(clip_labels):
            clip_id = f"{video_id}_{c * 30}-{c * 30 + 25}"
            face, frames = (
                root / "crops" / SCENE / clip_id / "face",
                root / "crops" / SCENE / clip_id / "scene",
            )
            for i in range(3):
                _jpeg(face / f"{i:03d}.jpg", v * 10 + c)
                _jpeg(frames / f"{i:03d}.jpg", v * 10 + c + 100)
            clip_file = root / "clips" / SCENE / f"{clip_id}.mp4"
            clip_file.parent.mkdir(parents=True, exist_ok=True)
            clip_file.write_bytes(b"clip")
            clips.append(
                {"clip_id": clip_id, "video_id": video_id, "scene": SCENE, "start_time": c * 1.2,
                 "end_time": c * 1.2 + 1.0, "start_frame": c * 30, "end_frame": c * 30 + 25, "n_frames": 25,
                 "fps": 25.0, "duration": 1.0, "clip_path": catalog.store_path(clip_file),
                 **build.lineage("segment")}
            )  # fmt: skip
            candidates.append(
                {"clip_id": clip_id, "video_id": video_id, "scene": SCENE, "keep": True, "measures": {},
                 "face_dir": catalog.store_path(face), "scene_dir": catalog.store_path(frames), "n_crops": 3,
                 **build.lineage("face_filter")}
            )  # fmt: skip
            labels.append(
                {"clip_id": clip_id, "scene": SCENE, "scenario": SCENARIO, "label": label,
                 "label_index": load_taxonomy().expression_index(label), "source": "wwta", "split": split, **annotate.lineage("annotate")}
            )  # fmt: skip
    _write(catalog, "videos", videos, crawl.run_id)
    _write(catalog, "clips", clips, build.run_id)
    _write(catalog, "candidates", candidates, build.run_id)
    _write(catalog, "labels", labels, annotate.run_id)
    return catalog
