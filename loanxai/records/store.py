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
same requests the same way, in a table of their own. The grouped commits are
:mod:`loanxai.records.commits`'s; every statement the services run on PostgreSQL ends within
``LOAN_RECORD_TIMEOUT`` or has its connection cut and replaced (:mod:`loanxai.records.deadline`),
and :meth:`DecisionStore.check_writable` is the services' readiness: a write that commits.
"""
from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import and_, create_engine, event, insert, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError

from loanxai.config import CHAMPION, SQLITE_PREFIX, ServiceSettings
from loanxai.errors import DecisionConflict, RecordError, RecordInDoubt, RecordUnavailable
from loanxai.records import migrations
from loanxai.records.commits import AlreadyRecorded, GroupCommit
from loanxai.records.deadline import Watchdog
from loanxai.records.tables import MODEL_ROLE_TABLES, decisions, events

__all__ = ["DecisionStore", "RequestDecisions", "absolute_url", "configured_url", "current_store", "open_store", "reading_store",
           "served_store"]

logger = logging.getLogger(__name__)

#: seconds to connect to PostgreSQL before a decision is answered 503 (a stopped database must
#: not hold the classifier's threads)
CONNECT_SECONDS = 2
#: milliseconds SQLite waits for another process's write lock before it gives up
SQLITE_BUSY_MS = 5000
#: TCP keepalives on PostgreSQL connections: a peer gone without a word is noticed within about
#: idle + interval x count seconds of silence (libpq's keepalives_* parameters)
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
#: what readiness writes: the one row of Alembic's version table, set to itself (a write that commits)
_WRITE_PROBE = text("UPDATE alembic_version SET version_num = version_num")


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
    ``model_role`` (``champion``: answered; ``challenger``: a shadow's, kept apart); a statement
    on PostgreSQL that takes longer than ``timeout`` seconds has its connection cut. Nothing is
    connected until it is used."""

    def __init__(self, url: str, model_role: str = CHAMPION, timeout: float | None = None) -> None:
        self.timeout = ServiceSettings().record_timeout if timeout is None else timeout
        self.watchdog = Watchdog()
        self.engine = _engine(url, self.watchdog, self.timeout)
        self.table = MODEL_ROLE_TABLES[model_role]
        self.writer = GroupCommit(self.engine, self.table, self.watchdog, self.timeout, self.shown_url,
                                  turn_wait=SQLITE_BUSY_MS / 1000)

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    def upgrade(self) -> None:
        """Bring the database to the newest migration (creating it when empty), leaving no
        connection open."""
        try:
            migrations.upgrade(self.engine)
        except (SQLAlchemyError, OSError) as error:  # OSError: the lock file beside a SQLite file
            raise RecordError(f"the decision record at {self.shown_url} cannot be opened or migrated: "
                              f"{_cause(error)}") from None

    def check_current(self) -> None:
        """Refuse a database that is not at the newest migration (``loanxai records upgrade``),
        leaving no connection open."""
        try:
            at = migrations.current(self.engine)
        except (SQLAlchemyError, OSError) as error:  # OSError: the lock file beside a SQLite file
            raise RecordError(f"the decision record at {self.shown_url} cannot be read: {_cause(error)}") from None
        head = migrations.head()
        if at is not None and at != head and not migrations.known(at):
            raise RecordError(f"the decision record at {self.shown_url} is at migration {at}, newer than this code's "
                              f"newest ({head}): run the newer code that migrated it")
        if at != head:
            raise RecordError(f"the decision record at {self.shown_url} is at migration {at or 'none'}, the code needs "
                              f"{head}: run {self._upgrade_command()}")

    def _upgrade_command(self) -> str:
        """The command that migrates this record, a SQLite file named whatever folder it runs in."""
        database = self.engine.url.database if self.engine.url.get_backend_name() == "sqlite" else None
        if database and database != ":memory:":
            return f"`loanxai records upgrade --record-url {SQLITE_PREFIX}{Path(database).resolve()}`"
        return "`loanxai records upgrade` with the same LOAN_RECORDS_URL"

    def record(self, decided: RequestDecisions,
               same: Callable[[list[dict[str, Any]]], bool] | None = None) -> list[str]:
        """Commit a request's decisions; return their application ids as recorded.

        A request id on the record already is a retry when ``same(recorded rows)`` says the
        recorded applications are the ones sent (default: the same inputs as entered and groups),
        and answered with the recorded ids; else :class:`DecisionConflict`. Raises
        :class:`RecordUnavailable` when the database fails (nothing is recorded) and
        :class:`RecordInDoubt` when it cannot tell.
        """
        rows = decided.rows()
        what, retry = f"decision {decided.request_id}", "retry with the same meta.puid"
        try:
            self.writer.write(rows, wait=2 * self.timeout)
        except AlreadyRecorded:
            return self._retried(decided.request_id, rows, same)
        except RecordUnavailable as error:
            raise RecordUnavailable(f"the {what} could not be recorded ({error.message}), so it is not answered: "
                                    f"{retry}") from None
        except RecordInDoubt as error:
            logger.error("%s may be recorded at %s: %s", what, self.shown_url, error.message)
            raise RecordInDoubt(f"the {what} may be recorded ({error.message}), so it is not answered: {retry}, "
                                "which answers it as recorded, or records it once") from None
        return [row["application_id"] for row in rows]

    def _unavailable(self, what: str, cause: str, retry: str) -> RecordUnavailable:
        """The 503 for ``what`` (``outcome of <id>``) not recorded, logged with the database's
        words (answered without them: they name hosts)."""
        logger.error("%s not recorded at %s: %s", what, self.shown_url, cause)
        return RecordUnavailable(f"the {what} could not be recorded (the record's database failed; the service's log "
                                 f"says why): retry {retry}")

    def _retried(self, request_id: str, rows: list[dict[str, Any]],
                 same: Callable[[list[dict[str, Any]]], bool] | None) -> list[str]:
        """A request id already on the record: the same applications are a retry, others a conflict."""
        recorded = self._read(self._select, self._of_request(request_id, rows[0]["model_version"]), self.table)
        if not (len(recorded) == len(rows) and (same or partial(_same_as_entered, rows))(recorded)):
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

    def decisions_of_application(self, application_id: str) -> list[dict[str, Any]]:
        """The recorded (champion's) decisions of one application id, oldest first."""
        return self._select(decisions.c.application_id == application_id)

    def latest(self, application_id: str) -> dict[str, Any] | None:
        """The newest decision of an application id (None: not on the record); a failing database
        is :class:`RecordUnavailable`."""
        found = self._read(self.decisions_of_application, application_id)
        return found[-1] if found else None

    def _select(self, condition: Any, table: Any = decisions) -> list[dict[str, Any]]:
        statement = select(table).where(condition).order_by(table.c.decided_at, table.c.row)
        with self._connected() as connection:
            return [dict(row._mapping) for row in connection.execute(statement)]

    @contextlib.contextmanager
    def _connected(self) -> Iterator[Connection]:
        """A pooled connection whose statements (and a transaction's commit, begun inside) must end within the timeout."""
        with self.engine.connect() as connection:
            with self.watchdog.deadline(connection.connection.dbapi_connection, self.timeout):
                yield connection

    def check_writable(self) -> None:
        """Readiness: a write to the record commits within the timeout; :class:`RecordUnavailable` when it does not."""
        try:
            with self._connected() as connection, connection.begin():
                connection.execute(_WRITE_PROBE)
        except SQLAlchemyError as error:
            raise self._unavailable("readiness probe", _cause(error), "in a moment") from None

    def attach(self, request_id: str, kind: str, contents: Iterable[tuple[int, Any]], at: datetime, retry: str) -> int:
        """Attach events of ``kind`` to rows of a recorded request (``(row, content)`` pairs);
        return how many attached (rows not on the record are skipped). ``retry``: what the 503
        asks to send again when the database fails (``the feedback``)."""
        recorded = {r["row"] for r in self._read(self.decisions_of_request, request_id)}
        entries = [{"request_id": request_id, "row": row, "kind": kind, "at": at, "content": content}
                   for row, content in contents if row in recorded]
        if entries:
            try:
                with self._connected() as connection, connection.begin():
                    connection.execute(insert(events), entries)
            except SQLAlchemyError as error:
                raise self._unavailable(f"{kind} of {request_id}", _cause(error), retry) from None
        return len(entries)

    def looked(self, shown: Iterable[Mapping[str, Any]], content: Mapping[str, Any], at: datetime) -> None:
        """Record that the decisions ``shown`` (read from the record) were looked at: one event
        ``looked`` each, with ``content`` (who, which page), in one statement."""
        entries = [{"request_id": r["request_id"], "row": r["row"], "kind": "looked", "at": at, "content": dict(content)}
                   for r in shown]
        if entries:
            try:
                with self._connected() as connection, connection.begin():
                    connection.execute(insert(events), entries)
            except SQLAlchemyError as error:
                raise self._unavailable("look at the record", _cause(error), "the page") from None

    def _read(self, query: Any, *arguments: Any) -> Any:
        """A read the classifier needs to answer: a failing database is :class:`RecordUnavailable`."""
        try:
            return query(*arguments)
        except SQLAlchemyError as error:
            logger.error("the record at %s cannot be read: %s", self.shown_url, _cause(error))
            raise RecordUnavailable("the record cannot be read (its database failed; the service's log says why): "
                                    "retry in a moment") from None

    def events_of(self, request_id: str, row: int) -> list[dict[str, Any]]:
        """What attached to one decision, oldest first."""
        statement = (select(events).where(events.c.request_id == request_id, events.c.row == row)
                     .order_by(events.c.at, events.c.id))
        with self._connected() as connection:
            return [dict(r._mapping) for r in connection.execute(statement)]


