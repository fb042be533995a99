"""Writing decisions to the record before they are answered, and reading them back.

One :class:`DecisionStore` per process holds a SQLAlchemy engine on ``LOAN_RECORDS_URL``:
SQLite (WAL, ``synchronous=FULL``: a committed decision survives the process and the machine)
by default, PostgreSQL (``synchronous_commit`` on, its default) in production; the code is the
same. Commits are grouped: the request holding a process's commit lock commits every request
waiting to be recorded in one transaction (one sync to disk for all), and each request is
answered once the commit that holds it returns; a request is never answered before. A request's
decisions are committed together or not at all, and then the classifier answers 503. A request id
(``meta.puid``) recorded before is a retry: it makes no second record, and is answered with the
recorded application ids when it sends the same applications (409 when it does not). A
challenger shadowing the champion (``LOAN_MODEL_ROLE=challenger``) records its decisions of the
same requests the same way, in a table of their own.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as WaitedTooLong
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, create_engine, event, insert, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from loanxai.config import CHAMPION, SQLITE_PREFIX, ServiceSettings
from loanxai.errors import DecisionConflict, RecordError, RecordUnavailable
from loanxai.records import migrations
from loanxai.records.tables import MODEL_ROLE_TABLES, decisions, events

__all__ = ["DecisionStore", "RequestDecisions", "absolute_url", "configured_url", "open_store", "reading_store"]

logger = logging.getLogger(__name__)

#: seconds to connect to PostgreSQL before a decision is answered 503 (a stopped database must
#: not hold the classifier's threads)
CONNECT_SECONDS = 2
#: milliseconds SQLite waits for another process's write lock before it gives up
SQLITE_BUSY_MS = 5000
#: seconds a request waits for the commit holding its decisions before it is answered 503
COMMIT_WAIT_SECONDS = 10


@dataclass(frozen=True)
class RequestDecisions:
    """What one prediction request decided, as recorded: ``n`` applications, each with its
    ``application_ids`` entry (None: make one up), ``inputs`` (as entered), ``protected``
    (attribute -> group or None), ``probabilities`` of approval, ``decisions`` and ``reasons``
    (None: not asked)."""

    request_id: str
    application_ids: Sequence[str | None]
    decided_at: datetime
    model_version: str
    manifest_sha256: str
    dataset: str
    inputs: Sequence[Any]
    protected: Sequence[Mapping[str, str | None]]
    probabilities: Sequence[float]
    cutoff: float
    decisions: Sequence[str]
    reasons: Sequence[Any] | None

    def rows(self) -> list[dict[str, Any]]:
        """The ``decisions`` table's rows, application ids made up where none was given."""
        return [{"request_id": self.request_id, "row": i,
                 "application_id": self.application_ids[i] or f"{self.request_id}-{i}",
                 "decided_at": self.decided_at, "model_version": self.model_version,
                 "manifest_sha256": self.manifest_sha256, "dataset": self.dataset, "inputs": self.inputs[i],
                 "protected": dict(self.protected[i]), "probability": float(self.probabilities[i]),
                 "cutoff": self.cutoff, "decision": self.decisions[i],
                 "reasons": None if self.reasons is None else self.reasons[i]}
                for i in range(len(self.inputs))]


