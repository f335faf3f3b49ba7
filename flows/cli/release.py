"""``ferv card``, ``ferv export`` and ``ferv takedown``: publish a dataset, and honour removal requests.

    ferv card --out out/card                         # card.md + croissant.json + provenance for the catalog
    ferv export --out out/FERV39k --format ferv39k   # the release, with its card at the root
    ferv takedown youtube-abc123 --requested-by "legal@example.org"

Libraries load inside the commands, so ``ferv --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.options import ConfigRequest, renamed, with_config

if TYPE_CHECKING:
    import pandas as pd

    from data_catalog.io import Catalog
    from flows.config import PipelineConfig
    from tasks.release.card import CardSettings

LAYOUTS = ("ferv39k",)
#: The destination as a positional, the spelling before ``--out`` (kept for one release).
OldOut = Annotated[Path | None, typer.Argument(metavar="OUT", hidden=True, help="Deprecated: use --out.")]
#: Counts of clips an export left out, per reason, kept next to the card so a rebuilt card still says so.
LEFT_OUT_FILE = "left_out.json"

Name = Annotated[str | None, typer.Option(help="The dataset's name on the card (default: the folder's).")]
IncludeUnlicensed = Annotated[
    bool,
    typer.Option(
        "--include-unlicensed",
        help="Also ship clips whose source licence is unknown or not in release.allowed_licences.",
    ),
]


def card_settings(cfg: PipelineConfig, name: str) -> CardSettings:
    """What the card says about selection, from the resolved config (rules, refiner, prior, hash)."""
    from data_catalog.lineage import config_hash
    from flows.build_candidates import build_config_json
    from tasks.release.card import CardSettings

    return CardSettings(
        rules=[r.model_dump(mode="json") for r in cfg.face_filter.rules],
        refiner=cfg.refine.model_dump(mode="json", include={"model", "weights", "weights_sha256", "backend"}),
        subsample=cfg.subsample,
        build_config_hash=config_hash(build_config_json(cfg)),
        name=name,
    )


def _validated(path: Path, n_clips: int) -> None:
    """The Croissant file loads in mlcroissant and yields one record per clip."""
    from tasks.release.croissant import validate

    records = validate(path)
    if len(records) != n_clips:
        raise ValueError(f"{path}: mlcroissant read {len(records)} clip records, the card has {n_clips}")


@with_config
def card_cmd(
    config: ConfigRequest,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write card.md, croissant.json, provenance.*")
    ] = None,
    old_out: OldOut = None,
    labels_run: Annotated[
        str | None, typer.Option(help="Describe the clips of this labels run only (default: all labels).")
    ] = None,
    name: Name = None,
    validate: Annotated[bool, typer.Option(help="Check croissant.json with mlcroissant.")] = True,
) -> None:
    """Write the dataset card (markdown + figure), its Croissant JSON-LD and the clips' provenance."""
    from data_catalog.io import Catalog
    from tasks.release.card import build_card, card_labels, write_card

    out_dir = Path(renamed(out_dir, old_out, "--out", "the positional OUT"))
    cfg = config.resolve()
    catalog = Catalog(cfg.storage.catalog_dir)
    card = build_card(
        catalog,
        card_settings(cfg, name or out_dir.resolve().name),
        labels=card_labels(catalog, labels_run),
    )
    files = write_card(card, out_dir)
    if validate:
        _validated(files.croissant, card.n_clips)
    typer.echo(f"card of {card.n_clips} clips (labels: {card.label_source}):")
    for path in (files.markdown, files.figure, files.croissant, *files.provenance):
        typer.echo(f"  {path}")


