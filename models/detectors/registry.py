"""The face-detector registry: every family registers its constructors by name (timm-style).

Adding a detector touches one file: decorate a factory that returns a
:class:`models.detectors.base.FaceDetector`.

    >>> from models.detectors import create_detector, list_detectors
    >>> list_detectors("scrfd*")
    ['scrfd']
    >>> detector = create_detector("scrfd", device="cpu")               # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from models.detectors.base import FaceDetector

Factory = TypeVar("Factory", bound=Callable[..., "FaceDetector"])

_DETECTORS: dict[str, Callable[..., FaceDetector]] = {}


def register_detector(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory`` under ``name``; a second registration of the same name is an error."""

    def decorate(factory: Factory) -> Factory:
        if name in _DETECTORS:
            raise ValueError(f"face detector {name!r} is already registered")
        _DETECTORS[name] = factory
        return factory

    return decorate


def list_detectors(pattern: str | None = None) -> list[str]:
    """Registered detector names, sorted; ``pattern`` is a shell-style filter such as ``'scrfd*'``."""
    names = sorted(_DETECTORS)
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names


def create_detector(name: str, **kwargs) -> FaceDetector:
    """Build the detector registered as ``name``; ``kwargs`` go to its factory (model path, device, ...)."""
    try:
        factory = _DETECTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown face detector {name!r}; registered: {', '.join(list_detectors())}"
        ) from None
    return factory(**kwargs)
