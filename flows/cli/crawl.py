"""``ferv crawl``: stage 1 from the command line, with progress bars and the balance report.

    ferv crawl --scene Terror --scene War --max-per-keyword 20
    ferv --set storage.root=/tmp/ferv crawl --scene Terror --source local:demo/footage
    ferv crawl --scene Terror --retry-failed

Registered in flows/cli/app.py; heavy libraries load only when the command runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.options import ConfigRequest, with_config


@with_config
def crawl_cmd(
    config: ConfigRequest,
    scene: Annotated[
        list[str], typer.Option("--scene", help="A scene to crawl (repeatable); see `ferv scenes`.")
    ],
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="Crawl from this source instead of the configured engines (repeatable): a yt-dlp search "
            "prefix (ytsearch, bilisearch, ...), a feed/playlist URL, urls:<file> or local:<dir>.",
        ),
    ] = None,
    max_per_keyword: Annotated[
        int | None, typer.Option("--max-per-keyword", min=1, help="Candidates per keyword and search engine.")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Also retry the videos whose download failed before.")
    ] = False,
    prefect: Annotated[bool, typer.Option("--prefect", help="Run as the Prefect flow `crawl`.")] = False,
) -> None:
    """Discover videos per scene, balance hours per scene, download and verify the selection."""
    if max_per_keyword is not None:
        config = config.with_overrides(f"crawl.max_per_keyword={max_per_keyword}")
    if prefect:
        from flows.crawl import crawl as crawl_flow
        from flows.prefect_server import tie_temporary_server
        from tasks.crawl.stage import format_report

        tie_temporary_server()
        result = crawl_flow(scene, source, retry_failed, **config.flow_parameters())
        typer.echo(format_report(result))
        return

    from data_catalog.io import Catalog
    from data_catalog.lineage import RunContext
    from tasks.crawl.stage import crawl, format_report

    cfg = config.resolve()
    ctx = RunContext.create(cfg.lineage_json(["crawl"]))
    result = crawl(
        Catalog(cfg.storage.catalog_dir),
        cfg.storage.media_dir,
        scene,
        cfg.crawl,
        ctx,
        sources=source,
        retry_failed=retry_failed,
        progress=True,
    )
    typer.echo(format_report(result))
