"""The config options every ``ferv`` command shares (``--config``, ``--preset``, ``--set``).

A module of its own (typer only) so every command module of this package can use them without importing
the root command (flows/cli/app.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigFile = Annotated[
    Path | None, typer.Option("--config", "-c", help="A YAML config file (overrides the preset).")
]
Preset = Annotated[str, typer.Option("--preset", help="A bundled preset (flows/configs/*.yaml).")]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one key, e.g. --set storage.root=/data/ferv (repeatable)."),
]


def resolve_config(config: Path | None, preset: str, overrides: list[str] | None):
    """The layered config a command runs with (see flows/config.py)."""
    from flows.config import load_config

    return load_config(preset=preset, user_file=config, overrides=overrides)
