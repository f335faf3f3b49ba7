"""Answers: a CA labelling a copy, a PR labelling gold items or relabelling a rejected copy; the last answer
of a CA's copy scores it with the flag-recapture statistic and moves it on (``next_step``).

Submitting the same answer again stores nothing new; a different answer to an item already answered is a
:class:`Conflict`. A CA gets the same answer whether a task does not exist or is not theirs.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tasks.annotate.config import AnnotateConfig
from tasks.annotate.recapture import score_copy
from tasks.annotate.web.db import Answer, Assignment, Review, Task, utcnow
from tasks.annotate.web.service.annotators import Identity
from tasks.annotate.web.service.errors import Conflict, Forbidden, Invalid, NotFound
from tasks.annotate.web.service.gold import (
    gold_answer_id,
    gold_label_tasks,
    gold_truth,
    group_waits_for_gold,
)
from tasks.annotate.web.service.queues import copy_counts, move_copy
from tasks.annotate.web.service.views import AnswerReceipt, MyAnswer
from tasks.annotate.web.service.vocabulary import word_label
from tasks.annotate.workflow import CopyState, next_step

MAX_TIME_SPENT_S = 24 * 3600.0
#: The caller's latest round of a group copy (built once: it runs on every CA answer).
_HELD_COPY = (
    select(Assignment)
    .where(
        Assignment.group_id == bindparam("group_id"),
        Assignment.copy == bindparam("copy"),
        Assignment.annotator_id == bindparam("who"),
    )
    .order_by(Assignment.round.desc())
)


def submit_answer(
    s: Session,
    who: Identity,
    task_id: str,
    word: str,
    time_spent_s: float,
    cfg: AnnotateConfig,
    *,
    source: str = "web",
) -> AnswerReceipt:
    """Store one answer. Submitting the same answer again stores nothing new; a different answer to an
    item already answered is a :class:`Conflict`. The last answer of a copy scores it (or, for a PR's
    relabel, finishes it)."""
    label = word_label(word)
    if not 0 <= time_spent_s <= MAX_TIME_SPENT_S:
        raise Invalid(f"time_spent_s {time_spent_s}: expected 0 to {MAX_TIME_SPENT_S:g} seconds")
    task = s.get(Task, task_id)
    if who.role == "CA":
        # The same answer whether the task does not exist or is someone else's: a CA learns no task ids.
        a = (
            task
            and s.scalars(_HELD_COPY, {"group_id": task.group_id, "copy": task.copy, "who": who.id}).first()
        )
        if a is None:
            raise NotFound(f"no task {task_id!r} in a copy assigned to you")
        if group_waits_for_gold(s, task.group_id):
            raise Conflict(f"group {task.group_id} waits for its gold items to be labelled by a PR")
        return _store(
            s, who, task, a, a.round, word, label, time_spent_s, source, open_state="labelling", cfg=cfg
        )
    if task is None:
        raise NotFound(f"no task {task_id!r}")
    if task.gold:
        gold_task = s.scalar(
            select(Task).where(
                Task.group_id == task.group_id, Task.clip_id == task.clip_id, gold_label_tasks()
            )
        )
        answer_id = gold_answer_id(gold_task)
        old = s.get(Answer, answer_id)
        if old is not None:
            if old.annotator_id == who.id and old.word == word:
                return AnswerReceipt(answer_id=answer_id, created=False, copy_state=None)
            raise Conflict(
                f"gold item {task.clip_id!r} of {task.group_id} is already labelled ({old.word!r})"
            )
        s.add(_answer(answer_id, gold_task, None, who, 1, word, label, time_spent_s, source))
        return AnswerReceipt(answer_id=answer_id, created=True, copy_state=None)
    a = s.scalars(
        select(Assignment).where(
            Assignment.group_id == task.group_id,
            Assignment.copy == task.copy,
            Assignment.relabeller_id == who.id,
        )
    ).first()
    if a is None:
        raise Forbidden(f"task {task_id!r} is not in a copy you are relabelling")
    return _store(
        s, who, task, a, a.round, word, label, time_spent_s, source, open_state="pr_relabel", cfg=cfg
    )


def _answer(
    answer_id: str, task: Task, a: Assignment | None, who: Identity, round_: int, word: str,
    label: str | None, time_spent_s: float, source: str,
) -> Answer:  # fmt: skip
    return Answer(
        answer_id=answer_id, task_id=task.task_id, assignment_id=None if a is None else a.id,
        annotator_id=who.id, role=who.role, round=round_, word=word, label=label, answered_at=utcnow(),
        time_spent_s=float(time_spent_s), source=source,
    )  # fmt: skip


def _store(
    s: Session, who: Identity, task: Task, a: Assignment, round_: int, word: str, label: str | None,
    time_spent_s: float, source: str, *, open_state: str, cfg: AnnotateConfig,
) -> AnswerReceipt:  # fmt: skip
    answer_id = f"{task.task_id}-r{round_}-{who.id}"
    old = s.get(Answer, answer_id)
    if old is not None:
        if old.word == word:
            return AnswerReceipt(answer_id=answer_id, created=False, copy_state=a.state)
        raise Conflict(f"task {task.task_id!r} already answered {old.word!r} in round {round_}")
    if a.state != open_state:
        raise Conflict(f"copy {a.group_id}/{a.copy} round {a.round} is closed ({a.state})")
    s.add(_answer(answer_id, task, a, who, round_, word, label, time_spent_s, source))
    s.flush()
    done, total = copy_counts(s, who.id, a, gold=None if open_state == "labelling" else False)
    if done == total:
        if open_state == "labelling":
            score_assignment(s, a, cfg)
        else:
            a.state = next_step(CopyState(a.verdict, a.round, _decision(s, a), relabelled=True))
            a.completed_at = utcnow()
    return AnswerReceipt(answer_id=answer_id, created=True, copy_state=a.state)


def _decision(s: Session, a: Assignment) -> str | None:
    return s.scalar(select(Review.decision).where(Review.assignment_id == a.id))


def score_assignment(s: Session, a: Assignment, cfg: AnnotateConfig) -> None:
    """Score a finished CA copy with the flag-recapture statistic and move it on (``next_step``)."""
    rows = s.execute(
        select(Task.clip_id, Answer.word, Answer.label)
        .join(Answer, Answer.task_id == Task.task_id)
        .where(
            Task.group_id == a.group_id,
            Task.copy == a.copy,
            Answer.annotator_id == a.annotator_id,
            Answer.round == a.round,
        )
    ).all()
    score = score_copy(
        pd.DataFrame(rows, columns=["clip_id", "word", "label"]), gold_truth(s, a.group_id), cfg
    )
    a.verdict = score.verdict
    a.n_items, a.n_gold = score.n_items, score.n_gold
    a.n_gold_answered, a.n_gold_correct = score.n_gold_answered, score.n_gold_correct
    a.estimate, a.ci_low, a.ci_high = score.estimate, score.ci_low, score.ci_high
    a.completed_at = utcnow()
    move_copy(s, a, next_step(CopyState(score.verdict, a.round), cfg.max_ca_rounds), cfg)


def my_answers(s: Session, who: Identity) -> list[MyAnswer]:
    """The caller's own answers, oldest first."""
    rows = s.scalars(select(Answer).where(Answer.annotator_id == who.id).order_by(Answer.answered_at)).all()
    return [
        MyAnswer(answer_id=r.answer_id, task_id=r.task_id, round=r.round, word=r.word, label=r.label,
                 answered_at=r.answered_at.isoformat(), time_spent_s=r.time_spent_s)
        for r in rows
    ]  # fmt: skip
