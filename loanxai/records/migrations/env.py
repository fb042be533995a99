"""Alembic's environment: migrations run on the engine :mod:`loanxai.records.migrations` passes,
in one transaction, one process at a time, so that replicas starting together migrate once:
on PostgreSQL behind an advisory lock; on a SQLite file behind an exclusive ``flock`` of the
file (SQLite takes its own write lock only at a transaction's first write, after each process
has read that the tables are missing)."""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import URL

from loanxai.records.tables import metadata

#: the advisory lock's key on PostgreSQL (any constant the lender's database does not use)
MIGRATION_LOCK = 8812_1002


@contextmanager
def _sqlite_file_locked(url: URL) -> Iterator[None]:
    """Hold an exclusive flock of the SQLite database file of ``url`` (none for other databases,
    an in-memory one, or a file that cannot be opened: SQLite then says why)."""
    database = url.database if url.get_backend_name() == "sqlite" else None
    try:
        handle = open(database, "ab") if database and database != ":memory:" else None  # noqa: SIM115
    except OSError:
        handle = None
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # apart from SQLite's own (fcntl) byte-range locks
        yield


def run_migrations() -> None:
    """Run every pending migration on the engine given, in one transaction."""
    engine = context.config.attributes["engine"]
    with _sqlite_file_locked(engine.url), engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()


run_migrations()
