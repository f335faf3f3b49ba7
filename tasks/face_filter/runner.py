"""Candidate generation, stages 2 + 3 (paper 3.2): segment, detect faces, apply the rules, rank within
the twenty-fold budget, write crops. Plain functions; the Prefect flow wraps them.

:func:`process_shard` runs segmentation and face filtering for a shard of videos of one scene, decoding each
video once (the face detector sees the sampled frames the segmenter hands over), and writes the shard's
``media``, ``clips``, ``faces`` and pre-budget ``candidates`` parts (part name = shard; the ``candidates``
part is written last and marks the shard done, so a rerun skips it). :func:`finalize_scene` then ranks the
scene's rule-passing clips by face quality, keeps ``ceil(budget_factor x target)``, writes face crops and
scene frames for them, and rewrites each shard's ``candidates`` part in place with the final decision, so
the catalog holds one row per clip (``select reason, count(*) from candidates group by reason`` counts
rejections per rule). Rule verdicts and quality are recomputed from the stored ``measures``, so changing
thresholds only needs :func:`finalize_scene` again, not new detection.

Each function takes the config sections it uses (``segment``, ``face_filter``), not the whole pipeline
config; :func:`finalize_scene` takes the scene's clip target and the crops folder as values.

    >>> refs = process_shard(videos, "Interview", cfg.segment, cfg.face_filter, ctx, catalog,
    ...                      shard="0000")                                           # doctest: +SKIP
    >>> refs = finalize_scene("Interview", cfg.face_filter, ctx, catalog,
    ...                       target=cfg.subsample.target_for("Interview"), crops_dir=cfg.storage.crops_dir)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tasks.face_filter.rank import apply_budget, face_quality
from tasks.face_filter.rules import apply_rules
from tasks.segment import STAGE as SEGMENT_STAGE

if TYPE_CHECKING:
    from data_catalog.io import Catalog, PartRef
    from data_catalog.lineage import RunContext
    from models.detectors.base import FaceDetector
    from tasks.face_filter.config import DetectorSettings, FaceFilterConfig
    from tasks.segment import SegmentConfig

STAGE = "face_filter"
SHARD_MANIFESTS = ("clips", "faces", "media", "candidates")  # write order; the last marks the shard done


def rows_table(manifest: str, rows: Sequence[dict]):
    """Rows as an Arrow table of ``manifest``'s schema (maps such as ``measures`` given as dicts)."""
    import pyarrow as pa

    from data_catalog.schemas import get_manifest

    return pa.Table.from_pylist(list(rows), schema=get_manifest(manifest).schema)


def build_detector(settings: DetectorSettings) -> FaceDetector:
    """The configured detector (its model is loaded once per process and shared)."""
    from models.detectors import create_detector

    return create_detector(settings.name, **settings.kwargs())


def _existing_refs(catalog: Catalog, scene: str, run_id: str, shard: str) -> list[PartRef]:
    import pyarrow.parquet as pq

    from data_catalog.io import PartRef

    refs = []
    for manifest in SHARD_MANIFESTS:
        path = catalog.part_path(manifest, scene, run_id, shard)
        refs.append(
            PartRef(manifest, scene, run_id, shard, str(path), pq.ParquetFile(path).metadata.num_rows)
        )
    return refs


def candidate_row(clip: dict, measures: dict[str, float], rules) -> dict:
    """A pre-budget ``candidates`` row (no lineage): the rule verdict, all measures, the quality."""
    verdict = apply_rules(measures, rules)
    return {
        "clip_id": clip["clip_id"],
        "video_id": clip["video_id"],
        "scene": clip["scene"],
        "keep": verdict.keep,
        "reason": verdict.reason,
        "value": verdict.value,
        "measures": measures,
        "quality": face_quality(measures),
        "rank": None,
        "face_dir": None,
        "scene_dir": None,
        "n_crops": None,
    }


@dataclass
class VideoResult:
    """Stages 2 + 3 output of one video: its ``media`` row and its ``clips``/``faces``/``candidates`` rows."""

    media: dict
    clips: list[dict] = field(default_factory=list)
    faces: list[dict] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)


