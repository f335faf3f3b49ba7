"""Training and inference throughput (clips per second) of the 16 baselines of Table 2 (paper, section 4.2).

Each model is built for ``--frames`` frames and fed random clips of the paper's sizes (faces 112x112,
scenes 112x168, section 4.1; random pixels cost what real ones do). Training is one SGD step of the
paper's optimiser (momentum 0.9, weight decay 1e-4) on a cross-entropy loss; inference is a forward pass
in eval mode without autograd. One warm-up step, then the fastest of ``--iters`` timed steps. On CUDA,
``--amp`` runs both under autocast (bfloat16), as the benchmark's training does on a GPU.

    python benchmarks/bench_zoo.py                               # CPU, batch 2, 4 frames: a markdown table
    python benchmarks/bench_zoo.py --device cuda --batch 32 --frames 8 --iters 10 --amp
    python benchmarks/bench_zoo.py --models 'ts-*'
"""

from __future__ import annotations

import argparse
import fnmatch
import platform
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from models.zoo import TABLE2, build
from models.zoo.base import count_params


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(step, device: str, warmup: int, iters: int) -> float:
    """Seconds of the fastest of ``iters`` calls of ``step`` after ``warmup`` calls (the best step is the
    steadiest figure on a shared machine)."""
    for _ in range(warmup):
        step()
    best = float("inf")
    for _ in range(iters):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def measure(name: str, args: argparse.Namespace) -> dict:
    """Parameters, training and inference clips/s (and peak GPU memory) of one model."""
    torch.manual_seed(0)
    model = build(name, n_frames=args.frames).to(args.device)
    b, t, dev = args.batch, args.frames, args.device
    face = torch.randn(b, 3, t, 112, 112, device=dev)
    scene = torch.randn(b, 3, t, 112, 168, device=dev) if "scene" in model.streams else None
    labels = torch.randint(0, 7, (b,), device=dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.amp else nullcontext()
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(model(face, scene), labels)
        loss.backward()
        optimizer.step()

    def infer_step() -> None:
        with torch.inference_mode(), autocast:
            model(face, scene)

    model.train()
    train_s = timed(train_step, dev, args.warmup, args.iters)
    model.eval()
    infer_s = timed(infer_step, dev, args.warmup, args.iters)
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else None
    return {"params": count_params(model), "train": b / train_s, "infer": b / infer_s, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", type=int, default=2, help="clips per step")
    parser.add_argument("--frames", type=int, default=4, help="frames per clip (2..16)")
    parser.add_argument("--iters", type=int, default=2, help="timed steps per model and mode (best of)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--amp", action="store_true", help="autocast to bfloat16 (CUDA only)")
    parser.add_argument("--models", default="*", help="shell-style filter on the registry names")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    if args.amp and args.device != "cuda":
        parser.error("--amp needs --device cuda")
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True

    rows = [e for e in TABLE2 if fnmatch.fnmatchcase(e.name, args.models)]
    results = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for entry in tqdm(rows, desc="zoo throughput"):
        results.append((entry, measure(entry.name, args)))
        if args.device == "cuda":
            torch.cuda.empty_cache()
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start

    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.machine()} CPU"
    print(f"\n{where}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; batch {args.batch},"
          f" {args.frames} frames, best of {args.iters} steps after {args.warmup} warm-up"
          f"{', bf16 autocast' if args.amp else ''}; {total:.0f} s wall, {cpu:.0f} s CPU in all")  # fmt: skip
    mem = " peak GiB |" if args.device == "cuda" else ""
    print(f"| model | paper name | params (M) | train clips/s | inference clips/s |{mem}")
    print("|---|---|---:|---:|---:|" + ("---:|" if mem else ""))
    for entry, r in results:
        extra = f" {r['peak_gib']:.2f} |" if mem else ""
        print(f"| {entry.name} | {entry.paper_name} | {r['params'] / 1e6:.2f} | {r['train']:.2f} |"
              f" {r['infer']:.2f} |{extra}")  # fmt: skip


if __name__ == "__main__":
    main()
