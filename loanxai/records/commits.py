"""Grouped commits of decisions: many requests' rows in one transaction, each request answered by its own outcome.

A request queues its rows, then takes the process's commit lock; whoever holds it commits
everything queued (its own rows and those of the requests waiting behind it) in one
transaction, so a request whose rows a previous holder committed finds them done. Alone, a
request commits its own at once. Each waiting request hears its own outcome:

- committed: nothing raised;
- :class:`AlreadyRecorded`: its request id is on the record already (a retry, or a conflict);
- :class:`~loanxai.errors.RecordUnavailable`: the database failed (down, full, cut by the
  deadline); nothing of it is recorded;
- :class:`~loanxai.errors.RecordInDoubt`: the database's answer to the commit was lost and the
  record could not be read to tell whether it holds the rows;
- anything else: a bug of ours, raised as it is (a 500 naming the request id).

One request's fault never fails the others: when a group fails for a reason that is not the
database's (a row it refuses, a value the driver cannot send), each request of the group is
committed alone, so only the one at fault hears of it. A commit whose answer was lost (the
connection broke during COMMIT) is looked up before anyone is answered.

Several processes writing one SQLite file (gunicorn's workers) take turns through
:class:`WriterTurn` rather than SQLite's busy handler, which sleeps 1, 2, 5, 10 ms and more
between tries and left the next group waiting long after the lock was free (p99 of 100-row
requests 200-330 ms with it, 50-70 ms with turns; docs: Performance).

The insert is SQLAlchemy's, compiled once for the database with each column's own value
conversion (JSON, times), run on a connection the process keeps: per request it costs a few
microseconds instead of a statement execution's few hundred (docs: Results). Each request
converts its own rows before it queues, a column at a time, so the lock's holder only sends
them. Every statement and commit has a deadline (:mod:`loanxai.records.deadline`).
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as WaitedTooLong
from typing import Any

from sqlalchemy import insert, select

from loanxai.errors import RecordInDoubt, RecordUnavailable
from loanxai.records.deadline import Watchdog
from loanxai.records.tables import SHARED_DECISION_COLUMNS

__all__ = ["AlreadyRecorded", "GroupCommit", "WriterTurn"]

logger = logging.getLogger(__name__)

#: a request waiting to be committed: its rows, their parameters for the driver, its outcome
_Queued = tuple[list[dict[str, Any]], list[Any], Future]
_NOTHING = object()
#: beside a SQLite file, the file whose ``flock`` is the turn to write it (migrations take it too)
WRITERS_LOCK_SUFFIX = "-writers"
#: the first pause between asks for a SQLite writer's turn, in seconds (doubled up to 20 times it)
TURN_POLL_SECONDS = 5e-5


class AlreadyRecorded(Exception):
    """The request's id is on the record already: nothing was written."""


