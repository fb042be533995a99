"""The decisions: one row per decided application.

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    """Create the decisions table and its indexes."""
    op.create_table(
        "decisions",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("row", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("application_id", sa.String(144), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_version", sa.String(12), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("dataset", sa.Text, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("protected", sa.JSON, nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("cutoff", sa.Float, nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
    )
    op.create_index("ix_decisions_application_id", "decisions", ["application_id"])
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])
