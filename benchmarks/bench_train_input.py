"""Benchmark training's input pipeline against the zoo's compute rate (issue 11).

On a labelled catalog (``--catalog``, or one built from the demo crops: real face crops of the demo video,
as the benchmark tests use), one run prints:

- loader-only clips/s of the JPEG path and of the packed path (:mod:`tasks.benchmark.pack`), in this
  process (one core) and from ``--workers`` long-lived workers, and the time to an epoch's first batch;
- the packing rate (clips decoded per second);
- train clips/s of ``train_model`` (steady state: the epochs after the first) on the packed path;
- the zoo's compute clips/s for the same model and settings (``bench_zoo.measure``, random tensors);
- their ratios, the GPU's busy share during steady-state training on CUDA (pynvml, else ``nvidia-smi``);
- Table 2's projected GPU-hours (16 models x 60 epochs x the release's 31,088 train clips) at the measured
  train rate and at the zoo's rate.

Needs only the torch stack (no Prefect, insightface or yt-dlp) with ``--catalog``; building the demo
catalog also needs the project's assets (``ferv assets fetch``).

    python benchmarks/bench_train_input.py --model r18 --batch 16 --frames 8 --workers 2
    python benchmarks/bench_train_input.py --device cuda --amp --batch 32 --frames 8 --workers 14 \\
        --catalog /data/ferv/catalog
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_catalog.io import Catalog  # noqa: E402
from tasks.benchmark.config import BenchmarkConfig  # noqa: E402
from tasks.benchmark.data import benchmark_clips, load_labels  # noqa: E402
from tasks.benchmark.loader import JobLoader  # noqa: E402
from tasks.benchmark.pack import pack_clips  # noqa: E402

#: FERV39k's train side (paper, Table 1: 31,088 of 38,935 clips) and Table 2's trainings.
RELEASE_TRAIN_CLIPS = 31_088
TABLE2_MODELS, TABLE2_EPOCHS = 16, 60


def demo_catalog(work: Path, n_clips: int) -> Catalog:
    """A catalog of ``n_clips`` labelled clips cut from the demo video (tests/tasks/benchmark/footage.py)."""
    from data_catalog.assets import asset_path
    from tests.tasks.benchmark.footage import assign, demo_crops, write_catalog

    catalog = Catalog(work / "catalog")
    if not catalog.part_files("labels"):
        clips = demo_crops(asset_path("demo-wolfgang-langer"), work / "crops", n_clips=n_clips)
        write_catalog(catalog, assign(clips))
    return catalog


class GpuBusy:
    """Samples the GPU's utilisation (percent of time a kernel ran over the driver's last sample period)
    ten times a second while running."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (perf_counter, percent)
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
            self._read = lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:  # no pynvml: ask nvidia-smi
            index = str(torch.cuda.current_device())
            cmd = ["nvidia-smi", "-i", index, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
            self._read = lambda: float(subprocess.run(cmd, capture_output=True, text=True).stdout.split()[0])
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.samples.append((time.perf_counter(), self._read()))
            except Exception:
                return

    def __enter__(self) -> GpuBusy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def loader_rate(clips, cfg: BenchmarkConfig, store, epochs: int) -> dict:
    """Clips/s of ``epochs`` training epochs of loading only (packed batches augmented on the device, as in
    training), steady state (after the first epoch), and each epoch's seconds to its first batch."""
    from tasks.benchmark.augment import device_inputs

    device = cfg.resolved_device()
    firsts, seconds = [], []
    threads = torch.get_num_threads()
    if device == "cpu":  # the batch augmentation on one thread: "1 core" means it, and a busy CPU spins less
        torch.set_num_threads(1)
    with JobLoader(clips, cfg, store=store) as loader:
        for epoch in range(epochs):
            began = time.perf_counter()
            for k, batch in enumerate(loader.train_epoch(clips, epoch, scene=False)):
                if k == 0:
                    firsts.append(time.perf_counter() - began)
                face, _ = device_inputs(batch, cfg, device, scene=False)
            if device == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - began)
    torch.set_num_threads(threads)
    steady = seconds[1:] or seconds
    n_batches = -(-len(clips) // cfg.batch_size)
    return {"rate": len(clips) * len(steady) / sum(steady), "first": firsts, "seconds": seconds,
            "batch": sum(steady) / (n_batches * len(steady))}  # fmt: skip


def say(line: str) -> None:
    """A progress line on stderr as each measurement ends (the tables come at the end, on stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def tile(clips, times: int):
    """``clips`` repeated ``times`` times, copy k's ids suffixed ``~k`` (the same frame folders)."""
    import pandas as pd

    if times <= 1:
        return clips
    copies = [clips.assign(clip_id=clips["clip_id"] + f"~{k}") for k in range(times)]
    return pd.concat(copies, ignore_index=True)


def train_rate_of(model: str, clips, cfg: BenchmarkConfig, work: Path, store, device: str, args) -> dict:
    """Steady-state train clips/s of ``model`` (epochs after the first), its first batches, the GPU's busy
    share over the steady-state epochs on CUDA, and the zoo's compute rate for the same settings."""
    from bench_zoo import measure

    from tasks.benchmark.train import train_model

    out = work / "train" / model
    shutil.rmtree(out, ignore_errors=True)
    with GpuBusy() if device == "cuda" else nullcontext() as busy:
        result = train_model(model, clips, cfg, out, progress=False, store=store)
    epoch_s = result.extra["epoch_seconds"][1:] or result.extra["epoch_seconds"]
    # GPU busy share over the steady-state epochs: the samples taken while one of them ran
    busy_share, n_busy = None, 0
    if busy is not None and busy.samples:
        spans = result.extra["epoch_spans"][1:] or result.extra["epoch_spans"]
        steady = [v for t, v in busy.samples if any(a <= t <= b for a, b in spans)]
        busy_share, n_busy = sum(steady) / (100 * max(len(steady), 1)), len(steady)
    zoo = measure(model, argparse.Namespace(device=device, batch=args.batch, frames=args.frames,
                                            amp=args.amp and device == "cuda", warmup=1, iters=3))  # fmt: skip
    return {"rate": len(clips) * len(epoch_s) / sum(epoch_s), "epoch_s": epoch_s, "zoo": zoo["train"],
            "first": max(result.extra["first_batch_seconds"][1:], default=float("nan")),
            "busy": busy_share, "n_busy": n_busy}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--catalog", type=Path, help="a labelled catalog (default: built from the demo crops)"
    )
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    parser.add_argument("--demo-clips", type=int, default=48, help="clips of the demo catalog")
    parser.add_argument("--model", nargs="+", default=["r18"], help="one or more zoo models, trained in turn")
    parser.add_argument(
        "--tile",
        type=int,
        default=1,
        help="repeat the catalog's clips this many times (new ids, the same frames): enough batches for a GPU",
    )
    parser.add_argument(
        "--loader-clips", type=int, help="clips of the one-core loader rows (default: all; they are slow)"
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="long-lived loader workers")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per measurement (the first is warm-up)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    parser.add_argument(
        "--train-only", action="store_true", help="skip the loader-only rows (train and zoo rates only)"
    )
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-train-input-"))
    try:
        catalog = Catalog(args.catalog) if args.catalog else demo_catalog(work, args.demo_clips)
        clips = tile(benchmark_clips(load_labels(catalog).frame, catalog).frame, args.tile)
        cfg = BenchmarkConfig(n_frames=args.frames, batch_size=args.batch, num_workers=args.workers,
                              device=args.device, amp=args.amp, epochs=args.epochs)  # fmt: skip
        device = cfg.resolved_device()
        if device == "cuda":
            torch.backends.cudnn.benchmark = True
        shutil.rmtree(work / "packs", ignore_errors=True)  # measure a whole pack
        began = time.perf_counter()
        store = pack_clips(clips, cfg, work / "packs", workers=args.workers).store
        pack_s = time.perf_counter() - began
        say(f"packed {len(clips)} clips in {pack_s:.1f} s")
        rows = {}
        one_core = clips.head(args.loader_clips) if args.loader_clips else clips
        for label, workers in (
            () if args.train_only else (("1 core, in process", 0), (f"{args.workers} workers", args.workers))
        ):
            wcfg = cfg.model_copy(update={"num_workers": workers})
            some = one_core if workers == 0 else clips
            rows[f"JPEG path, {label}"] = loader_rate(
                some, wcfg.model_copy(update={"packed": False}), None, args.epochs
            )
            say(f"loader only, JPEG path, {label}: {rows[f'JPEG path, {label}']}")
            rows[f"packed path, {label}"] = loader_rate(some, wcfg, store, args.epochs)
            say(f"loader only, packed path, {label}: {rows[f'packed path, {label}']}")
        trained = {}
        for model in args.model:
            trained[model] = train_rate_of(model, clips, cfg, work, store, device, args)
            say(f"{model}: {trained[model]}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    where = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"{platform.machine()} CPU, {os.cpu_count()} cores"
    )
    print(f"\n{where}, torch {torch.__version__}, {torch.get_num_threads()} torch threads; {len(clips)} clips, "
          f"model {' '.join(args.model)}, batch {args.batch}, {args.frames} frames, {args.workers} workers, "
          f"{args.epochs} epochs per measurement (first = warm-up){', AMP' if cfg.amp and device == 'cuda' else ''}")  # fmt: skip
    print(f"packing: {len(clips) / pack_s:.1f} clips/s ({pack_s:.1f} s, {args.workers} processes)\n")
    # Start-up shows as a first batch slower than the epoch's mean batch (1.0x: no start-up cost).
    print("| measurement | clips/s | first batch of later epochs (s) | mean batch (s) | first / mean |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        first = max(r["first"][1:], default=float("nan"))
        print(
            f"| loader only, {name} | {r['rate']:.1f} | {first:.3f} | {r['batch']:.3f} | {first / r['batch']:.2f}x |"
        )
    for model, t in trained.items():
        batch = sum(t["epoch_s"]) / (len(t["epoch_s"]) * -(-len(clips) // args.batch))
        print(f"| {model}: train_model, packed, {args.workers} workers | {t['rate']:.1f} | {t['first']:.3f} "
              f"| {batch:.3f} | {t['first'] / batch:.2f}x |")  # fmt: skip
        print(f"| {model}: zoo compute (bench_zoo, random tensors) | {t['zoo']:.1f} | | | |")
    if rows:
        jpeg1 = rows["JPEG path, 1 core, in process"]["rate"]
        packed1 = rows["packed path, 1 core, in process"]["rate"]
        print(f"\npacked / JPEG loader, one core: {packed1 / jpeg1:.2f}x; "
              f"with workers: {rows[f'packed path, {args.workers} workers']['rate'] / rows[f'JPEG path, {args.workers} workers']['rate']:.2f}x")  # fmt: skip
    total = TABLE2_MODELS * TABLE2_EPOCHS * RELEASE_TRAIN_CLIPS
    for model, t in trained.items():
        print(f"\n{model}: train / zoo compute: {100 * t['rate'] / t['zoo']:.1f}%")
        if t["busy"] is not None:
            print(
                f"{model}: GPU busy share, steady-state training: {100 * t['busy']:.1f}% of {t['n_busy']} samples"
            )
        print(f"{model}: Table 2 projected ({TABLE2_MODELS} models x {TABLE2_EPOCHS} epochs x "
              f"{RELEASE_TRAIN_CLIPS:,} clips, all at {model}'s rate): {total / t['rate'] / 3600:,.1f} h at the "
              f"train rate, {total / t['zoo'] / 3600:,.1f} h at the zoo's compute rate")  # fmt: skip


if __name__ == "__main__":
    main()
