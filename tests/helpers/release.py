"""A small FERV39k release on disk (face crops, scene images, split files), for the import/export and
release tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# (scene, emotion, clip folder, split, frames): folder names repeat across scenes and expressions, as the
# release numbers clips within each (scene, expression).
RELEASE = [
    ("Terror", "Fear", "0001", "train", 3),
    ("Terror", "Fear", "0002", "test", 4),
    ("Terror", "Happy", "0001", "train", 2),
    ("Liveshow", "Happy", "0001", "train", 5),
    ("Liveshow", "Sad", "0001", "test", 3),
    ("Argue", "Angry", "0007", "train", 2),
]


def jpeg(path: Path, seed: int, size: tuple[int, int] = (16, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=80)


def release(root: Path, entries=RELEASE, extra_lines: dict[str, list[str]] | None = None) -> Path:
    for k, (scene, emotion, clip, _, frames) in enumerate(entries):
        for f in range(frames):
            jpeg(root / "2_ClipsforFaceCrop" / scene / emotion / clip / f"{f + 1:03d}.jpg", k * 100 + f)
            jpeg(root / "3_ClipsforScenImages" / scene / emotion / clip / f"{f + 1:03d}.jpg", k, (24, 16))
    for split in ("train", "test"):
        lines = [f"{s}/{e}/{c} {e}" for s, e, c, sp, _ in entries if sp == split]
        lines += (extra_lines or {}).get(split, [])
        path = root / "4_setups" / "All_scenes" / f"{split}_All.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    return root
