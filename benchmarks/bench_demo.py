"""End-to-end demo wall time and the share of it that is Prefect's (issue target: < 5%).

In one run, on the demo footage, each in a fresh storage root:
  1. the `build-candidates` flow once, cold (starts Prefect's embedded server; reported, not compared);
  2. the same stages as plain function calls, no Prefect;
  3. the flow again, warm.
Prints the wall times and overhead = (flow warm - plain) / flow warm.

    .venv/bin/python benchmarks/bench_demo.py            # about 3-4 minutes on two cores
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def plain(footage: Path, root: Path) -> None:
    """The flow's steps as plain calls (flows/build_candidates.py, same order and arguments)."""
    from data_catalog.io import Catalog
    from data_catalog.lineage import RunContext, new_run_id
    from flows.build_candidates import build_config_json, build_run_id, resolve, shards_of
    from flows.demo import DEMO_SCENE as scene
    from flows.summary import write_summary
    from tasks.crawl.stage import download_selected, plan_crawl
    from tasks.encode_clips import encode_selected_clips
    from tasks.face_filter.runner import finalize_scene, process_shard
    from tasks.refine import refine_scene
    from tasks.subsample import subsample_scene

    cfg = resolve(scene, "demo", overrides=[f"storage.root={root}"])
    catalog = Catalog(cfg.storage.catalog_dir)
    config_json = build_config_json(cfg)
    crawl_ctx = RunContext.create(config_json, run_id=new_run_id("crawl"))
    plan_crawl(catalog, [scene], cfg.crawl, crawl_ctx, sources=[f"local:{footage}"])
    download_selected(catalog, cfg.storage.media_dir, cfg.crawl, crawl_ctx, [scene])
    videos = catalog.read("videos", scene=scene, latest=True)
    rows = videos[videos["status"] == "downloaded"][["video_id", "scene", "local_path"]].to_dict("records")
    ctx = RunContext.create(config_json, run_id=build_run_id(scene, cfg, [r["video_id"] for r in rows]))
    for name, vs in shards_of(rows, cfg.distribution.shard_size).items():
        process_shard(vs, scene, cfg.segment, cfg.face_filter, ctx, catalog, name, progress=False)
    finalize_scene(
        scene, cfg.face_filter, ctx, catalog, target=cfg.subsample.target_for(scene),
        crops_dir=cfg.storage.crops_dir, progress=False,
    )  # fmt: skip
    refine_scene(scene, cfg.refine, ctx, catalog, input_run_id=ctx.run_id)
    subsample_scene(scene, cfg.subsample, ctx, catalog, input_run_id=ctx.run_id)
    encode_selected_clips(scene, ctx, catalog, cfg.storage.clips_dir, progress=False)
    write_summary(scene, cfg, ctx, catalog)


def flow(footage: Path, root: Path) -> None:
    from flows.build_candidates import build_candidates
    from flows.demo import DEMO_SCENE

    build_candidates(
        DEMO_SCENE, sources=[f"local:{footage}"], preset="demo", overrides=[f"storage.root={root}"]
    )


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    from flows.demo import prepare_footage

    with tempfile.TemporaryDirectory() as tmp:
        footage = prepare_footage(Path(tmp) / "footage").resolve()
        times = {}
        for label, fn in (
            ("flow (cold: server start)", flow),
            ("plain functions", plain),
            ("flow (warm)", flow),
        ):
            start = time.perf_counter()
            fn(footage, Path(tmp) / label.split()[0] / str(len(times)))
            times[label] = time.perf_counter() - start
    print("\n| run | wall s |\n|---|---:|")
    for label, seconds in times.items():
        print(f"| {label} | {seconds:.1f} |")
    overhead = (times["flow (warm)"] - times["plain functions"]) / times["flow (warm)"]
    print(f"\nPrefect overhead, warm: {overhead:.1%} of the flow's wall time (target < 5%)")


if __name__ == "__main__":
    main()
