"""Packaging: selected clips -> groups with gold items -> shuffled copies for crowd annotators.

Paper, section 3.2 "Manual annotation": "The clips are divided into groups at first (5% of each are PR
annotated) and copied 3 times. Then we randomly shuffle the grouped materials and provide them to CAs."

- Groups never mix scenes (the scene introduction on the labelling page and the ``group_checks``
  partition are per scene). A scene's clips are shuffled and split into ``ceil(n / group_size)`` groups of
  near-equal size, so there is no tiny last group.
- Each group has ``max(1, round_half_up(gold_fraction * size))`` gold items, chosen at random but spread
  over the FER-predicted expressions first, so the gold tests an annotator on more than one expression.
- Each group is copied ``n_copies`` times, every copy in its own random order (``position``).
- ``assign_copies`` gives every copy to a crowd annotator (CA), never two copies of one group to the same
  CA, keeping the load balanced (annotators' copy counts differ by at most one).

Everything is deterministic in ``(seed, batch_id)`` and the set of clips, not their input order.

    >>> tasks = package(selections, AnnotateConfig(group_size=50), batch_id="b0001")   # doctest: +SKIP
    >>> assign_copies(tasks, ["ca-01", "ca-02", "ca-03"], seed=0)[("b0001-g0000", 2)]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog.io import Catalog, PartRef
from data_catalog.lineage import RunContext
from tasks.annotate.config import AnnotateConfig

STAGE = "annotate.package"

#: Columns of an ``annotation_tasks`` row as :func:`package` returns them (lineage added when written).
TASK_COLUMNS = [
    "task_id",
    "batch_id",
    "group_id",
    "copy",
    "position",
    "clip_id",
    "scene",
    "gold",
    "clip_path",
    "predicted_label",
]
_BATCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def gold_count(size: int, fraction: float) -> int:
    """Gold items in a group of ``size``: ``fraction`` of it rounded half up, at least 1, at most size-1."""
    return min(max(1, math.floor(fraction * size + 0.5)), max(size - 1, 1))


def _rng(seed: int, *names: object) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(str(n).encode()) for n in names)])


def _pick_gold(order: list[int], labels: Sequence[object], n_gold: int) -> set[int]:
    """The first item of each predicted label in ``order`` (labels in order of appearance), then fill."""
    chosen: list[int] = []
    seen: set[object] = set()
    for i in order:
        if labels[i] not in seen:
            seen.add(labels[i])
            chosen.append(i)
    first = set(chosen)
    chosen += [i for i in order if i not in first]
    return set(chosen[:n_gold])


def package(selections: pd.DataFrame, cfg: AnnotateConfig, batch_id: str) -> pd.DataFrame:
    """Selected clips -> ``annotation_tasks`` rows (without lineage), in (group, copy, position) order.

    ``selections`` needs ``clip_id`` and ``scene``; ``selected`` (rows where it is false are skipped),
    ``label`` (the FER prediction) and ``clip_path`` are used when present.
    """
    if not _BATCH.match(batch_id or ""):
        raise ValueError(f"batch id {batch_id!r}: use letters, digits, '_', '.', '-' (no spaces or slashes)")
    missing = [c for c in ("clip_id", "scene") if c not in selections.columns]
    if missing:
        raise ValueError(f"selections: missing columns {missing}; got {list(selections.columns)}")
    sel = selections
    if "selected" in sel.columns:
        sel = sel[sel["selected"].fillna(False).astype(bool)]
    dupes = sorted(set(sel.loc[sel["clip_id"].duplicated(), "clip_id"]))
    if dupes:
        raise ValueError(f"selections: clip ids listed more than once: {dupes[:5]}")
    if sel.empty:
        raise ValueError("selections: no selected clips to package")
    sel = sel.sort_values("clip_id", kind="stable").reset_index(drop=True)
    predicted = sel["label"] if "label" in sel.columns else pd.Series([None] * len(sel))
    paths = sel["clip_path"] if "clip_path" in sel.columns else pd.Series([None] * len(sel))

    rows: list[dict] = []
    group_no = 0
    for scene in sorted(sel["scene"].unique()):
        idx = np.flatnonzero((sel["scene"] == scene).to_numpy())
        idx = _rng(cfg.seed, batch_id, scene).permutation(idx)
        n_groups = math.ceil(len(idx) / cfg.group_size)
        for members in np.array_split(idx, n_groups):
            group_id = f"{batch_id}-g{group_no:04d}"
            rng = _rng(cfg.seed, group_id)
            members = [int(i) for i in members]
            gold = _pick_gold(
                [members[j] for j in rng.permutation(len(members))],
                predicted.to_numpy(),
                gold_count(len(members), cfg.gold_fraction),
            )
            for copy in range(cfg.n_copies):
                for position, j in enumerate(rng.permutation(len(members))):
                    i = members[j]
                    clip_id = sel.at[i, "clip_id"]
                    rows.append(
                        {
                            "task_id": f"{group_id}-c{copy}-{clip_id}",
                            "batch_id": batch_id,
                            "group_id": group_id,
                            "copy": copy,
                            "position": position,
                            "clip_id": clip_id,
                            "scene": scene,
                            "gold": i in gold,
                            "clip_path": None if pd.isna(paths.iat[i]) else str(paths.iat[i]),
                            "predicted_label": None if pd.isna(predicted.iat[i]) else str(predicted.iat[i]),
                        }
                    )
            group_no += 1
    out = pd.DataFrame(rows, columns=TASK_COLUMNS)
    return out.astype({"copy": "int16", "position": "int32", "gold": bool})


def assign_copies(tasks: pd.DataFrame, annotators: Sequence[str], seed: int) -> dict[tuple[str, int], str]:
    """``(group_id, copy) -> CA id`` for every copy in ``tasks``; no CA gets two copies of one group.

    Groups are taken in a seeded random order; each copy goes to a least-loaded CA not yet holding a copy
    of that group (ties broken at random), so loads differ by at most one. ``ValueError`` when a group has
    more copies than there are distinct annotators.
    """
    names = list(annotators)
    if len(set(names)) != len(names):
        raise ValueError(
            f"annotators listed more than once: {sorted({a for a in names if names.count(a) > 1})}"
        )
    copies = tasks[["group_id", "copy"]].drop_duplicates().sort_values(["group_id", "copy"])
    if copies.empty:
        return {}
    widest = int(copies.groupby("group_id").size().max())
    if widest > len(names):
        raise ValueError(
            f"cannot give {widest} copies of a group to different annotators: only {len(names)} annotators"
        )
    rng = _rng(seed, "assign")
    load = dict.fromkeys(names, 0)
    out: dict[tuple[str, int], str] = {}
    groups = list(copies.groupby("group_id", sort=True))
    for k in rng.permutation(len(groups)):
        group_id, rows = groups[k]
        holders: list[str] = []
        for copy in rows["copy"]:
            ca = _least_loaded(names, holders, load, rng)
            holders.append(ca)
            load[ca] += 1
            out[(str(group_id), int(copy))] = ca
    return out


def _least_loaded(
    names: Sequence[str], exclude: Collection[str], load: Mapping[str, int], rng: np.random.Generator
) -> str:
    free = [a for a in names if a not in exclude]
    if not free:
        raise ValueError(f"no annotator left: all of {sorted(names)} already hold a copy of this group")
    lowest = min(load.get(a, 0) for a in free)
    best = [a for a in free if load.get(a, 0) == lowest]
    return best[int(rng.integers(len(best)))]


def reassign_copy(
    group_holders: Collection[str],
    annotators: Sequence[str],
    seed: int,
    load: Mapping[str, int] | None = None,
) -> str:
    """A CA for a copy sent back to the crowd: one who has never held a copy of the group
    (``group_holders``: every CA that held one, in any round), least loaded first. ``ValueError`` if none.
    """
    return _least_loaded(
        list(annotators), set(group_holders), load or {}, _rng(seed, "reassign", *sorted(group_holders))
    )


def batch_tasks(catalog: Catalog, batch_id: str | None) -> pd.DataFrame:
    """The latest ``annotation_tasks`` of ``batch_id`` (every batch's when None); none is a ValueError that
    names the batch and the catalog."""
    tasks = catalog.read("annotation_tasks", run_id=batch_id, latest=True)
    if tasks.empty:
        where = f"batch {batch_id!r}" if batch_id else "any batch"
        raise ValueError(f"no annotation tasks for {where} in {catalog.root}; run `ferv annotate package`")
    return tasks


def package_stage(
    catalog: Catalog, cfg: AnnotateConfig, ctx: RunContext, batch_id: str, scenes: Sequence[str] | None = None
) -> list[PartRef]:
    """Package the selected clips of ``scenes`` (all when None) as batch ``batch_id``: one
    ``annotation_tasks`` part per scene under ``run=<batch_id>``. Packaging is deterministic, so a rerun
    (say, after a crash between two scenes) writes only the scenes whose part is missing and duplicates
    nothing; a scene's part already written is left as it is."""
    selections = catalog.read("selections", scene=scenes, latest=True)
    tasks = package(selections, cfg, batch_id)
    lineage = ctx.lineage(STAGE)
    refs = []
    for scene, rows in tasks.groupby("scene", sort=True):
        if catalog.has_part("annotation_tasks", str(scene), batch_id, "0000"):
            refs.append(
                _ref(
                    catalog,
                    "annotation_tasks",
                    catalog.part_path("annotation_tasks", str(scene), batch_id, "0000"),
                )
            )
        else:
            refs.append(
                catalog.write("annotation_tasks", rows.assign(**lineage), scene=str(scene), run_id=batch_id)
            )
    return refs


def _ref(catalog: Catalog, manifest: str, path: Path) -> PartRef:
    import pyarrow.parquet as pq

    scene = path.parent.parent.name.removeprefix("scene=")
    run_id = path.parent.name.removeprefix("run=")
    part = path.stem.removeprefix("part-")
    return PartRef(manifest, scene, run_id, part, str(path), pq.ParquetFile(path).metadata.num_rows)
