"""``ferv export`` and ``ferv import``: move a catalog to and from other dataset layouts.

    ferv export out/FERV39k --layout ferv39k --mode copy
    ferv import ferv39k downloads/FERV39k

Libraries load inside the commands, so ``ferv --help`` stays fast. The config options match the other
commands' (``--config``, ``--preset``, ``--set``); ``flows.cli`` resolves them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from flows.options import ConfigFile, Overrides, Preset, resolve_config

LAYOUTS = ("ferv39k",)


import_app = typer.Typer(help="Import a published dataset into the catalog.", no_args_is_help=True)


def export_cmd(
    out_dir: Annotated[Path, typer.Argument(help="Where to write the dataset.")],
    layout: Annotated[
        str, typer.Option("--layout", help=f"Output layout: {', '.join(LAYOUTS)}.")
    ] = "ferv39k",
    mode: Annotated[str, typer.Option(help="'hardlink' (copies across filesystems) or 'copy'.")] = "hardlink",
    seed: Annotated[int, typer.Option(help="Seed of the 80/20 split for clips without one.")] = 0,
    test_fraction: Annotated[float, typer.Option(help="Share of each scene and label in test.")] = 0.2,
    path_root: Annotated[
        str | None, typer.Option(help="Prefix of the paths in train.csv/test.csv (default: OUT_DIR).")
    ] = None,
    config: ConfigFile = None,
    preset: Preset = "default",
    set_: Overrides = None,
) -> None:
    """Export the labelled clips (face crops, scene images, split files) in a dataset layout."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; layouts: {', '.join(LAYOUTS)}")
    from data_catalog.formats.ferv39k_release import export_release
    from data_catalog.io import Catalog

    cfg = resolve_config(config, preset, set_)
    result = export_release(
        Catalog(cfg.storage.catalog_dir),
        out_dir,
        mode=mode,
        test_fraction=test_fraction,
        seed=seed,
        path_root=path_root,
    )
    typer.echo(
        f"exported {result.n_train} train + {result.n_test} test clips to {result.out_dir} "
        f"(labels: {result.label_source}; {result.n_reused} already there)"
    )
    for reason, n in sorted(result.skipped.items()):
        typer.echo(f"  {reason}: {n}")


@import_app.command("ferv39k")
def import_ferv39k(
    release_dir: Annotated[Path, typer.Argument(help="The release folder (holds 2_ClipsforFaceCrop/).")],
    fps: Annotated[
        float, typer.Option(help="Frame rate of the crops (the release does not state it).")
    ] = 25.0,
    config: ConfigFile = None,
    preset: Preset = "default",
    set_: Overrides = None,
) -> None:
    """Import a FERV39k release into the clips, candidates and labels manifests."""
    from data_catalog.formats.ferv39k_release import import_release
    from data_catalog.io import Catalog
    from data_catalog.lineage import RunContext

    cfg = resolve_config(config, preset, set_)
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
