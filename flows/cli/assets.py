"""``ferv assets``: list, fetch and locate the models and demo media pinned in ``data_catalog/assets.toml``.

Cache and pip settings come from the resolved config: ``storage.cache_dir`` and the ``assets`` section.

    ferv assets fetch demo-single-face --quiet
    ferv assets path scrfd-2.5g-kps --no-fetch

Exit codes follow the command line's policy: 2 for a bad request (an unknown asset, a malformed registry
or config), 1 for a fetch that failed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from data_catalog.assets import (
    AssetError,
    AssetsConfig,
    Registry,
    asset_path,
    fetch,
    is_cached,
    load_registry,
)
from flows.cli.options import with_config

if TYPE_CHECKING:
    from flows.config import PipelineConfig

assets_app = typer.Typer(
    help="Models and demo media pinned by sha256 (data_catalog/assets.toml).", no_args_is_help=True
)
RegistryFile = Annotated[
    Path | None, typer.Option("--registry", help="A registry TOML file instead of the packaged one.")
]


def _context(cfg: PipelineConfig, registry_file: Path | None) -> tuple[Registry, Path, AssetsConfig]:
    return load_registry(registry_file), cfg.storage.cache_dir, cfg.assets


def _fail(exc: Exception) -> typer.Exit:
    """Print ``exc`` as one error line; the exit code says whose fault it was (see module docstring)."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1 if isinstance(exc, (AssetError, FileNotFoundError)) else 2)


@assets_app.command("list")
@with_config
def list_cmd(
    cfg: PipelineConfig,
    registry_file: RegistryFile = None,
) -> None:
    """Name, kind, cached or missing, size and licence of every asset."""
    reg, cache, _ = _context(cfg, registry_file)
    width = max((len(n) for n in reg.assets), default=4)
    typer.echo(f"{'name':<{width}}  kind   state    size      licence")
    for a in reg.assets.values():
        state = "cached" if is_cached(a, cache) else "missing"
        typer.echo(f"{a.name:<{width}}  {a.kind:<5}  {state:<7}  {a.size / 1e6:6.2f} MB  {a.licence}")
    typer.echo(f"# cache: {cache}")


@assets_app.command("fetch")
@with_config
def fetch_cmd(
    cfg: PipelineConfig,
    names: Annotated[list[str] | None, typer.Argument(help="Assets to fetch (default: all).")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Rehash cached files, refetch bad ones.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    registry_file: RegistryFile = None,
) -> None:
    """Download, verify and cache assets; print each one's path."""
    reg, cache, settings = _context(cfg, registry_file)
    started = time.monotonic()
    try:
        paths = fetch(
            names or None, cache, progress=not quiet, registry=reg, settings=settings, verify=verify
        )
    except (AssetError, ValueError) as exc:
        raise _fail(exc) from None
    for name, path in paths.items():
        typer.echo(f"{name}\t{path}")
    typer.echo(f"# {len(paths)} asset(s) in {cache} ({time.monotonic() - started:.1f} s)", err=True)


@assets_app.command("path")
@with_config
def path_cmd(
    cfg: PipelineConfig,
    name: Annotated[str, typer.Argument(help="An asset name (see `ferv assets list`).")],
    no_fetch: Annotated[bool, typer.Option("--no-fetch", help="Fail instead of fetching.")] = False,
    registry_file: RegistryFile = None,
) -> None:
    """Print the cached file of one asset (fetching it if needed)."""
    reg, cache, settings = _context(cfg, registry_file)
    try:
        typer.echo(str(asset_path(name, cache, not no_fetch, registry=reg, settings=settings)))
    except (AssetError, ValueError, FileNotFoundError) as exc:
        raise _fail(exc) from None
