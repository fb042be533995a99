"""Alembic's migrations of the record: ``versions/`` holds one file per change of the tables.

:func:`upgrade` brings a database to the newest migration (``loanxai records upgrade`` does,
the deployments' init containers and the local harness before the services start);
:func:`current` says where one is, as the services read it at start. A
test upgrades a populated database from the first migration and checks nothing was lost.
"""
from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL, Engine

from loanxai.records.commits import WRITERS_LOCK_SUFFIX

__all__ = ["current", "head", "known", "revision", "upgrade"]

_HERE = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)
# Alembic says which dialect it found on every connection: only its warnings are worth reading
logging.getLogger("alembic").setLevel(logging.WARNING)


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["engine"] = engine
    return config


@contextmanager
def _one_process_at_a_time(url: URL, required: bool = True) -> Iterator[None]:
    """Hold the turn to write the SQLite file of ``url``, waiting for it (nothing for other
    databases or an in-memory one): the ``flock`` its writers take turns with. Unless
    ``required``, a lock file that cannot be made (a read-only folder) is done without.

    A lock file beside it, not the database: closing any descriptor of the database drops the
    POSIX locks SQLite holds on it in this process. SQLite's own lock is no help: it takes it at
    a transaction's first write, after each process has read that the tables are missing, and
    a file's last connection cleaning up its WAL as it closes makes another one opening it then
    fail at once with "database is locked", whatever the busy timeout.
    """
    database = url.database if url.get_backend_name() == "sqlite" else None
    handle = None
    if database and database != ":memory:":
        try:
            handle = open(database + WRITERS_LOCK_SUFFIX, "a")
        except OSError:
            if required:
                raise
            # a reader of a record on a read-only mount: nothing can be migrating it from here
            logger.debug("no lock file beside %s: reading its migration without taking the writers' turn", database)
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def upgrade(engine: Engine, target: str = "head") -> None:
    """Apply every migration up to ``target`` (the newest by default) to the database, one
    process at a time, and close the engine's connections (a process that forks after this
    gives each worker its own)."""
    with _one_process_at_a_time(engine.url):
        before = revision(engine)
        command.upgrade(_config(engine), target)
        after = revision(engine)
        engine.dispose()
    if after != before:
        logger.info("decision record migrated from %s to %s", before or "nothing", after)


def current(engine: Engine) -> str | None:
    """The migration the database is at (None: an empty database), read one process at a time
    (see :func:`upgrade`: a service starting beside another must not meet the WAL's clean-up),
    leaving no connection open."""
    with _one_process_at_a_time(engine.url, required=False):
        try:
            return revision(engine)
        finally:
            engine.dispose()


def revision(engine: Engine) -> str | None:
    """The migration the database is at (None: an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def known(name: str) -> bool:
    """Whether ``name`` is one of this code's migrations (a record migrated by newer code is not)."""
    try:
        ScriptDirectory.from_config(_config(None)).get_revision(name)  # type: ignore[arg-type]
    except CommandError:
        return False
    return True


def head() -> str:
    """The newest migration."""
    return ScriptDirectory.from_config(_config(None)).get_current_head()  # type: ignore[arg-type]
