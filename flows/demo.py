"""The bundled demo: real footage from the asset registry, run through ``build-candidates`` offline.

``ferv demo`` links the demo videos into ``<storage.root>/demo-footage/`` and runs the flow on that
directory as a ``local:`` source for scene DailyLife (preset ``demo``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: Demo videos (asset names) and the file names they get in the footage directory.
DEMO_VIDEOS = {
    "demo-wolfgang-langer": "wolfgang_langer.mp4",  # one woman, crying to laughing, a face in every frame
    "demo-single-face": "single_face.mp4",  # a man, neutral to smile
    "demo-face-noface": "face_noface.mov",  # a face, then none
    "demo-noface-face": "noface_face.mov",  # none, then a face
    "demo-no-face": "no_face.mp4",  # no face at all
}
DEMO_SCENE = "DailyLife"


def prepare_footage(root: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """Fetch the demo videos (verified, cached) and link them into ``<root>/demo-footage``."""
    from data_catalog.assets import asset_path

    footage = Path(root) / "demo-footage"
    footage.mkdir(parents=True, exist_ok=True)
    for name, filename in DEMO_VIDEOS.items():
        src, dst = asset_path(name, cache_dir=cache_dir), footage / filename
        if dst.exists():
            continue
        tmp = dst.with_name(f".{filename}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    return footage