class DecisionStore:
    """The record at ``url`` (a SQLAlchemy URL), writing the decisions of a classifier in
    ``model_role`` (``champion``: answered; ``challenger``: a shadow's, kept apart). Nothing is
    connected until it is used."""

    def __init__(self, url: str, model_role: str = CHAMPION) -> None:
        self.engine = _engine(url)
        self.table = MODEL_ROLE_TABLES[model_role]
        self.writer = _GroupCommit(self)

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    def upgrade(self) -> None:
        """Bring the database to the newest migration (creating it when empty)."""
        try:
            migrations.upgrade(self.engine)
        except SQLAlchemyError as error:
            raise RecordError(f"the decision record at {self.shown_url} cannot be opened or migrated: "
                              f"{_cause(error)}") from None

    def check_current(self) -> None:
        """Refuse a database that is not at the newest migration (``python -m loanxai.records upgrade``)."""
        try:
            at = migrations.revision(self.engine)
        except SQLAlchemyError as error:
            raise RecordError(f"the decision record at {self.shown_url} cannot be read: {_cause(error)}") from None
        if at != migrations.head():
            raise RecordError(f"the decision record at {self.shown_url} is at migration {at or 'none'}, the code needs "
                              f"{migrations.head()}: run `python -m loanxai.records upgrade`")

    def record(self, decided: RequestDecisions) -> list[str]:
        """Commit a request's decisions; return their application ids as recorded.

        Raises :class:`RecordUnavailable` when the database fails (nothing is recorded), and
        :class:`DecisionConflict` when the request id is recorded with other applications.
        """
        rows = decided.rows()
        try:
            self.writer.write(rows, COMMIT_WAIT_SECONDS)
        except IntegrityError:
            return self._retried(decided.request_id, rows)
        except SQLAlchemyError as error:
            raise self._unavailable(f"decision {decided.request_id}", _cause(error), "with the same meta.puid") from None
        except WaitedTooLong:
            raise self._unavailable(f"decision {decided.request_id}", f"no commit within {COMMIT_WAIT_SECONDS} s",
                                    "with the same meta.puid") from None
        return [row["application_id"] for row in rows]

    def _unavailable(self, what: str, cause: str, retry: str) -> RecordUnavailable:
        """The 503 for ``what`` (``decision <id>``) not recorded, logged with the database's words."""
        logger.error("%s not recorded at %s: %s", what, self.shown_url, cause)
        return RecordUnavailable(f"the {what.split()[0]} could not be recorded ({cause}), so it is not answered: "
                                 f"retry {retry}")

    def _retried(self, request_id: str, rows: list[dict[str, Any]]) -> list[str]:
        """A request id already on the record: the same applications are a retry, others a conflict."""
        recorded = self._read(self._select, self._of_request(request_id, rows[0]["model_version"]), self.table)
        if [_canonical(r["inputs"]) for r in recorded] != [_canonical(r["inputs"]) for r in rows]:
            raise DecisionConflict(f"request id {request_id!r} is already on the record for other applications: a "
                                   "retry must send the same applications, a new request a new meta.puid")
        logger.info("request %s was recorded before: a retry, not recorded again", request_id)
        return [r["application_id"] for r in recorded]

    def decisions_of_request(self, request_id: str) -> list[dict[str, Any]]:
        """The recorded (champion's) decisions of one request, by row."""
        return self._select(decisions.c.request_id == request_id)

    def _of_request(self, request_id: str, model_version: str) -> Any:
        """The condition selecting one request's decisions in this role's table (a challenger's: of its version)."""
        if self.table is decisions:
            return decisions.c.request_id == request_id
        return and_(self.table.c.request_id == request_id, self.table.c.model_version == model_version)

    def find(self, identifier: str) -> list[dict[str, Any]]:
        """The decisions an application id or a request id names, oldest first."""
        return self._select(or_(decisions.c.application_id == identifier, decisions.c.request_id == identifier))

    def latest(self, application_id: str) -> dict[str, Any] | None:
        """The newest decision of an application id (None: not on the record); a failing database
        is :class:`RecordUnavailable`."""
        found = self._read(self._select, decisions.c.application_id == application_id)
        return found[-1] if found else None

    def _select(self, condition: Any, table: Any = decisions) -> list[dict[str, Any]]:
        statement = select(table).where(condition).order_by(table.c.decided_at, table.c.row)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(statement)]

    def attach(self, request_id: str, kind: str, contents: Iterable[tuple[int, Any]], at: datetime, retry: str) -> int:
        """Attach events of ``kind`` to rows of a recorded request (``(row, content)`` pairs);
        return how many attached (rows not on the record are skipped). ``retry``: what the 503
        asks to send again when the database fails (``the feedback``)."""
        recorded = {r["row"] for r in self._read(self.decisions_of_request, request_id)}
        entries = [{"request_id": request_id, "row": row, "kind": kind, "at": at, "content": content}
                   for row, content in contents if row in recorded]
        if entries:
            try:
                with self.engine.begin() as connection:
                    connection.execute(insert(events), entries)
            except SQLAlchemyError as error:
                raise self._unavailable(f"{kind} of {request_id}", _cause(error), retry) from None
        return len(entries)

    def _read(self, query: Any, *arguments: Any) -> Any:
        """A read the classifier needs to answer: a failing database is :class:`RecordUnavailable`."""
        try:
            return query(*arguments)
        except SQLAlchemyError as error:
            logger.error("the record at %s cannot be read: %s", self.shown_url, error)
            raise RecordUnavailable(f"the record cannot be read ({_cause(error)}): retry in a moment") from None

    def events_of(self, request_id: str, row: int) -> list[dict[str, Any]]:
        """What attached to one decision, oldest first."""
        statement = (select(events).where(events.c.request_id == request_id, events.c.row == row)
                     .order_by(events.c.at, events.c.id))
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(statement)]


