"""Deadlines on the record's database connections: a statement that outlives its time has its connection cut.

A PostgreSQL connection whose network path goes silent (a half-open connection after a
failover, a proxy or firewall that stopped forwarding, a frozen server) blocks the thread
reading its answer for ever: libpq has no read timeout, and TCP keepalives see nothing wrong
when a peer's kernel still acknowledges. :class:`Watchdog` keeps one thread per process that
shuts down the socket of a connection whose statement passed its deadline, so the blocked read
fails at once (the driver raises its connection error), the connection is dropped and the next
statement opens a new one. SQLite connections have no socket: their waits are bounded by their
busy timeout instead.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["Watchdog", "socket_of"]

logger = logging.getLogger(__name__)


def socket_of(dbapi_connection: Any) -> int | None:
    """The file descriptor of a DBAPI connection's socket (psycopg's), None when it has none (SQLite's)."""
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return None
    try:
        return fileno()
    except Exception:  # noqa: BLE001 (a closed or broken connection: nothing to watch)
        return None


class Watchdog:
    """Cuts the sockets of connections whose statements outlive their deadline (see the module)."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._counter = itertools.count()

    def _start(self) -> None:
        """Start the process's own thread, heap and lock (a forked worker shares none of its parent's)."""
        self._pid = os.getpid()
        self._lock = threading.Condition()
        self._armed: list[tuple[float, int, int]] = []  # (deadline, token, fd)
        self._live: set[int] = set()
        # when the thread wakes by itself: a deadline armed later needs no wake-up (one per
        # commit had cost each PostgreSQL commit two thread switches)
        self._wakes_at = math.inf
        threading.Thread(target=self._run, name="record-watchdog", daemon=True).start()

    @contextlib.contextmanager
    def deadline(self, dbapi_connection: Any, seconds: float) -> Iterator[None]:
        """Within the block, the connection's socket is shut down ``seconds`` from now (if it has one)."""
        fd = socket_of(dbapi_connection)
        if fd is None:
            yield
            return
        if self._pid != os.getpid():
            self._start()
        token = next(self._counter)
        with self._lock:
            at = time.monotonic() + seconds
            heapq.heappush(self._armed, (at, token, fd))
            self._live.add(token)
            if at < self._wakes_at:
                self._lock.notify()
        try:
            yield
        finally:
            with self._lock:
                self._live.discard(token)

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._armed and self._armed[0][1] not in self._live:
                    heapq.heappop(self._armed)  # ended in time
                wait = self._armed[0][0] - time.monotonic() if self._armed else None
                if wait is None or wait > 0:
                    self._wakes_at = math.inf if wait is None else self._armed[0][0]
                    self._lock.wait(wait)
                    continue
                _, token, fd = heapq.heappop(self._armed)
                self._live.discard(token)
                # cut while holding the lock: the block it guards cannot end (and its fd be reused) meanwhile
                _cut(fd)


def _cut(fd: int) -> None:
    """Shut down the socket ``fd`` (both ways): a read blocked on it returns at once."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
        logger.warning("a statement on the record outlived its deadline: its connection is cut")
    except OSError:
        pass
    finally:
        sock.close()
