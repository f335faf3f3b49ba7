"""Balance hours per scene: "we sort and randomly remove some of the videos ... with balanced time
distribution of scenes" (paper, section 3.2).

Per scene, candidates outside the duration range are dropped (``too_short`` / ``too_long``); the rest are
shuffled with a seed and taken in that order while the scene's total stays within its target, skipping a
video that would overshoot; what is left is ``over_scene_target``. Hours already selected by earlier runs
count first, so a re-crawl only tops a scene up. The default target is equal hours for every crawled scene
of a scenario: as many as its least-covered scene can reach.

    >>> sel = balance(frame, committed={}, targets={"Terror": 2.0}, cfg=cfg)        # doctest: +SKIP
    >>> sel.loc[sel.selected, "duration"].sum() / 3600 <= 2.0
    True
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.crawl.config import CrawlConfig


@dataclass(frozen=True)
class SceneBalance:
    """The balance report of one scene: target vs achieved hours."""

    scene: str
    scenario: str
    target_hours: float
    achieved_hours: float
    available_hours: float
    n_candidates: int
    n_selected: int
    n_unknown_duration: int


def eligible_reason(duration: float | None, cfg: CrawlConfig) -> str | None:
    """Why a candidate of this duration cannot be selected, or None when it can."""
    if duration is None or pd.isna(duration):
        return "unknown_duration" if cfg.unknown_duration == "skip" else None
    if duration < cfg.min_duration_s:
        return "too_short"
    if duration > cfg.max_duration_s:
        return "too_long"
    return None


def available_hours(
    candidates: pd.DataFrame, committed: Mapping[str, float], cfg: CrawlConfig
) -> dict[str, float]:
    """Hours per scene that balancing can reach: earlier selections plus eligible new candidates."""
    mask = candidates["duration"].map(lambda d: eligible_reason(d, cfg) is None).astype(bool)
    eligible = candidates.loc[mask]
    new = eligible.groupby("scene")["duration"].sum(min_count=0) / 3600
    scenes = set(candidates["scene"]) | set(committed)
    return {s: float(committed.get(s, 0.0)) + float(new.get(s, 0.0)) for s in sorted(scenes)}


def scene_targets(
    available: Mapping[str, float], scenario_of: Mapping[str, str], cfg: CrawlConfig
) -> dict[str, float]:
    """Target hours per scene: ``scene_target_hours``, else ``target_hours``, else equal hours within each
    scenario (the smallest non-zero available total among that scenario's crawled scenes)."""
    by_scenario: dict[str, float] = {}
    for scene, hours in available.items():
        if hours > 0:  # a scene that found nothing cannot hold the others back
            sc = scenario_of[scene]
            by_scenario[sc] = min(by_scenario.get(sc, hours), hours)
    targets = {}
    for scene in available:
        if scene in cfg.scene_target_hours:
            targets[scene] = cfg.scene_target_hours[scene]
        elif cfg.target_hours is not None:
            targets[scene] = cfg.target_hours
        else:
            targets[scene] = by_scenario.get(scenario_of[scene], 0.0)
    return targets


def _rng(seed: int, scene: str) -> np.random.Generator:
    # Seeded per scene, so adding a scene to a crawl does not reshuffle the others.
    return np.random.default_rng([seed, zlib.crc32(scene.encode())])


def balance(
    candidates: pd.DataFrame, committed: Mapping[str, float], targets: Mapping[str, float], cfg: CrawlConfig
) -> pd.DataFrame:
    """Choose candidates (columns ``video_id``, ``scene``, ``duration`` in seconds, may be null).

    ``committed`` holds the hours per scene already selected by earlier runs. Returns the candidates with
    ``selected`` (bool) and ``reason`` (null when selected) columns, in the input order.
    """
    out = candidates.copy()
    out["reason"] = [eligible_reason(d, cfg) for d in out["duration"]]
    out["selected"] = False
    for scene, group in out.groupby("scene", sort=True):
        budget = targets[scene] * 3600.0 - committed.get(scene, 0.0) * 3600.0
        ok = group[group["reason"].isna()]
        unknown = ok[ok["duration"].isna()]
        known = ok[ok["duration"].notna()].sort_values("video_id", kind="stable")  # order-independent
        order = known.index[_rng(cfg.seed, str(scene)).permutation(len(known))]
        total = 0.0
        for idx in order:
            d = float(out.at[idx, "duration"])
            if total + d <= budget + 1e-6:  # hours -> seconds round trips must not drop an exact fit
                out.at[idx, "selected"] = True
                total += d
            else:
                out.at[idx, "reason"] = "over_scene_target"
        out.loc[unknown.index, "selected"] = True  # cannot be balanced; counted once downloaded
    return out


def report(
    balanced: pd.DataFrame,
    committed: Mapping[str, float],
    available: Mapping[str, float],
    targets: Mapping[str, float],
    scenario_of: Mapping[str, str],
) -> list[SceneBalance]:
    """Target vs achieved hours per scene, after :func:`balance`."""
    rows = []
    for scene in targets:
        g = balanced[balanced["scene"] == scene]
        sel = g[g["selected"]]
        rows.append(
            SceneBalance(
                scene=scene,
                scenario=scenario_of[scene],
                target_hours=targets[scene],
                achieved_hours=committed.get(scene, 0.0) + float(sel["duration"].fillna(0).sum()) / 3600,
                available_hours=available[scene],
                n_candidates=len(g),
                n_selected=len(sel),
                n_unknown_duration=int(sel["duration"].isna().sum()),
            )
        )
    return rows
