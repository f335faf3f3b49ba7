"""The benchmark's units of work: prepare the protocol once, then train-and-evaluate one model variant on
one train setup (paper, section 4). Plain functions; ``flows/benchmark.py`` wraps them in Prefect and
``ferv benchmark`` calls them directly.

- :func:`prepare`: labels -> clips with frames -> ``splits`` (written) -> a run id derived from the labels,
  their sides and the training settings, so the same inputs give the same run and a rerun resumes it.
- :func:`plan_jobs`: models x frame counts x train setups; a cross-scenario setup ``A-to-B`` is the model
  trained on A tested on B (and on A, the diagonal of Table 3), so one training serves a whole row.
- :func:`run_job`: train (resuming from the checkpoint), evaluate on each test setup, write one ``results``
  part per test setup. With ``benchmark.packed`` the clips' frames are packed once per catalog state
  (:mod:`tasks.benchmark.pack`), and training and evaluation share one loader's long-lived workers. A part already written is finished work; a failure becomes ``failed`` rows with a
  snake_case reason and the error, never an exception that stops the other jobs.

    >>> prep = prepare(catalog, cfg, ctx_config, work_dir="work/benchmark")           # doctest: +SKIP
    >>> for job in plan_jobs(["r18"], ["All", "DL-to-WIS"], [8], cfg): run_job(job, prep, cfg)
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from data_catalog.io import read_parquet
from data_catalog.lineage import RunContext
from tasks.benchmark.report import variant_name
from tasks.benchmark.splits import build_splits, members, parse_setup, write_splits

if TYPE_CHECKING:
    from data_catalog.io import Catalog, PartRef
    from tasks.benchmark.config import BenchmarkConfig
    from tasks.benchmark.pack import PackedStore

log = logging.getLogger(__name__)
STAGE = "benchmark"
#: Settings that change neither the splits nor what a training computes (they stay out of the run id).
#: ``epochs`` stays out too: asking for more epochs resumes the run's checkpoints and re-scores them.
NOT_IN_RUN_ID = {"models", "setups", "table_scenes", "table3_model", "export_refiner", "num_workers",
                 "eval_batch_size", "device", "n_frames", "init_checkpoint", "amp", "epochs"}  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    """The benchmark's inputs: clips with frames, their splits, the run context and the working folder."""

    catalog: Catalog
    clips: pd.DataFrame
    splits: pd.DataFrame
    ctx: RunContext
    work_dir: Path
    label_source: str
    dropped: dict[str, int]

    @property
    def pack_dir(self) -> Path:
        """Where packed frame stores live: beside the runs, shared by them (``<work>/packs``)."""
        return self.work_dir.parent / "packs"


@dataclass(frozen=True)
class Job:
    """One training (model, frames, init, train setup) and the test setups its model is scored on."""

    model: str
    n_frames: int
    train_setup: str
    test_setups: tuple[str, ...]
    init_checkpoint: str | None = None

    @property
    def variant(self) -> str:
        return variant_name(self.n_frames, self.init_checkpoint)

    @property
    def name(self) -> str:
        return f"{self.model}-{self.variant}-{self.train_setup}"


def benchmark_run_id(splits: pd.DataFrame, cfg: BenchmarkConfig) -> str:
    """``bm-<hash>`` of the clips' labels and sides and the training settings."""
    sides = splits[splits["setup"] == "All"].sort_values("clip_id")
    text = "\n".join(f"{r.clip_id} {r.label} {r.side}" for r in sides.itertuples())
    settings = cfg.model_dump_json(exclude=NOT_IN_RUN_ID)
    return "bm-" + hashlib.sha256(f"{text}\n{settings}".encode()).hexdigest()[:16]


