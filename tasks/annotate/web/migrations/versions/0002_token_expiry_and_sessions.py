"""Tokens that expire and can be revoked; login sessions the page's cookie carries instead of the token.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from tasks.annotate.web.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("annotators") as batch:
        batch.add_column(sa.Column("token_issued_at", UTCDateTime()))
        batch.add_column(sa.Column("token_revoked_at", UTCDateTime()))
    # Tokens issued before this revision count from when their annotator was added.
    op.execute("UPDATE annotators SET token_issued_at = created_at")
    op.create_table(
        "login_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("annotator_id", sa.String(64), sa.ForeignKey("annotators.id"), nullable=False, index=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_sessions")
    with op.batch_alter_table("annotators") as batch:
        batch.drop_column("token_revoked_at")
        batch.drop_column("token_issued_at")
