"""The two-stage annotation workflow over the database (paper 3.2 "Manual annotation", Figure 3(c)).

Plain functions on a SQLAlchemy session; the web app (``app.py``) and the CLI call them, the rules come
from ``tasks.annotate`` (``score_copy``, ``next_step``, ``reassign_copy``) so the database and the
simulator follow the same ones:

1. **Gold first.** A PR labels each group's gold items (one label per gold clip, kept on the copy-0 task,
   round 1). A group's copies are handed to CAs only once all its gold items are labelled.
2. **Copies.** A CA labels one group copy at a time (pre-assigned by ``assign_copies`` at load, or
   claimed on demand; never two copies of one group, in any round, to the same CA).
3. **Scoring.** When a CA has answered every item of a copy, the copy is scored (``score_copy``) and
   moves on by ``next_step``: AC and IP to a PR's review, UA back to another CA (a new assignment,
   round + 1), a copy out of CA rounds to a PR's relabel.
4. **Review.** A PR accepts or rejects an AC/IP copy with feedback the CA sees (and may leave feedback on
   a UA copy). A rejected IP copy is relabelled by a PR: its non-gold items, in the same round.

Errors a user can cause raise :class:`WorkflowError` subclasses carrying the HTTP status the app returns.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pandas as pd
from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from keywords.taxonomy import UnknownSceneError, load_taxonomy
from tasks.annotate.config import AnnotateConfig
from tasks.annotate.package import assign_copies, reassign_copy
from tasks.annotate.recapture import PASS, score_copy
from tasks.annotate.web.db import (
    ROLES,
    Annotator,
    Answer,
    Assignment,
    Review,
    Task,
    hash_token,
    new_token,
    require_write,
    utcnow,
)
from tasks.annotate.workflow import DECISIONS, CopyState, next_step

QUEUES = {"CA": ("label",), "PR": ("gold", "relabel")}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_TIME_SPENT_S = 24 * 3600.0


class WorkflowError(ValueError):
    """A request the workflow refuses; ``status`` is the HTTP status the app answers with."""

    status = 400


class NotFound(WorkflowError):
    status = 404


class Forbidden(WorkflowError):
    status = 403


class Conflict(WorkflowError):
    status = 409


class Invalid(WorkflowError):
    status = 422


# ---------------------------------------------------------------------------------------- vocabulary


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, Any]:
    """The page's choices: the 7 expressions (taxonomy order) with their words, each word with a
    keyboard shortcut (a-z, then digits), and PASS on '0'."""
    tax = load_taxonomy()
    keys = iter("abcdefghijklmnopqrstuvwxyz123456789")
    expressions = [
        {
            "name": e,
            "description": tax.expression_descriptions[e],
            "words": [{"word": w, "key": next(keys, None)} for w in tax.words.get(e, ())],
        }
        for e in tax.expressions
    ]
    return {"expressions": expressions, "pass": {"word": PASS, "key": "0"}}


def word_label(word: str) -> str | None:
    """The expression of a fine-grained word (None for PASS); :class:`Invalid` for any other word."""
    if word == PASS:
        return None
    label = load_taxonomy().word_to_expression.get(word)
    if label is None:
        words = sorted(load_taxonomy().word_to_expression)
        raise Invalid(f"word {word!r} is not one of the {len(words)} words or PASS: {', '.join(words)}")
    return label


def scene_intro(scene: str) -> dict[str, str]:
    try:
        s = load_taxonomy().scene(scene)
    except UnknownSceneError:
        return {"scene": scene, "scenario": "", "description": ""}
    return {"scene": s.name, "scenario": s.scenario_name, "description": s.description}


# ---------------------------------------------------------------------------------------- annotators


@dataclass(frozen=True)
class Identity:
    id: str
    name: str
    role: str


def add_annotator(s: Session, name: str, role: str, annotator_id: str | None = None) -> tuple[Identity, str]:
    """Register an annotator; returns them and their login token (shown once, stored hashed)."""
    if role not in ROLES:
        raise Invalid(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if not name.strip():
        raise Invalid("an annotator needs a name")
    aid = annotator_id or f"{role.lower()}-{secrets.token_hex(3)}"
    if not _ID.match(aid):
        raise Invalid(f"annotator id {aid!r}: use up to 64 letters, digits, '_', '.', '-'")
    if s.get(Annotator, aid) is not None:
        raise Conflict(f"annotator id {aid!r} is taken")
    token = new_token()
    now = utcnow()
    s.add(
        Annotator(
            id=aid,
            name=name.strip(),
            role=role,
            token_hash=hash_token(token),
            created_at=now,
            token_issued_at=now,
        )
    )
    return Identity(aid, name.strip(), role), token


def require_role(who: Identity, role: str) -> None:
    if who.role != role:
        raise Forbidden(f"only {role} annotators may do this; you are {who.role}")


# ---------------------------------------------------------------------------------------- loading


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


# ---------------------------------------------------------------------------------------- gold


def _gold_label_tasks():
    """The task that holds each gold clip's label: the gold task of copy 0."""
    return and_(Task.gold.is_(True), Task.copy == 0)


