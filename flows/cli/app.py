"""The ``ferv`` command line. Every command has ``--help``; heavy libraries load only inside commands.

ferv scenes                       # the scene vocabulary
ferv --set storage.root=/data/ferv config show
ferv catalog sql "select scene, count(*), sum(duration) from videos group by scene"
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.annotate import annotate_app
from flows.cli.assets import assets_app
from flows.cli.benchmark import benchmark_app
from flows.cli.crawl import crawl_cmd
from flows.cli.import_dataset import import_cmd
from flows.cli.options import ConfigFile, ConfigRequest, Overrides, Preset, RootOptions, with_config
from flows.cli.release import register_commands as register_release_commands
from flows.cli.report import report_cmd
from flows.cli.service import service_app
from flows.cli.zoo import zoo_app

if TYPE_CHECKING:
    from flows.config import PipelineConfig

app = typer.Typer(
    help="Build multi-scene facial-expression video datasets the way FERV39k was built.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
catalog_app = typer.Typer(help="Query and inspect the manifest catalog.", no_args_is_help=True)
config_app = typer.Typer(help="Show the resolved configuration.", no_args_is_help=True)


@app.callback()
def ferv(
    ctx: typer.Context, config: ConfigFile = None, preset: Preset = None, set_: Overrides = None
) -> None:
    """The config options given here apply to every command (flows/cli/options.py)."""
    ctx.obj = RootOptions(config, preset, list(set_ or []))


app.add_typer(catalog_app, name="catalog")
app.add_typer(config_app, name="config")
app.command("crawl")(crawl_cmd)
app.add_typer(assets_app, name="assets")
app.add_typer(zoo_app, name="zoo")
app.add_typer(annotate_app, name="annotate")
app.add_typer(service_app, name="service")
app.add_typer(benchmark_app, name="benchmark")
app.command("report")(report_cmd)
app.command("import")(import_cmd)
register_release_commands(app)  # card, export, takedown


@app.command("scenes")
def scenes_cmd(
    scenario: Annotated[str | None, typer.Option(help="Only this scenario (DL, WIS, SIA, AI).")] = None,
    keywords: Annotated[bool, typer.Option("--keywords", help="Also print each scene's keywords.")] = False,
) -> None:
    """List the scenarios and scenes of the taxonomy (keywords/scenes.yaml)."""
    from keywords.taxonomy import load_taxonomy

    tax = load_taxonomy()
    scenes = tax.scenes_of(scenario) if scenario else tax.scenes
    for s in scenes:
        typer.echo(f"{s.scenario:<4} {s.name}")
        if keywords:
            for lang, words in s.keywords.items():
                typer.echo(f"       {lang}: {', '.join(words)}")


@config_app.command("show")
@with_config
def config_show(cfg: PipelineConfig) -> None:
    """Print the resolved configuration as YAML, with its hash."""
    import yaml

    typer.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False).rstrip())
    typer.echo(f"# config hash: {cfg.hash()}")


@catalog_app.command("sql")
@with_config
def catalog_sql(
    cfg: PipelineConfig,
    statement: Annotated[str, typer.Argument(help="One SQL statement; each manifest is a view.")],
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
) -> None:
    """Run SQL (DuckDB) over every manifest of the catalog."""
    import pandas as pd

    from data_catalog.io import Catalog
    from data_catalog.sql import query

    df = query(Catalog(cfg.storage.catalog_dir), statement)
    if csv:
        typer.echo(df.to_csv(index=False).rstrip())
    else:
        with pd.option_context("display.max_rows", 500, "display.width", 200):
            typer.echo(df.to_string(index=False))


@catalog_app.command("ls")
@with_config
def catalog_ls(cfg: PipelineConfig) -> None:
    """Count rows and parts per manifest and scene."""
    import pyarrow.parquet as pq

    from data_catalog.io import Catalog
    from data_catalog.schemas import MANIFESTS

    cat = Catalog(cfg.storage.catalog_dir)
    for name in MANIFESTS:
        files = cat.part_files(name)
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        typer.echo(f"{name:<12} {len(files):>5} parts {rows:>9} rows")


@app.command("build-candidates")
@with_config
def build_candidates_cmd(
    config: ConfigRequest,
    scene: Annotated[str, typer.Option("--scene", help="The scene to build (see `ferv scenes`).")],
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="Replace the configured engines: a search prefix, URL, urls:<file> or local:<dir>.",
        ),
    ] = None,
    target: Annotated[
        int | None, typer.Option(help="Final clips for the scene (overrides subsample.targets).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="One seed for crawl balance, segmentation and subsampling.")
    ] = None,
    no_crawl: Annotated[bool, typer.Option("--no-crawl", help="Use the videos already downloaded.")] = False,
) -> None:
    """Crawl, segment, face-filter, refine and subsample one scene (Prefect flow `build-candidates`)."""
    from flows.build_candidates import build_candidates, check_request
    from flows.prefect_server import tie_temporary_server

    request = dict(
        scene=scene, sources=source, target=target, seed=seed, crawl=not no_crawl, **config.flow_parameters()
    )
    check_request(**request)  # a bad request is one `error:` line, before the flow starts
    tie_temporary_server()
    result = build_candidates(**request)
    typer.echo(f"run {result.run_id}: {result.n_videos} videos in {result.n_shards} shards")
    typer.echo(f"summary: {result.summary_path}")


@app.command("demo")
@with_config(preset="demo")
def demo_cmd(config: ConfigRequest) -> None:
    """Run build-candidates on the bundled demo footage (offline; minutes on two cores)."""
    from flows.build_candidates import build_candidates
    from flows.demo import DEMO_SCENE, prepare_footage
    from flows.prefect_server import tie_temporary_server

    cfg = config.resolve()
    footage = prepare_footage(cfg.storage.root, cfg.storage.cache_dir)
    tie_temporary_server()
    result = build_candidates(DEMO_SCENE, sources=[f"local:{footage.resolve()}"], **config.flow_parameters())
    typer.echo(f"run {result.run_id}: {result.n_videos} demo videos")
    typer.echo(f"catalog: {cfg.storage.catalog_dir}   crops: {cfg.storage.crops_dir}")
    typer.echo(f"summary: {result.summary_path}")


#: The command line's exit codes: a bad request (usage, input, config) and a run that failed.
USAGE_ERROR, RUN_FAILED = 2, 1


def exit_code(exc: BaseException) -> int | None:
    """The exit code ``main`` gives an uncaught error, or None for an error that is a bug (a traceback)."""
    if isinstance(exc, ConnectionError):  # the network failed the run, the request was fine
        return RUN_FAILED
    if isinstance(exc, (ValueError, FileNotFoundError)):
        return USAGE_ERROR
    return None


def main() -> None:
    """Entry point: a bad request (input, config) prints one clear line and exits 2; a run that failed on
    the network exits 1 the same way (the README's exit-code policy)."""
    try:
        app()
    except (ValueError, FileNotFoundError, ConnectionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exit_code(exc))
