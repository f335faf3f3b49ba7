"""``ferv benchmark``: the paper's benchmark protocol from the command line (paper, section 4).

    ferv benchmark splits --export out/FERV39k          # splits manifest (+ the release's 4_setups files)
    ferv benchmark pack                                  # decode the clips' frames once (training memory-maps them)
    ferv benchmark train --model r18-lstm --setup All   # one training, resumable, evaluated on its setup
    ferv benchmark evaluate work/benchmark/<run>/r18-lstm-f8-All/last.pt --setup Social
    ferv benchmark run --model r18 --model ts-vgg13-lstm --setup All --setup DL-to-WIS   # the Prefect flow

Libraries load inside the commands, so ``ferv --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.options import ConfigRequest, with_config

if TYPE_CHECKING:
    from flows.config import PipelineConfig

benchmark_app = typer.Typer(
    help="Benchmark the baselines on labelled clips (paper, section 4).", no_args_is_help=True
)

CatalogRoot = Annotated[
    Path | None, typer.Option("--catalog", help="Catalog root (default: <storage.root>/catalog).")
]
LabelsRun = Annotated[
    str | None, typer.Option("--labels-run", help="Use the 'labels' rows of this run only.")
]
LabelsPath = Annotated[
    Path | None, typer.Option("--labels", help="A labels Parquet file or folder of parts.")
]
Models = Annotated[
    list[str] | None, typer.Option("--model", help="A zoo model (repeatable; `ferv zoo list`).")
]
Setups = Annotated[
    list[str] | None,
    typer.Option("--setup", help="All, a scenario (DL), a scene (Social) or A-to-B (repeatable)."),
]
Frames = Annotated[list[int] | None, typer.Option("--frames", help="Frames per clip, 2..16 (repeatable).")]


def _prepare(cfg: PipelineConfig, catalog: Path | None, labels_run: str | None, labels: Path | None):
    from data_catalog.io import Catalog
    from tasks.benchmark.jobs import prepare

    cat = Catalog(catalog) if catalog else Catalog(cfg.storage.catalog_dir)
    config_json = cfg.lineage_json(["benchmark"])
    prep = prepare(cat, cfg.benchmark, config_json, cfg.storage.root / "benchmark", labels_run_id=labels_run,
                   labels_path=str(labels) if labels else None)  # fmt: skip
    return prep


@benchmark_app.command("splits")
@with_config
def splits_cmd(
    cfg: PipelineConfig,
    export: Annotated[
        Path | None, typer.Option(help="Also write the 27 setups as 4_setups files here.")
    ] = None,
    path_root: Annotated[str | None, typer.Option(help="Prefix of the paths in train.csv/test.csv.")] = None,
    catalog: CatalogRoot = None,
    labels_run: LabelsRun = None,
    labels: LabelsPath = None,
) -> None:
    """Split the labelled clips 80/20 (27 setups + cross-scenario) into the 'splits' manifest."""
    from tasks.benchmark.splits import export_setups

    prep = _prepare(cfg, catalog, labels_run, labels)
    counts = prep.splits.groupby(["setup", "side"]).size().unstack(fill_value=0)
    typer.echo(f"run {prep.ctx.run_id}: {len(prep.clips)} clips (labels: {prep.label_source})")
    typer.echo(counts.to_string())
    for reason, n in sorted(prep.dropped.items()):
        typer.echo(f"  left out, {reason}: {n}")
    if export is not None:
        frames = {
            c: len(list(Path(d).glob("*.jpg")))
            for c, d in zip(prep.clips["clip_id"], prep.clips["face_dir"], strict=True)
        }
        files = export_setups(prep.splits, export, path_root, frames)
        typer.echo(f"wrote {len(files)} setup files under {export / '4_setups'}")


@benchmark_app.command("train")
@with_config
def train_cmd(
    cfg: PipelineConfig,
    model: Annotated[str, typer.Option("--model", help="A zoo model, e.g. r18-lstm.")],
    setup: Annotated[
        str, typer.Option("--setup", help="Train setup (A-to-B: train on A, test on B).")
    ] = "All",
    frames: Annotated[int | None, typer.Option(help="Frames per clip (default benchmark.n_frames).")] = None,
    catalog: CatalogRoot = None,
    labels_run: LabelsRun = None,
    labels: LabelsPath = None,
) -> None:
    """Train one model on one setup (resuming its checkpoint) and evaluate it, without Prefect."""
    from tasks.benchmark.jobs import plan_jobs, run_job

    prep = _prepare(cfg, catalog, labels_run, labels)
    (job,) = plan_jobs([model], [setup], [frames or cfg.benchmark.n_frames], cfg.benchmark.init_checkpoint)
    refs = run_job(job, prep, cfg.benchmark)
    rows = prep.catalog.read("results", scene=job.train_setup, run_id=prep.ctx.run_id, latest=True)
    rows = rows[
        (rows["model"] == job.model) & (rows["variant"] == job.variant) & (rows["group"] == "overall")
    ]
    typer.echo(f"run {prep.ctx.run_id}: {job.name} ({len(refs)} result parts written now)")
    for r in rows.itertuples():
        score = f"WAR {100 * r.war:.2f}  UAR {100 * r.uar:.2f}" if r.status == "ok" else f"failed: {r.reason}"
        typer.echo(f"  {r.train_setup} -> {r.test_setup}: {score}  ({r.n_clips} clips)  {r.checkpoint or ''}")


@benchmark_app.command("pack")
@with_config
def pack_cmd(
    cfg: PipelineConfig,
    workers: Annotated[
        int | None, typer.Option(help="Decoding processes (default benchmark.num_workers).")
    ] = None,
    catalog: CatalogRoot = None,
    labels_run: LabelsRun = None,
    labels: LabelsPath = None,
) -> None:
    """Decode the labelled clips' frames once into a packed store that training memory-maps (resumable;
    only clips whose crops changed are decoded again). Training packs on first use too."""
    from tasks.benchmark.jobs import pack_store

    prep = _prepare(cfg, catalog, labels_run, labels)
    bcfg = cfg.benchmark if workers is None else cfg.benchmark.model_copy(update={"num_workers": workers})
    store = pack_store(prep, bcfg, progress=True)
    typer.echo(f"packed store of {len(prep.clips)} clips ({store.geometry.name}): {store.index_path}")


@benchmark_app.command("evaluate")
@with_config
def evaluate_cmd(
    config: ConfigRequest,
    checkpoint: Annotated[Path, typer.Argument(help="A benchmark checkpoint (last.pt).")],
    setup: Annotated[str, typer.Option("--setup", help="Score the test side of this setup.")] = "All",
    catalog: CatalogRoot = None,
    labels_run: LabelsRun = None,
    labels: LabelsPath = None,
) -> None:
    """WAR/UAR of a checkpoint on a setup's test side, overall, per scenario and per scene."""
    from tasks.benchmark.evaluate import group_scores, predict
    from tasks.benchmark.pack import existing_store
    from tasks.benchmark.splits import members, parse_setup
    from tasks.benchmark.train import load_trained

    test_setup = parse_setup(setup)[1]
    if not checkpoint.is_file():
        raise ValueError(f"{checkpoint}: checkpoint not found")
    cfg = config.resolve()
    prep = _prepare(cfg, catalog, labels_run, labels)
    device = cfg.benchmark.resolved_device()
    model, meta = load_trained(checkpoint, device)
    test_ids = members(prep.splits, test_setup, "test")["clip_id"]
    clips = prep.clips[prep.clips["clip_id"].isin(test_ids)]
    bcfg = cfg.benchmark.model_copy(update=meta.get("data", {}))  # the checkpoint's input sizes
    store = existing_store(prep.clips, bcfg, prep.pack_dir) if bcfg.packed else None  # else decode JPEGs
    preds = predict(model, clips, bcfg, n_frames=meta["n_frames"], device=device, progress=True, store=store)
    typer.echo(
        f"{meta['model_name']} ({meta['n_frames']} frames, epoch {meta['epoch']}) on {setup} test side"
    )
    for group, s in group_scores(preds).items():
        typer.echo(f"  {group:<24} WAR {100 * s.war:6.2f}  UAR {100 * s.uar:6.2f}  ({s.n_clips} clips)")