def _gold_answer_id(task: Task) -> str:
    return f"{task.group_id}-gold-{task.clip_id}"


def _unlabelled_gold_groups(s: Session) -> set[str]:
    labelled = exists().where(Answer.task_id == Task.task_id, Answer.role == "PR")
    return set(s.scalars(select(Task.group_id).where(_gold_label_tasks(), ~labelled).distinct()))


def gold_truth(s: Session, group_id: str) -> dict[str, str | None]:
    """clip_id -> the PR's expression for the gold items of a group (None where the PR passed)."""
    rows = s.execute(
        select(Task.clip_id, Answer.label)
        .join(Answer, Answer.task_id == Task.task_id)
        .where(Task.group_id == group_id, _gold_label_tasks(), Answer.role == "PR")
    ).all()
    return dict(rows)


# ---------------------------------------------------------------------------------------- queues


@dataclass(frozen=True)
class Progress:
    index: int  # 1-based position of the item shown
    total: int


def _copy_tasks(s: Session, group_id: str, copy: int, *, gold: bool | None = None) -> list[Task]:
    q = select(Task).where(Task.group_id == group_id, Task.copy == copy)
    if gold is not None:
        q = q.where(Task.gold.is_(gold))
    return list(s.scalars(q.order_by(Task.position)))


def _copy_progress(
    s: Session, annotator_id: str, a: Assignment, *, gold: bool | None = None
) -> tuple[int, int, Task | None]:
    """(answered, total, the first unanswered task) of ``a``'s copy for ``annotator_id`` in ``a``'s round,
    counted in SQL: a request loads one task, not the whole copy."""
    in_copy = [Task.group_id == a.group_id, Task.copy == a.copy]
    if gold is not None:
        in_copy.append(Task.gold.is_(gold))
    mine = and_(Answer.task_id == Task.task_id, Answer.annotator_id == annotator_id, Answer.round == a.round)
    total, done = s.execute(
        select(func.count(Task.task_id), func.count(Answer.task_id)).outerjoin(Answer, mine).where(*in_copy)
    ).one()
    todo = None
    if done < total:
        todo = s.scalars(
            select(Task).where(*in_copy, ~exists().where(mine)).order_by(Task.position).limit(1)
        ).first()
    return done, total, todo


def current_assignment(s: Session, who: Identity) -> Assignment | None:
    """The copy a CA is labelling: one already theirs, else one claimed now (gold labelled first)."""
    blocked = _unlabelled_gold_groups(s)
    mine = s.scalars(
        select(Assignment)
        .where(Assignment.annotator_id == who.id, Assignment.state == "labelling")
        .order_by(Assignment.round.desc(), Assignment.id)
    ).all()
    for a in mine:
        if a.group_id not in blocked:
            return a
    held = select(Assignment.group_id).where(Assignment.annotator_id == who.id)
    open_ = s.scalars(
        select(Assignment)
        .where(
            Assignment.annotator_id.is_(None),
            Assignment.state == "labelling",
            Assignment.group_id.not_in(held),
        )
        .order_by(Assignment.round.desc(), Assignment.id)
    ).all()
    for a in open_:
        if a.group_id in blocked:
            continue
        if _claim(s, a, "annotator_id", who):
            return a
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


