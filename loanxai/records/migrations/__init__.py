"""Alembic's migrations of the record: ``versions/`` holds one file per change of the tables.

:func:`upgrade` brings a database to the newest migration (the classifier does at start-up,
``loanxai records upgrade`` does on demand); :func:`revision` says where one is. A
test upgrades a populated database from the first migration and checks nothing was lost.
"""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

__all__ = ["head", "revision", "upgrade"]

_HERE = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)
# Alembic says which dialect it found on every connection: only its warnings are worth reading
logging.getLogger("alembic").setLevel(logging.WARNING)


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, target: str = "head") -> None:
    """Apply every migration up to ``target`` (the newest by default) to the database."""
    before = revision(engine)
    command.upgrade(_config(engine), target)
    after = revision(engine)
    if after != before:
        logger.info("decision record migrated from %s to %s", before or "nothing", after)


def revision(engine: Engine) -> str | None:
    """The migration the database is at (None: an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    """The newest migration."""
    return ScriptDirectory.from_config(_config(None)).get_current_head()  # type: ignore[arg-type]
