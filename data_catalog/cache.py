"""Where fetched files (assets, refiner weights, Prefect's home) are kept on this machine.

At the bottom of the layers so the asset registry, the refiners' weights and the config's ``storage``
section share one answer without importing upward.

    >>> default_cache_dir()                                # doctest: +SKIP
    PosixPath('/home/me/.cache/ferv')
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """Where fetched assets live: ``$FERV_CACHE``, else ``$XDG_CACHE_HOME/ferv``, else ``~/.cache/ferv``."""
    if os.environ.get("FERV_CACHE"):
        return Path(os.environ["FERV_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ferv"


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` (``~`` expanded) when given, else :func:`default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
