"""Loading a batch's ``annotation_tasks`` into the database, with a round-1 assignment per group copy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tasks.annotate.config import AnnotateConfig
from tasks.annotate.package import assign_copies
from tasks.annotate.web.db import Annotator, Assignment, Task, utcnow
from tasks.annotate.web.service.errors import Invalid


@dataclass(frozen=True)
class LoadResult:
    n_tasks: int  # tasks in the input
    n_new_tasks: int
    n_new_assignments: int
    n_preassigned: int


def load_tasks(
    s: Session,
    tasks: pd.DataFrame,
    cfg: AnnotateConfig,
    *,
    titles: Mapping[str, str | None] | None = None,
    boxes: Mapping[str, list | None] | None = None,
    progress: bool = False,
) -> LoadResult:
    """Insert ``annotation_tasks`` rows (those not there yet) and a round-1 assignment per new group copy.

    ``titles`` and ``boxes`` (clip_id -> video title / face track) are what the page shows. When the
    registered CAs can take every copy, new copies are pre-assigned with ``assign_copies``; otherwise
    CAs claim them as they ask for work. Loading the same batch again adds nothing.
    """
    need = ["task_id", "batch_id", "group_id", "copy", "position", "clip_id", "scene", "gold"]
    missing = [c for c in need if c not in tasks.columns]
    if missing:
        raise Invalid(f"annotation_tasks: missing columns {missing}")
    titles, boxes = titles or {}, boxes or {}
    have = set(s.scalars(select(Task.task_id).where(Task.task_id.in_(tasks["task_id"].tolist()))))
    new = tasks[~tasks["task_id"].isin(have)]
    rows = new.itertuples(index=False)
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, total=len(new), desc="load tasks", unit="task")
    for r in rows:
        s.add(
            Task(
                task_id=r.task_id, batch_id=r.batch_id, group_id=r.group_id, copy=int(r.copy),
                position=int(r.position), clip_id=r.clip_id, scene=r.scene, gold=bool(r.gold),
                clip_path=_opt(getattr(r, "clip_path", None)),
                predicted_label=_opt(getattr(r, "predicted_label", None)),
                title=_opt(titles.get(r.clip_id)), boxes=boxes.get(r.clip_id),
            )
        )  # fmt: skip
    s.flush()
    copies = tasks[["batch_id", "group_id", "copy", "scene"]].drop_duplicates(["group_id", "copy"])
    existing = {(g, c) for g, c in s.execute(select(Assignment.group_id, Assignment.copy)).all()}
    fresh = copies[
        [(g, int(c)) not in existing for g, c in zip(copies["group_id"], copies["copy"], strict=True)]
    ]
    cas = list(s.scalars(select(Annotator.id).where(Annotator.role == "CA").order_by(Annotator.id)))
    try:
        plan = assign_copies(fresh, cas, cfg.seed) if len(fresh) else {}
    except ValueError:
        plan = {}  # too few CAs registered yet: copies are claimed on demand
    for r in fresh.itertuples(index=False):
        s.add(
            Assignment(
                batch_id=r.batch_id, group_id=r.group_id, copy=int(r.copy), round=1, scene=r.scene,
                annotator_id=plan.get((r.group_id, int(r.copy))), state="labelling", created_at=utcnow(),
            )
        )  # fmt: skip
    return LoadResult(len(tasks), len(new), len(fresh), len(plan))


def _opt(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and value != value) else value
