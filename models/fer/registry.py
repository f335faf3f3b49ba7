"""The FER refiner registry: every family registers its constructors by name (timm-style).

Adding a refiner touches one file: decorate a factory that returns a :class:`models.fer.refiner.Refiner`.

    >>> from models.fer import create_refiner, list_refiners
    >>> list_refiners("mini*")
    ['mini-xception']
    >>> refiner = create_refiner("mini-xception", device="cpu")      # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from models.fer.refiner import Refiner

Factory = TypeVar("Factory", bound=Callable[..., "Refiner"])

_REFINERS: dict[str, Callable[..., Refiner]] = {}


def register_refiner(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory`` under ``name``; a second registration of the same name is an error."""

    def decorate(factory: Factory) -> Factory:
        if name in _REFINERS:
            raise ValueError(f"FER refiner {name!r} is already registered")
        _REFINERS[name] = factory
        return factory

    return decorate


def list_refiners(pattern: str | None = None) -> list[str]:
    """Registered refiner names, sorted; ``pattern`` is a shell-style filter such as ``'res*'``."""
    names = sorted(_REFINERS)
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names


def create_refiner(name: str, **kwargs) -> Refiner:
    """Build the refiner registered as ``name``; ``kwargs`` go to its factory (weights, device, ...)."""
    try:
        factory = _REFINERS[name]
    except KeyError:
        raise ValueError(f"unknown FER refiner {name!r}; registered: {', '.join(list_refiners())}") from None
    return factory(**kwargs)
