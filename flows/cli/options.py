"""The config options every ``ferv`` command shares (``--config``, ``--preset``, ``--set``), in one place.

They belong to the root command and apply to whatever command follows
(``ferv --preset demo --set storage.root=/data/ferv catalog ls``). No command declares them: a command is
decorated with :func:`with_config` and takes ``cfg`` (the resolved :class:`~flows.config.PipelineConfig`)
or ``config`` (a :class:`ConfigRequest`, for a command that checks its other input first or hands the
request on to a flow).

The older spelling after the command (``ferv catalog ls --preset demo``) still works for one release,
hidden from the help and with a deprecation line on stderr: its file and an explicit preset win, and its
``--set`` overrides come after the root's.

A module of its own (typer only) so every command module of this package can use them without importing
the root command (flows/cli/app.py).
"""

from __future__ import annotations

import functools
import inspect
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

try:  # the click the commands run under: recent typer ships its own copy
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - typer on the public click
    from click import get_current_context

if TYPE_CHECKING:
    from flows.config import PipelineConfig

ConfigFile = Annotated[
    Path | None, typer.Option("--config", "-c", help="A YAML config file (overrides the preset).")
]
Preset = Annotated[
    str | None,
    typer.Option(
        "--preset", help="A bundled preset (flows/configs/*.yaml); default: 'default' ('demo' for ferv demo)."
    ),
]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one key, e.g. --set storage.root=/data/ferv (repeatable)."),
]

#: The same options after a command: the deprecated spelling, hidden from the command's help.
_AFTER_THE_COMMAND = {
    "command_config": Annotated[Path | None, typer.Option("--config", "-c", hidden=True)],
    "command_preset": Annotated[str | None, typer.Option("--preset", hidden=True)],
    "command_set": Annotated[list[str] | None, typer.Option("--set", hidden=True)],
}
#: What a decorated command's help says about them.
_HELP_LINE = (
    "Config options go before the command: ferv [--config FILE] [--preset NAME] [--set KEY=VALUE] COMMAND ..."
)


@dataclass
class RootOptions:
    """The config options given on the root command (``ctx.obj`` of every command below it)."""

    config: Path | None = None
    preset: str | None = None
    overrides: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConfigRequest:
    """The config a command line asked for: a file, a preset and ``--set`` overrides, in that order."""

    file: Path | None = None
    preset: str = "default"
    overrides: tuple[str, ...] = ()

    def with_overrides(self, *more: str) -> ConfigRequest:
        """The same request with ``more`` overrides after its own."""
        return replace(self, overrides=(*self.overrides, *more))

    def flow_parameters(self) -> dict[str, Any]:
        """The request as the flows take it (``preset``, ``config_file``, ``overrides``): a flow resolves
        its config again where it runs."""
        file = str(self.file) if self.file is not None else None
        return {"preset": self.preset, "config_file": file, "overrides": list(self.overrides)}

    def resolve(self) -> PipelineConfig:
        """The layered config (flows/config.py); a bad file, preset or key is a ValueError (exit 2)."""
        from flows.config import load_config

        return load_config(preset=self.preset, user_file=self.file, overrides=list(self.overrides))


def deprecated(old_spelling: str, instead: str) -> None:
    """The deprecation line of a spelling that goes in the next release, on stderr."""
    typer.echo(f"warning: {old_spelling} is deprecated and goes in the next release; {instead}", err=True)


def config_request(
    config: Path | None = None,
    preset: str | None = None,
    overrides: list[str] | None = None,
    default_preset: str = "default",
) -> ConfigRequest:
    """The root command's config options with those given after the command (deprecated, one line each on
    stderr) on top: the command's file and preset win, its overrides come after the root's."""
    ctx = get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    root = obj if isinstance(obj, RootOptions) else RootOptions()
    given = {
        "--config": [config] if config else [],
        "--preset": [preset] if preset else [],
        "--set": overrides,
    }
    for option, values in given.items():
        if values:
            _after_the_command(ctx, option, values)
    return ConfigRequest(
        file=config if config is not None else root.config,
        preset=preset or root.preset or default_preset,
        overrides=(*root.overrides, *(overrides or [])),
    )


def _after_the_command(ctx: typer.Context | None, option: str, values: list[Any]) -> None:
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    command = " ".join(reversed(names)) or "<command>"
    spelled = " ".join(f"{option} {shlex.quote(str(v))}" for v in values)
    deprecated(f"{option} after the command", f"give it before the command: ferv {spelled} {command}")


def with_config(command: Callable | None = None, *, preset: str = "default") -> Callable:
    """Give a command its config from the root command's options (``@with_config``, or
    ``@with_config(preset="demo")`` for another default preset).

    The command takes ``cfg``, the resolved config, or ``config``, a :class:`ConfigRequest` it resolves
    itself (after checking its other input) or hands to a flow. Its signature, which typer reads, loses that
    parameter and gains the hidden, deprecated ``--config``/``--preset``/``--set`` after the command."""
    if command is None:
        return functools.partial(with_config, preset=preset)
    signature = inspect.signature(command)
    wants = next((name for name in ("cfg", "config") if name in signature.parameters), None)
    if wants is None:
        raise TypeError(
            f"{command.__qualname__}: with_config gives a parameter 'cfg' or 'config'; it has neither"
        )
    params = [_evaluated(p, command) for p in signature.parameters.values() if p.name != wants]
    params += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
        for name, annotation in _AFTER_THE_COMMAND.items()
    ]

    @functools.wraps(command)
    def run(*args: Any, command_config=None, command_preset=None, command_set=None, **kwargs: Any) -> Any:
        request = config_request(command_config, command_preset, command_set, default_preset=preset)
        kwargs[wants] = request.resolve() if wants == "cfg" else request
        return command(*args, **kwargs)

    run.__signature__ = signature.replace(parameters=params, return_annotation=inspect.Signature.empty)
    run.__annotations__ = {p.name: p.annotation for p in params}
    run.__doc__ = f"{inspect.cleandoc(command.__doc__ or '')}\n\n{_HELP_LINE}".lstrip()
    return run


def _evaluated(param: inspect.Parameter, command: Callable) -> inspect.Parameter:
    """``param`` with its annotation evaluated in the command's module (``from __future__ import
    annotations`` leaves a string), as typer reads it."""
    if not isinstance(param.annotation, str):
        return param
    return param.replace(annotation=eval(param.annotation, command.__globals__))


def renamed(
    value: str | None, old: str | None, spelling: str, old_spelling: str, default: str | None = None
) -> str:
    """The value of an option that replaced an older spelling (one spelling per concept, see the README).
    The old spelling still works for one release, with a deprecation line on stderr. Both with different
    values is a usage error (exit 2), and so is neither unless there is a ``default``."""
    if old is not None:
        if value is not None and value != old:
            raise typer.BadParameter(f"{spelling} {value!r} and {old_spelling} {old!r}: give {spelling} once")
        deprecated(old_spelling, f"use {spelling}")
        return old
    if value is None and default is None:
        raise typer.BadParameter(f"{spelling} is required")
    return value if value is not None else default
