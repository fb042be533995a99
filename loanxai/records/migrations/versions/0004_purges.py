"""Every purge of the record, recorded: when, the retention it applied, what it deleted, and any override.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    """Create the purges table."""
    op.create_table(
        "purges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retention_months", sa.Integer, nullable=False),
        sa.Column("purged_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decisions", sa.Integer, nullable=False),
        sa.Column("override", sa.JSON, nullable=True),
    )
