"""Training a zoo model on one setup's train side (paper, section 4.1, "Implementation details").

SGD with momentum 0.9 and weight decay 1e-4, learning rate 1e-3..1e-2 with a per-epoch step (default x0.95
every epoch) or cosine decay, batch 32, 60 epochs, all from scratch unless ``init_checkpoint`` names a
state dict (the pre-training ablation, Figure 6 left). Mixed precision on CUDA. A checkpoint is written
atomically after every epoch; a rerun resumes from it (same shuffles and augmentations as an uninterrupted
run) and a finished one is skipped.

    >>> result = train_model("r18-lstm", train_clips, cfg, "work/benchmark/r18-lstm")   # doctest: +SKIP
    >>> result.epoch_losses[-1] < result.epoch_losses[0]
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from data_catalog.io import atomic_write_bytes
from tasks.benchmark.augment import device_inputs
from tasks.benchmark.loader import JobLoader

if TYPE_CHECKING:
    from tasks.benchmark.config import BenchmarkConfig
    from tasks.benchmark.pack import PackedStore

CHECKPOINT = "last.pt"
NUM_CLASSES = 7
#: Input settings a checkpoint records, so evaluating it later feeds the same pixels and frames.
DATA_KEYS = ("face_size", "scene_height", "scene_width", "frame_interval")
#: Training steps between reads of the loss on the host (a read waits for the device).
SYNC_EVERY = 25


@dataclass(frozen=True)
class TrainResult:
    """Where the checkpoint is, how training went (mean loss per epoch, loss per step) and on what."""

    checkpoint: str
    epochs: int
    epoch_losses: list[float]
    step_losses: list[float]
    device: str
    n_params: int
    streams: tuple[str, ...]
    resumed_from: int = 0  # epochs already done when this call started
    skipped: bool = False  # the checkpoint was complete: nothing trained
    extra: dict = field(default_factory=dict)  # epoch_seconds, first_batch_seconds, epoch_spans: this call's


def build_model(
    name: str, n_frames: int, options: dict | None = None, init_checkpoint: str | None = None
) -> torch.nn.Module:
    """A zoo model (``models.zoo.build``) for the 7 expressions: from scratch, or initialised from a state
    dict or benchmark checkpoint (all but the classifier head must fit)."""
    from models.zoo import build

    return build(name, num_classes=NUM_CLASSES, n_frames=n_frames, init_checkpoint=init_checkpoint,
                 **(options or {}))  # fmt: skip


def model_streams(model: torch.nn.Module) -> tuple[str, ...]:
    """What a zoo model reads: ``('face',)`` or ``('face', 'scene')``."""
    return tuple(getattr(model, "streams", ("face",)))


def forward(model: torch.nn.Module, batch: dict, device: str, cfg: BenchmarkConfig) -> torch.Tensor:
    """Logits of a batch, feeding the scene stream only to two-stream models; packed batches are augmented
    on ``device`` first (:func:`tasks.benchmark.augment.device_inputs`)."""
    two = "scene" in model_streams(model)
    face, scene = device_inputs(batch, cfg, device, scene=two)
    return model(face, scene) if two else model(face)


def _save(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _scheduler(optimizer, cfg: BenchmarkConfig):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)


def train_model(
    name: str,
    clips: pd.DataFrame,
    cfg: BenchmarkConfig,
    out_dir: str | os.PathLike,
    *,
    n_frames: int | None = None,
    progress: bool = True,
    stop_after_epochs: int | None = None,
    loader: JobLoader | None = None,
    store: PackedStore | None = None,
) -> TrainResult:
    """Train model ``name`` on ``clips`` (:data:`tasks.benchmark.data.CLIP_COLUMNS`) for ``cfg.epochs``,
    checkpointing to ``out_dir/last.pt`` after every epoch and resuming from it. ``stop_after_epochs``
    ends this call early (the checkpoint stays resumable). Batches come from ``loader`` (a job's
    long-lived workers, shared with its evaluations) or else from a loader of ``clips`` made here, reading
    packed frames from ``store`` when given."""
    from tqdm import tqdm

    if clips.empty:
        raise ValueError(f"{name}: no training clips")
    n_frames = n_frames or cfg.n_frames
    device = cfg.resolved_device()
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT
    torch.manual_seed(cfg.seed)
    resuming = ckpt_path.is_file()
    model = build_model(name, n_frames, cfg.model_options, None if resuming else cfg.init_checkpoint)
    streams = model_streams(model)
    n_params = sum(p.numel() for p in model.parameters())
    model.to(device)
    # Fused where no loss scale is needed (bfloat16 on a GPU): one kernel per step and nothing read back.
    # Not with float16's scale: a first step skipped for overflow would leave its momentum unset.
    dtype = autocast_dtype(cfg, device)
    fused = True if device == "cuda" and dtype != torch.float16 else None
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, fused=fused)  # fmt: skip
    scheduler = _scheduler(optimizer, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    epoch_losses: list[float] = []
    step_losses: list[float] = []
    start = 0
    if resuming:
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        if state["model_name"] != name or state["n_frames"] != n_frames:
            raise ValueError(
                f"{ckpt_path}: checkpoint of {state['model_name']} with {state['n_frames']} frames, "
                f"not {name} with {n_frames}; use another directory"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:  # a checkpoint of another device keeps this device's kernel
            group["fused"] = fused
        scheduler.load_state_dict(state["scheduler"])
        if cfg.schedule == "cosine":  # a rerun asking for more (or fewer) epochs anneals to its own end
            scheduler.T_max = cfg.epochs
        if state["scaler"]:  # empty when saved without a loss scale (bfloat16, or on a CPU)
            scaler.load_state_dict(state["scaler"])
        start, epoch_losses, step_losses = state["epoch"], state["epoch_losses"], state["step_losses"]
        torch.set_rng_state(state["rng"])  # dropout draws continue where they stopped
        if device == "cuda" and state.get("cuda_rng"):
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    if start >= cfg.epochs:
        return TrainResult(str(ckpt_path), start, epoch_losses, step_losses, device, n_params, streams,
                           start, skipped=True)  # fmt: skip

    if len(clips) < 2:
        raise ValueError(f"{name}: {len(clips)} training clip(s); batch norm needs at least 2")
    if loader is not None and loader.n_frames != n_frames:
        raise ValueError(f"{name}: the loader samples {loader.n_frames} frames, the model takes {n_frames}")
    loss_fn = torch.nn.CrossEntropyLoss()
    end = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, start + stop_after_epochs)
    own = JobLoader(clips, cfg, n_frames=n_frames, store=store) if loader is None else nullcontext(loader)
    timing: dict[str, list] = {"epoch_seconds": [], "first_batch_seconds": [], "epoch_spans": []}
    with own as loader, _tuned_kernels(device):
        for epoch in range(start, end):
            model.train()
            began = time.perf_counter()
            batches = _timed_first(
                loader.train_epoch(clips, epoch, scene="scene" in streams, limit=cfg.max_steps_per_epoch),
                began,
                timing["first_batch_seconds"],
            )
            losses = _epoch(model, batches, cfg, device, scaler, optimizer, loss_fn,
                            tqdm(total=len(loader), desc=f"{name} epoch {epoch + 1}/{cfg.epochs}", unit="step",
                                 disable=not progress))  # fmt: skip
            if losses is None:
                raise FloatingPointError(
                    f"{name}: loss is not finite at epoch {epoch + 1}; lower benchmark.lr"
                )
            scheduler.step()
            timing["epoch_seconds"].append(time.perf_counter() - began)
            timing["epoch_spans"].append((began, time.perf_counter()))  # perf_counter at start and end
            step_losses += losses
            epoch_losses.append(sum(losses) / len(losses))
            _save(ckpt_path, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "epoch": epoch + 1, "epoch_losses": epoch_losses, "step_losses": step_losses,
                "model_name": name, "n_frames": n_frames, "streams": list(streams),
                "model_options": cfg.model_options, "init_checkpoint": cfg.init_checkpoint,
                "data": {k: getattr(cfg, k) for k in DATA_KEYS},
                "rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if device == "cuda" else [],
            })  # fmt: skip
    return TrainResult(str(ckpt_path), end, epoch_losses, step_losses, device, n_params, streams, start,
                       extra=timing)  # fmt: skip


def autocast_dtype(cfg: BenchmarkConfig, device: str) -> torch.dtype | None:
    """Training's mixed precision (``benchmark.amp``, on CUDA only): bfloat16 where the GPU computes it
    natively (Ampere and later; no loss scale, as ``benchmarks/bench_zoo.py`` measures the zoo), else
    float16 with a loss scale; None when off."""
    if not cfg.amp or device != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


@contextlib.contextmanager
def _tuned_kernels(device: str):
    """cuDNN's autotuned kernels for a training on a GPU (its input shapes are fixed), as
    ``benchmarks/bench_zoo.py`` measures the zoo; the process's setting is restored afterwards."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or device == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _timed_first(batches, began: float, into: list[float]):
    """``batches`` as they come, noting the seconds from ``began`` to the first (worker start-up shows here)."""
    for k, batch in enumerate(batches):
        if k == 0:
            into.append(time.perf_counter() - began)
        yield batch