def open_store(url: str, model_role: str = CHAMPION, timeout: float | None = None) -> DecisionStore:
    """The record at ``url`` for the decisions of a classifier in ``model_role`` (statements
    within ``timeout`` seconds), migrated to the newest tables, with no connection left open (a
    process that forks after this gives each worker its own)."""
    store = DecisionStore(url, model_role, timeout)
    store.upgrade()
    return store


def configured_url(given: str | None, service: ServiceSettings) -> str:
    """The record's URL for a command that reads it: ``given`` (its ``--record-url``), else the
    service's ``LOAN_RECORDS_URL``; refused when off."""
    url = given or service.records_url
    if url == "off":
        raise RecordError("LOAN_RECORDS_URL=off: there is no record to read")
    return url


def current_store(url: str, model_role: str = CHAMPION, timeout: float | None = None) -> DecisionStore:
    """The record at ``url`` as :class:`DecisionStore` opens it, refused unless it is at the
    newest migration (the services and the commands that read it: migrating is ``loanxai
    records upgrade``'s), with no connection left open."""
    store = DecisionStore(url, model_role, timeout)
    store.check_current()
    return store


def served_store(service: ServiceSettings, model_role: str = CHAMPION) -> DecisionStore | None:
    """The record a service writes, ``LOAN_RECORDS_URL`` (None: off), as :func:`current_store` opens it."""
    if service.records_url == "off":
        return None
    return current_store(service.records_url, model_role, service.record_timeout)


