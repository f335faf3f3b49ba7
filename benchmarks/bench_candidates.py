"""Benchmark: candidate generation (stages 2 + 3, paper 3.2) against its two unavoidable costs.

On the demo video looped to at least ``--minutes`` of footage, measures in one run
  (a) decoding the source alone (one full decode pass, the least segmentation can do),
  (b) face detection alone on the clips' sampled frames (already in memory),
  (c) stages 2 + 3 as ``tasks.candidates.process_shard`` runs them (segment, detect, measure, rules,
      manifests written),
and prints clips/s, video-seconds/s and the ratio c / (a + b): the overhead of doing both in one pass with
everything else the stage does. Target: <= 1.25.

    .venv/bin/python benchmarks/bench_candidates.py [--minutes 5] [--device auto]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path


def looped_video(src: Path, minutes: float, out: Path) -> Path:
    """``src`` repeated (stream copy) until it lasts at least ``minutes``."""
    from tasks._media import ffmpeg_exe, probe

    loops = math.ceil(minutes * 60 / probe(src).duration)
    cmd = [
        ffmpeg_exe(),
        "-y",
        "-hide_banner",
        "-loglevel",
        "error",
        "-stream_loop",
        str(loops - 1),
        "-i",
        str(src),
    ]
    subprocess.run([*cmd, "-an", "-c", "copy", str(out)], check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the looped source video")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--asset", default="demo-wolfgang-langer", help="the demo video to loop")
    args = parser.parse_args()

    from data_catalog.assets import asset_path
    from data_catalog.io import Catalog
    from data_catalog.lineage import RunContext
    from flows.config import load_config
    from models.detectors import create_detector
    from tasks._media import iter_decoded, probe
    from tasks.candidates import process_shard
    from tasks.segment import segment_video

    with tempfile.TemporaryDirectory(prefix="bench-candidates-") as tmp:
        tmp = Path(tmp)
        video = looped_video(asset_path(args.asset), args.minutes, tmp / "source.mp4")
        info = probe(video)
        cfg = load_config(
            overrides=[f"storage.root={tmp / 'work'}", f"face_filter.detector.device={args.device}"]
        )
        detector = create_detector(cfg.face_filter.detector.name, **cfg.face_filter.detector.kwargs())
        detector.detect(next(iter_decoded(video, info))[2].to_ndarray(format="rgb24"))  # warm-up

        clock = Clock()
        n_decoded = sum(1 for _ in iter_decoded(video, info))
        a = clock.stop()

        frames = [
            f.image
            for s in segment_video(video, "local-bench", "Interview", cfg.segment).clips
            for f in s.frames
        ]
        clock = Clock()
        detector.detect_batch(frames)
        b = clock.stop()

        ctx = RunContext.create(cfg.model_dump(mode="json"), run_id="run-bench")
        catalog = Catalog(cfg.storage.catalog_dir)
        row = {"video_id": "local-bench", "scene": "Interview", "local_path": str(video)}
        clock = Clock()
        refs = process_shard([row], "Interview", cfg, ctx, catalog, "0000", detector=detector, progress=False)
        c = clock.stop()
        n_clips = {r.manifest: r.rows for r in refs}["clips"]

    (a, a_cpu), (b, b_cpu), (c, c_cpu) = a, b, c
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, providers {detector.providers}")
    print(
        f"source: {args.asset} looped to {info.duration:.1f} s, {info.width}x{info.height}, {n_decoded} frames"
    )
    print(f"clips: {n_clips}, sampled frames: {len(frames)} ({cfg.segment.n_sample_frames} per clip)")
    print(f"(a) decode alone:     {a:8.2f} s wall {a_cpu:8.2f} s CPU  ({n_decoded / a:7.1f} frames/s)")
    print(f"(b) detection alone:  {b:8.2f} s wall {b_cpu:8.2f} s CPU  ({len(frames) / b:7.1f} frames/s)")
    print(
        f"(c) stages 2+3:       {c:8.2f} s wall {c_cpu:8.2f} s CPU  ({n_clips / c:.2f} clips/s, {info.duration / c:.2f} video-s/s)"
    )
    print(f"ratio c / (a + b): {c / (a + b):.3f} wall, {c_cpu / (a_cpu + b_cpu):.3f} CPU  (target <= 1.25)")


class Clock:
    """Wall and process CPU time (all threads) since creation; CPU time is steadier on a shared machine."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


if __name__ == "__main__":
    main()
