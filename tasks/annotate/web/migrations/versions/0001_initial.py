"""The labelling app's first schema: annotators, tasks, assignments, answers, reviews.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from tasks.annotate.web.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotators",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(2), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(300), primary_key=True),
        sa.Column("batch_id", sa.String(100), nullable=False, index=True),
        sa.Column("group_id", sa.String(120), nullable=False),
        sa.Column("copy", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.String(200), nullable=False),
        sa.Column("scene", sa.String(100), nullable=False),
        sa.Column("gold", sa.Boolean(), nullable=False),
        sa.Column("clip_path", sa.Text()),
        sa.Column("predicted_label", sa.String(50)),
        sa.Column("title", sa.Text()),
        sa.Column("boxes", sa.JSON()),
    )
    op.create_index("ix_tasks_group_copy", "tasks", ["group_id", "copy", "position"])
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(100), nullable=False, index=True),
        sa.Column("group_id", sa.String(120), nullable=False),
        sa.Column("copy", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("scene", sa.String(100), nullable=False),
        sa.Column("annotator_id", sa.String(64), sa.ForeignKey("annotators.id"), index=True),
        sa.Column("relabeller_id", sa.String(64), sa.ForeignKey("annotators.id")),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("verdict", sa.String(2)),
        sa.Column("n_items", sa.Integer()),
        sa.Column("n_gold", sa.Integer()),
        sa.Column("n_gold_answered", sa.Integer()),
        sa.Column("n_gold_correct", sa.Integer()),
        sa.Column("estimate", sa.Float()),
        sa.Column("ci_low", sa.Float()),
        sa.Column("ci_high", sa.Float()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime()),
        sa.UniqueConstraint("group_id", "copy", "round", name="uq_assignments_copy_round"),
    )
    op.create_table(
        "answers",
        sa.Column("answer_id", sa.String(400), primary_key=True),
        sa.Column("task_id", sa.String(300), sa.ForeignKey("tasks.task_id"), nullable=False, index=True),
        sa.Column("assignment_id", sa.Integer(), sa.ForeignKey("assignments.id"), index=True),
        sa.Column("annotator_id", sa.String(64), sa.ForeignKey("annotators.id"), nullable=False, index=True),
        sa.Column("role", sa.String(2), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("word", sa.String(50), nullable=False),
        sa.Column("label", sa.String(50)),
        sa.Column("answered_at", UTCDateTime(), nullable=False),
        sa.Column("time_spent_s", sa.Float(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.UniqueConstraint("task_id", "annotator_id", "round", name="uq_answers_once"),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "assignment_id", sa.Integer(), sa.ForeignKey("assignments.id"), nullable=False, unique=True
        ),
        sa.Column("reviewer_id", sa.String(64), sa.ForeignKey("annotators.id"), nullable=False),
        sa.Column("decision", sa.String(10)),
        sa.Column("feedback", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("reviews", "answers", "assignments", "tasks", "annotators"):
        op.drop_table(table)