def prepare(
    catalog: Catalog,
    cfg: BenchmarkConfig,
    config_json: dict,
    work_dir: str | os.PathLike,
    *,
    labels_run_id: str | None = None,
    labels_path: str | None = None,
) -> Prepared:
    """Load labels and frames, split them (paper 4.1) and write the ``splits`` manifest."""
    from tasks.benchmark.data import benchmark_clips, load_labels

    labels = load_labels(catalog, labels_run_id, labels_path)
    clips = benchmark_clips(labels.frame, catalog)
    if clips.frame.empty:
        raise ValueError(
            f"{catalog.root}: none of the {len(labels.frame)} labelled clips has face crops ({clips.dropped})"
        )
    for reason, n in sorted(clips.dropped.items()):
        log.warning("benchmark: %d labelled clip(s) left out: %s", n, reason)
    splits = build_splits(clips.frame[["clip_id", "scene", "label", "split"]], cfg.test_fraction, cfg.seed)
    ctx = RunContext.create(config_json, run_id=benchmark_run_id(splits, cfg))
    write_splits(catalog, splits, ctx)
    return Prepared(
        catalog, clips.frame, splits, ctx, Path(work_dir) / ctx.run_id, labels.source, clips.dropped
    )


def plan_jobs(
    models: list[str], setups: list[str], frames: list[int], init_checkpoint: str | None = None
) -> list[Job]:
    """One job per model, frame count and train setup; test setups gathered from ``setups``."""
    from models.zoo import list_models

    known = list_models()
    unknown = [m for m in models if m not in known]
    if unknown:
        raise ValueError(f"unknown models {unknown}; the zoo has: {', '.join(known)}")
    if not models or not setups or not frames:
        raise ValueError("the benchmark needs at least one model, one setup and one frame count")
    tests: dict[str, list[str]] = {}
    for setup in setups:
        train, test = parse_setup(setup)
        for t in (train, test):  # a cross-scenario row includes its diagonal
            if t not in tests.setdefault(train, []):
                tests[train].append(t)
    return [
        Job(model, n, train, tuple(test), init_checkpoint)
        for model in models
        for n in frames
        for train, test in tests.items()
    ]


def _part(job: Job, test_setup: str) -> str:
    return f"{job.model}-{job.variant}-{test_setup}"


def _finished(prep: Prepared, job: Job, test_setup: str, epochs: int) -> bool:
    """A results part exists, every row is ok (failed parts are retried) and of a training that ran the
    configured epochs (more epochs asked for: the training resumes and the part is rewritten)."""
    cat, run = prep.catalog, prep.ctx.run_id
    if not cat.has_part("results", job.train_setup, run, _part(job, test_setup)):
        return False
    rows = read_parquet(cat.part_path("results", job.train_setup, run, _part(job, test_setup))).to_pandas()
    return bool((rows["status"] == "ok").all() and (rows["epochs"] >= epochs).all())


def _reason(exc: BaseException) -> str:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "out_of_memory"
    if isinstance(exc, FloatingPointError):
        return "loss_not_finite"
    return "invalid_input" if isinstance(exc, ValueError) else "training_error"


