"""Who labels what next: a CA's current copy (claimed on demand), a PR's gold items and relabels, and where a
scored copy goes (``move_copy``: on to review, or back to another CA).

A CA's copy waits until its group's gold items are labelled; a copy is never handed to a CA who held a copy
of the same group in any round.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from tasks.annotate.config import AnnotateConfig
from tasks.annotate.package import reassign_copy
from tasks.annotate.web.db import Annotator, Answer, Assignment, Task, require_write, utcnow
from tasks.annotate.web.service.annotators import Identity
from tasks.annotate.web.service.errors import Forbidden
from tasks.annotate.web.service.gold import gold_counts, next_gold_task, waits_for_gold
from tasks.annotate.web.service.views import CopyRef, Progress, TaskView
from tasks.annotate.web.service.vocabulary import scene_intro

QUEUES = {"CA": ("label",), "PR": ("gold", "relabel")}
#: Open copies looked at per query when a CA claims one.
CLAIM_BATCH = 20


def copy_tasks(s: Session, group_id: str, copy: int, *, gold: bool | None = None) -> list[Task]:
    q = select(Task).where(Task.group_id == group_id, Task.copy == copy)
    if gold is not None:
        q = q.where(Task.gold.is_(gold))
    return list(s.scalars(q.order_by(Task.position)))


def _progress_queries(gold: bool | None):
    """copy_progress's two queries with the copy, annotator and round as parameters."""
    in_copy = [Task.group_id == bindparam("group_id"), Task.copy == bindparam("copy")]
    if gold is not None:
        in_copy.append(Task.gold.is_(gold))
    mine = and_(
        Answer.task_id == Task.task_id,
        Answer.annotator_id == bindparam("annotator_id"),
        Answer.round == bindparam("round"),
    )
    counts = (
        select(func.count(Task.task_id), func.count(Answer.task_id)).outerjoin(Answer, mine).where(*in_copy)
    )
    first_todo = select(Task).where(*in_copy, ~exists().where(mine)).order_by(Task.position).limit(1)
    return counts, first_todo


# The hot queries are built once, with parameters: building a statement (and its cache key) on every
# request cost more CPU than SQLite took to run it.
_PROGRESS = {gold: _progress_queries(gold) for gold in (None, True, False)}


def _progress_params(annotator_id: str, a: Assignment) -> dict[str, object]:
    return {"group_id": a.group_id, "copy": a.copy, "annotator_id": annotator_id, "round": a.round}


def copy_counts(s: Session, annotator_id: str, a: Assignment, *, gold: bool | None = None) -> tuple[int, int]:
    """(answered, total) of ``a``'s copy for ``annotator_id`` in ``a``'s round, counted in SQL."""
    total, done = s.execute(_PROGRESS[gold][0], _progress_params(annotator_id, a)).one()
    return done, total


def copy_progress(
    s: Session, annotator_id: str, a: Assignment, *, gold: bool | None = None
) -> tuple[int, int, Task | None]:
    """(answered, total, the first unanswered task) of ``a``'s copy for ``annotator_id`` in ``a``'s round,
    counted in SQL: a request loads one task, not the whole copy."""
    done, total = copy_counts(s, annotator_id, a, gold=gold)
    todo = None
    if done < total:
        todo = s.scalars(_PROGRESS[gold][1], _progress_params(annotator_id, a)).first()
    return done, total, todo


_READY = ~waits_for_gold(Assignment.group_id)
_COPY_ORDER = (Assignment.round.desc(), Assignment.id)
#: A CA's copy in labelling whose gold is labelled (built once, like the queries below).
_MY_COPY = (
    select(Assignment)
    .where(Assignment.annotator_id == bindparam("who"), Assignment.state == "labelling", _READY)
    .order_by(*_COPY_ORDER)
    .limit(1)
)
#: Open copies a CA may claim: in labelling, gold labelled, of a group they never held a copy of.
_OPEN_COPIES = (
    select(Assignment)
    .where(
        Assignment.annotator_id.is_(None),
        Assignment.state == "labelling",
        Assignment.group_id.not_in(
            select(Assignment.group_id).where(Assignment.annotator_id == bindparam("who"))
        ),
        _READY,
    )
    .order_by(*_COPY_ORDER)
    .limit(CLAIM_BATCH)
)


def current_assignment(s: Session, who: Identity) -> Assignment | None:
    """The copy a CA is labelling: one already theirs, else one claimed now (gold labelled first)."""
    mine = s.scalars(_MY_COPY, {"who": who.id}).first()
    if mine is not None:
        return mine
    while True:
        # A few candidates at a time: a claim lost to another request moves on to the next one.
        candidates = s.scalars(_OPEN_COPIES, {"who": who.id}).all()
        for a in candidates:
            if _claim(s, a, "annotator_id", who):
                return a
        if len(candidates) < CLAIM_BATCH:
            return None


