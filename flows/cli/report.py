"""``ferv report``: the paper's Figure 4 for any catalog (tasks/report.py).

ferv report --out reports/
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.options import ConfigFile, Overrides, Preset, resolve_config


def report_cmd(
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write (default: <storage.root>/reports).")
    ] = None,
    config: ConfigFile = None,
    preset: Preset = "default",
    set_: Overrides = None,
) -> None:
    """Render the dataset statistics of Figure 4 (and the subsampling report) as PNG, CSV and markdown."""
    from data_catalog.io import Catalog
    from tasks.report import render_report

    cfg = resolve_config(config, preset, set_)
    result = render_report(
        Catalog(cfg.storage.catalog_dir), out_dir or cfg.storage.reports_dir, cfg.subsample
    )
    typer.echo(f"{result.n_clips} clips (labels: {result.label_source}); wrote:")
    for path in result.files:
        typer.echo(f"  {path}")