@benchmark_app.command("run")
@with_config
def run_cmd(
    config: ConfigRequest,
    model: Models = None,
    setup: Setups = None,
    frames: Frames = None,
    table_mode: Annotated[
        str, typer.Option(help="Table 2 cells: 'breakdown' (All-trained model per group) or 'setups'.")
    ] = "breakdown",
    catalog: CatalogRoot = None,
    labels_run: LabelsRun = None,
    labels: LabelsPath = None,
) -> None:
    """The whole benchmark as the Prefect flow `benchmark`: splits, trainings, results, reports."""
    from flows.benchmark import benchmark
    from flows.prefect_server import tie_temporary_server

    tie_temporary_server()
    result = benchmark(
        catalog_root=str(catalog) if catalog else None, labels_run_id=labels_run,
        labels_path=str(labels) if labels else None, models=model, setups=setup, frames=frames,
        table_mode=table_mode, **config.flow_parameters(),
    )  # fmt: skip
    typer.echo(f"run {result['run_id']}: {result['n_clips']} clips, {result['n_results_rows']} results rows "
               f"({result['n_failed']} failed)")  # fmt: skip
    typer.echo(f"report: {Path(result['report_dir']) / 'benchmark.md'}")
    if result["refiner"]:
        typer.echo(f"FER refiner: {result['refiner']['path']}")
