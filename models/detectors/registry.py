"""The face-detector registry: every family registers its constructors by name (timm-style).

Adding a detector touches one file: decorate a factory that returns a
:class:`models.detectors.base.FaceDetector`.

    >>> from models.detectors import create_detector, list_detectors
    >>> list_detectors("scrfd*")
    ['scrfd']
    >>> detector = create_detector("scrfd", device="cpu")               # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.registry import Registry

if TYPE_CHECKING:
    from models.detectors.base import FaceDetector

_REGISTRY: Registry[FaceDetector] = Registry("face detector")

#: Decorator: ``@register_detector("name")`` on a factory returning a :class:`models.detectors.base.FaceDetector`.
register_detector = _REGISTRY.register
#: Registered names, sorted; an optional shell-style pattern filters them.
list_detectors = _REGISTRY.names
#: Build the model registered under a name; keyword arguments go to its factory.
create_detector = _REGISTRY.create