def _epoch(model, batches, cfg, device, scaler, optimizer, loss_fn, bar) -> list[float] | None:
    """One epoch's SGD steps; the loss of each, or None when one was not finite. Losses stay on the device
    and are read every :data:`SYNC_EVERY` steps, so the host queues work ahead of a GPU instead of waiting
    for each step to finish."""
    dtype = autocast_dtype(cfg, device)
    losses: list[float] = []
    pending: list[torch.Tensor] = []

    def drain() -> bool:
        values = torch.stack(pending).float().cpu().tolist() if pending else []
        pending.clear()
        losses.extend(values)
        bar.update(len(values))
        if values:
            bar.set_postfix(loss=f"{values[-1]:.3f}")
        return all(math.isfinite(v) for v in values)

    with bar:
        for batch in batches:
            labels = batch["label"].to(device, non_blocking=True)
            if len(labels) < 2:  # a last batch of one clip: batch norm cannot train on it
                continue
            with torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(forward(model, batch, device, cfg), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            pending.append(loss.detach())
            if len(pending) >= SYNC_EVERY and not drain():
                return None
        if not drain():
            return None
    return losses


def load_trained(checkpoint: str | os.PathLike, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The model of a benchmark checkpoint in eval mode on ``device``, and the checkpoint's metadata."""
    path = Path(checkpoint)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    state = torch.load(path, map_location=device, weights_only=True)
    model = build_model(state["model_name"], state["n_frames"], state.get("model_options") or {})
    model.load_state_dict(state["model"])
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer", "scheduler", "scaler")}
    return model.to(device).eval(), meta
