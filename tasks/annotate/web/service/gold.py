"""Gold items: a PR labels each group's gold clips first (one label per clip, kept on the copy-0 task)."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, exists, func, select
from sqlalchemy.orm import Session

from tasks.annotate.web.db import Answer, Task


def gold_label_tasks():
    """The task that holds each gold clip's label: the gold task of copy 0."""
    return and_(Task.gold.is_(True), Task.copy == 0)


def gold_answer_id(task: Task) -> str:
    return f"{task.group_id}-gold-{task.clip_id}"


def _pr_labelled():
    return exists().where(Answer.task_id == Task.task_id, Answer.role == "PR")


def waits_for_gold(group_id):
    """A SQL condition: group ``group_id`` (a value or a column, e.g. ``Assignment.group_id``) still has a
    gold item without a PR's label. Looked up through the group's own tasks (``ix_tasks_group_copy``), so
    it costs the same however many groups the database holds."""
    unlabelled = and_(Task.group_id == group_id, gold_label_tasks(), ~_pr_labelled())
    return exists().where(unlabelled)


_GROUP_WAITS = select(waits_for_gold(bindparam("group_id")))  # built once: it runs on every answer


def group_waits_for_gold(s: Session, group_id: str) -> bool:
    """True while a PR has not labelled every gold item of ``group_id`` (its copies wait until then)."""
    return bool(s.scalar(_GROUP_WAITS, {"group_id": group_id}))


def next_gold_task(s: Session) -> Task | None:
    """The first gold task still waiting for a PR's label, in (group, position) order."""
    return s.scalars(
        select(Task)
        .where(gold_label_tasks(), ~_pr_labelled())
        .order_by(Task.group_id, Task.position)
        .limit(1)
    ).first()


def gold_counts(s: Session) -> tuple[int, int]:
    """(gold items in all, gold items still without a PR's label)."""
    total = s.scalar(select(func.count()).select_from(Task).where(gold_label_tasks())) or 0
    left = s.scalar(select(func.count()).select_from(Task).where(gold_label_tasks(), ~_pr_labelled())) or 0
    return total, left


def gold_truth(s: Session, group_id: str) -> dict[str, str | None]:
    """clip_id -> the PR's expression for the gold items of a group (None where the PR passed)."""
    rows = s.execute(
        select(Task.clip_id, Answer.label)
        .join(Answer, Answer.task_id == Task.task_id)
        .where(Task.group_id == group_id, gold_label_tasks(), Answer.role == "PR")
    ).all()
    return dict(rows)
