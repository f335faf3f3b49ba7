"""The ``benchmark`` flow: labels -> splits -> each model trained and evaluated -> Tables 2-3, figures.

Paper, section 4. The deployment the labels-landed automation runs (flows/deployments.py); every parameter
is JSON (strings, lists), so an event or a UI can fill them. The labels are a catalog's ``labels`` rows
(``catalog_root`` + ``labels_run_id``), a labels file (``labels_path``), or the catalog's current labels.

- Fast input: with ``benchmark.packed`` the clips' frames are packed once per catalog state under
  ``<storage.root>/benchmark/packs/`` and each job's loader workers start once (tasks/benchmark/pack.py,
  tasks/benchmark/loader.py).
- Resumable: the run id comes from the labels, their sides and the training settings; checkpoints are
  written every epoch under ``<storage.root>/benchmark/<run id>/`` and a rerun resumes them; finished
  ``results`` parts are skipped, failed ones retried.
- Writes the ``splits`` and ``results`` manifests, ``<storage.root>/reports/benchmark/<run id>/`` (Table 2
  and 3 as markdown and CSV, confusion PNGs, the Figure 6 ablations) and Prefect artifacts (the report as
  markdown, the overall results as a table).
- Closed loop: with ``benchmark.export_refiner`` and ``r50`` among the models, the trained 2D ResNet-50 is
  exported as an ONNX FER refiner under ``<storage.root>/models/`` and the report gives the ``--set``
  overrides that make ``ferv build-candidates`` use it.

    >>> benchmark(models=["r18-lstm"], setups=["All", "DL-to-WIS"], overrides=["storage.root=work"])  # doctest: +SKIP
"""

from __future__ import annotations

# Prefect reads its settings when imported: the offline defaults must be in place first.
import flows.prefect_env  # noqa: F401

# isort: split

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from data_catalog.io import Catalog
from flows.config import load_config
from tasks.benchmark.jobs import export_closed_loop, plan_jobs, prepare, run_job
from tasks.benchmark.report import variant_name, write_reports

prepare_task = task(prepare, name="splits", cache_policy=NO_CACHE)
job_task = task(run_job, name="train-and-evaluate", cache_policy=NO_CACHE, task_run_name="{job.name}")
report_task = task(write_reports, name="report", cache_policy=NO_CACHE)
export_task = task(export_closed_loop, name="export-refiner", cache_policy=NO_CACHE)


def _publish(run_id: str, markdown: str, results) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(key="benchmark-report", markdown=markdown, description=f"benchmark {run_id}")
    overall = results[results["group"] == "overall"]
    cols = ["model", "variant", "train_setup", "test_setup", "status", "reason", "war", "uar", "n_clips"]
    table = [
        {k: (None if v != v else v) for k, v in row.items()}  # NaN is not JSON
        for row in overall[cols].to_dict("records")
    ]
    create_table_artifact(key="benchmark-results", table=table, description=f"benchmark {run_id}: WAR/UAR")


@flow(name="benchmark")
def benchmark(
    catalog_root: str | None = None,
    labels_run_id: str | None = None,
    labels_path: str | None = None,
    models: list[str] | None = None,
    setups: list[str] | None = None,
    frames: list[int] | None = None,
    preset: str = "default",
    config_file: str | None = None,
    overrides: list[str] | None = None,
    table_mode: str = "breakdown",
) -> dict:
    """Run the benchmark (see the module docstring). ``models``, ``setups`` and ``frames`` default to the
    config's ``benchmark.models``, ``benchmark.setups`` and ``[benchmark.n_frames]``; ``table_mode`` is
    ``breakdown`` (the All-trained model per group) or ``setups`` (one training per setup)."""
    log = get_run_logger()
    cfg = load_config(preset=preset, user_file=config_file, overrides=overrides)
    bcfg = cfg.benchmark
    catalog = Catalog(catalog_root) if catalog_root else Catalog(cfg.storage.catalog_dir)
    models, setups = list(models or bcfg.models), list(setups or bcfg.setups)
    frames = [int(f) for f in (frames or [bcfg.n_frames])]
    jobs = plan_jobs(models, setups, frames, bcfg.init_checkpoint)
    config_json = cfg.lineage_json(["benchmark"])
    prep = prepare_task(
        catalog, bcfg, config_json, cfg.storage.root / "benchmark",
        labels_run_id=labels_run_id, labels_path=labels_path,
    )  # fmt: skip
    log.info("run %s: %d clips (labels: %s), %d jobs on %s", prep.ctx.run_id, len(prep.clips),
             prep.label_source, len(jobs), bcfg.resolved_device())  # fmt: skip
    for job in jobs:
        job_task(job, prep, bcfg, progress=False)
    exported = None
    if bcfg.export_refiner and "r50" in models:
        exported = export_task(prep, jobs, cfg.storage.root / "models", bcfg.epochs)
    results = catalog.read("results", run_id=prep.ctx.run_id, latest=True)
    variant = variant_name(frames[0] if bcfg.n_frames not in frames else bcfg.n_frames, bcfg.init_checkpoint)
    out = cfg.storage.reports_dir / "benchmark" / prep.ctx.run_id
    report = report_task(results, out, bcfg, mode=table_mode, variant=variant,
                         title=f"Benchmark {prep.ctx.run_id} (labels: {prep.label_source})")  # fmt: skip
    markdown = report.markdown
    if exported:
        markdown += (
            "\n## FER refiner (closed loop)\n\n`ferv "
            + " ".join(f"--set '{o}'" for o in exported["overrides"])
            + " build-candidates --scene <scene>`\n"
        )
    _publish(prep.ctx.run_id, markdown, results)
    failed = int((results["status"] != "ok").sum())
    if failed:
        log.warning("%d results rows failed; see the report's 'Failed runs'", failed)
    return {
        "run_id": prep.ctx.run_id,
        "n_clips": len(prep.clips),
        "n_splits_rows": len(prep.splits),
        "n_results_rows": len(results),
        "n_failed": failed,
        "report_dir": str(out),
        "refiner": exported,
    }
