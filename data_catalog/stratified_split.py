"""The release's 80/20 train/test split (paper, section 4.1): stratified by (scene, label) and seeded, so
every scene, scenario and the whole set are split 80/20 per class, and the same labels and seed always give
the same split. The release export and the benchmark splits both use it.

    >>> stratified_split(labels, test_fraction=0.2, seed=0)                      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd


def stratified_split(labels: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0) -> pd.Series:
    """``'train'``/``'test'`` per row of ``labels`` (columns ``clip_id``, ``scene``, ``label``): within each
    (scene, label) group, a seeded shuffle puts ``round(n * test_fraction)`` clips in test, so every scene,
    scenario and the whole set are split 80/20 per class (paper, section 4.1). Order of rows is irrelevant."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    out = pd.Series("train", index=labels.index, dtype=object)
    for (scene, label), group in labels.groupby(["scene", "label"], sort=True):
        ids = group.sort_values("clip_id")
        key = hashlib.sha256(f"{seed}/{scene}/{label}".encode()).digest()[:8]
        rng = np.random.default_rng(int.from_bytes(key, "little"))
        n_test = math.floor(len(ids) * test_fraction + 0.5)
        out.loc[ids.index[rng.permutation(len(ids))[:n_test]]] = "test"
    return out
