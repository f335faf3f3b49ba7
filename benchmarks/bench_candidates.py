"""Benchmark: candidate generation (stages 2 + 3, paper 3.2) per detector backend x device x size x batch.

On the demo video looped to at least ``--minutes`` of footage, measures in one run
  (a) decoding the source alone (one full decode pass, the least segmentation can do),
and for each row (``reference`` is insightface's SCRFD at its fixed 640 x 640, one frame at a time, on the
CPU: the face filter's detector before it was batched; the others are ``backend:size:batch``)
  (b) face detection alone on the clips' sampled frames (already in memory),
  (c) stages 2 + 3 as ``tasks.face_filter.runner.process_shard`` runs them (segment with decoding ahead, detect,
      measure, rules, manifests written),
and prints frames/s, clips/s, video-seconds/s, c / max(a, b) (1.0: decoding and detection fully overlap,
nothing else costs), whether the row keeps the same clips as the reference, and the projection for the
paper's 4,000 videos. A second table measures recall on small faces: the group photo's five faces, found by
the reference on the full photo, shrunk to a given height on a 640 x 360 frame.

    .venv/bin/python benchmarks/bench_candidates.py [--minutes 1] [--device cpu] [--rows reference onnxruntime:640:16]
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

CPU_ROWS = [
    "reference",
    "onnxruntime:640:1",
    "onnxruntime:640:16",
    "onnxruntime:480:16",
    "onnxruntime:320:16",
    "torch:640:16",
]
CUDA_ROWS = [
    "reference",
    "onnxruntime:640:16:cpu",
    "onnxruntime:640:64",
    "onnxruntime:640:256",
    "torch:640:64",
    "torch:640:256",
    "onnxruntime:480:256",
    "torch:480:256",
    "torch:320:256",
]
PAPER_VIDEOS = 4000
FACE_HEIGHTS = (12, 16, 24, 32, 48, 64)


def looped_video(src: Path, minutes: float, out: Path) -> Path:
    """``src`` repeated (stream copy, no re-encoding) until it lasts at least ``minutes``: by the ffmpeg
    binary where there is one, else by PyAV's remuxer (a bare GPU box may have neither ffmpeg nor
    imageio-ffmpeg)."""
    from tasks.media import probe

    loops = math.ceil(minutes * 60 / probe(src).duration)
    try:
        from tasks.media import ffmpeg_exe

        exe = ffmpeg_exe()
    except ImportError:
        return _remux_loop(src, loops, out)
    cmd = [exe, "-y", "-hide_banner", "-loglevel", "error", "-stream_loop", str(loops - 1), "-i", str(src)]
    subprocess.run([*cmd, "-an", "-c", "copy", str(out)], check=True)
    return out


def _remux_loop(src: Path, loops: int, out: Path) -> Path:
    import av

    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        stream = inp.streams.video[0]
        ostream = dst.add_stream_from_template(stream)
        offset = 0
        for _ in range(loops):
            inp.seek(0)
            last = 0
            for packet in inp.demux(stream):
                if packet.dts is None:
                    continue
                last = max(last, packet.pts + (packet.duration or 0))
                packet.pts += offset
                packet.dts += offset
                packet.stream = ostream
                dst.mux(packet)
            offset += last
    return out


def build(row: str, device: str):
    """The detector of one row spec: 'reference' or 'backend:size:batch[:device]' (device: the run's)."""
    from models.detectors import create_detector

    if row == "reference":
        from models.detectors.insightface_scrfd import reference_detector

        return reference_detector()
    try:
        backend, size, batch, *where = row.split(":")
        size, batch = int(size), int(batch)
    except ValueError as exc:
        raise SystemExit(
            f"row {row!r}: expected 'reference' or 'backend:size:batch[:device]' ({exc})"
        ) from None
    where = where[0] if where else device
    return create_detector("scrfd", device=where, backend=backend, size=size, batch=batch)


def describe(row: str, detector) -> tuple[str, str, str, str]:
    """(detector, backend/device, size, batch) columns."""
    if row == "reference":
        return "insightface SCRFD (before)", "onnxruntime/cpu", "640x640", "1"
    shape = str(detector.size) if detector.fixed_input is None else "x".join(map(str, detector.fixed_input))
    return "scrfd shape-free", detector.backend.describe(), shape, str(detector.batch)


def small_face_frames(photo):
    """(frames, truth boxes per frame) with the photo's faces shrunk to each height in FACE_HEIGHTS."""
    import cv2
    import numpy as np

    from models.detectors import create_detector
    from models.detectors.insightface_scrfd import reference_detector

    try:
        truth = reference_detector(pad=0.0).detect(photo)
    except ImportError:  # no insightface (a bare GPU box): the shape-free graph at 640, which agrees with it
        truth = create_detector("scrfd", device="cpu", backend="onnxruntime", pad=0.0).detect(photo)
    face_h = float(np.median(truth.boxes[:, 3] - truth.boxes[:, 1]))
    frames, boxes = [], []
    for height in FACE_HEIGHTS:
        s = height / face_h
        small = cv2.resize(photo, (max(1, round(photo.shape[1] * s)), max(1, round(photo.shape[0] * s))))
        canvas = np.full((360, 640, 3), 96, np.uint8)
        h, w = min(360, small.shape[0]), min(640, small.shape[1])
        y, x = (360 - h) // 2, (640 - w) // 2
        canvas[y : y + h, x : x + w] = small[:h, :w]
        frames.append(canvas)
        boxes.append(truth.boxes * s + np.array([x, y, x, y], np.float32))
    return frames, boxes


def recall(detector, frames, truths) -> list[float]:
    from tasks.face_filter.measures import box_iou

    out = []
    for dets, truth in zip(detector.detect_batch(frames), truths, strict=True):
        hit = sum(any(box_iou(t, d) >= 0.5 for d in dets.boxes) for t in truth)
        out.append(hit / len(truth))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="length of the looped source video")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--rows", nargs="*", help="row specs; default: a CPU or a CUDA set by device")
    parser.add_argument("--asset", default="demo-wolfgang-langer", help="the demo video to loop")
    parser.add_argument(
        "--mean-video-minutes",
        type=float,
        default=10.0,
        help="assumed mean length of the paper's source videos, for the projection (the paper gives none)",
    )
    args = parser.parse_args()

    import cv2
    import numpy as np

    from data_catalog.assets import asset_path
    from data_catalog.io import Catalog
    from data_catalog.lineage import RunContext
    from flows.config import load_config
    from models.detectors.backends import resolve_device
    from tasks.face_filter.runner import process_shard
    from tasks.media import iter_decoded, probe
    from tasks.segment import segment_video

    device = resolve_device(args.device)
    rows = args.rows or (CUDA_ROWS if device == "cuda" else CPU_ROWS)
    photo = np.ascontiguousarray(cv2.imread(str(asset_path("demo-multi-face-image")))[:, :, ::-1])
    small_frames, small_truth = small_face_frames(photo)
    results, recalls, base = [], {}, None
    with tempfile.TemporaryDirectory(prefix="bench-candidates-") as tmp:
        tmp = Path(tmp)
        video = looped_video(asset_path(args.asset), args.minutes, tmp / "source.mp4")
        info = probe(video)
        cfg = load_config(overrides=[f"storage.root={tmp / 'work'}"])
        clock = Clock()
        n_decoded = sum(1 for _ in iter_decoded(video, info))
        a = clock.stop()
        frames = [
            f.image
            for s in segment_video(video, "local-bench", "Interview", cfg.segment).clips
            for f in s.frames
        ]
        catalog = Catalog(cfg.storage.catalog_dir)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, device {device}{gpu_name(device)}")
        print(
            f"source: {args.asset} looped to {info.duration:.1f} s, {info.width}x{info.height}, {n_decoded} frames"
        )
        print(f"sampled frames: {len(frames)} ({cfg.segment.n_sample_frames} per clip)")
        print(f"(a) decode alone: {a[0]:.2f} s wall, {a[1]:.2f} s CPU ({n_decoded / a[0]:.0f} frames/s)\n")
        print(
            "| detector | backend/device | size | batch | (b) detect frames/s | frames per CPU-s "
            "| (c) stages 2+3 clips/s | CPU-s per clip | video-s/s | c / max(a, b) "
            "| clips/s vs reference (wall, CPU) | same kept clips | small-face recall "
            + "/".join(map(str, FACE_HEIGHTS))
            + " px |"
        )
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|", flush=True)
        for k, row in enumerate(rows):
            try:
                detector = build(row, device)
            except (ImportError, RuntimeError, ValueError) as exc:  # insightface, a provider, a GPU missing
                print(f"| {row} | skipped: {exc} |", flush=True)
                continue
            detector.detect_batch(frames[: max(getattr(detector, "batch", 1), 1)])  # warm-up, model loaded
            clock = Clock()
            detector.detect_batch(frames)
            b = clock.stop()
            ctx = RunContext.create(cfg.model_dump(mode="json"), run_id=f"run-bench-{k}")
            shard = {"video_id": "local-bench", "scene": "Interview", "local_path": str(video)}
            clock = Clock()
            refs = process_shard(
                [shard],
                "Interview",
                cfg.segment,
                cfg.face_filter,
                ctx,
                catalog,
                "0000",
                detector=detector,
                progress=False,
            )
            c = clock.stop()
            cand = catalog.read("candidates", "Interview", ctx.run_id)
            kept = frozenset(cand.loc[cand["keep"], "clip_id"])
            n_clips = {r.manifest: r.rows for r in refs}["clips"]
            results.append((row, describe(row, detector), c))
            recalls[row] = recall(detector, small_frames, small_truth)
            base = base or (c, kept)
            same = "yes" if kept == base[1] else f"no ({len(kept ^ base[1])} differ)"
            name, where, size, batch = results[-1][1]
            print(
                f"| {name} | {where} | {size} | {batch} | {len(frames) / b[0]:,.1f} | {len(frames) / b[1]:,.1f} "
                f"| {n_clips / c[0]:.2f} | {c[1] / n_clips:.2f} | {info.duration / c[0]:.2f} "
                f"| {c[0] / max(a[0], b[0]):.3f} | {base[0][0] / c[0]:.2f}x, {base[0][1] / c[1]:.2f}x "
                f"| {same} ({len(kept)} kept) | {'/'.join(f'{r:.0%}' for r in recalls[row])} |",
                flush=True,
            )

    hours = PAPER_VIDEOS * args.mean_video_minutes / 60
    kind = "GPU" if device == "cuda" else "CPU"
    print(
        f"\nprojection: {PAPER_VIDEOS:,} videos x {args.mean_video_minutes:g} min (assumed) = {hours:,.0f} h of "
        f"video; stages 2 + 3 on this machine ({kind}, wall clock):"
    )
    for _row, (name, where, size, batch), c in results:
        machine_hours = hours * c[0] / info.duration
        print(f"  {name} {where} {size} batch {batch}: {machine_hours:,.0f} {kind}-machine-hours")
    print("\nrecall on small faces (the group photo's 5 faces at a given height on a 640x360 frame):")
    print("| detector | backend/device | size | " + " | ".join(f"{h} px" for h in FACE_HEIGHTS) + " |")
    print("|---|---|---|" + "---:|" * len(FACE_HEIGHTS))
    for row, (name, where, size, _), _ in results:
        print(f"| {name} | {where} | {size} | " + " | ".join(f"{r:.0%}" for r in recalls[row]) + " |")


def gpu_name(device: str) -> str:
    if device != "cuda":
        return ""
    import torch

    return f" ({torch.cuda.get_device_name(0)})"


class Clock:
    """Wall and process CPU time (all threads) since creation; CPU time is steadier on a shared machine."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


if __name__ == "__main__":
    main()
