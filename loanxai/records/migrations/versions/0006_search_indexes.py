"""Indexes of the console's searches: the decisions by model version and time; on PostgreSQL, by protected group.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    """Index the decisions by model version then time; on PostgreSQL, their protected groups (GIN),
    then ANALYZE: without the groups' statistics the planner would read a common group through it."""
    op.create_index("ix_decisions_model_version_decided_at", "decisions", ["model_version", "decided_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_decisions_protected", "decisions", [sa.text("(CAST(protected AS JSONB)) jsonb_path_ops")],
                        postgresql_using="gin")
        op.execute("ANALYZE decisions")
