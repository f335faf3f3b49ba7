"""Stage 4b: prior-matched subsampling of the FER-refined clips (paper, section 3.2).

"With the prospect that the scale of filtered clips is double of the final dataset scale, we randomly
remove some clips and keep the latency distribution of estimated expressions fit the real-world." Per
scene we keep ``factor x target`` clips (default 2x the release's size of the scene) whose *predicted*
expressions follow a prior: by default the realised test distribution of the public release.

    >>> result = subsample(scores, release_prior(), n=100, seed=0)            # doctest: +SKIP
    >>> result.table[["expression", "target", "achieved", "shortfall"]]
    >>> subsample_scene("Terror", cfg.subsample, ctx, catalog)                  # writes `selections`
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from data_catalog.io import Catalog, PartRef
from data_catalog.lineage import RunContext
from data_catalog.release_counts import release_prior, release_scene_sizes
from data_catalog.section import Section
from keywords.taxonomy import load_taxonomy
from tasks.reporting import markdown_table, pyplot, save_figure, write_report_text

log = logging.getLogger(__name__)

STAGE = "subsample"
PART = "0000"


class SubsampleConfig(Section):
    """Which prior the kept clips follow and how many a scene keeps.

    ``prior``: ``'release'`` (the release's distribution over ``prior_split``, the same for every scene),
    ``'per_scene'`` (each scene's own distribution in the release) or explicit weights per expression.
    ``targets``: final clips per scene (default: the release's size of that scene); ``factor`` times that
    many are kept for annotation.
    """

    prior: Literal["release", "per_scene"] | dict[str, float] = "release"
    prior_split: Literal["train", "test", "all"] = "test"
    targets: dict[str, int] = Field(default_factory=dict)
    factor: float = Field(2.0, gt=0)
    seed: int = 0

    @field_validator("prior")
    @classmethod
    def _weights(cls, value: str | dict[str, float]) -> str | dict[str, float]:
        if isinstance(value, dict):
            expressions = load_taxonomy().expressions
            unknown = sorted(set(value) - set(expressions))
            if unknown:
                raise ValueError(f"unknown expressions {unknown}; valid: {', '.join(expressions)}")
            if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
                raise ValueError("prior weights must be non-negative with a positive sum")
        return value

    @field_validator("targets")
    @classmethod
    def _scenes(cls, value: dict[str, int]) -> dict[str, int]:
        scenes = load_taxonomy().scene_names
        unknown = sorted(set(value) - set(scenes))
        if unknown:
            raise ValueError(f"unknown scenes {unknown}; valid: {', '.join(scenes)}")
        small = {scene: n for scene, n in value.items() if n < 1}
        if small:
            raise ValueError(f"targets must be at least 1 clip per scene, got {small}")
        return value

    def prior_for(self, scene: str) -> dict[str, float]:
        """The normalised prior for ``scene``, in ``emotions.yaml`` order."""
        if self.prior == "release":
            return release_prior(split=self.prior_split)
        if self.prior == "per_scene":
            return release_prior(scene, split=self.prior_split)
        return normalise(self.prior)

    def target_for(self, scene: str) -> int:
        """The final dataset size for ``scene`` (the one place targets live; the face filter keeps 20x this,
        the subsampling ``factor`` x this)."""
        if scene in self.targets:
            return self.targets[scene]
        sizes = release_scene_sizes()
        if scene not in sizes:
            raise ValueError(
                f"scene {scene!r} has no size in the FERV39k release; set subsample.targets.{scene}"
            )
        return sizes[scene]

    def size_for(self, scene: str) -> int:
        """Clips ``scene`` keeps: ``factor`` x its target."""
        return math.floor(self.factor * self.target_for(scene) + 0.5)


def normalise(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights over the taxonomy's expressions (missing ones 0) scaled to sum to 1, in label order."""
    expressions = load_taxonomy().expressions
    unknown = sorted(set(weights) - set(expressions))
    if unknown:
        raise ValueError(f"unknown expressions {unknown} in prior; valid: {', '.join(expressions)}")
    total = float(sum(weights.values()))
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"prior weights must be non-negative with a positive sum, got {dict(weights)}")
    return {e: float(weights.get(e, 0.0)) / total for e in expressions}


def largest_remainder(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Integers summing to ``total`` in proportion to ``weights`` (Hamilton's method); ties go to the larger
    weight, then to the earlier key."""
    keys = list(weights)
    w = np.array([weights[k] for k in keys], dtype=float)
    if total <= 0 or not len(keys) or w.sum() <= 0:
        return dict.fromkeys(keys, 0)
    exact = total * w / w.sum()
    base = np.floor(exact).astype(int)
    rest = exact - base
    for i in sorted(range(len(keys)), key=lambda i: (-rest[i], -w[i], i))[: total - int(base.sum())]:
        base[i] += 1
    return {k: int(b) for k, b in zip(keys, base, strict=True)}


def _capped(total: int, weights: Mapping[str, float], available: Mapping[str, int]) -> dict[str, int]:
    """Largest-remainder quotas, where a class whose quota exceeds its pool takes all of it and the rest is
    shared again among the others in proportion to their weights, until every quota fits."""
    fixed: dict[str, int] = {}
    while True:
        free = {c: w for c, w in weights.items() if c not in fixed and w > 0}
        quotas = largest_remainder(total - sum(fixed.values()), free)
        over = [c for c in free if quotas[c] > available.get(c, 0)]
        if not over:
            return {c: fixed.get(c, quotas.get(c, 0)) for c in weights}
        fixed.update({c: available.get(c, 0) for c in over})


def allocate(n: int, prior: Mapping[str, float], available: Mapping[str, int]) -> dict[str, int]:
    """Clips to take per class so that ``n`` clips (at most the pool) follow ``prior`` as closely as the
    pool allows. Classes with prior 0 are used only once every other class is exhausted."""
    n = min(n, sum(available.values()))
    quotas = _capped(n, prior, available)
    left = n - sum(quotas.values())
    if left > 0:  # every class of positive prior is exhausted: fill from the others by availability
        spare = {c: float(available.get(c, 0)) for c in prior if prior[c] <= 0}
        extra = _capped(left, spare, available)
        quotas = {c: quotas[c] + extra.get(c, 0) for c in prior}
    return quotas


def divergence(counts: Mapping[str, int], prior: Mapping[str, float]) -> tuple[float, float]:
    """(KL(achieved || prior) in nats, total variation distance) of a class histogram against the prior.
    KL is infinite when clips were taken from a class the prior gives no weight; both are 0 for no clips."""
    total = sum(counts.values())
    if total == 0:
        return 0.0, 0.0
    kl, tv = 0.0, 0.0
    for c, p in prior.items():
        q = counts.get(c, 0) / total
        tv += abs(q - p) / 2
        if q > 0:
            kl += q * math.log(q / p) if p > 0 else math.inf
    return kl, tv


@dataclass(frozen=True)
class SubsampleResult:
    """The selected clip ids in selection order, and per class: prior, available, target (the quota the
    prior alone asks for), achieved and shortfall; with the divergence of the selection from the prior."""

    selected: list[str]
    table: pd.DataFrame
    n_requested: int
    kl: float
    tv: float

    @property
    def n_selected(self) -> int:
        return len(self.selected)

    @property
    def shortfalls(self) -> dict[str, int]:
        """Classes whose pool could not meet their target: how many clips they lack."""
        short = self.table[self.table["shortfall"] > 0]
        return dict(zip(short["expression"], short["shortfall"].astype(int), strict=True))


def subsample(scores: pd.DataFrame, prior: Mapping[str, float], n: int, seed: int) -> SubsampleResult:
    """Select ``n`` clips of ``scores`` (columns ``clip_id``, ``label``) whose predicted labels follow
    ``prior`` as closely as the pool allows.

    Method: quotas are the largest-remainder rounding of ``n * prior``; where a class's pool is short it is
    taken whole and the shortfall is redistributed to the other classes in proportion to the prior,
    repeatedly, until every quota fits. Short classes sit at their pool size and every other class at or
    above its share, so the L1 distance between the achieved counts and ``n * prior`` is twice the total
    shortfall: the minimum possible subject to availability. Within each class clips are drawn uniformly
    at random (seeded; ids sorted first, so the input order does not matter). The selection order
    interleaves classes so every prefix of the selection also follows the quotas.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    missing = {"clip_id", "label"} - set(scores.columns)
    if missing:
        raise ValueError(f"scores lack columns {sorted(missing)}")
    if scores["clip_id"].duplicated().any():
        dupes = sorted(scores.loc[scores["clip_id"].duplicated(), "clip_id"].unique())[:5]
        raise ValueError(f"scores have duplicate clip ids, e.g. {dupes}")
    prior = normalise(prior)
    unknown = sorted(set(scores["label"]) - set(prior))
    if unknown:
        raise ValueError(f"scores carry labels {unknown} outside the prior's classes {list(prior)}")
    pools = {c: sorted(scores.loc[scores["label"] == c, "clip_id"]) for c in prior}
    available = {c: len(ids) for c, ids in pools.items()}
    targets = largest_remainder(n, prior)
    quotas = allocate(n, prior, available)

    rng = np.random.default_rng(seed)
    keyed = []
    for index, (c, ids) in enumerate(pools.items()):
        picks = rng.permutation(len(ids))[: quotas[c]]
        keyed += [((k + 0.5) / quotas[c], index, ids[i]) for k, i in enumerate(picks)]
    selected = [clip for *_, clip in sorted(keyed)]

    table = pd.DataFrame(
        {
            "expression": list(prior),
            "prior": list(prior.values()),
            "available": [available[c] for c in prior],
            "target": [targets[c] for c in prior],
            "achieved": [quotas[c] for c in prior],
        }
    )
    table["shortfall"] = (table["target"] - table["achieved"]).clip(lower=0)
    total = max(int(table["achieved"].sum()), 1)
    table["achieved_share"] = table["achieved"] / total
    kl, tv = divergence(quotas, prior)
    return SubsampleResult(selected, table, n, kl, tv)


def scene_seed(seed: int, scene: str) -> int:
    """A per-scene seed, so scenes draw independently but reproducibly."""
    return zlib.crc32(f"{seed}/{scene}".encode())


def scored_clips(catalog: Catalog, scene: str, run_id: str | None = None) -> pd.DataFrame:
    """The scene's clips the refiner scored successfully (latest score per clip; one run's when given)."""
    scores = catalog.read("fer_scores", scene=scene, run_id=run_id, latest=True)
    if "status" in scores.columns:
        scores = scores[scores["status"] == "ok"]
    return scores[["clip_id", "scene", "label"]].reset_index(drop=True)


def subsample_scene(
    scene: str,
    cfg: SubsampleConfig,
    ctx: RunContext,
    catalog: Catalog,
    *,
    force: bool = False,
    input_run_id: str | None = None,
) -> PartRef:
    """Read the scene's ``fer_scores``, select ``cfg.size_for(scene)`` clips, write ``selections`` (every
    scored clip, ``selected`` True/False, ``order`` among the selected); scores of run ``input_run_id``, or the
    latest per clip over all runs when None. A part already written by this run
    is finished work: it is returned as is unless ``force``."""
    if catalog.has_part("selections", scene, ctx.run_id, PART) and not force:
        path = catalog.part_path("selections", scene, ctx.run_id, PART)
        return PartRef(
            "selections", scene, ctx.run_id, PART, str(path), pq.ParquetFile(path).metadata.num_rows
        )
    scores = scored_clips(catalog, scene, input_run_id)
    result = subsample(scores, cfg.prior_for(scene), cfg.size_for(scene), scene_seed(cfg.seed, scene))
    order = {clip: i for i, clip in enumerate(result.selected)}
    lineage = ctx.lineage(STAGE)
    rows = [
        {
            "clip_id": r.clip_id,
            "scene": scene,
            "label": r.label,
            "selected": r.clip_id in order,
            "order": order.get(r.clip_id),
            **lineage,
        }
        for r in scores.itertuples()
    ]
    if result.shortfalls:
        log.info("%s: pool short of the prior's quotas: %s", scene, result.shortfalls)
    return catalog.write("selections", rows, scene=scene, run_id=ctx.run_id, part=PART)


# --- report: target vs achieved, per class and scene -----------------------------------------------------


def subsample_summary(catalog: Catalog, cfg: SubsampleConfig) -> pd.DataFrame:
    """Per scene and expression: prior, available, target, achieved, shortfall, and the scene's KL and TV,
    recomputed from the ``selections`` manifest and the config's prior and sizes."""
    sel = catalog.read("selections", latest=True)
    frames = []
    for scene, group in sel.groupby("scene", sort=True):
        prior = cfg.prior_for(str(scene))
        n = cfg.size_for(str(scene))
        achieved = group[group["selected"].astype(bool)]["label"].value_counts()
        counts = {c: int(achieved.get(c, 0)) for c in prior}
        available = group["label"].value_counts()
        targets = largest_remainder(n, prior)
        kl, tv = divergence(counts, prior)
        frames.append(
            pd.DataFrame(
                {
                    "scene": scene,
                    "expression": list(prior),
                    "prior": list(prior.values()),
                    "available": [int(available.get(c, 0)) for c in prior],
                    "target": [targets[c] for c in prior],
                    "achieved": [counts[c] for c in prior],
                    "kl": kl,
                    "tv": tv,
                }
            )
        )
    columns = ["scene", "expression", "prior", "available", "target", "achieved", "kl", "tv", "shortfall"]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    out["shortfall"] = (out["target"] - out["achieved"]).clip(lower=0)
    return out[columns]


def write_subsample_report(summary: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """``subsample.csv`` / ``subsample.md`` (target vs achieved per class and scene, shortfalls, KL, TV), a
    grouped bar chart ``subsample_target_vs_achieved.png`` and ``subsample_divergence.png``."""
    plt = pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "subsample.csv", out / "subsample.md"
    summary.to_csv(csv_path, index=False)
    per_scene = summary.groupby("scene", sort=True).agg(
        target=("target", "sum"), achieved=("achieved", "sum"), shortfall=("shortfall", "sum"),
        kl=("kl", "first"), tv=("tv", "first"),
    ).reset_index()  # fmt: skip
    write_report_text(
        md_path,
        "# Prior-matched subsampling (paper, section 3.2)\n\n## Per scene\n\n"
        + markdown_table(per_scene)
        + "\n## Per scene and expression\n\n"
        + markdown_table(summary),
    )

    expressions = list(dict.fromkeys(summary["expression"]))
    panels = [("All scenes", summary)] + [(str(s), g) for s, g in summary.groupby("scene", sort=True)]
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    x = np.arange(len(expressions))
    for ax, (title, group) in zip(axes.flat, panels, strict=False):
        sums = group.groupby("expression")[["target", "achieved"]].sum().reindex(expressions)
        ax.bar(x - 0.2, sums["target"], 0.4, label="target")
        ax.bar(x + 0.2, sums["achieved"], 0.4, label="achieved")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(x, [e[:3] for e in expressions], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Selected clips per predicted expression: target vs achieved")
    fig.tight_layout()
    bars = save_figure(fig, out / "subsample_target_vs_achieved.png")

    fig, (ax_kl, ax_tv) = plt.subplots(1, 2, figsize=(max(8, 0.45 * len(per_scene) * 2), 4))
    pos = np.arange(len(per_scene))
    ax_kl.bar(pos, per_scene["kl"].replace(np.inf, np.nan), color="tab:purple")
    ax_kl.set_title("KL(achieved || prior), nats")
    ax_tv.bar(pos, per_scene["tv"], color="tab:green")
    ax_tv.set_title("Total variation distance")
    for ax in (ax_kl, ax_tv):
        ax.set_xticks(pos, per_scene["scene"], rotation=70, fontsize=7)
    fig.tight_layout()
    div = save_figure(fig, out / "subsample_divergence.png")
    return [csv_path, md_path, bars, div]
