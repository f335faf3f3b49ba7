"""The benchmark protocol's splits (paper, section 4.1): 27 setups and the cross-scenario ones.

"Video clips of all scenes are randomly shuffled and split into training (80%) and testing (20%) without
overlapping, which forms 27 kinds of configurations consisting of 22 setups for each scene, 4 setups for
isolated scenarios and 1 setup for all scenes." The split is drawn once over all clips, stratified by
(scene, label) and seeded (:func:`data_catalog.stratified_split.stratified_split`, the function
``ferv export`` uses; the benchmark splits only clips that have face crops, so the two agree where every
labelled clip has crops); every setup is a restriction of it, so a clip keeps its side in every setup and no
clip is on both sides. As in the paper, the unit is the clip: clips cut from one source video can fall on
both sides. Labels that carry their own split (an imported release) keep it.

Setup names: ``All``, the scenario codes (``DL``, ``WIS``, ``SIA``, ``AI``), the scene names, and the
cross-scenario setups ``<A>-to-<B>`` (paper, Table 3): scenario A's train side, scenario B's test side.

    >>> splits = build_splits(labels, seed=0)                                    # doctest: +SKIP
    >>> splits.query("setup == 'DL-to-WIS' and side == 'test'").clip_id
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from data_catalog.stratified_split import stratified_split
from keywords.taxonomy import load_taxonomy

if TYPE_CHECKING:
    from data_catalog.io import Catalog, PartRef
    from data_catalog.lineage import RunContext

STAGE = "benchmark.splits"
ALL = "All"
SIDES = ("train", "test")
CROSS = "-to-"
SPLIT_COLUMNS = ["setup", "clip_id", "scene", "label", "side", "split_source"]


def protocol_setups() -> list[str]:
    """The 27 setups of the full taxonomy: All, the 4 scenarios, the 22 scenes."""
    tax = load_taxonomy()
    return [ALL, *tax.scenarios, *tax.scene_names]


def cross_setups(scenarios: Iterable[str] | None = None) -> list[str]:
    """``<A>-to-<B>`` for every ordered pair of distinct scenarios (12 with the full taxonomy)."""
    codes = list(scenarios) if scenarios is not None else list(load_taxonomy().scenarios)
    return [f"{a}{CROSS}{b}" for a in codes for b in codes if a != b]


def parse_setup(setup: str) -> tuple[str, str]:
    """``(train_setup, test_setup)`` of a setup name: the same name twice, or the two scenarios of a
    cross-scenario setup. Unknown names are an error listing the kinds of valid names."""
    tax = load_taxonomy()
    if CROSS in setup:
        a, b = setup.split(CROSS, 1)
        if a in tax.scenarios and b in tax.scenarios and a != b:
            return a, b
    elif setup == ALL or setup in tax.scenarios or setup in tax.scene_names:
        return setup, setup
    raise ValueError(
        f"unknown setup {setup!r}; use {ALL!r}, a scenario ({', '.join(tax.scenarios)}), a scene "
        f"(see `ferv scenes`) or a cross-scenario setup such as 'DL{CROSS}WIS'"
    )


def group_members(setup: str, frame: pd.DataFrame) -> pd.Series:
    """Boolean mask of the rows of ``frame`` (columns ``scene``, ``scenario``) that belong to a single
    (non-cross) setup."""
    if setup == ALL:
        return pd.Series(True, index=frame.index)
    tax = load_taxonomy()
    if setup in tax.scenarios:
        return frame["scenario"] == setup
    if setup in tax.scene_names:
        return frame["scene"] == setup
    raise ValueError(f"{setup!r} is not All, a scenario or a scene")


def assign_sides(labels: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """``labels`` (``clip_id``, ``scene``, ``label``, optional ``split``) with ``side``, ``scenario`` and
    ``split_source``: the labels' own split where present, else the seeded stratified split."""
    tax = load_taxonomy()
    required = {"clip_id", "scene", "label"}
    missing = sorted(required - set(labels.columns))
    if missing:
        raise ValueError(f"labels lack columns {missing}; expected {sorted(required)} (+ optional 'split')")
    if labels["clip_id"].duplicated().any():
        dupes = sorted(labels.loc[labels["clip_id"].duplicated(), "clip_id"])[:5]
        raise ValueError(f"labels list clips more than once: {dupes}")
    out = labels.reset_index(drop=True).copy()
    own = out["split"] if "split" in out else pd.Series(None, index=out.index, dtype=object)
    bad = sorted(set(own.dropna()) - set(SIDES))
    if bad:
        raise ValueError(f"labels carry unknown split values {bad}; expected 'train' or 'test'")
    out["scenario"] = [tax.scene(s).scenario for s in out["scene"]]
    has_own = own.notna()
    out["side"] = own
    out["split_source"] = "labels"
    if (~has_own).any():
        out.loc[~has_own, "side"] = stratified_split(out[~has_own], test_fraction, seed)
        out.loc[~has_own, "split_source"] = "stratified"
    return out