def filter_video(
    video: dict,
    scene: str,
    segment: SegmentConfig,
    face_filter: FaceFilterConfig,
    detector: FaceDetector,
    bar=None,
) -> VideoResult:
    """Segment + detect + rules for one video, decoded once; the next frames are decoded on a second
    thread while the detector works on a batch (:func:`tasks.prefetch.prefetched`), and the sampled frames
    of consecutive clips go through the detector together, ``detector.batch`` at a time. Never raises for
    a bad video: the failure is its ``media`` row's status and reason, and it contributes no clips."""
    from tasks.face_filter.detect import batched_clips, detect_clips, face_rows
    from tasks.face_filter.measures import measure_clip
    from tasks.prefetch import prefetched
    from tasks.segment import failed_media_row, segment_video

    video_id, path = video["video_id"], video.get("local_path")
    if not path:
        status = video.get("status") or "unknown"
        error = f"{video_id}: no local file (status {status})"
        return VideoResult(failed_media_row(video_id, scene, "", "not_downloaded", error))
    seg = segment_video(path, video_id, scene, segment)
    out = VideoResult(seg.media)
    batch = max(int(getattr(detector, "batch", 1)), 1)
    # enough clips decoded ahead to fill the next batch while this one is detected
    ahead = 2 * math.ceil(batch / max(segment.n_sample_frames, 1)) + 1
    try:
        for group in batched_clips(prefetched(seg.clips, ahead), batch):
            scale = _clip_scale(seg.media, group)
            for sample, found in zip(group, detect_clips(group, detector, scale), strict=True):
                out.clips.append(sample.clip)
                out.faces.extend(face_rows(found))
                out.candidates.append(candidate_row(sample.clip, measure_clip(found), face_filter.rules))
                if bar is not None:
                    bar.update(1)
    except Exception as exc:  # one video's failure is recorded on its media row; the shard goes on
        error = f"{path}: {type(exc).__name__}: {exc}"
        return VideoResult(failed_media_row(video_id, scene, path, "face_filter_error", error))
    return out


def _clip_scale(media: dict, samples: Sequence) -> float:
    """Source pixels per sampled-frame pixel (the frames of one video share their size)."""
    width = next((s.frames[0].image.shape[1] for s in samples if s.frames), 0)
    return media["width"] / width if width else 1.0


