"""Face quality and the per-scene budget (paper 3.2: keep "a twenty-fold number of clips than the
expected scale of the final dataset").

Clips that pass every rule are ranked by a face-quality score within their scene; the best
``budget = ceil(budget_factor x target)`` stay, the rest are dropped with reason ``over_budget`` and their
rank as the value. When fewer clips pass than the budget allows, all of them stay: the budget is a cap,
and the FER refiner (stage 4) thins the candidates further.

Quality multiplies, each in [0, 1]: face presence, detection score, frontality ``cos(yaw)``, size
``min(1, face_frac / 0.3)`` and sharpness ``s / (s + 0.1)``. A large, sharp, frontal face seen in every
sample scores near its detection score.

    >>> ranked = apply_budget(candidates_df, budget=36000)            # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

FULL_SIZE_FRAC = 0.3  # a face this tall (fraction of frame height) or taller counts as full size
SHARP_HALF = 0.1  # the sharpness at which the sharpness factor is one half


def face_quality(measures: Mapping[str, float]) -> float:
    """The quality score of a clip's dominant face, 0 when a needed measure is missing."""

    def get(key: str) -> float:
        value = measures.get(key, math.nan)
        return math.nan if value is None else float(value)

    presence, score, yaw = get("presence"), get("score"), get("yaw")
    frac, sharp = get("face_frac"), get("sharpness")
    if any(math.isnan(v) for v in (presence, score, yaw, frac, sharp)):
        return 0.0
    frontal = max(0.0, math.cos(math.radians(yaw)))
    size = min(1.0, frac / FULL_SIZE_FRAC)
    crisp = max(sharp, 0.0) / (max(sharp, 0.0) + SHARP_HALF)
    return presence * score * frontal * size * crisp


def apply_budget(df: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Rank the rule-passing rows (``keep`` true) by ``quality`` (ties: ``clip_id``) and drop those
    beyond ``budget``. Returns a copy with ``rank`` set for ranked rows (1 = best) and null otherwise."""
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    out = df.copy()
    out["rank"] = pd.array([None] * len(out), dtype="Int32")
    passed = out[out["keep"].astype(bool)].sort_values(["quality", "clip_id"], ascending=[False, True])
    ranks = pd.Series(range(1, len(passed) + 1), index=passed.index, dtype="Int32")
    out.loc[passed.index, "rank"] = ranks
    over = ranks[ranks > budget].index
    out.loc[over, "keep"] = False
    out.loc[over, "reason"] = "over_budget"
    out.loc[over, "value"] = ranks[over].astype(float)
    return out
