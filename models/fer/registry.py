"""The FER refiner registry: every family registers its constructors by name (timm-style).

Adding a refiner touches one file: decorate a factory that returns a :class:`models.fer.refiner.Refiner`.

    >>> from models.fer import create_refiner, list_refiners
    >>> list_refiners("mini*")
    ['mini-xception']
    >>> refiner = create_refiner("mini-xception", device="cpu")      # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.registry import Registry

if TYPE_CHECKING:
    from models.fer.refiner import Refiner

_REGISTRY: Registry[Refiner] = Registry("FER refiner")

#: Decorator: ``@register_refiner("name")`` on a factory returning a :class:`models.fer.refiner.Refiner`.
register_refiner = _REGISTRY.register
#: Registered names, sorted; an optional shell-style pattern filters them.
list_refiners = _REGISTRY.names
#: Build the model registered under a name; keyword arguments go to its factory.
create_refiner = _REGISTRY.create