def process_shard(
    videos: Sequence[dict],
    scene: str,
    segment: SegmentConfig,
    face_filter: FaceFilterConfig,
    ctx: RunContext,
    catalog: Catalog,
    shard: str,
    *,
    detector: FaceDetector | None = None,
    progress: bool = True,
) -> list[PartRef]:
    """Stages 2 + 3 for a shard of ``videos`` (rows of the ``videos`` manifest: ``video_id``, ``scene``,
    ``local_path``) of one ``scene``. Returns the refs of the shard's four parts; a shard whose parts exist
    is skipped. A bad video gets a failed ``media`` row with a reason; it never stops the shard."""
    from tqdm.auto import tqdm

    if all(catalog.has_part(m, scene, ctx.run_id, shard) for m in SHARD_MANIFESTS):
        return _existing_refs(catalog, scene, ctx.run_id, shard)
    videos = [dict(v) for v in videos]
    for v in videos:
        if "video_id" not in v:
            raise ValueError(f"shard {shard!r}: a video row has no 'video_id': {v}")
        if v.get("scene", scene) != scene:
            raise ValueError(
                f"shard {shard!r} of scene {scene!r}: video {v['video_id']!r} is of scene {v['scene']!r}"
            )
    ids = [v["video_id"] for v in videos]
    if len(set(ids)) != len(ids):
        raise ValueError(
            f"shard {shard!r}: duplicate video ids {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    detector = detector or build_detector(face_filter.detector)
    out: dict[str, list[dict]] = {m: [] for m in SHARD_MANIFESTS}
    with tqdm(desc=f"clips {scene}/{shard}", unit="clip", disable=not progress) as bar:
        for video in tqdm(videos, desc=f"videos {scene}/{shard}", unit="video", disable=not progress):
            result = filter_video(video, scene, segment, face_filter, detector, bar)
            out["media"].append(result.media)
            out["clips"].extend(result.clips)
            out["faces"].extend(result.faces)
            out["candidates"].extend(result.candidates)
    lineage = {
        "clips": ctx.lineage(SEGMENT_STAGE),
        "media": ctx.lineage(SEGMENT_STAGE),
        "faces": ctx.lineage(STAGE, detector.version),
        "candidates": ctx.lineage(STAGE, detector.version),
    }
    return [
        catalog.write(
            m,
            rows_table(m, [{**row, **lineage[m]} for row in out[m]]),
            scene=scene,
            run_id=ctx.run_id,
            part=shard,
        )
        for m in SHARD_MANIFESTS
    ]


REUSED_PART = "reused"


def reuse_earlier(
    videos: Sequence[dict], scene: str, ctx: RunContext, catalog: Catalog
) -> tuple[list[dict], list[PartRef]]:
    """Incremental runs: copy stages 2 + 3 of videos that an earlier build run of ``scene`` with the same
    config (``config_hash``) already processed into this run's part ``reused``; return the videos still
    to process and the refs written. A re-crawl that found new videos thus segments and detects only those.

    The copy keeps each row's lineage but for ``run_id`` (so the run's manifests are complete); it is
    written once (a rerun of a killed run finds the part and returns the same split).
    """
    by_id = {v["video_id"]: v for v in videos}
    media = catalog.read("media", scene)
    earlier = media[(media["config_hash"] == ctx.config_hash) & (media["run_id"] != ctx.run_id)]
    earlier = earlier[earlier["video_id"].isin(list(by_id))]
    if catalog.has_part("candidates", scene, ctx.run_id, REUSED_PART):
        done = set(catalog.read("media", scene, ctx.run_id)["video_id"])
        reused = set(earlier["video_id"]) & done
        refs = _existing_refs(catalog, scene, ctx.run_id, REUSED_PART)
        return [v for i, v in by_id.items() if i not in reused], refs
    if earlier.empty:
        return list(videos), []
    import pyarrow as pa
    import pyarrow.compute as pc

    # Per video, the run that processed it last; rows are copied as Arrow tables (maps stay maps).
    source_run = earlier.sort_values("created_at").drop_duplicates("video_id", keep="last")
    source_run = dict(zip(source_run["video_id"], source_run["run_id"], strict=True))
    tables: dict[str, list[pa.Table]] = {m: [] for m in SHARD_MANIFESTS}
    for run_id in sorted(set(source_run.values())):
        ids = pa.array([v for v, r in source_run.items() if r == run_id])
        clips = catalog.read_table("clips", scene, run_id)
        clips = clips.filter(pc.is_in(clips["video_id"], ids))
        faces = catalog.read_table("faces", scene, run_id)
        tables["clips"].append(clips)
        tables["faces"].append(faces.filter(pc.is_in(faces["clip_id"], clips["clip_id"])))
        for m in ("media", "candidates"):
            t = catalog.read_table(m, scene, run_id)
            tables[m].append(t.filter(pc.is_in(t["video_id"], ids)))
    refs = []
    for m in SHARD_MANIFESTS:  # candidates last: it marks the part done
        t = pa.concat_tables(tables[m])
        t = t.set_column(
            t.schema.get_field_index("run_id"), "run_id", pa.array([ctx.run_id] * len(t), pa.string())
        )
        refs.append(catalog.write(m, t, scene=scene, run_id=ctx.run_id, part=REUSED_PART))
    return [v for i, v in by_id.items() if i not in source_run], refs


def _crop_jobs(kept: pd.DataFrame, clips: pd.DataFrame, faces: pd.DataFrame):
    from tasks.face_filter.crops import CropJob

    clips = clips.set_index("clip_id")
    dominant = faces[faces["face_index"] == 0].sort_values("frame_index")
    tracks = dict(tuple(dominant.groupby("clip_id")))
    jobs: dict[str, list[CropJob]] = {}
    for clip_id in kept["clip_id"]:
        clip = clips.loc[clip_id]
        track = tracks.get(clip_id)
        empty = track is None or track.empty
        jobs.setdefault(clip["video_id"], []).append(
            CropJob(
                clip_id=clip_id,
                start_frame=int(clip["start_frame"]),
                end_frame=int(clip["end_frame"]),
                track_frames=np.zeros(0) if empty else track["frame_index"].to_numpy(),
                track_boxes=np.zeros((0, 4)) if empty else track[["x1", "y1", "x2", "y2"]].to_numpy(),
                track_width=1 if empty else int(track["frame_width"].iloc[0]),
            )
        )
    return jobs


def finalize_scene(
    scene: str,
    face_filter: FaceFilterConfig,
    ctx: RunContext,
    catalog: Catalog,
    *,
    target: int,
    crops_dir: str | os.PathLike,
    progress: bool = True,
) -> list[PartRef]:
    """Rank, apply the budget (``ceil(budget_factor x target)``; ``target`` is the scene's clip target,
    ``SubsampleConfig.target_for(scene)`` in a build), write crops of the kept clips under ``crops_dir``
    (existing folders are skipped) and rewrite the scene's ``candidates`` parts with the final decision.
    A clip whose crops cannot be written is dropped with reason ``crop_failed``."""
    from tqdm.auto import tqdm

    from data_catalog.io import read_parquet
    from tasks.face_filter.crops import remove_stale_crops, write_video_crops

    ff = face_filter
    budget = ff.budget_for(target)
    parts = catalog.part_files("candidates", scene, ctx.run_id)
    if not parts:
        return []
    frames = []
    for path in parts:
        df = read_parquet(path).to_pandas()
        df["_part"] = path.stem.removeprefix("part-")
        frames.append(df)
    cand = pd.concat(frames, ignore_index=True)
    # Verdicts and quality from the stored measures, under the current rules.
    cand["measures"] = cand["measures"].map(
        lambda m: {k: (math.nan if v is None else v) for k, v in (m or [])}
    )
    verdicts = [apply_rules(m, ff.rules) for m in cand["measures"]]
    cand["keep"] = [v.keep for v in verdicts]
    cand["reason"] = [v.reason for v in verdicts]
    cand["value"] = [v.value for v in verdicts]
    cand["quality"] = [face_quality(m) for m in cand["measures"]]
    cand = apply_budget(cand, budget)
    cand[["face_dir", "scene_dir"]] = None
    cand["n_crops"] = pd.array([None] * len(cand), dtype="Int32")

    kept = cand[cand["keep"]]
    if len(kept):
        clips = catalog.read("clips", scene, ctx.run_id)
        faces = catalog.read("faces", scene, ctx.run_id)
        media = catalog.read("media", scene, ctx.run_id).set_index("video_id")
        jobs = _crop_jobs(kept, clips, faces)
        index = pd.Series(cand.index, index=cand["clip_id"])
        remove_stale_crops(crops_dir, scene)
        for video_id, video_jobs in tqdm(
            jobs.items(), desc=f"crops {scene}", unit="video", disable=not progress
        ):
            for res in write_video_crops(
                catalog.resolve_path(media.loc[video_id, "path"]), video_jobs, crops_dir, scene, ff.crops
            ):
                i = index[res.clip_id]
                if res.error is None:
                    cand.loc[i, ["face_dir", "scene_dir"]] = [
                        catalog.store_path(res.face_dir),
                        catalog.store_path(res.scene_dir),
                    ]
                    cand.loc[i, "n_crops"] = res.n_crops
                else:
                    cand.loc[i, ["keep", "reason", "value"]] = [False, "crop_failed", math.nan]
    refs = []
    for part, rows in cand.groupby("_part", sort=True):
        records = rows.drop(columns="_part").astype(object).where(rows.notna(), None).to_dict("records")
        versions = rows["model_version"].dropna()
        lineage = ctx.lineage(STAGE, versions.iloc[0] if len(versions) else None)
        table = rows_table("candidates", [{**r, **lineage} for r in records])
        refs.append(catalog.write("candidates", table, scene=scene, run_id=ctx.run_id, part=str(part)))
    return refs