def next_item(s: Session, who: Identity, queue: str) -> dict[str, Any] | None:
    """The next item ``who`` should label in ``queue`` ('label' for a CA; 'gold' or 'relabel' for a PR),
    as the page shows it; None when the queue is empty."""
    if queue not in QUEUES[who.role]:
        raise Forbidden(f"queue {queue!r} is not open to {who.role} annotators; theirs: {QUEUES[who.role]}")
    if queue == "gold":
        labelled = exists().where(Answer.task_id == Task.task_id, Answer.role == "PR")
        total = s.scalar(select(func.count()).select_from(Task).where(_gold_label_tasks())) or 0
        todo = s.scalars(
            select(Task).where(_gold_label_tasks(), ~labelled).order_by(Task.group_id, Task.position)
        ).all()
        if not todo:
            return None
        return task_view(todo[0], queue, Progress(total - len(todo) + 1, total), None)
    a = current_assignment(s, who) if queue == "label" else current_relabel(s, who)
    if a is None:
        return None
    done, total, todo = _copy_progress(s, who.id, a, gold=None if queue == "label" else False)
    if todo is None:  # a finished copy is moved on at its last answer; nothing is left to show
        return None
    return task_view(todo, queue, Progress(done + 1, total), a)


def task_view(task: Task, queue: str, progress: Progress, a: Assignment | None) -> dict[str, Any]:
    """What the page needs to show one item. Never says whether the item is gold, nor any answer."""
    return {
        "task_id": task.task_id,
        "clip_id": task.clip_id,
        "queue": queue,
        "scene": scene_intro(task.scene),
        "title": task.title,
        "video_url": f"/api/tasks/{task.task_id}/video",
        "boxes": task.boxes or [],
        "progress": {"index": progress.index, "total": progress.total},
        "copy": None if a is None else {"group_id": a.group_id, "copy": a.copy, "round": a.round},
    }


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


# ---------------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Submitted:
    answer_id: str
    created: bool  # False: the same answer was already stored (a resubmission)
    copy_state: str | None  # the copy's state after this answer (None for a gold label)


def submit_answer(
    s: Session,
    who: Identity,
    task_id: str,
    word: str,
    time_spent_s: float,
    cfg: AnnotateConfig,
    *,
    source: str = "web",
) -> Submitted:
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
            and s.scalars(
                select(Assignment)
                .where(
                    Assignment.group_id == task.group_id,
                    Assignment.copy == task.copy,
                    Assignment.annotator_id == who.id,
                )
                .order_by(Assignment.round.desc())
            ).first()
        )
        if a is None:
            raise NotFound(f"no task {task_id!r} in a copy assigned to you")
        if task.group_id in _unlabelled_gold_groups(s):
            raise Conflict(f"group {task.group_id} waits for its gold items to be labelled by a PR")
        return _store(
            s, who, task, a, a.round, word, label, time_spent_s, source, open_state="labelling", cfg=cfg
        )
    if task is None:
        raise NotFound(f"no task {task_id!r}")
    if task.gold:
        gold_task = s.scalar(
            select(Task).where(
                Task.group_id == task.group_id, Task.clip_id == task.clip_id, _gold_label_tasks()
            )
        )
        answer_id = _gold_answer_id(gold_task)
        old = s.get(Answer, answer_id)
        if old is not None:
            if old.annotator_id == who.id and old.word == word:
                return Submitted(answer_id, False, None)
            raise Conflict(
                f"gold item {task.clip_id!r} of {task.group_id} is already labelled ({old.word!r})"
            )
        s.add(_answer(answer_id, gold_task, None, who, 1, word, label, time_spent_s, source))
        return Submitted(answer_id, True, None)
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
) -> Submitted:  # fmt: skip
    answer_id = f"{task.task_id}-r{round_}-{who.id}"
    old = s.get(Answer, answer_id)
    if old is not None:
        if old.word == word:
            return Submitted(answer_id, False, a.state)
        raise Conflict(f"task {task.task_id!r} already answered {old.word!r} in round {round_}")
    if a.state != open_state:
        raise Conflict(f"copy {a.group_id}/{a.copy} round {a.round} is closed ({a.state})")
    s.add(_answer(answer_id, task, a, who, round_, word, label, time_spent_s, source))
    s.flush()
    done, total, _next = _copy_progress(s, who.id, a, gold=None if open_state == "labelling" else False)
    if done == total:
        if open_state == "labelling":
            score_assignment(s, a, cfg)
        else:
            a.state = next_step(CopyState(a.verdict, a.round, _decision(s, a), relabelled=True))
            a.completed_at = utcnow()
    return Submitted(answer_id, True, a.state)


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
    _move(s, a, next_step(CopyState(score.verdict, a.round), cfg.max_ca_rounds), cfg)


