"""``ferv annotate ...``: the annotation stage from the command line (paper, section 3.2).

    ferv annotate package --batch b0001                      # selections -> annotation_tasks
    ferv annotate land --batch b0001                         # accepted answers -> labels + event
    ferv annotate label-studio export --batch b0001 --out ls_tasks.json --config-out ls_config.xml
    ferv annotate label-studio import ls_export.json --batch b0001
    ferv annotate simulate --clips 300 --quality mixed

Registered in flows/cli/app.py as the ``annotate`` group; heavy libraries load only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.annotate_web import register as register_web_commands
from flows.cli.options import ConfigRequest, with_config
from tasks.annotate.aggregation import AGGREGATORS

if TYPE_CHECKING:
    from flows.config import PipelineConfig

annotate_app = typer.Typer(
    help="Annotation: packaging, landing labels, Label Studio, simulation.", no_args_is_help=True
)
label_studio_app = typer.Typer(help="Exchange tasks and annotations with Label Studio.", no_args_is_help=True)
annotate_app.add_typer(label_studio_app, name="label-studio")
register_web_commands(annotate_app)  # serve, add-annotator, revoke, load, export-answers (the labelling app)

Batch = Annotated[str, typer.Option("--batch", help="The annotation batch id (the tasks' run partition).")]


@annotate_app.command("package")
@with_config
def package_cmd(
    cfg: PipelineConfig,
    batch: Batch,
    scene: Annotated[
        list[str] | None, typer.Option("--scene", help="Only this scene (repeatable); default: all.")
    ] = None,
) -> None:
    """Form groups with gold items and shuffled copies from the selected clips (`annotation_tasks`)."""
    from data_catalog.io import Catalog
    from data_catalog.lineage import RunContext
    from tasks.annotate.package import package_stage

    ctx = RunContext.create(cfg.lineage_json(["annotate"]), run_id=batch)
    refs = package_stage(Catalog(cfg.storage.catalog_dir), cfg.annotate, ctx, batch, scene)
    for ref in refs:
        typer.echo(f"{ref.scene:<16} {ref.rows:>7} tasks  {ref.path}")


@annotate_app.command("land")
@with_config
def land_cmd(
    config: ConfigRequest,
    batch: Annotated[
        str | None, typer.Option("--batch", help="The batch to land; default: all batches.")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", help=f"{', '.join(AGGREGATORS.names())} (default: annotate.method)."),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="The labels run (default labels-<batch>).")
    ] = None,
    prefect: Annotated[bool, typer.Option("--prefect", help="Run as the Prefect flow `annotate`.")] = False,
) -> None:
    """Aggregate the accepted answers into `labels` and emit the `ferv.labels.landed` event."""
    if prefect:
        from flows.annotate import annotate
        from flows.prefect_server import tie_temporary_server

        tie_temporary_server()
        result = annotate(batch, method, run_id, **config.flow_parameters())
    else:
        from data_catalog.io import Catalog
        from data_catalog.lineage import RunContext
        from flows.labels_event import announce_landing
        from tasks.annotate.land import land

        cfg = config.resolve()
        config_json = cfg.lineage_json(["annotate"])
        ctx = RunContext.create(config_json, run_id=run_id or f"labels-{batch or 'all'}")
        result = announce_landing(land(Catalog(cfg.storage.catalog_dir), cfg.annotate, ctx, batch, method))
    agg = result.aggregation
    typer.echo(
        f"run {result.run_id}: {len(agg.labels)} labels, {len(agg.unlabelled)} clips without a vote yet"
    )
    for name, value in agg.agreement.items():
        typer.echo(f"{name}: {value:.3f}")
    typer.echo(
        f"event {result.event.event}: {'sent' if result.event.sent else 'not sent (no Prefect server)'}"
    )


@label_studio_app.command("export")
@with_config
def ls_export_cmd(
    cfg: PipelineConfig,
    batch: Batch,
    out: Annotated[Path, typer.Option("--out", help="The tasks JSON to write.")],
    config_out: Annotated[
        Path | None, typer.Option("--config-out", help="Also write the labelling config XML here.")
    ] = None,
    url_template: Annotated[
        str | None,
        typer.Option(
            help="The video URL: {clip_relpath} (from the storage root), {clip_path} (absolute), "
            "{clip_name} or {clip_id} are filled in. Default: Label Studio's local files, "
            "/data/local-files/?d={clip_relpath}, with LOCAL_FILES_DOCUMENT_ROOT set to the storage root."
        ),
    ] = None,
) -> None:
    """Write a batch's tasks (video, face boxes as predictions) for Label Studio, and its labelling config."""
    import json

    from data_catalog.formats.label_studio import DEFAULT_URL, export_tasks, labelling_config
    from data_catalog.io import Catalog, atomic_write_bytes
    from tasks.annotate.package import batch_tasks

    catalog = Catalog(cfg.storage.catalog_dir)
    tasks = batch_tasks(catalog, batch)
    scenes = sorted(tasks["scene"].unique())
    clips = catalog.read("clips", scene=scenes, latest=True)
    faces = catalog.read("faces", scene=scenes)
    items = export_tasks(
        tasks,
        faces[faces["clip_id"].isin(set(tasks["clip_id"]))],
        clips,
        url_template or DEFAULT_URL,
        catalog,
    )
    atomic_write_bytes(out, json.dumps(items, indent=1).encode())
    typer.echo(f"{len(items)} tasks -> {out}")
    if config_out:
        atomic_write_bytes(config_out, labelling_config().encode())
        typer.echo(f"labelling config -> {config_out}")


