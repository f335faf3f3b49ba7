"""Review, for professional researchers (PR): the queue of scored copies, a copy's answers next to the gold
labels, accepting or rejecting a copy with feedback, the feedback a CA reads, and the overview counts."""

from __future__ import annotations

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from tasks.annotate.config import AnnotateConfig
from tasks.annotate.web.db import Answer, Assignment, Review, utcnow
from tasks.annotate.web.service.annotators import Identity, require_role
from tasks.annotate.web.service.errors import Conflict, Invalid, NotFound
from tasks.annotate.web.service.gold import gold_counts, gold_truth
from tasks.annotate.web.service.queues import copy_tasks, move_copy
from tasks.annotate.web.service.views import (
    AssignmentSummary,
    FeedbackView,
    ReviewItem,
    ReviewView,
    StatusView,
)
from tasks.annotate.web.service.vocabulary import word_label
from tasks.annotate.workflow import DECISIONS, CopyState, next_step


def review_queue(s: Session) -> list[ReviewView]:
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


def review_view(s: Session, a: Assignment) -> ReviewView:
    """A scored copy with, item by item, the CA's answer next to the gold label."""
    truth = gold_truth(s, a.group_id)
    answers = dict(
        s.execute(
            select(Answer.task_id, Answer.word).where(
                Answer.assignment_id == a.id, Answer.annotator_id == a.annotator_id
            )
        ).all()
    )
    items = [
        ReviewItem(
            task_id=t.task_id,
            clip_id=t.clip_id,
            video_url=f"/api/tasks/{t.task_id}/video",
            word=answers.get(t.task_id),
            label=word_label(answers[t.task_id]) if t.task_id in answers else None,
            gold=t.gold,
            gold_label=truth.get(t.clip_id) if t.gold else None,
        )
        for t in copy_tasks(s, a.group_id, a.copy)
    ]
    return ReviewView(**_summary_fields(a), needs_decision=a.state == "pr_review", items=items)


def assignment_summary(a: Assignment) -> AssignmentSummary:
    return AssignmentSummary(**_summary_fields(a))


def _summary_fields(a: Assignment) -> dict[str, object]:
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
) -> AssignmentSummary:  # fmt: skip
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
        move_copy(s, a, next_step(CopyState(a.verdict, a.round, decision), cfg.max_ca_rounds), cfg)
    return assignment_summary(a)


def feedback_for(s: Session, who: Identity) -> list[FeedbackView]:
    """The reviews of a CA's copies that carry feedback, newest first."""
    rows = s.execute(
        select(Assignment, Review)
        .join(Review, Review.assignment_id == Assignment.id)
        .where(Assignment.annotator_id == who.id, Review.feedback.is_not(None))
        .order_by(Review.created_at.desc(), Review.id.desc())
    ).all()
    return [
        FeedbackView(
            group_id=a.group_id,
            copy=a.copy,
            round=a.round,
            verdict=a.verdict,
            decision=r.decision,
            feedback=r.feedback,
            at=r.created_at.isoformat(),
        )
        for a, r in rows
    ]


def copy_answers(s: Session, assignment_id: int) -> list[ReviewItem]:
    """Every answer given on one copy assignment (PR only, through the app)."""
    a = s.get(Assignment, assignment_id)
    if a is None:
        raise NotFound(f"no copy assignment {assignment_id}")
    return review_view(s, a).items


def status(s: Session) -> StatusView:
    """Counts for the PR's overview: assignments per state and verdict, gold items left."""
    by_state = dict(s.execute(select(Assignment.state, func.count()).group_by(Assignment.state)).all())
    by_verdict = dict(
        s.execute(
            select(Assignment.verdict, func.count())
            .where(Assignment.verdict.is_not(None))
            .group_by(Assignment.verdict)
        ).all()
    )
    return StatusView(states=by_state, verdicts=by_verdict, gold_left=gold_counts(s)[1])