@with_config
def export_cmd(
    config: ConfigRequest,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write the dataset.")] = None,
    old_out: OldOut = None,
    layout: Annotated[
        str | None, typer.Option("--format", help=f"Dataset format: {', '.join(LAYOUTS)} (default ferv39k).")
    ] = None,
    old_layout: Annotated[
        str | None, typer.Option("--layout", hidden=True, help="Deprecated: use --format.")
    ] = None,
    mode: Annotated[str, typer.Option(help="'hardlink' (copies across filesystems) or 'copy'.")] = "hardlink",
    seed: Annotated[int, typer.Option(help="Seed of the 80/20 split for clips without one.")] = 0,
    test_fraction: Annotated[float, typer.Option(help="Share of each scene and label in test.")] = 0.2,
    path_root: Annotated[
        str | None, typer.Option(help="Prefix of the paths in train.csv/test.csv (default: --out).")
    ] = None,
    include_unlicensed: IncludeUnlicensed = False,
    name: Name = None,
    validate: Annotated[bool, typer.Option(help="Check croissant.json with mlcroissant.")] = True,
) -> None:
    """Export the labelled clips (face crops, scene images, split files) in a dataset layout, with the
    provenance table, the dataset card and its Croissant file at the root. Clips whose source licence is
    unknown or not in release.allowed_licences are left out unless --include-unlicensed."""
    out_dir = Path(renamed(out_dir, old_out, "--out", "the positional OUT"))
    layout = renamed(layout, old_layout, "--format", "--layout", default="ferv39k")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown format {layout!r}; formats: {', '.join(LAYOUTS)}")
    from data_catalog.formats.ferv39k_release import export_release
    from data_catalog.io import Catalog, atomic_write_bytes

    cfg = config.resolve()
    catalog = Catalog(cfg.storage.catalog_dir)
    result = export_release(
        catalog,
        out_dir,
        mode=mode,
        test_fraction=test_fraction,
        seed=seed,
        path_root=path_root,
        allowed_licences=cfg.release.allowed_licences,
        include_unlicensed=include_unlicensed or cfg.release.include_unlicensed,
    )
    atomic_write_bytes(out_dir / LEFT_OUT_FILE, json.dumps(result.left_out, sort_keys=True).encode())
    n_clips = _release_card(catalog, cfg, out_dir, result.provenance, name)
    if validate:
        _validated(out_dir / "croissant.json", n_clips)
    typer.echo(
        f"exported {result.n_train} train + {result.n_test} test clips to {result.out_dir} "
        f"(labels: {result.label_source}; {result.n_reused} already there); card: {out_dir / 'card.md'}"
    )
    for reason, n in sorted(result.skipped.items()):
        typer.echo(f"  {reason}: {n}")
    for reason, n in sorted(result.left_out.items()):
        typer.echo(f"  left out, {reason}: {n} (--include-unlicensed ships them)")


def _release_card(
    catalog: Catalog, cfg: PipelineConfig, release: Path, prov: pd.DataFrame, name: str | None = None
) -> int:
    """Write (or rewrite) the card of a release folder from its provenance rows; the clip count."""
    from data_catalog.formats.labels import current_labels
    from tasks.release.card import build_card, write_card

    left_file = release / LEFT_OUT_FILE
    left_out = json.loads(left_file.read_text(encoding="utf-8")) if left_file.is_file() else {}
    card = build_card(
        catalog,
        card_settings(cfg, name or release.resolve().name),
        labels=current_labels(catalog),
        clips=prov,
        left_out=left_out,
    )
    write_card(card, release, write_provenance=False)
    return card.n_clips


@with_config
def takedown_cmd(
    cfg: PipelineConfig,
    source: Annotated[str, typer.Argument(help="The source video: its video id or its URL.")],
    requested_by: Annotated[
        str, typer.Option("--requested-by", help="Who asked for the removal (kept in the takedowns record).")
    ],
    note: Annotated[str | None, typer.Option(help="A free-text note kept with the record.")] = None,
    export: Annotated[
        list[Path] | None,
        typer.Option("--export", help="An export outside the storage root to clean too (repeatable)."),
    ] = None,
) -> None:
    """Remove a source video and everything derived from it, record the takedown, and make later crawls
    skip the source. Run it again to resume an interrupted takedown."""
    from data_catalog.io import Catalog
    from tasks.release.takedown import takedown

    catalog = Catalog(cfg.storage.catalog_dir)

    def rebuild(release: Path, prov: pd.DataFrame) -> None:
        if len(prov):
            _release_card(catalog, cfg, release, prov)

    result = takedown(
        catalog, source, requested_by=requested_by, note=note, rebuild_card=rebuild, exports=export or ()
    )
    what = "found in the catalog" if result.found else "not in the catalog (recorded: crawls will skip it)"
    typer.echo(f"takedown {result.takedown_id}: source {what}; {result.n_clips} clips")
    for kind, n in sorted(result.removed.items()):
        typer.echo(f"  removed {kind}: {n}")
    if result.n_stale_results:
        typer.echo(f"  benchmark results marked stale: {result.n_stale_results}")
    for release in result.exports:
        typer.echo(f"  export cleaned: {release}")
    for path in result.kept_sources:
        typer.echo(f"  left in place (the original of a local: source; delete it yourself): {path}")


def register_commands(app: typer.Typer) -> None:
    """Add ``ferv card``, ``ferv export`` and ``ferv takedown`` to the command line."""
    app.command("card")(card_cmd)
    app.command("export")(export_cmd)
    app.command("takedown")(takedown_cmd)
