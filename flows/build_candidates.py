"""The ``build-candidates`` flow: crawl -> segment -> face filter -> refine -> subsample for one scene.

Paper section 3.2, "Generation of candidate video clips", end to end. The flow is thin: each step is a plain
function in ``tasks/`` wrapped as a Prefect task; steps meet through the catalog and pass only references.

- Segment + face filter run per *shard* of videos (``distribution.shard_size`` videos a task run, so a
  scene is tens to hundreds of task runs, never one per clip), ``distribution.workers`` at a time.
- Resumable: the run id is derived from the scene, the resolved config's hash and the set of downloaded
  videos, so a run killed at any point and started again with the same inputs reuses the same partitions;
  every step skips parts that already exist, and ends with the same manifests as an uninterrupted run.
  New videos (a re-crawl) or another config give a new run id: earlier runs stay as they were.
- Publishes a markdown summary (counts per stage, rejections per rule, distributions) as a Prefect artifact
  and as ``<storage.root>/reports/<scene>/summary.md`` with the PNG figures beside it.

    >>> build_candidates("DailyLife", sources=["local:footage"], overrides=["storage.root=/tmp/ferv"])  # doctest: +SKIP
"""

from __future__ import annotations

# Prefect reads its settings when imported: the offline defaults must be in place first.
import flows.prefect_env  # noqa: F401

# isort: split
import hashlib
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext, config_hash, new_run_id
from flows.config import PipelineConfig, load_config
from flows.crawl import download_task, plan_task
from flows.runners import gpu_stage, task_runner
from flows.summary import write_summary
from tasks.encode_clips import encode_selected_clips
from tasks.face_filter.runner import finalize_scene, process_shard, reuse_earlier
from tasks.refine import refine_scene
from tasks.subsample import subsample_scene

reuse_task = task(reuse_earlier, name="reuse-earlier-videos", cache_policy=NO_CACHE)
shard_task = task(process_shard, name="segment-and-filter", cache_policy=NO_CACHE, retries=1)
finalize_task = task(finalize_scene, name="rank-and-crop", cache_policy=NO_CACHE)
refine_task = task(refine_scene, name="refine", cache_policy=NO_CACHE)
subsample_task = task(subsample_scene, name="subsample", cache_policy=NO_CACHE)
encode_task = task(encode_selected_clips, name="encode-selected", cache_policy=NO_CACHE)


@dataclass(frozen=True)
class BuildResult:
    scene: str
    run_id: str
    n_videos: int
    n_shards: int
    summary_path: str


#: The config sections whose values determine what build-candidates computes (its lineage hash).
BUILD_SECTIONS = ("crawl", "segment", "face_filter", "refine", "subsample")


def build_config_json(cfg: PipelineConfig) -> dict:
    """What the run's ``config_hash`` covers: the stages' sections and the sharding (part names)."""
    return {**cfg.lineage_json(BUILD_SECTIONS), "shard_size": cfg.distribution.shard_size}


def build_run_id(scene: str, cfg: PipelineConfig, video_ids: list[str]) -> str:
    """``bc-<hash>`` of the scene, the config hash and the videos: the same inputs give the same run."""
    config = config_hash(build_config_json(cfg))
    digest = hashlib.sha256("\n".join([scene, config, *sorted(video_ids)]).encode()).hexdigest()
    return f"bc-{digest[:16]}"


def resolve(
    scene: str,
    preset: str = "default",
    config_file: str | None = None,
    overrides: list[str] | None = None,
    target: int | None = None,
    seed: int | None = None,
) -> PipelineConfig:
    """The run's config: flow parameters ``target`` and ``seed`` are overrides like any other."""
    extra = list(overrides or [])
    if target is not None:
        extra.append(f"subsample.targets={{{scene}: {int(target)}}}")
    if seed is not None:
        extra += [f"{section}.seed={int(seed)}" for section in ("crawl", "segment", "subsample")]
    return load_config(preset=preset, user_file=config_file, overrides=extra)


def downloaded_videos(catalog: Catalog, scene: str):
    """The scene's videos whose latest crawl row says ``downloaded`` (a DataFrame)."""
    videos = catalog.read("videos", scene=scene, latest=True)
    return videos[videos["status"] == "downloaded"]