def _move(s: Session, a: Assignment, step: str, cfg: AnnotateConfig) -> None:
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


# ---------------------------------------------------------------------------------------- review


def review_queue(s: Session) -> list[dict[str, Any]]:
    """Scored copies waiting for a PR: AC/IP copies to accept or reject, and UA copies sent back to the
    crowd that have no feedback yet. Each with its score and, item by item, the CA's answer next to
    the gold label."""
    reviewed = exists().where(Review.assignment_id == Assignment.id)
    todo = s.scalars(
        select(Assignment)
        .where((Assignment.state == "pr_review") | ((Assignment.state == "back_to_ca") & ~reviewed))
        .order_by(Assignment.completed_at, Assignment.id)
    ).all()
    return [review_view(s, a) for a in todo]


def review_view(s: Session, a: Assignment) -> dict[str, Any]:
    truth = gold_truth(s, a.group_id)
    answers = dict(
        s.execute(
            select(Answer.task_id, Answer.word).where(
                Answer.assignment_id == a.id, Answer.annotator_id == a.annotator_id
            )
        ).all()
    )
    items = [
        {
            "task_id": t.task_id,
            "clip_id": t.clip_id,
            "video_url": f"/api/tasks/{t.task_id}/video",
            "word": answers.get(t.task_id),
            "label": word_label(answers[t.task_id]) if t.task_id in answers else None,
            "gold": t.gold,
            "gold_label": truth.get(t.clip_id) if t.gold else None,
        }
        for t in _copy_tasks(s, a.group_id, a.copy)
    ]
    return {
        **assignment_summary(a),
        "needs_decision": a.state == "pr_review",
        "items": items,
    }


def assignment_summary(a: Assignment) -> dict[str, Any]:
    return {
        "assignment_id": a.id,
        "group_id": a.group_id,
        "copy": a.copy,
        "round": a.round,
        "scene": a.scene,
        "annotator_id": a.annotator_id,
        "state": a.state,
        "verdict": a.verdict,
        "estimate": _finite(a.estimate),
        "ci_low": _finite(a.ci_low),
        "ci_high": _finite(a.ci_high),
        "n_items": a.n_items,
        "n_gold": a.n_gold,
        "n_gold_answered": a.n_gold_answered,
        "n_gold_correct": a.n_gold_correct,
    }


def _finite(x: float | None) -> float | None:
    return None if x is None or x != x else x


def decide(
    s: Session, who: Identity, assignment_id: int, decision: str | None, feedback: str | None,
    cfg: AnnotateConfig,
) -> dict[str, Any]:  # fmt: skip
    """A PR's review of a scored copy: ``accept``/``reject`` an AC or IP copy (with feedback), or
    feedback alone on a UA copy. Reviewing the same copy again with the same decision changes nothing."""
    require_role(who, "PR")
    a = s.get(Assignment, assignment_id)
    if a is None:
        raise NotFound(f"no copy assignment {assignment_id}")
    feedback = (feedback or "").strip() or None
    old = s.scalar(select(Review).where(Review.assignment_id == a.id))
    if old is not None:
        if old.decision == decision and old.feedback == feedback:
            return assignment_summary(a)
        raise Conflict(
            f"copy {a.group_id}/{a.copy} round {a.round} was already reviewed by {old.reviewer_id}"
        )
    if a.state == "pr_review":
        if decision not in DECISIONS:
            raise Invalid(f"decision {decision!r}: expected one of {', '.join(DECISIONS)}")
    elif a.verdict == "UA":
        if decision is not None:
            raise Invalid("a UA copy went back to the crowd: leave feedback only (decision null)")
        if feedback is None:
            raise Invalid("feedback on a UA copy needs some text")
    else:
        raise Conflict(f"copy {a.group_id}/{a.copy} round {a.round} is not waiting for review ({a.state})")
    s.add(
        Review(
            assignment_id=a.id, reviewer_id=who.id, decision=decision, feedback=feedback, created_at=utcnow()
        )
    )
    if decision is not None:
        _move(s, a, next_step(CopyState(a.verdict, a.round, decision), cfg.max_ca_rounds), cfg)
    return assignment_summary(a)


