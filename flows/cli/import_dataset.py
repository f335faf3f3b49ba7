"""``ferv import``: bring a published dataset into the catalog (``ferv export``, which also writes the
release's card, is in ``flows/cli/release.py``). Formats are named with ``--format``, as on export.

    ferv import downloads/FERV39k --format ferv39k

The older spelling ``ferv import ferv39k DIR`` still works for one release (with a deprecation line).

Libraries load inside the commands, so ``ferv --help`` stays fast. The config options go on the root
command, as for every command: ``ferv --set storage.root=/data/ferv import DIR`` (flows/cli/options.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.options import ConfigRequest, renamed, with_config

#: The formats ``ferv import`` reads.
IMPORT_FORMATS = ("ferv39k",)


@with_config
def import_cmd(
    config: ConfigRequest,
    release_dir: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="The release folder (holds 2_ClipsforFaceCrop/).", show_default=False
        ),
    ],
    old_dir: Annotated[
        Path | None,
        typer.Argument(metavar="OLD_DIR", hidden=True, help="Deprecated spelling: ferv import FORMAT DIR."),
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option("--format", help=f"Dataset format: {', '.join(IMPORT_FORMATS)} (default ferv39k)."),
    ] = None,
    fps: Annotated[
        float, typer.Option(help="Frame rate of the crops (the release does not state it).")
    ] = 25.0,
) -> None:
    """Import a published dataset (a FERV39k release) into the clips, candidates and labels manifests."""
    if old_dir is not None:  # ferv import FORMAT DIR
        format_ = renamed(format_, str(release_dir), "--format", "the positional FORMAT")
        release_dir = old_dir
    format_ = format_ or "ferv39k"
    if format_ not in IMPORT_FORMATS:
        raise ValueError(f"unknown format {format_!r}; formats: {', '.join(IMPORT_FORMATS)}")
    from data_catalog.formats.ferv39k_release import import_release
    from data_catalog.io import Catalog
    from data_catalog.lineage import RunContext

    cfg = config.resolve()
    # One run id per release folder: importing it again replaces its rows instead of adding a copy.
    digest = hashlib.sha256(str(release_dir.resolve()).encode()).hexdigest()[:8]
    ctx = RunContext.create(cfg.model_dump(mode="json"), run_id=f"import-ferv39k-{digest}")
    result = import_release(release_dir, Catalog(cfg.storage.catalog_dir), ctx, fps=fps)
    splits = ", ".join(f"{k} {v}" for k, v in sorted(result.splits.items()))
    typer.echo(f"imported {result.n_clips} clips ({splits}) from {result.release_dir}; run {ctx.run_id}")
    if result.n_missing_crops:
        typer.echo(f"  missing_face_crops: {result.n_missing_crops}")
    for p in result.problems[:20]:
        typer.echo(f"  skipped {p.where}: {p.reason}")
    if len(result.problems) > 20:
        typer.echo(f"  ... and {len(result.problems) - 20} more")
