"""Encode the clips that reach annotation (paper 3.2: decode once, encode late).

Only clips selected by the prior-matched subsampling are written as mp4 files (for the labelling page and
exports); the 20x candidates before them stay spans in the ``clips`` manifest. Each file is encoded
frame-exactly by :func:`tasks.media.encode_clip` and lands atomically; a rerun skips existing files and
removes the temporaries that killed runs left in the scene's folder. The
scene's ``selections`` part is rewritten with ``clip_path`` filled in.

    >>> encode_selected_clips("DailyLife", ctx, catalog, clips_dir)                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from data_catalog.io import Catalog, PartRef
from data_catalog.lineage import RunContext
from data_catalog.temp_files import remove_stale_temps


def clip_file(clips_dir: str | os.PathLike, scene: str, clip_id: str) -> Path:
    """Where a selected clip's mp4 lives."""
    return Path(clips_dir) / scene / f"{clip_id}.mp4"


def encode_selected_clips(
    scene: str,
    ctx: RunContext,
    catalog: Catalog,
    clips_dir: str | os.PathLike,
    *,
    progress: bool = True,
) -> PartRef | None:
    """Encode this run's selected clips of ``scene``; returns the rewritten ``selections`` part (None when
    the run has no selections for the scene). A clip that cannot be encoded keeps ``clip_path`` null and is
    reported in the log; the others go on."""
    import logging

    from tqdm.auto import tqdm

    from tasks.media import MediaError, encode_clip

    log = logging.getLogger(__name__)
    parts = catalog.part_files("selections", scene, ctx.run_id)
    if not parts:
        return None
    selections = catalog.read("selections", scene, ctx.run_id)
    clips = catalog.read("clips", scene, ctx.run_id).set_index("clip_id")
    media = catalog.read("media", scene, ctx.run_id).set_index("video_id")
    remove_stale_temps(Path(clips_dir) / scene)  # temporaries of killed runs
    paths: list[str | None] = []
    for row in tqdm(
        selections.itertuples(index=False), total=len(selections), desc=f"encode {scene}", unit="clip",
        disable=not progress,
    ):  # fmt: skip
        if not row.selected:
            paths.append(None)
            continue
        out = clip_file(clips_dir, scene, row.clip_id)
        if not out.is_file():
            clip = clips.loc[row.clip_id]
            source = catalog.resolve_path(media.loc[clip["video_id"], "path"])
            try:
                encode_clip(source, int(clip["start_frame"]), int(clip["end_frame"]), out)
            except (MediaError, OSError, RuntimeError) as exc:
                log.warning("%s: could not encode clip %s: %s", source, row.clip_id, exc)
                paths.append(None)
                continue
        paths.append(catalog.store_path(out))
    selections["clip_path"] = paths
    part = parts[0].stem.removeprefix("part-")
    return catalog.write("selections", selections, scene=scene, run_id=ctx.run_id, part=part)
