"""Reviews of decisions (contests), their events, the decisions a review makes, and their purges.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Create the reviews and review_events tables; name a decision's review and reviewers; a purge's reviews."""
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("review_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("decided_by", sa.JSON, nullable=True))
    op.create_index("ix_decisions_review_id", "decisions", ["review_id"])
    with op.batch_alter_table("purges") as batch:
        batch.add_column(sa.Column("review_retention_months", sa.Integer, nullable=True))
        batch.add_column(sa.Column("reviews", sa.Integer, nullable=True))
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("application_id", sa.String(144), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.JSON, nullable=False),
        sa.Column("grounds", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(["request_id", "row"], ["decisions.request_id", "decisions.row"], ondelete="CASCADE"),
    )
    op.create_index("ix_reviews_application_id", "reviews", ["application_id"])
    op.create_index("ix_reviews_status_due_at", "reviews", ["status", "due_at"])
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("review_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.JSON, nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(["review_id"], ["reviews.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_review_events_review_id", "review_events", ["review_id"])