def build_splits(labels: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """The ``splits`` rows (:data:`SPLIT_COLUMNS`) of every setup the labels populate: All, each scenario
    and scene present, and each cross-scenario pair of present scenarios."""
    sided = assign_sides(labels, test_fraction, seed)
    frames = []
    present = [s for s in protocol_setups() if group_members(s, sided).any()]
    for setup in present:
        frames.append(sided[group_members(setup, sided)].assign(setup=setup))
    scenarios = [s for s in load_taxonomy().scenarios if s in set(sided["scenario"])]
    for setup in cross_setups(scenarios):
        a, b = setup.split(CROSS)
        train = sided[(sided["scenario"] == a) & (sided["side"] == "train")]
        test = sided[(sided["scenario"] == b) & (sided["side"] == "test")]
        frames.append(pd.concat([train, test]).assign(setup=setup))
    return pd.concat(frames, ignore_index=True)[SPLIT_COLUMNS]


def members(splits: pd.DataFrame, setup: str, side: str) -> pd.DataFrame:
    """The rows of ``splits`` on one side of one setup; an absent setup is an error naming those present."""
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}; use 'train' or 'test'")
    rows = splits[splits["setup"] == setup]
    if rows.empty:
        present = sorted(set(splits["setup"]))
        raise ValueError(
            f"setup {setup!r} has no clips in these splits; setups present: {', '.join(present)}"
        )
    return rows[rows["side"] == side]


def write_splits(catalog: Catalog, splits: pd.DataFrame, ctx: RunContext) -> list[PartRef]:
    """Write the ``splits`` manifest, one part per clip scene (a rerun of the same run replaces them)."""
    lineage = ctx.lineage(STAGE)
    return [
        catalog.write("splits", group.assign(**lineage), scene=str(scene), run_id=ctx.run_id)
        for scene, group in splits.groupby("scene", sort=True)
    ]


def export_setups(
    splits: pd.DataFrame,
    out_dir: str | os.PathLike,
    path_root: str | None = None,
    n_frames: Mapping[str, int] | None = None,
) -> list[Path]:
    """Write the 27 setups as the release's ``4_setups`` files (the line styles of
    :mod:`data_catalog.formats.ferv39k_release`; DFER-CLIP's needs ``n_frames``, clip id -> frames);
    clip folders are named by clip id under ``<path_root>/2_ClipsforFaceCrop/<Scene>/<Emotion>/``."""
    from data_catalog.formats.ferv39k_release import _write_setups

    rows = splits[splits["setup"] == ALL].rename(columns={"side": "split"}).copy()
    if rows.empty:
        raise ValueError("splits have no 'All' setup to export")
    tax = load_taxonomy()
    rows["scenario"] = [tax.scene(s).scenario for s in rows["scene"]]
    rows["rel"] = rows["scene"] + "/" + rows["label"] + "/" + rows["clip_id"]
    if n_frames is not None:
        rows["n_frames"] = rows["clip_id"].map(n_frames).astype("int64")
    out = Path(out_dir)
    return _write_setups(rows, out, path_root if path_root is not None else out.resolve().as_posix())