def check_request(
    scene: str,
    sources: list[str] | None = None,
    target: int | None = None,
    seed: int | None = None,
    preset: str = "default",
    config_file: str | None = None,
    overrides: list[str] | None = None,
    crawl: bool = True,
) -> PipelineConfig:
    """Everything about a build-candidates request that can be wrong before work starts: the scene, the
    config (every layer), ``sources`` without a crawl, and, without a crawl, whether any video is downloaded.
    Raises ``ValueError`` naming the input; returns the resolved config. The command calls this before the
    flow starts, so a bad request prints one clear line instead of a flow-run traceback."""
    from keywords.taxonomy import load_taxonomy

    load_taxonomy().scene(scene)  # an unknown scene fails here, listing the valid ones
    if sources and not crawl:
        raise ValueError(
            f"--source {' '.join(sources)!r} with --no-crawl: sources are only read by the crawl, which "
            "--no-crawl skips; drop one of the two"
        )
    cfg = resolve(scene, preset, config_file, overrides, target, seed)
    if not crawl and downloaded_videos(Catalog(cfg.storage.catalog_dir), scene).empty:
        raise ValueError(
            f"scene {scene!r}: no downloaded videos in {cfg.storage.catalog_dir}; crawl first (drop --no-crawl)"
        )
    return cfg


def shards_of(videos: list[dict], size: int) -> dict[str, list[dict]]:
    """Consecutive shards of ``size`` videos in video-id order, named ``s0000``, ``s0001``, ..."""
    ordered = sorted(videos, key=lambda v: v["video_id"])
    return {f"s{i // size:04d}": ordered[i : i + size] for i in range(0, len(ordered), size)}


@flow(name="build-candidates")
def build_candidates(
    scene: str,
    sources: list[str] | None = None,
    target: int | None = None,
    seed: int | None = None,
    preset: str = "default",
    config_file: str | None = None,
    overrides: list[str] | None = None,
    crawl: bool = True,
) -> BuildResult:
    """Build the candidate clips of one ``scene`` (see the module docstring). ``sources`` replaces the
    configured search engines (e.g. ``local:<dir>``); ``target`` is the final clip count for the scene
    (the face filter keeps 20x, the subsampling 2x); ``crawl=False`` uses the videos already downloaded."""
    log = get_run_logger()
    cfg = check_request(scene, sources, target, seed, preset, config_file, overrides, crawl)
    catalog = Catalog(cfg.storage.catalog_dir)
    config_json = build_config_json(cfg)

    if crawl:
        crawl_ctx = RunContext.create(config_json, run_id=new_run_id("crawl"))
        plan_task(catalog, [scene], cfg.crawl, crawl_ctx, sources=sources)
        download_task(catalog, Path(cfg.storage.media_dir), cfg.crawl, crawl_ctx, [scene])

    videos = downloaded_videos(catalog, scene)
    if videos.empty:
        raise ValueError(f"scene {scene!r}: no downloaded videos in {catalog.root}; crawl first")
    rows = videos[["video_id", "scene", "local_path"]].to_dict("records")
    ctx = RunContext.create(config_json, run_id=build_run_id(scene, cfg, [r["video_id"] for r in rows]))
    new, _ = reuse_task(rows, scene, ctx, catalog)
    shards = shards_of(new, cfg.distribution.shard_size)
    log.info(
        "%s: %d videos (%d processed by an earlier run with this config), %d shards on %s, run %s",
        scene, len(rows), len(rows) - len(new), len(shards), cfg.distribution.runner, ctx.run_id,
    )  # fmt: skip

    with task_runner(cfg.distribution) as runner:
        futures = [
            runner.submit(shard_task, {"videos": vs, "scene": scene, "segment": cfg.segment,
                                       "face_filter": cfg.face_filter, "ctx": ctx, "catalog": catalog,
                                       "shard": name, "progress": False})
            for name, vs in shards.items()
        ]  # fmt: skip
        for f in futures:
            f.result()
        finalize_task(
            scene, cfg.face_filter, ctx, catalog, target=cfg.subsample.target_for(scene),
            crops_dir=cfg.storage.crops_dir, progress=False,
        )  # fmt: skip
        with gpu_stage(cfg.distribution):
            refine = runner.submit(
                refine_task,
                {
                    "scene": scene,
                    "cfg": cfg.refine,
                    "ctx": ctx,
                    "catalog": catalog,
                    "input_run_id": ctx.run_id,
                },
            )
        refine.result()
    subsample_task(scene, cfg.subsample, ctx, catalog, input_run_id=ctx.run_id)
    encode_task(scene, ctx, catalog, cfg.storage.clips_dir, progress=False)
    summary = write_summary(scene, cfg, ctx, catalog)
    log.info("%s: summary written to %s", scene, summary)
    return BuildResult(scene, ctx.run_id, len(rows), len(shards), str(summary))
