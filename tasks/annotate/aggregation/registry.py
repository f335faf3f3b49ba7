"""The one list of aggregation methods: each aggregator registers a factory here by name.

The names the config accepts (``annotate.method``), the CLI's ``--method`` choices and help, and the methods
the simulator compares all come from :data:`AGGREGATORS`; adding a method is one decorated factory in its
own module. A factory takes the label space and the ``annotate`` config section (for its parameters).

    >>> AGGREGATORS.names()
    ['dawid_skene', 'majority', 'wwta']
    >>> agg = create_aggregator("majority", ["Angry", "Happy"], AnnotateConfig())    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from models.registry import Registry
from tasks.annotate.aggregation.base import Aggregator

AGGREGATORS: Registry[Aggregator] = Registry("aggregation method")


def create_aggregator(method: str, labels: Sequence[str], cfg: Any) -> Aggregator:
    """The aggregator registered as ``method`` over ``labels``, parameterised by ``cfg`` (the ``annotate``
    section); an unknown method is an error listing the registered ones."""
    return AGGREGATORS.create(method, labels=list(labels), cfg=cfg)
