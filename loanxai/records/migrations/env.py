"""Alembic's environment: migrations run on the engine :mod:`loanxai.records.migrations` passes,
in one transaction, one process at a time, so that replicas starting together migrate once:
on PostgreSQL behind an advisory lock; on a SQLite file behind the lock file
:func:`loanxai.records.migrations.upgrade` holds."""
from __future__ import annotations

from alembic import context
from sqlalchemy import text

from loanxai.records.tables import metadata

#: the advisory lock's key on PostgreSQL (any constant the lender's database does not use)
MIGRATION_LOCK = 8812_1002


def run_migrations() -> None:
    """Run every pending migration on the engine given, in one transaction."""
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()


run_migrations()