def reading_store(given: str | None, service: ServiceSettings) -> DecisionStore:
    """The record at :func:`configured_url` for reading, as :func:`current_store` opens it."""
    return current_store(configured_url(given, service))


def absolute_url(url: str, base: Path | None = None) -> str:
    """``url`` with a relative SQLite file made absolute against ``base`` (the working directory)."""
    if not url.startswith(SQLITE_PREFIX):
        return url
    return SQLITE_PREFIX + str((base or Path.cwd()) / url.removeprefix(SQLITE_PREFIX))


def _engine(url: str, watchdog: Watchdog, timeout: float) -> Engine:
    if url.startswith(SQLITE_PREFIX):
        path = Path(url.removeprefix(SQLITE_PREFIX))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RecordError(f"LOAN_RECORDS_URL={url}: cannot create the folder {path.parent}: {error.strerror}") from None
        engine = create_engine(url, json_serializer=_record_json)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, json_serializer=_record_json,
                           connect_args={"connect_timeout": CONNECT_SECONDS, **KEEPALIVES,
                                         # data sent and not acknowledged this long: the path is gone
                                         "tcp_user_timeout": int(timeout * 1000)})
    event.listen(engine, "checkout", partial(_ping, watchdog, timeout))
    return engine


def _record_json(value: Any) -> str:
    """The JSON text a record's JSON column holds, written by orjson: a 100-row request's inputs
    and groups in 0.05 ms rather than json's 0.55 (measured; docs: Performance). numpy numbers
    are numbers and keys that are not strings are strings, as ``json.dumps`` writes them."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def _ping(watchdog: Watchdog, timeout: float, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection is pinged before it is used (within the deadline: a silent one is cut);
    one that fails is replaced (SQLAlchemy's pool takes a DisconnectionError as that)."""
    try:
        with watchdog.deadline(dbapi_connection, timeout):
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
    except Exception as error:  # noqa: BLE001 (whatever broke it, it is not used)
        raise DisconnectionError(f"the pooled connection failed its ping: {error}") from error


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL (readers beside the writer), a commit synced to disk, foreign keys, the lock wait."""
    cursor = connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", f"busy_timeout={SQLITE_BUSY_MS}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _same_as_entered(rows: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> bool:
    """Whether the recorded rows hold the same applications as ``rows``: inputs as entered and groups."""
    return all(_canonical([a["inputs"], a["protected"]]) == _canonical([b["inputs"], b["protected"]])
               for a, b in zip(rows, recorded))


def _cause(error: SQLAlchemyError | OSError) -> str:
    """The database's own words, first line only (no SQL, no parameters)."""
    original = getattr(error, "orig", None) or error
    return (str(original).strip().splitlines() or [type(original).__name__])[0]