def feedback_for(s: Session, who: Identity) -> list[dict[str, Any]]:
    """The reviews of a CA's copies that carry feedback, newest first."""
    rows = s.execute(
        select(Assignment, Review)
        .join(Review, Review.assignment_id == Assignment.id)
        .where(Assignment.annotator_id == who.id, Review.feedback.is_not(None))
        .order_by(Review.created_at.desc(), Review.id.desc())
    ).all()
    return [
        {
            "group_id": a.group_id,
            "copy": a.copy,
            "round": a.round,
            "verdict": a.verdict,
            "decision": r.decision,
            "feedback": r.feedback,
            "at": r.created_at.isoformat(),
        }
        for a, r in rows
    ]


def my_answers(s: Session, who: Identity) -> list[dict[str, Any]]:
    rows = s.scalars(select(Answer).where(Answer.annotator_id == who.id).order_by(Answer.answered_at)).all()
    return [
        {"answer_id": r.answer_id, "task_id": r.task_id, "round": r.round, "word": r.word, "label": r.label,
         "answered_at": r.answered_at.isoformat(), "time_spent_s": r.time_spent_s}
        for r in rows
    ]  # fmt: skip


def copy_answers(s: Session, assignment_id: int) -> list[dict[str, Any]]:
    """Every answer given on one copy assignment (PR only, through the app)."""
    a = s.get(Assignment, assignment_id)
    if a is None:
        raise NotFound(f"no copy assignment {assignment_id}")
    return review_view(s, a)["items"]


def status(s: Session) -> dict[str, Any]:
    """Counts for the PR's overview: assignments per state and verdict, gold items left."""
    by_state = dict(s.execute(select(Assignment.state, func.count()).group_by(Assignment.state)).all())
    by_verdict = dict(
        s.execute(
            select(Assignment.verdict, func.count())
            .where(Assignment.verdict.is_not(None))
            .group_by(Assignment.verdict)
        ).all()
    )
    labelled = exists().where(Answer.task_id == Task.task_id, Answer.role == "PR")
    gold_left = s.scalar(select(func.count()).select_from(Task).where(_gold_label_tasks(), ~labelled)) or 0
    return {"states": by_state, "verdicts": by_verdict, "gold_left": gold_left}


# ---------------------------------------------------------------------------------------- export


def export_frames(s: Session, batch_ids: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``answers`` and ``group_checks`` rows (without lineage) of the given batches (all when None);
    the checks carry a ``batch_id`` column too, for partitioning."""
    q = select(Answer, Task).join(Task, Task.task_id == Answer.task_id)
    if batch_ids:
        q = q.where(Task.batch_id.in_(list(batch_ids)))
    answers = pd.DataFrame(
        [
            {
                "answer_id": a.answer_id, "task_id": a.task_id, "batch_id": t.batch_id, "group_id": t.group_id,
                "copy": t.copy, "clip_id": t.clip_id, "scene": t.scene, "annotator_id": a.annotator_id,
                "role": a.role, "round": a.round, "word": a.word, "label": a.label,
                "answered_at": a.answered_at, "time_spent_s": a.time_spent_s, "source": a.source,
            }
            for a, t in s.execute(q.order_by(Answer.answered_at, Answer.answer_id)).all()
        ]
    )  # fmt: skip
    reviewer = aliased(Review)
    q = (
        select(Assignment, reviewer)
        .outerjoin(reviewer, reviewer.assignment_id == Assignment.id)
        .where(Assignment.verdict.is_not(None))
    )
    if batch_ids:
        q = q.where(Assignment.batch_id.in_(list(batch_ids)))
    checks = pd.DataFrame(
        [
            {
                "batch_id": a.batch_id, "group_id": a.group_id, "copy": a.copy, "round": a.round, "scene": a.scene,
                "annotator_id": a.annotator_id, "n_items": a.n_items, "n_gold": a.n_gold,
                "n_gold_answered": a.n_gold_answered, "n_gold_correct": a.n_gold_correct,
                # A copy scored all-PASS before its score was defined has NULL there: it scores 0.
                "estimate": a.estimate or 0.0, "ci_low": a.ci_low or 0.0, "ci_high": a.ci_high or 0.0,
                "verdict": a.verdict,
                "pr_decision": r.decision if r else None, "reviewer_id": r.reviewer_id if r else None,
                "feedback": r.feedback if r else None,
            }
            for a, r in s.execute(q.order_by(Assignment.group_id, Assignment.copy, Assignment.round)).all()
        ]
    )  # fmt: skip
    return answers, checks
