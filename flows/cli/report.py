"""``ferv report``: the paper's Figure 4 for any catalog (tasks/report.py).

ferv report --out reports/
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.options import with_config

if TYPE_CHECKING:
    from flows.config import PipelineConfig


@with_config
def report_cmd(
    cfg: PipelineConfig,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write (default: <storage.root>/reports).")
    ] = None,
) -> None:
    """Render the dataset statistics of Figure 4 (and the subsampling report) as PNG, CSV and markdown."""
    from data_catalog.io import Catalog
    from tasks.report import render_report

    result = render_report(
        Catalog(cfg.storage.catalog_dir), out_dir or cfg.storage.reports_dir, cfg.subsample
    )
    typer.echo(f"{result.n_clips} clips (labels: {result.label_source}); wrote:")
    for path in result.files:
        typer.echo(f"  {path}")