@label_studio_app.command("import")
@with_config
def ls_import_cmd(
    cfg: PipelineConfig,
    export: Annotated[Path, typer.Argument(help="Label Studio's JSON export.")],
    batch: Batch,
    round_: Annotated[int, typer.Option("--round", min=1, help="The round these answers belong to.")] = 1,
    pr: Annotated[
        list[str] | None, typer.Option("--pr", help="An annotator id (ls-<user>) who is a PR (repeatable).")
    ] = None,
    auto_accept: Annotated[
        bool,
        typer.Option(
            "--auto-accept/--no-auto-accept",
            help="Accept AC copies on their flag-recapture score (Label Studio has no review step).",
        ),
    ] = True,
) -> None:
    """Add Label Studio annotations to a batch as `answers` (source label_studio) and score its copies."""
    from data_catalog.formats.label_studio import import_annotations
    from data_catalog.io import Catalog
    from data_catalog.lineage import RunContext
    from tasks.annotate.label_studio_import import add_answers
    from tasks.annotate.package import batch_tasks

    catalog = Catalog(cfg.storage.catalog_dir)
    tasks = batch_tasks(catalog, batch)
    result = import_annotations(export, tasks, roles=dict.fromkeys(pr or [], "PR"), round_=round_)
    for problem in result.problems:
        typer.echo(
            f"skipped task {problem.ls_task} annotation {problem.annotation}: {problem.reason} {problem.detail}"
        )
    if result.answers.empty:
        raise ValueError(
            f"{export}: no annotation could be read as an answer ({len(result.problems)} skipped)"
        )
    ctx = RunContext.create(cfg.lineage_json(["annotate"]), run_id=batch)
    summary = add_answers(catalog, result.answers, tasks, batch, round_, cfg.annotate, ctx, auto_accept)
    for ref in summary.refs:
        typer.echo(f"{ref.manifest:<13} {ref.scene:<16} {ref.rows:>6} rows  {ref.path}")
    typer.echo(f"{summary.n_new} new answers, {summary.n_known} already imported")
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(summary.verdicts.items())) or "none"
    typer.echo(f"finished copies: {verdicts}; {summary.n_unfinished} not finished yet")
    if summary.n_without_gold:
        typer.echo(
            f"{summary.n_without_gold} copies have no labelled gold item: import the PRs' gold labels (--pr)"
        )


@annotate_app.command("simulate")
@with_config
def simulate_cmd(
    config: ConfigRequest,
    clips: Annotated[int, typer.Option("--clips", min=2, help="Synthetic clips to annotate.")] = 300,
    quality: Annotated[str, typer.Option(help="Crowd quality: expert, good, mixed or poor.")] = "mixed",
    seed: Annotated[int, typer.Option(help="Seed of the crowd, the truth and the packaging.")] = 0,
    write: Annotated[
        bool,
        typer.Option("--write", help="Write tasks, answers and checks to the catalog and land the labels."),
    ] = False,
    from_catalog: Annotated[
        bool,
        typer.Option(
            "--from-catalog", help="Annotate the catalog's selected clips instead of synthetic ones."
        ),
    ] = False,
    land_labels: Annotated[
        bool,
        typer.Option(
            "--land/--no-land", help="With --write: also land the labels (or leave it to the annotate flow)."
        ),
    ] = True,
    batch: Annotated[str, typer.Option(help="Batch id of the simulated annotation.")] = "sim",
) -> None:
    """Run the whole annotation workflow on simulated annotators; print accuracy per aggregator."""
    from tasks.annotate.simulate import QUALITIES, evaluate, simulate

    if quality not in QUALITIES:
        raise ValueError(f"unknown crowd quality {quality!r}; expected one of {', '.join(QUALITIES)}")
    cfg = config.resolve()
    selections = None
    if from_catalog:
        from data_catalog.io import Catalog

        selections = Catalog(cfg.storage.catalog_dir).read("selections", latest=True)
    result = simulate(clips, quality, seed, cfg.annotate, batch_id=batch, selections=selections)
    typer.echo(f"verdicts: {result.checks['verdict'].value_counts().to_dict()}")
    typer.echo(f"PR decisions: {result.checks['pr_decision'].value_counts().to_dict()}")
    typer.echo(evaluate(result).round(4).to_string())
    if write:
        from data_catalog.io import Catalog
        from data_catalog.lineage import RunContext
        from flows.labels_event import announce_landing
        from tasks.annotate.land import land
        from tasks.annotate.simulate import write_simulation

        catalog = Catalog(cfg.storage.catalog_dir)
        config_json = cfg.lineage_json(["annotate"])
        write_simulation(catalog, result, RunContext.create(config_json, run_id=result.batch_id))
        if not land_labels:
            typer.echo(f"answers of batch {result.batch_id} written to {catalog.root}")
            return
        landed = announce_landing(
            land(catalog, cfg.annotate, RunContext.create(config_json, run_id=f"labels-{result.batch_id}"))
        )
        typer.echo(f"{len(landed.aggregation.labels)} labels landed in {catalog.root} (run {landed.run_id})")
