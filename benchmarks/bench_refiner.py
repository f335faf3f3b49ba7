"""Refiner throughput (face crops per second) for each model x backend x device, side by side.

Stage 4a (paper, section 3.2) runs the FER refiner over sampled face crops of every kept clip, so its
crops/s sets how long refining a scene takes. Measured end to end through ``Refiner.predict``
(preprocessing included) on 224x224 crops cut from the posed happy photo; ResNet-50 uses seeded random
weights, which cost the same as trained ones. CUDA rows appear where torch / onnxruntime can use a GPU.

    python benchmarks/bench_refiner.py                    # markdown table on stdout
    python benchmarks/bench_refiner.py --crops 512 --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from data_catalog.assets import asset_path
from models.fer import create_refiner
from models.fer.resnet50 import build_resnet50


def face_crops(n: int, seed: int = 0) -> list[np.ndarray]:
    """n 224x224 RGB crops: randomly shifted windows on the posed happy photo."""
    rgb = cv2.cvtColor(cv2.imread(str(asset_path("demo-posed-happy"))), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(seed)
    out = []
    for dy, dx in rng.integers(0, 64, (n, 2)):
        out.append(cv2.resize(rgb[dy : dy + 448, dx : dx + 448], (224, 224)))
    return out


def measure(refiner, crops: list[np.ndarray], batch_size: int, repeats: int) -> float:
    """Best-of-``repeats`` crops/s after one warm-up batch."""
    refiner.predict(crops[:batch_size], batch_size)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        refiner.predict(crops, batch_size)
        best = max(best, len(crops) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crops", type=int, default=256, help="crops per timed pass (mini-xception)")
    parser.add_argument("--resnet-crops", type=int, default=32, help="crops per timed pass (resnet50)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        checkpoint = Path(tmp) / "fer_r50.pt"
        torch.save(build_resnet50().state_dict(), checkpoint)
        models = [
            ("mini-xception", {}, args.crops, 64),
            ("resnet50", {"weights": checkpoint}, args.resnet_crops, 16),
        ]
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
        crops = face_crops(max(args.crops, args.resnet_crops))
        results = []
        configs = [(m, b, d) for m in models for d in devices for b in ("torch", "onnxruntime")]
        for (name, kwargs, n, batch), backend, device in tqdm(configs, desc="refiner benchmark"):
            try:
                refiner = create_refiner(name, backend=backend, device=device, **kwargs)
            except ValueError as exc:  # e.g. CUDA listed but not loadable for one backend
                results.append((name, backend, device, batch, None, str(exc)))
                continue
            rate = measure(refiner, crops[:n], batch, args.repeats)
            results.append((name, backend, refiner.device, batch, rate, ""))

    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    print("| model | backend | device | batch | crops/s |")
    print("|---|---|---|---:|---:|")
    for name, backend, device, batch, rate, note in results:
        cell = f"{rate:.1f}" if rate is not None else f"n/a ({note})"
        print(f"| {name} | {backend} | {device} | {batch} | {cell} |")


if __name__ == "__main__":
    main()