class _GroupCommit:
    """Grouped commits in one process, without a thread of their own: a request queues its rows,
    then takes the commit lock; whoever holds it commits everything queued (its own rows and those
    of the requests waiting behind it) in one transaction, so a request whose rows a previous
    holder committed finds them done. Alone, a request commits its own at once.

    The insert is SQLAlchemy's, compiled once for the database with each column's own value
    conversion (JSON, times), and run on a connection the process keeps: per request it costs a
    few microseconds instead of a statement execution's few hundred (docs: Results)."""

    def __init__(self, store: DecisionStore) -> None:
        self.store = store
        dialect, table = store.engine.dialect, store.table
        compiled = insert(table).compile(dialect=dialect)
        self.sql = compiled.string
        self.names = list(compiled.positiontup) if compiled.positional else [c.name for c in table.columns]
        self.positional = compiled.positional
        self.convert = {c.name: c.type._cached_bind_processor(dialect) for c in table.columns}
        self.errors = dialect.loaded_dbapi
        self._forked()

    def _forked(self) -> None:
        """A new process's own locks, queue and connection (a forked worker shares none of its parent's)."""
        self.pid = os.getpid()
        self.queue_lock, self.commit_lock = threading.Lock(), threading.Lock()
        self.queued: list[tuple[list[dict[str, Any]], Future]] = []
        self.connection: Any = None

    def write(self, rows: list[dict[str, Any]], timeout: float) -> None:
        """Commit ``rows``, grouped with whatever else is waiting; raise what the commit raised
        (:class:`WaitedTooLong` after ``timeout`` seconds: the rows may still be committed later)."""
        if self.pid != os.getpid():
            self._forked()
        done: Future = Future()
        with self.queue_lock:
            self.queued.append((rows, done))
        if not self.commit_lock.acquire(timeout=timeout):
            raise WaitedTooLong
        try:
            if not done.done():
                with self.queue_lock:
                    batch, self.queued = self.queued, []
                self._commit(batch)
        finally:
            self.commit_lock.release()
        done.result()

    def _parameters(self, row: dict[str, Any]) -> Any:
        values = {name: (convert(row[name]) if convert else row[name]) for name, convert in self.convert.items()}
        return tuple(values[name] for name in self.names) if self.positional else values

    def _commit(self, batch: list[tuple[list[dict[str, Any]], Future]]) -> None:
        try:
            if self.connection is None:
                self.connection = self.store.engine.raw_connection()
            cursor = self.connection.cursor()
            try:
                cursor.executemany(self.sql, [self._parameters(row) for rows, _ in batch for row in rows])
            finally:
                cursor.close()
            self.connection.commit()
        except Exception as error:  # noqa: BLE001 (every waiting request must hear of it)
            self._rollback()
            if isinstance(error, self.errors.IntegrityError) and len(batch) > 1:
                for item in batch:  # a retry among them: each alone, to tell which
                    self._commit([item])
                return
            failure = _as_sqlalchemy(error, self.errors)
            for _, done in batch:
                done.set_exception(failure)
            return
        for _, done in batch:
            done.set_result(None)

    def _rollback(self) -> None:
        """Roll back a failed batch; a connection that cannot is dropped (the next batch opens another)."""
        if self.connection is None:  # the connection itself failed to open
            return
        try:
            self.connection.rollback()
        except Exception:  # noqa: BLE001 (a broken connection: replaced below)
            try:
                self.connection.invalidate()
            except Exception:  # noqa: BLE001,S110 (already gone)
                pass
            self.connection = None


def _as_sqlalchemy(error: Exception, dbapi: Any) -> Exception:
    """A driver's error as SQLAlchemy raises it (IntegrityError, OperationalError, ...), for one handling."""
    if isinstance(error, dbapi.Error):
        return DBAPIError.instance(None, None, error, dbapi.Error)
    return error


def open_store(url: str, model_role: str = CHAMPION) -> DecisionStore:
    """The record at ``url`` for the decisions of a classifier in ``model_role``, migrated to the newest tables, with no
    connection left open (a process that forks after this gives each worker its own)."""
    store = DecisionStore(url, model_role)
    store.upgrade()
    store.engine.dispose()
    return store


def configured_url(url: str | None = None) -> str:
    """``url``, else ``LOAN_RECORDS_URL``, for a command that reads the record (refused when off)."""
    url = url or ServiceSettings.from_env().records_url
    if url == "off":
        raise RecordError("LOAN_RECORDS_URL=off: there is no record to read")
    return url


def reading_store(url: str | None = None) -> DecisionStore:
    """The record at :func:`configured_url` for reading, refused when it is not at the newest migration."""
    store = DecisionStore(configured_url(url))
    store.check_current()
    return store


def absolute_url(url: str, base: Path | None = None) -> str:
    """``url`` with a relative SQLite file made absolute against ``base`` (the working directory)."""
    if not url.startswith(SQLITE_PREFIX):
        return url
    return SQLITE_PREFIX + str((base or Path.cwd()) / url.removeprefix(SQLITE_PREFIX))


def _engine(url: str) -> Engine:
    if url.startswith(SQLITE_PREFIX):
        path = Path(url.removeprefix(SQLITE_PREFIX))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RecordError(f"LOAN_RECORDS_URL={url}: cannot create the folder {path.parent}: {error.strerror}") from None
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_SECONDS})


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL (readers beside the writer), a commit synced to disk, foreign keys, the lock wait."""
    cursor = connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", f"busy_timeout={SQLITE_BUSY_MS}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _cause(error: SQLAlchemyError) -> str:
    """The database's own words, first line only (no SQL, no parameters)."""
    original = getattr(error, "orig", None) or error
    return (str(original).strip().splitlines() or [type(original).__name__])[0]
