"""Registries for model families (timm-style): each family registers its constructors by name.

    >>> detectors = Registry("face detector")
    >>> @detectors.register("scrfd")
    ... def scrfd(**kw): ...
    >>> detectors.names("scr*")
    ['scrfd']

Adding a model touches one file: decorate its factory. Unknown names are errors listing the known ones.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
Factory = TypeVar("Factory", bound=Callable[..., object])


class Registry(Generic[T]):
    """Named factories of one model family; ``kind`` names the family in error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Factory], Factory]:
        """Register a factory under ``name``; a second registration of the same name is an error."""

        def decorate(factory: Factory) -> Factory:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return decorate

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, sorted; ``pattern`` is a shell-style filter such as ``'res*'``."""
        names = sorted(self._factories)
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names

    def create(self, name: str, **kwargs) -> T:
        """Build the model registered as ``name``; ``kwargs`` go to its factory."""
        try:
            factory = self._factories[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}") from None
        return factory(**kwargs)
