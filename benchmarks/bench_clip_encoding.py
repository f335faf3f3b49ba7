"""Cost of encoding frame-exact clip files: ``tasks.media.encode_clip`` against video2dataset.

Stage 2 (paper 3.2) decodes each source once and encodes clip files late, only for the clips selected
for annotation, one short ffmpeg run per clip. video2dataset's ``ClippingSubsampler(precision="exact")``
instead re-encodes the whole source with keyframes forced at every cut and splits it with the segment
muxer. This script times both on the same source (the demo video looped to >= 5 minutes) and the same
spans (``--n-clips`` clips laid by ``segment_video``), checks every output's decoded frame count, and
prints the per-clip cost and the ratio.

video2dataset 1.3.0 needs numpy<2 (with pyarrow 17), so it runs in its own virtualenv: ``--v2d-venv DIR``
(default ``<asset cache>/bench/video2dataset-venv``) is used if it exists and created there with pip
otherwise. Both sides use the same ffmpeg binary (``tasks.media.ffmpeg_exe``), put first on PATH for
video2dataset, which calls plain ``ffmpeg``.

    .venv/bin/python benchmarks/bench_clip_encoding.py [--v2d-venv DIR] [--n-clips 50] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from data_catalog.assets import asset_path
from data_catalog.cache import default_cache_dir
from tasks.media import count_frames, encode_clip, ffmpeg_exe, probe
from tasks.segment import SegmentConfig, segment_video

V2D_REQUIREMENTS = ["video2dataset==1.3.0", "numpy<2", "pyarrow==17.0.0"]

# Runs inside the video2dataset venv: times only the subsampler call, writes the clips, prints JSON.
V2D_RUNNER = r"""
import json, resource, sys, time
from pathlib import Path
def cpu():
    return sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
from video2dataset.subsamplers import ClippingSubsampler
args = json.loads(sys.argv[1])
data = Path(args["source"]).read_bytes()
sub = ClippingSubsampler(oom_clip_count=5, encode_formats={"video": "mp4"}, precision="exact")
t0, c0 = time.perf_counter(), cpu()
clips, metas, error = sub({"video": [data]}, {"key": "src", "clips": args["spans"]})
seconds, cpu_seconds = time.perf_counter() - t0, cpu() - c0
out = Path(args["out"])
paths = []
for i, clip in enumerate(clips.get("video", [])):
    p = out / f"v2d_{i:03d}.mp4"
    p.write_bytes(clip)
    paths.append(str(p))
print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "error": error, "paths": paths}))
"""


def ensure_v2d_venv(venv: Path) -> Path:
    """The venv's python, creating the venv with video2dataset 1.3.0 first if it is missing."""
    python = venv / "bin" / "python"
    if python.exists():
        print(f"video2dataset venv: {venv}")
        return python
    print(f"creating a video2dataset venv in {venv} (pip install {' '.join(V2D_REQUIREMENTS)}) ...")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *V2D_REQUIREMENTS], check=True)
    return python


def make_source(work: Path, min_seconds: float) -> Path:
    demo = asset_path("demo-wolfgang-langer")
    loops = int(np.ceil(min_seconds / probe(demo).duration))
    source = work / "source.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-stream_loop", str(loops - 1),
         "-i", str(demo), "-an", "-c", "copy", str(source)],
        check=True,
    )  # fmt: skip
    return source


def pick_spans(source: Path, n: int, seed: int) -> list[dict]:
    clips = [
        s.clip
        for s in segment_video(source, "bench", "Interview", SegmentConfig(n_sample_frames=1), seed).clips
    ]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(clips), size=min(n, len(clips)), replace=False))
    return [clips[i] for i in chosen]


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (ffmpeg runs)."""
    usage = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    return sum(u.ru_utime + u.ru_stime for u in usage)


def run_ours(source: Path, spans: list[dict], out: Path, **encode_args) -> tuple[float, float, int]:
    out.mkdir(parents=True, exist_ok=True)
    probe(source)  # the one probe per source is shared by all its clips, as in the pipeline
    t0, c0 = time.perf_counter(), cpu_seconds()
    for s in tqdm(spans, desc=f"encode_clip {encode_args or ''}", leave=False):
        encode_clip(source, s["start_frame"], s["end_frame"], out / f"{s['clip_id']}.mp4", **encode_args)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    exact = sum(count_frames(out / f"{s['clip_id']}.mp4") == s["n_frames"] for s in spans)
    return seconds, cpu, exact


def run_v2d(python: Path, source: Path, spans: list[dict], out: Path) -> tuple[float, float, int, str | None]:
    out.mkdir(parents=True, exist_ok=True)
    bindir = out / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "ffmpeg").unlink(missing_ok=True)
    (bindir / "ffmpeg").symlink_to(ffmpeg_exe())
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    args = {
        "source": str(source),
        "out": str(out),
        "spans": [[s["start_time"], s["end_time"]] for s in spans],
    }
    proc = subprocess.run(
        [str(python), "-c", V2D_RUNNER, json.dumps(args)], capture_output=True, text=True, env=env, check=True
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    paths = result["paths"]
    exact = sum(count_frames(p) == s["n_frames"] for p, s in zip(paths, spans, strict=False))
    if len(paths) != len(spans):
        result["error"] = (result["error"] or "") + f" ({len(paths)} clips for {len(spans)} spans)"
    return result["seconds"], result["cpu"], exact, result["error"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--v2d-venv", type=Path, default=default_cache_dir() / "bench" / "video2dataset-venv")
    parser.add_argument("--n-clips", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="keep sources and clips in this folder")
    args = parser.parse_args()

    python = ensure_v2d_venv(args.v2d_venv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        source = make_source(work, args.min_seconds)
        info = probe(source)
        spans = pick_spans(source, args.n_clips, args.seed)
        n = len(spans)
        mean_len = float(np.mean([s["duration"] for s in spans]))
        print(f"source: {info.width}x{info.height} {info.fps:.3f} fps {info.duration:.1f} s {info.codec}; "
              f"{n} spans, mean {mean_len:.2f} s")  # fmt: skip

        rows = [
            ("encode_clip (libx264 veryfast, crf 18; default)", *run_ours(source, spans, work / "a"), None),
            (
                "encode_clip (libx264 medium, crf 23: video2dataset's encoder settings)",
                *run_ours(source, spans, work / "b", preset="medium", crf=23),
                None,
            ),
            (
                'video2dataset ClippingSubsampler(precision="exact")',
                *run_v2d(python, source, spans, work / "v"),
            ),
        ]

    _, v2d_wall, v2d_cpu, _, _ = rows[-1]
    print(
        "\n| method | wall s | wall ms/clip | CPU ms/clip | frame-exact clips | v2d/this wall | v2d/this CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, wall, cpu, exact, error in rows:
        note = f" ({error})" if error else ""
        print(
            f"| {name}{note} | {wall:.2f} | {1000 * wall / n:.0f} | {1000 * cpu / n:.0f} | {exact}/{n} "
            f"| {v2d_wall / wall:.1f}x | {v2d_cpu / cpu:.1f}x |"
        )


if __name__ == "__main__":
    main()
