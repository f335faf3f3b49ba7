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

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from data_catalog.io import atomic_write_bytes
from tasks.benchmark.data import ClipDataset, make_loader

if TYPE_CHECKING:
    from tasks.benchmark.config import BenchmarkConfig

CHECKPOINT = "last.pt"
NUM_CLASSES = 7
#: Input settings a checkpoint records, so evaluating it later feeds the same pixels and frames.
DATA_KEYS = ("face_size", "scene_height", "scene_width", "frame_interval")


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
    extra: dict = field(default_factory=dict)


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


def forward(model: torch.nn.Module, batch: dict, device: str) -> torch.Tensor:
    """Logits of a batch, feeding the scene stream only to two-stream models."""
    face = batch["face"].to(device, non_blocking=True)
    if "scene" in model_streams(model):
        return model(face, batch["scene"].to(device, non_blocking=True))
    return model(face)


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
) -> TrainResult:
    """Train model ``name`` on ``clips`` (:data:`tasks.benchmark.data.CLIP_COLUMNS`) for ``cfg.epochs``,
    checkpointing to ``out_dir/last.pt`` after every epoch and resuming from it. ``stop_after_epochs``
    ends this call early (the checkpoint stays resumable)."""
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
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    scheduler = _scheduler(optimizer, cfg)
    use_amp = cfg.amp and device == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
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
        scheduler.load_state_dict(state["scheduler"])
        if cfg.schedule == "cosine":  # a rerun asking for more (or fewer) epochs anneals to its own end
            scheduler.T_max = cfg.epochs
        scaler.load_state_dict(state["scaler"])
        start, epoch_losses, step_losses = state["epoch"], state["epoch_losses"], state["step_losses"]
        torch.set_rng_state(state["rng"])  # dropout draws continue where they stopped
        if device == "cuda" and state.get("cuda_rng"):
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    if start >= cfg.epochs:
        return TrainResult(str(ckpt_path), start, epoch_losses, step_losses, device, n_params, streams,
                           start, skipped=True)  # fmt: skip

    dataset = ClipDataset(clips, cfg, n_frames=n_frames, streams=streams, train=True, seed=cfg.seed)
    if len(dataset) < 2:
        raise ValueError(f"{name}: {len(dataset)} training clip(s); batch norm needs at least 2")
    loss_fn = torch.nn.CrossEntropyLoss()
    end = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, start + stop_after_epochs)
    for epoch in range(start, end):
        model.train()
        dataset.set_epoch(epoch)
        loader = make_loader(
            dataset, cfg.batch_size, cfg.num_workers, shuffle=True, seed=cfg.seed * 1000 + epoch
        )
        steps = len(loader) if cfg.max_steps_per_epoch is None else min(len(loader), cfg.max_steps_per_epoch)
        losses = []
        bar = tqdm(
            total=steps, desc=f"{name} epoch {epoch + 1}/{cfg.epochs}", unit="step", disable=not progress
        )
        for step, batch in enumerate(loader):
            if step >= steps:
                break
            labels = batch["label"].to(device)
            if len(labels) < 2:  # a last batch of one clip: batch norm cannot train on it
                continue
            with torch.autocast(device_type=device, dtype=torch.float16, enabled=use_amp):
                loss = loss_fn(forward(model, batch, device), labels)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(
                    f"{name}: loss is {loss.item()} at epoch {epoch + 1}; lower benchmark.lr"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.item()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        bar.close()
        scheduler.step()
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
    return TrainResult(str(ckpt_path), end, epoch_losses, step_losses, device, n_params, streams, start)


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
