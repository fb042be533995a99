"""The principal reasons answered, and the events that attach to a decision later (outcomes).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    """Add the reasons column and the events table."""
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("reasons", sa.JSON, nullable=True))
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(["request_id", "row"], ["decisions.request_id", "decisions.row"], ondelete="CASCADE"),
    )
    op.create_index("ix_events_decision", "events", ["request_id", "row"])
