"""How long releasing takes as a catalog grows: the card (markdown, figure, Croissant, validated with
mlcroissant), a licence-filtered export, and a takedown of one source video.

A synthetic catalog of ``--videos`` source videos with ``--clips`` labelled clips each (three 16x16 JPEG
crops per clip, written through the real manifest schemas; a third of the sources have no licence) is
built in a temporary folder; each step runs once on it.

    .venv/bin/python benchmarks/bench_release.py --videos 50 --videos 200 --clips 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from data_catalog.formats.ferv39k_release import export_release
from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.schemas import get_manifest
from keywords.taxonomy import load_taxonomy
from tasks.release.card import build_card, write_card
from tasks.release.croissant import validate
from tasks.release.takedown import takedown

SCENES = ("Interview", "Speech", "Crime", "War")
LICENCE = "Creative Commons Attribution license (reuse allowed)"


def build(root: Path, n_videos: int, n_clips: int) -> Catalog:
    tax = load_taxonomy()
    catalog = Catalog(root / "catalog")
    ctx = RunContext.create({"bench": 1}, run_id="bench-1")
    rng = np.random.default_rng(0)
    jpeg = root / "one.jpg"
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(jpeg)
    for scene in SCENES:
        rows: dict[str, list[dict]] = {"videos": [], "clips": [], "candidates": [], "labels": []}
        for v in range(n_videos // len(SCENES)):
            vid = f"youtube-{scene}{v:05d}"
            rows["videos"].append(
                {"video_id": vid, "engine": "Youtube", "source_id": vid, "url": f"https://y.example/{vid}",
                 "uploader": f"u{v % 17}", "upload_date": "20240101", "license": LICENCE if v % 3 else None,
                 "scene": scene, "scenario": tax.scene(scene).scenario, "status": "downloaded",
                 "selected": True, "crawl_run_id": ctx.run_id, **ctx.lineage("crawl")}
            )  # fmt: skip
            for c in range(n_clips):
                clip_id = f"{vid}_{c * 50}-{c * 50 + 40}"
                face = root / "crops" / scene / clip_id
                face.mkdir(parents=True)
                for i in range(3):
                    (face / f"{i:03d}.jpg").hardlink_to(jpeg)
                label = tax.expressions[int(rng.integers(0, 7))]
                rows["clips"].append(
                    {"clip_id": clip_id, "video_id": vid, "scene": scene, "start_time": c * 2.0,
                     "end_time": c * 2.0 + 1.6, "start_frame": c * 50, "end_frame": c * 50 + 40,
                     "n_frames": 40, "fps": 25.0, "duration": 1.6, **ctx.lineage("segment")}
                )  # fmt: skip
                rows["candidates"].append(
                    {"clip_id": clip_id, "video_id": vid, "scene": scene, "keep": True, "measures": {},
                     "face_dir": catalog.store_path(face), "n_crops": 3, **ctx.lineage("face_filter")}
                )  # fmt: skip
                rows["labels"].append(
                    {"clip_id": clip_id, "scene": scene, "scenario": tax.scene(scene).scenario,
                     "label": label, "label_index": tax.expression_index(label), "source": "wwta",
                     **ctx.lineage("annotate")}
                )  # fmt: skip
        for name, manifest_rows in rows.items():
            table = pa.Table.from_pylist(manifest_rows, schema=get_manifest(name).schema)
            catalog.write(name, table, scene=scene, run_id=ctx.run_id)
    return catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, action="append", help="source videos (repeatable)")
    parser.add_argument("--clips", type=int, default=10, help="labelled clips per video")
    args = parser.parse_args()
    print("| videos | clips | card + Croissant (s) | export (s) | takedown of 1 video (s) |")
    print("|---:|---:|---:|---:|---:|")
    for n_videos in args.videos or [50, 200]:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            catalog = build(root, n_videos, args.clips)
            t0 = time.perf_counter()
            card = build_card(catalog)
            files = write_card(card, root / "card")
            assert len(validate(files.croissant)) == card.n_clips
            t1 = time.perf_counter()
            export_release(catalog, root / "exports" / "rel", allowed_licences=[LICENCE])
            t2 = time.perf_counter()
            takedown(catalog, "youtube-Interview00001", requested_by="bench")
            t3 = time.perf_counter()
            print(
                f"| {n_videos} | {card.n_clips} | {t1 - t0:.1f} | {t2 - t1:.1f} | {t3 - t2:.1f} |", flush=True
            )


if __name__ == "__main__":
    main()