def run_job(job: Job, prep: Prepared, cfg: BenchmarkConfig, *, progress: bool = True) -> list[PartRef]:
    """Train ``job`` (resuming) and write its ``results`` parts; returns the parts written now."""
    from tasks.benchmark.evaluate import group_scores, predict, score_rows
    from tasks.benchmark.loader import JobLoader
    from tasks.benchmark.train import load_trained, train_model

    todo = [t for t in job.test_setups if not _finished(prep, job, t, cfg.epochs)]
    if not todo:
        return []
    jcfg = cfg.model_copy(update={"n_frames": job.n_frames, "init_checkpoint": job.init_checkpoint})
    base = {"model": job.model, "variant": job.variant, "train_setup": job.train_setup, "n_frames": job.n_frames,
            "streams": "face", "init_checkpoint": job.init_checkpoint}  # fmt: skip
    lineage = prep.ctx.lineage(STAGE, model_version=f"{job.model}:{job.variant}")
    refs = []

    def write(test: str, rows: list[dict]) -> None:
        rows = [{**base, "test_setup": test, **r, **lineage} for r in rows]
        refs.append(prep.catalog.write("results", rows, scene=job.train_setup, run_id=prep.ctx.run_id,
                                       part=_part(job, test)))  # fmt: skip

    def fail(test: str, reason: str, error: str) -> None:
        log.warning("benchmark %s on %s: %s (%s)", job.name, test, reason, error)
        write(
            test, [{"group": "overall", "status": "failed", "reason": reason, "error": error, "n_clips": 0}]
        )

    def side(setup: str, name: str) -> pd.DataFrame:
        present = set(prep.splits["setup"])
        ids = members(prep.splits, setup, name)["clip_id"] if setup in present else []
        return prep.clips[prep.clips["clip_id"].isin(ids)]

    train_clips = side(job.train_setup, "train")
    if train_clips.empty:
        for test in todo:
            fail(test, "no_train_clips", f"setup {job.train_setup} has no clip on its train side")
        return refs
    try:
        store = pack_store(prep, jcfg, progress=progress) if jcfg.packed else None
        loader = JobLoader(prep.clips, jcfg, store=store)  # one set of workers for training and evaluations
    except ValueError as exc:
        for test in todo:
            fail(test, _reason(exc), str(exc)[:500])
        return refs
    with loader:
        try:
            result = train_model(
                job.model, train_clips, jcfg, prep.work_dir / job.name, progress=progress, loader=loader
            )
            model, _ = load_trained(result.checkpoint, result.device)
        except (ValueError, FloatingPointError, RuntimeError) as exc:
            for test in todo:
                fail(test, _reason(exc), str(exc)[:500])
            return refs
        base |= {"streams": "+".join(result.streams), "n_params": result.n_params, "epochs": result.epochs,
                 "train_loss": result.epoch_losses[-1], "checkpoint": result.checkpoint, "device": result.device}  # fmt: skip
        for test in todo:
            test_clips = side(test, "test")
            if test_clips.empty:
                fail(test, "no_test_clips", f"setup {test} has no clip on its test side")
                continue
            try:
                preds = predict(
                    model, test_clips, jcfg, device=result.device, progress=progress, loader=loader
                )
            except (ValueError, RuntimeError) as exc:
                fail(test, _reason(exc), str(exc)[:500])
                continue
            write(test, score_rows(group_scores(preds)))
    return refs


def pack_store(prep: Prepared, cfg: BenchmarkConfig, *, progress: bool = False) -> PackedStore:
    """The packed frames of all of ``prep``'s clips at ``cfg``'s sizes: packed now, or as cached by an
    earlier job or ``ferv benchmark pack`` for the same crops."""
    from tasks.benchmark.pack import pack_clips

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(prep.clips), desc="pack frames", unit="clip")
    report = pack_clips(prep.clips, cfg, prep.pack_dir, workers=cfg.num_workers,
                        progress=(lambda done, total: bar.update(1)) if bar else None)  # fmt: skip
    if bar is not None:
        bar.close()
    if report.n_decoded:
        log.info(
            "benchmark: packed %d of %d clips into %s",
            report.n_decoded,
            report.n_clips,
            report.store.index_path,
        )
    return report.store


def _trained_ok(prep: Prepared, job: Job) -> bool:
    """The job's training ran to the end: results rows exist for it and all are ``ok``."""
    rows = prep.catalog.read("results", scene=job.train_setup, run_id=prep.ctx.run_id)
    rows = rows[(rows["model"] == job.model) & (rows["variant"] == job.variant)]
    return bool(len(rows)) and bool((rows["status"] == "ok").all())


def export_closed_loop(
    prep: Prepared, jobs: list[Job], out_dir: str | os.PathLike, epochs: int | None = None
) -> dict | None:
    """Issue 7's closed loop: the first ``r50`` job that trained successfully (all its results ``ok`` and,
    given ``epochs``, its checkpoint at that epoch) becomes an ONNX FER refiner
    (``models.zoo.export_refiner``) at the face size it was trained on. Returns its path and the ``--set``
    overrides for ``ferv build-candidates``, or None when no ``r50`` finished training."""
    from models.zoo import export_refiner, refine_overrides
    from tasks.benchmark.train import CHECKPOINT, load_trained

    for job in sorted((j for j in jobs if j.model == "r50"), key=lambda j: j.train_setup != "All"):
        ckpt = prep.work_dir / job.name / CHECKPOINT
        if not ckpt.is_file() or not _trained_ok(prep, job):
            continue
        model, meta = load_trained(ckpt)
        if epochs is not None and meta["epoch"] < epochs:
            continue
        path = export_refiner(model, Path(out_dir) / f"fer-r50-{prep.ctx.run_id}-{job.train_setup}.onnx",
                              meta["n_frames"], size=meta["data"]["face_size"])  # fmt: skip
        return {"path": str(path), "overrides": refine_overrides(path)}
    return None
