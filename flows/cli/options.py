"""The config options every ``ferv`` command shares (``--config``, ``--preset``, ``--set``).

They are given once, on the root command, for whatever command follows (``ferv --preset demo --set
storage.root=/data/ferv catalog ls``); a command's own ``--config``/``--preset``/``--set`` still apply on top
(its file and preset win, its ``--set`` come after the root's). The config is resolved once per invocation.

A module of its own (typer only) so every command module of this package can use them without importing
the root command (flows/cli/app.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

try:  # the click the commands run under: recent typer ships its own copy
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - typer on the public click
    from click import get_current_context
    from click.core import ParameterSource

if TYPE_CHECKING:
    from flows.config import PipelineConfig

ConfigFile = Annotated[
    Path | None, typer.Option("--config", "-c", help="A YAML config file (overrides the preset).")
]
Preset = Annotated[str, typer.Option("--preset", help="A bundled preset (flows/configs/*.yaml).")]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one key, e.g. --set storage.root=/data/ferv (repeatable)."),
]


RootPreset = Annotated[
    str | None, typer.Option("--preset", help="A bundled preset (flows/configs/*.yaml); default: 'default'.")
]


@dataclass
class RootOptions:
    """The config options given on the root command (``ctx.obj`` of every command below it)."""

    config: Path | None = None
    preset: str | None = None
    overrides: list[str] = field(default_factory=list)
    resolved: dict[tuple[Any, ...], PipelineConfig] = field(default_factory=dict)


def _root_options() -> tuple[typer.Context | None, RootOptions | None]:
    ctx = get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return ctx, obj if isinstance(obj, RootOptions) else None


def config_request(
    config: Path | None, preset: str, overrides: list[str] | None
) -> tuple[Path | None, str, list[str]]:
    """A command's config options merged with the root command's: the command's own file and an explicit
    preset win, and its ``--set`` overrides come after the root's. Outside a command line: unchanged."""
    ctx, root = _root_options()
    overrides = list(overrides or [])
    if root is None:
        return config, preset, overrides
    if root.preset is not None and ctx.get_parameter_source("preset") in (ParameterSource.DEFAULT, None):
        preset = root.preset
    return config if config is not None else root.config, preset, [*root.overrides, *overrides]


def resolve_config(config: Path | None, preset: str, overrides: list[str] | None) -> PipelineConfig:
    """The layered config a command runs with (see flows/config.py and the module docstring)."""
    from flows.config import load_config

    config, preset, overrides = config_request(config, preset, overrides)
    _, root = _root_options()
    key = (config, preset, tuple(overrides))
    if root is not None and key in root.resolved:
        return root.resolved[key]
    cfg = load_config(preset=preset, user_file=config, overrides=overrides)
    if root is not None:
        root.resolved[key] = cfg
    return cfg


def renamed(
    value: str | None, old: str | None, spelling: str, old_spelling: str, default: str | None = None
) -> str:
    """The value of an option that replaced an older spelling (one spelling per concept, see the README).
    The old spelling still works for one release, with a deprecation line on stderr. Both with different
    values is a usage error (exit 2), and so is neither unless there is a ``default``."""
    if old is not None:
        if value is not None and value != old:
            raise typer.BadParameter(f"{spelling} {value!r} and {old_spelling} {old!r}: give {spelling} once")
        typer.echo(
            f"warning: {old_spelling} is deprecated and goes in the next release; use {spelling}", err=True
        )
        return old
    if value is None and default is None:
        raise typer.BadParameter(f"{spelling} is required")
    return value if value is not None else default
