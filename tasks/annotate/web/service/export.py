"""The database's answers and copy checks as the catalog's ``answers`` and ``group_checks`` rows."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from tasks.annotate.web.db import Answer, Assignment, Review, Task


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