class WriterTurn:
    """The turn to write a SQLite file among processes: an advisory lock (``flock``) on
    ``<file>-writers`` beside it, asked for every :data:`TURN_POLL_SECONDS` at first and less
    often after, for at most ``wait`` seconds (SQLite's own busy timeout), then refused as
    SQLite refuses: ``database is locked``. A process that dies drops its turn with its files."""

    def __init__(self, database: str, wait: float, locked: type[Exception]) -> None:
        self.path, self.wait, self.locked = database + WRITERS_LOCK_SUFFIX, wait, locked
        self.file: Any = None

    @contextlib.contextmanager
    def taken(self) -> Iterator[None]:
        """Hold the turn for the block."""
        if self.file is None or self.file.closed:
            self.file = open(self.path, "a")  # noqa: SIM115 (kept open: the lock lives on it)
        deadline, pause = time.monotonic() + self.wait, TURN_POLL_SECONDS
        while True:
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise self.locked("database is locked (another process kept its turn to write)") from None
                time.sleep(pause)
                pause = min(2 * pause, 20 * TURN_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(self.file, fcntl.LOCK_UN)

    def forked(self) -> None:
        """A new process's own file: a lock taken through the parent's would be the parent's."""
        self.file = None


class GroupCommit:
    """Grouped commits of ``table``'s rows (the columns a classifier writes) on ``engine`` (see
    the module's docstring); each statement and commit ends within ``timeout`` seconds, or its
    connection is cut; a SQLite writer waits at most ``turn_wait`` seconds for its turn."""

    def __init__(self, engine: Any, table: Any, watchdog: Watchdog, timeout: float, shown_url: str,
                 turn_wait: float) -> None:
        self.engine, self.table, self.watchdog, self.timeout, self.shown_url = engine, table, watchdog, timeout, shown_url
        dialect = engine.dialect
        # PostgreSQL takes a group's rows by COPY (one message, no per-row statement: measured
        # 2026-12-06, psycopg's pipelined executemany was a third of a 100-row request's time)
        self.copy = dialect.name == "postgresql"
        if self.copy:
            quote = dialect.identifier_preparer
            self.names = list(SHARED_DECISION_COLUMNS)
            self.sql = (f"COPY {quote.format_table(table)} ({', '.join(quote.quote(n) for n in self.names)}) "
                        "FROM STDIN")
        else:  # SQLite's driver takes positional parameters (qmark)
            compiled = insert(table).compile(dialect=dialect, column_keys=SHARED_DECISION_COLUMNS)
            self.sql, self.names = compiled.string, list(compiled.positiontup)
        self.convert = {c.name: c.type._cached_bind_processor(dialect) for c in table.columns}
        self.errors = dialect.loaded_dbapi
        # a commit's answer can be lost only across a network (SQLite's is the process's own)
        self.remote = dialect.name != "sqlite"
        database = engine.url.database
        self.turn = (WriterTurn(database, turn_wait, self.errors.OperationalError)
                     if not self.remote and database not in (None, "", ":memory:") else None)
        self._forked()

    def _forked(self) -> None:
        """A new process's own locks, queue and connection (a forked worker shares none of its parent's)."""
        self.pid = os.getpid()
        self.queue_lock, self.commit_lock = threading.Lock(), threading.Lock()
        self.queued: list[_Queued] = []
        self.connection: Any = None
        if self.turn is not None:
            self.turn.forked()

    def write(self, rows: list[dict[str, Any]], wait: float) -> None:
        """Commit ``rows``, grouped with whatever else is waiting; raise this request's outcome
        (see the module's docstring). ``wait``: seconds to wait for the commit lock."""
        if self.pid != os.getpid():
            self._forked()
        done: Future = Future()
        # converted here, by the request's own thread, before any lock: a holder only sends
        item = (rows, self._parameters(rows), done)
        with self.queue_lock:
            self.queued.append(item)
        if not self.commit_lock.acquire(timeout=wait):
            with self.queue_lock:
                if item in self.queued:  # nobody took it: it will never be written
                    self.queued.remove(item)
                    raise RecordUnavailable(f"no commit within {wait:g} s: the record is not keeping up (the "
                                            "classifier's log says why)")
            # a holder is committing it: its commit ends within the deadline, its lookup within another
            with contextlib.suppress(WaitedTooLong):
                done.exception(timeout=2 * self.timeout + 1)
        else:
            try:
                if not done.done():
                    with self.queue_lock:
                        batch, self.queued = self.queued, []
                    self._commit(batch)
            finally:
                self.commit_lock.release()
        if not done.done():
            raise RecordInDoubt("the commit holding this decision did not end in time; it may be recorded")
        done.result()

    def _parameters(self, rows: list[dict[str, Any]]) -> list[Any]:
        """The driver's parameters of ``rows``, built a column at a time: a value shared by
        consecutive rows (a request's id, time, model, a None) is converted once."""
        columns = []
        for name in self.names:
            values = [row[name] for row in rows]
            convert = self.convert[name]
            columns.append(_converted(values, convert) if convert else values)
        return list(zip(*columns))

    def _commit(self, batch: list[_Queued]) -> None:
        stage = "connect"
        try:
            if self.connection is None:
                self.connection = self.engine.raw_connection()
            with self.watchdog.deadline(self.connection.dbapi_connection, self.timeout):
                stage = "insert"
                parameters = [values for _, converted, _ in batch for values in converted]
                with self.turn.taken() if self.turn is not None else contextlib.nullcontext():
                    cursor = self.connection.cursor()
                    try:
                        if self.copy:
                            with cursor.copy(self.sql) as copy:
                                for values in parameters:
                                    copy.write_row(values)
                        else:
                            cursor.executemany(self.sql, parameters)
                    finally:
                        cursor.close()
                    stage = "commit"
                    self.connection.commit()
        except Exception as error:  # noqa: BLE001 (every waiting request must hear of it)
            self._rollback()
            self._failed(batch, error, stage)
            return
        for *_, done in batch:
            done.set_result(None)

    def _failed(self, batch: list[_Queued], error: Exception, stage: str) -> None:
        """Tell each request of a failed group its own outcome (see the module's docstring)."""
        database = isinstance(error, (self.errors.OperationalError, self.errors.InterfaceError))
        if not database and len(batch) > 1:
            for item in batch:  # one request's fault (a retry, a row refused): each alone, to tell which
                self._commit([item])
            return
        if database and stage == "commit" and self.remote:
            self._resolve(batch, error)
            return
        if isinstance(error, self.errors.IntegrityError):
            outcome: Exception = AlreadyRecorded()
        elif database:
            outcome = self._unavailable(batch, error)
        else:
            logger.error("the record at %s refused a request's rows: %s", self.shown_url, _first_line(error))
            outcome = error
        for *_, done in batch:
            done.set_exception(outcome)

    def _unavailable(self, batch: list[_Queued], error: Exception) -> RecordUnavailable:
        """The database failed: logged with its own words, answered without them (no host names)."""
        logger.error("%d requests not recorded at %s: %s", len(batch), self.shown_url, _first_line(error))
        return RecordUnavailable(f"its database failed: {type(error).__name__}, the classifier's log says more")

    def _resolve(self, batch: list[_Queued], error: Exception) -> None:
        """The commit's answer was lost: look up which requests' rows are on the record."""
        logger.error("the answer to a commit of %d requests at %s was lost (%s): looking them up", len(batch),
                     self.shown_url, _first_line(error))
        first_rows = [rows[0] for rows, _, _ in batch]
        try:
            found = self._recorded(first_rows)
        except Exception as lookup:  # noqa: BLE001 (the database is away: nobody can tell)
            logger.error("the lookup failed too (%s): %d requests are in doubt", _first_line(lookup), len(batch))
            for *_, done in batch:
                done.set_exception(RecordInDoubt("the database's answer to the commit was lost and the record cannot "
                                                 "be read now"))
            return
        for item, first in zip(batch, first_rows):
            if _key(first) in found:
                item[-1].set_result(None)
            else:
                item[-1].set_exception(self._unavailable([item], error))

    def _recorded(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """The (request id, model version) of ``rows`` that the table holds."""
        table = self.table
        statement = (select(table.c.request_id, table.c.model_version)
                     .where(table.c.request_id.in_([r["request_id"] for r in rows]), table.c.row == 0))
        with self.engine.connect() as connection:
            with self.watchdog.deadline(connection.connection.dbapi_connection, self.timeout):
                return {(request_id, version) for request_id, version in connection.execute(statement)}

    def _rollback(self) -> None:
        """Roll back a failed group; a connection that cannot is dropped (the next group opens another)."""
        if self.connection is None:  # the connection itself failed to open
            return
        try:
            with self.watchdog.deadline(self.connection.dbapi_connection, self.timeout):
                self.connection.rollback()
        except Exception:  # noqa: BLE001 (a broken connection: replaced below)
            try:
                self.connection.invalidate()
            except Exception:  # noqa: BLE001,S110 (already gone)
                pass
            self.connection = None


def _converted(values: list[Any], convert: Callable[[Any], Any]) -> list[Any]:
    """``convert`` of each value, called once for a run of the same object."""
    converted: list[Any] = []
    last, last_converted = _NOTHING, None
    for value in values:
        if value is not last:
            last, last_converted = value, convert(value)
        converted.append(last_converted)
    return converted


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return row["request_id"], row["model_version"]


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
