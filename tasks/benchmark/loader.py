"""Long-lived loader workers for one benchmark job: every training epoch and every evaluation (issue 11).

One DataLoader with persistent workers serves the whole job; what it loads next is a plan of batches of
item keys ``(index, epoch, train, scene)`` set in this process before each pass, so the workers start once
per job instead of once per epoch and per evaluation. They start from a fork server, not by forking the
caller: a flow or worker process runs threads (Prefect, CUDA, onnxruntime) that a plain fork copies in a
broken state; the fork server preloads torch, numpy, cv2 and the dataset module, so each worker starts
without importing them again.

    >>> with JobLoader(clips, cfg, store=store) as loader:                      # doctest: +SKIP
    ...     for batch in loader.train_epoch(train_clips, epoch=0, scene=False): ...
    ...     for batch in loader.eval_batches(test_clips, scene=False): ...
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler

from tasks.benchmark.data import ClipDataset, need_scene_frames

if TYPE_CHECKING:
    from tasks.benchmark.config import BenchmarkConfig
    from tasks.benchmark.pack import PackedStore

#: Modules the fork server imports once, so that workers forked from it start without importing them.
PRELOAD = ["torch", "numpy", "pandas", "cv2", "tasks.benchmark.data"]


def worker_context():
    """The fork server context with :data:`PRELOAD` (takes effect when the fork server first starts)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The seeded shuffle of ``n`` training clips in ``epoch``: the order a shuffling DataLoader with a
    generator seeded ``seed * 1000 + epoch`` gave before workers were long-lived, so checkpoints of
    earlier runs resume to the same batches."""
    gen = torch.Generator().manual_seed(seed * 1000 + epoch)
    torch.empty((), dtype=torch.int64).random_(generator=gen)  # that loader drew its worker seed first
    return torch.randperm(n, generator=gen).tolist()


class _Plan(Sampler):
    """The batches of item keys the loader serves on its next pass."""

    def __init__(self) -> None:
        self.batches: list[list[tuple]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class JobLoader:
    """Batches of ``clips`` (:data:`tasks.benchmark.data.CLIP_COLUMNS`) for one job, from ``cfg.num_workers``
    long-lived workers (none: in this process). ``store`` reads packed frames instead of JPEGs."""

    def __init__(
        self,
        clips: pd.DataFrame,
        cfg: BenchmarkConfig,
        *,
        n_frames: int | None = None,
        store: PackedStore | None = None,
    ) -> None:
        if store is not None:
            store.check(clips, cfg)
        self.cfg = cfg
        self.dataset = ClipDataset(clips, cfg, n_frames=n_frames, seed=cfg.seed, store=store)
        self.n_frames = self.dataset.n_frames
        self.store = store
        self._positions = {c: i for i, c in enumerate(self.dataset.clips["clip_id"])}
        self._with_scene: set[int] = set()
        self._plan = _Plan()
        workers = cfg.num_workers
        self.loader = DataLoader(
            self.dataset,
            batch_sampler=self._plan,
            generator=torch.Generator().manual_seed(cfg.seed),  # worker seeds; the global RNG stays untouched
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
            multiprocessing_context=worker_context() if workers > 0 else None,
        )

    def positions(self, clips: pd.DataFrame) -> list[int]:
        """Where ``clips`` are among the loader's clips (an error for one it does not hold)."""
        missing = [c for c in clips["clip_id"] if c not in self._positions]
        if missing:
            raise ValueError(f"{len(missing)} clip(s) are not among the loader's clips, e.g. {missing[:3]}")
        return [self._positions[c] for c in clips["clip_id"]]

    def _serve(self, keys: list[tuple], batch_size: int, scene: bool, limit: int | None) -> Iterator[dict]:
        if scene:
            todo = [k[0] for k in keys if k[0] not in self._with_scene]
            need_scene_frames(self.dataset.clips.iloc[todo])
            self._with_scene.update(todo)
        batches = [keys[i : i + batch_size] for i in range(0, len(keys), batch_size)]
        self._plan.batches = batches[:limit] if limit is not None else batches
        return iter(self.loader)

    def train_epoch(
        self, clips: pd.DataFrame, epoch: int, *, scene: bool, batch_size: int | None = None,
        limit: int | None = None,
    ) -> Iterator[dict]:  # fmt: skip
        """One epoch over ``clips`` in the epoch's seeded order, sampled and augmented for training; at most
        ``limit`` batches."""
        pos = self.positions(clips)
        keys = [(pos[j], epoch, True, scene) for j in epoch_order(len(pos), self.cfg.seed, epoch)]
        return self._serve(keys, batch_size or self.cfg.batch_size, scene, limit)

    def eval_batches(
        self, clips: pd.DataFrame, *, scene: bool, batch_size: int | None = None
    ) -> Iterator[dict]:
        """``clips`` in order, centred frames, no augmentation; every clip (the last batch may be short)."""
        keys = [(p, 0, False, scene) for p in self.positions(clips)]
        return self._serve(keys, batch_size or self.cfg.eval_batch_size, scene, None)

    def __len__(self) -> int:
        return len(self._plan)

    def close(self) -> None:
        """Stop the workers (they also stop when the loader is garbage-collected)."""
        it = getattr(self.loader, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
        self.loader._iterator = None

    def __enter__(self) -> JobLoader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