def _claim(s: Session, a: Assignment, column: str, who: Identity) -> bool:
    """Set ``a.<column>`` to ``who`` unless someone did in the meantime (a guarded update: safe under
    concurrent requests); True when this request got it. In a reading session it raises
    :class:`~tasks.annotate.web.db.NeedsWrite` instead."""
    require_write(s)
    claimed = s.execute(
        update(Assignment)
        .where(Assignment.id == a.id, getattr(Assignment, column).is_(None))
        .values({column: who.id})
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed:
        s.refresh(a)
    return bool(claimed)


def current_relabel(s: Session, who: Identity) -> Assignment | None:
    """The rejected copy a PR is relabelling: one already theirs, else one claimed now."""
    a = s.scalars(
        select(Assignment)
        .where(Assignment.state == "pr_relabel", Assignment.relabeller_id == who.id)
        .order_by(Assignment.id)
    ).first()
    if a is not None:
        return a
    for a in s.scalars(
        select(Assignment)
        .where(Assignment.state == "pr_relabel", Assignment.relabeller_id.is_(None))
        .order_by(Assignment.id)
    ).all():
        if _claim(s, a, "relabeller_id", who):
            return a
    return None


def next_item(s: Session, who: Identity, queue: str) -> TaskView | None:
    """The next item ``who`` should label in ``queue`` ('label' for a CA; 'gold' or 'relabel' for a PR),
    as the page shows it; None when the queue is empty."""
    if queue not in QUEUES[who.role]:
        raise Forbidden(f"queue {queue!r} is not open to {who.role} annotators; theirs: {QUEUES[who.role]}")
    if queue == "gold":
        total, left = gold_counts(s)
        task = next_gold_task(s) if left else None
        if task is None:
            return None
        return task_view(task, queue, Progress(index=total - left + 1, total=total), None)
    a = current_assignment(s, who) if queue == "label" else current_relabel(s, who)
    if a is None:
        return None
    done, total, todo = copy_progress(s, who.id, a, gold=None if queue == "label" else False)
    if todo is None:  # a finished copy is moved on at its last answer; nothing is left to show
        return None
    return task_view(todo, queue, Progress(index=done + 1, total=total), a)


def task_view(task: Task, queue: str, progress: Progress, a: Assignment | None) -> TaskView:
    """What the page needs to show one item. Never says whether the item is gold, nor any answer."""
    return TaskView(
        task_id=task.task_id,
        clip_id=task.clip_id,
        queue=queue,
        scene=scene_intro(task.scene),
        title=task.title,
        video_url=f"/api/tasks/{task.task_id}/video",
        boxes=task.boxes or [],
        progress=progress,
        copy=None if a is None else CopyRef(group_id=a.group_id, copy=a.copy, round=a.round),
    )


def can_view_task(s: Session, who: Identity, task: Task) -> bool:
    """PRs see every task; a CA only the tasks of copies they hold."""
    if who.role == "PR":
        return True
    return (
        s.scalar(
            select(func.count())
            .select_from(Assignment)
            .where(
                Assignment.group_id == task.group_id,
                Assignment.copy == task.copy,
                Assignment.annotator_id == who.id,
            )
        )
        > 0
    )


def move_copy(s: Session, a: Assignment, step: str, cfg: AnnotateConfig) -> None:
    """Put copy assignment ``a`` in state ``step``; a copy sent back to the crowd gets a new round."""
    a.state = step
    if step != "back_to_ca":
        return
    # The copy goes to a CA who never held a copy of this group (CORE's reassign rule); with none
    # registered yet it stays open and the next eligible CA claims it.
    holders = set(s.scalars(select(Assignment.annotator_id).where(Assignment.group_id == a.group_id)))
    cas = list(s.scalars(select(Annotator.id).where(Annotator.role == "CA").order_by(Annotator.id)))
    load = dict(
        s.execute(
            select(Assignment.annotator_id, func.count())
            .where(Assignment.state == "labelling", Assignment.annotator_id.is_not(None))
            .group_by(Assignment.annotator_id)
        ).all()
    )
    try:
        ca: str | None = reassign_copy({h for h in holders if h}, cas, cfg.seed, load)
    except ValueError:
        ca = None
    s.add(
        Assignment(
            batch_id=a.batch_id, group_id=a.group_id, copy=a.copy, round=a.round + 1, scene=a.scene,
            annotator_id=ca, state="labelling", created_at=utcnow(),
        )
    )  # fmt: skip
