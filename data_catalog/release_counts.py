"""Reference counts of the public FERV39k release (38,935 clips): clips per scene, split and expression,
shipped as ``data_catalog/reference/ferv39k_release_counts.csv``. The subsampling stage matches its
expression prior and takes its per-scene sizes as default targets; the annotation simulator draws labels
from it.

    >>> release_scene_sizes()["Action"]
    804
    >>> round(sum(release_prior("Action").values()), 6)
    1.0
"""

from __future__ import annotations

import functools
import io
from importlib import resources

import pandas as pd

from keywords.taxonomy import load_taxonomy


@functools.lru_cache(maxsize=1)
def _release_counts() -> pd.DataFrame:
    ref = resources.files("data_catalog") / "reference" / "ferv39k_release_counts.csv"
    return pd.read_csv(io.StringIO(ref.read_text(encoding="utf-8")))


def release_counts() -> pd.DataFrame:
    """Clips per scene, split and expression of the public release (38,935 clips): one row per
    (scene, split), one column per expression, and ``total``."""
    return _release_counts().copy()


def release_prior(scene: str | None = None, split: str = "test") -> dict[str, float]:
    """The release's realised expression distribution, in ``emotions.yaml`` order: overall, or of one
    scene; over the ``'train'``, ``'test'`` or ``'all'`` clips."""
    counts = release_counts()
    if split not in ("train", "test", "all"):
        raise ValueError(f"unknown split {split!r}; use 'train', 'test' or 'all'")
    if split != "all":
        counts = counts[counts["split"] == split]
    if scene is not None:
        if scene not in set(counts["scene"]):
            raise ValueError(
                f"scene {scene!r} is not in the FERV39k release; its scenes: {', '.join(release_scenes())}"
            )
        counts = counts[counts["scene"] == scene]
    expressions = load_taxonomy().expressions
    totals = counts[list(expressions)].sum()
    return {e: float(totals[e] / totals.sum()) for e in expressions}


def release_scenes() -> list[str]:
    return sorted(set(release_counts()["scene"]))


def release_scene_sizes() -> dict[str, int]:
    """Clips per scene in the release (train + test): the default per-scene target size."""
    return {str(k): int(v) for k, v in release_counts().groupby("scene")["total"].sum().items()}
