"""Each authenticated caller's budget of explanations and classifier rows, against model extraction.

The median anchor asks the classifier about 700 rows, a hard one a few thousand (``make bench``
measures them): enough, asked often, to copy the decision boundary. With ``LOAN_AUTH=on`` every caller (a token's ``sub``) may
ask ``LOAN_CALLER_EXPLANATIONS`` explanations, and have ``LOAN_CALLER_MODEL_ROWS`` classifier rows
asked on its behalf, per window of ``LOAN_CALLER_WINDOW`` seconds (windows start at multiples of
it since the Unix epoch); past either, 429 ``CALLER_OVER_BUDGET`` with ``Retry-After`` the seconds
to the window's end. An explanation is counted when it is admitted (one refused because the
explainer is busy is not), and its rows are reserved before each classifier call: one that would
pass the budget is refused, so concurrent explanations never take more than it together.

The counts live in one SQLite file the service's processes share (made by the serving class in
the supervisor, before the workers fork), so a caller's budget is the service's, not one
worker's. Each replica counts its own: behind a load balancer of ``n`` replicas a caller may get
up to ``n`` times the budget (the mesh's global rate limits are the place for a cluster-wide one).
"""
from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from pathlib import Path

from loanxai.errors import CallerOverBudget
from loanxai.serving.auth import Caller

__all__ = ["CallerBudget"]

_SCHEMA = ("CREATE TABLE IF NOT EXISTS spent (subject TEXT NOT NULL, window REAL NOT NULL, "
           "explanations INTEGER NOT NULL, rows INTEGER NOT NULL, PRIMARY KEY (subject, window))")


class CallerBudget:
    """The budgets, counted in the SQLite file ``path`` (see the module's docstring)."""

    def __init__(self, path: Path, explanations: int, model_rows: int, window_s: float) -> None:
        self.path, self.explanations, self.model_rows, self.window_s = path, explanations, model_rows, window_s
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._connection: sqlite3.Connection | None = None
        with self._transaction() as db:
            db.execute(_SCHEMA)

    def admit(self, caller: Caller) -> float:
        """Count one explanation for ``caller`` and return its window (a Unix time), or raise
        :class:`~loanxai.errors.CallerOverBudget` when its window's budget is used up."""
        now = time.time()
        window = math.floor(now / self.window_s) * self.window_s
        with self._transaction() as db:
            db.execute("DELETE FROM spent WHERE window < ?", (window,))
            row = db.execute("SELECT explanations, rows FROM spent WHERE subject = ? AND window = ?",
                             (caller.subject, window)).fetchone()
            explanations, rows = row or (0, 0)
            if explanations >= self.explanations or rows >= self.model_rows:
                spent = (f"{explanations} explanations (LOAN_CALLER_EXPLANATIONS: {self.explanations})"
                         if explanations >= self.explanations
                         else f"{rows} classifier rows (LOAN_CALLER_MODEL_ROWS: {self.model_rows})")
                retry_after = max(1, math.ceil(window + self.window_s - now))
                raise CallerOverBudget(f"{caller.subject[:64]!r} has used up its budget of {spent} in this window of "
                                       f"{self.window_s:g} s (LOAN_CALLER_WINDOW); retry in {retry_after} s", retry_after)
            db.execute("INSERT INTO spent VALUES (?, ?, 1, 0) ON CONFLICT (subject, window) "
                       "DO UPDATE SET explanations = explanations + 1", (caller.subject, window))
        return window

    def reserve(self, caller: Caller, window: float, rows: int) -> None:
        """Count ``rows`` classifier rows for ``caller``'s admitted explanation before they are
        asked, or raise :class:`~loanxai.errors.CallerOverBudget` when they would pass its budget."""
        with self._transaction() as db:
            [used] = db.execute("SELECT rows FROM spent WHERE subject = ? AND window = ?",
                                (caller.subject, window)).fetchone() or (0,)
            if used + rows > self.model_rows:
                retry_after = max(1, math.ceil(window + self.window_s - time.time()))
                raise CallerOverBudget(f"{caller.subject[:64]!r} would pass its budget of {self.model_rows} classifier "
                                       f"rows (LOAN_CALLER_MODEL_ROWS; {used} used) in this window of {self.window_s:g} s "
                                       f"(LOAN_CALLER_WINDOW): the explanation is stopped; retry in {retry_after} s",
                                       retry_after)
            db.execute("UPDATE spent SET rows = rows + ? WHERE subject = ? AND window = ?", (rows, caller.subject, window))

    def busiest_share(self) -> float:
        """The largest share of its budget any caller has used in the current window (0 to 1 and above)."""
        window = math.floor(time.time() / self.window_s) * self.window_s
        with self._transaction() as db:
            row = db.execute("SELECT MAX(MAX(explanations * 1.0 / ?, rows * 1.0 / ?)) FROM spent WHERE window = ?",
                             (self.explanations, self.model_rows, window)).fetchone()
        return float(row[0] or 0.0)

    def _transaction(self) -> _Transaction:
        if self._pid != os.getpid():  # a connection is never shared across a fork
            self._connection = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            # counts of this run only (the file goes with the run): no sync to disk for each classifier call
            self._connection.execute("PRAGMA synchronous=OFF")
            self._pid = os.getpid()
        return _Transaction(self._connection, self._lock)


class _Transaction:
    """One ``BEGIN IMMEDIATE`` transaction (the file's write lock taken at once, so a read and
    the write that follows it are one step for every process), under the process's lock."""

    def __init__(self, connection: sqlite3.Connection, lock: threading.Lock) -> None:
        self.connection, self.lock = connection, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.connection

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            self.connection.execute("ROLLBACK" if kind is not None and not issubclass(kind, CallerOverBudget) else "COMMIT")
        finally:
            self.lock.release()
