"""Between the catalog and the labelling database: load a batch in, export answers and checks out.

Loading reads the ``annotation_tasks`` of a batch and, for what the page shows, the clips' source video
titles (``videos``) and face tracks (``faces``, face_index 0 of each sampled frame, paper 3.2 stage 3),
with times made relative to the clip's start (``clips.start_time``) and boxes as fractions of the frame,
so the page can scale them to any displayed size. Exporting writes the ``answers`` and ``group_checks``
manifests, one part per scene under ``run=<batch id>``; exporting again replaces those parts atomically,
so nothing is duplicated.

    >>> batch = read_batch(Catalog("work/catalog"), "b0001")                       # doctest: +SKIP
    >>> with db.session() as s: service.load_tasks(s, batch.tasks, cfg, titles=batch.titles, boxes=batch.boxes)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from data_catalog.io import Catalog, PartRef
from data_catalog.lineage import RunContext

STAGE = "annotate.web"


@dataclass(frozen=True)
class BatchInput:
    tasks: pd.DataFrame  # annotation_tasks rows of the batch
    titles: dict[str, str | None]  # clip_id -> the source video's title
    boxes: dict[str, list[list[float]]]  # clip_id -> [[t, x1, y1, x2, y2], ...]


def face_track(faces: pd.DataFrame, start_time: float) -> list[list[float]]:
    """The dominant face's box per sampled frame of one clip: ``[t, x1, y1, x2, y2]`` rows in time order,
    ``t`` in seconds from the clip's first frame, coordinates as fractions of the frame's size."""
    main = faces[faces["face_index"] == 0].sort_values("time")
    w = main["frame_width"].astype(float)
    h = main["frame_height"].astype(float)
    cols = [
        main["time"].astype(float) - float(start_time),
        main["x1"] / w,
        main["y1"] / h,
        main["x2"] / w,
        main["y2"] / h,
    ]
    return [[round(float(v), 4) for v in row] for row in zip(*cols, strict=True)]


def read_batch(catalog: Catalog, batch_id: str) -> BatchInput:
    """The tasks of ``batch_id`` with their titles and face tracks; clip paths are made absolute
    (:meth:`Catalog.resolve_path`), as the app serves files by absolute path."""
    tasks = catalog.read("annotation_tasks", run_id=batch_id)
    tasks = tasks[tasks["batch_id"] == batch_id]
    if tasks.empty:
        known = sorted({p.parent.name.removeprefix("run=") for p in catalog.part_files("annotation_tasks")})
        raise ValueError(f"no annotation tasks of batch {batch_id!r} in {catalog.root}; batches: {known}")
    tasks = tasks.assign(clip_path=[_none(catalog.resolve_path(p)) for p in tasks["clip_path"]])
    clip_ids = set(tasks["clip_id"])
    clips = catalog.read("clips", latest=True)
    clips = clips[clips["clip_id"].isin(clip_ids)].set_index("clip_id")
    videos = catalog.read("videos", latest=True)
    titles: dict[str, str | None] = {}
    if len(clips) and len(videos):
        by_video = videos.set_index("video_id")["title"]
        titles = {c: _none(by_video.get(v)) for c, v in clips["video_id"].items()}
    faces = catalog.read("faces")
    faces = faces[faces["clip_id"].isin(clip_ids)].drop_duplicates(["clip_id", "frame_index", "face_index"])
    boxes = {
        clip_id: face_track(rows, clips.at[clip_id, "start_time"])
        for clip_id, rows in faces.groupby("clip_id")
        if clip_id in clips.index
    }
    return BatchInput(tasks.drop(columns=[c for c in tasks.columns if c not in _TASK_COLS]), titles, boxes)


_TASK_COLS = {
    "task_id", "batch_id", "group_id", "copy", "position", "clip_id", "scene", "gold", "clip_path",
    "predicted_label",
}  # fmt: skip


def _none(value: object) -> str | None:
    return None if value is None or value != value else str(value)


def write_exports(
    catalog: Catalog, answers: pd.DataFrame, checks: pd.DataFrame, config: Mapping[str, Any]
) -> list[PartRef]:
    """Write ``answers`` and ``group_checks`` (as ``service.export_frames`` gives them, with a
    ``batch_id`` column) per batch (the run, as for ``annotation_tasks``) and scene, part ``web``.
    ``config`` (the resolved config's JSON) is hashed into the rows' lineage. All or nothing: every part
    is validated before the first is written (:meth:`Catalog.write_parts`)."""
    parts = []
    for manifest, rows in (("answers", answers), ("group_checks", checks)):
        if rows.empty:
            continue
        for (batch, scene), part in rows.groupby(["batch_id", "scene"], sort=True):
            lineage = RunContext.create(dict(config), run_id=str(batch)).lineage(STAGE)
            if manifest == "group_checks":
                part = part.drop(columns="batch_id")
            parts.append((manifest, part.assign(**lineage), str(scene), str(batch), "web"))
    return catalog.write_parts(parts)
