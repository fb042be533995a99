"""The server's processes: gunicorn's threaded HTTP workers with request deadlines, and gRPC.

In gunicorn's gthread worker a connection waits for its request in a worker thread, so idle
and slow clients can hold every thread. :class:`DeadlineThreadWorker` gathers a request's
bytes in the event loop first and hands the connection to a thread only once the request has
arrived: idle and slow clients hold a socket, never a thread. A request must arrive whole
within ``LOAN_REQUEST_TIMEOUT`` from its first byte; an idle connection is closed after the
keep-alive timeout; one whose request began arriving but did not arrive by its deadline is
answered 408 first (gunicorn closes both silently).

HTTP/1.1 as RFC 9112 has it: pipelined requests (sent before the previous answer came) are
answered in order, each once it has arrived (gunicorn left what its parser had read ahead
unanswered until the keep-alive timeout). A worker holds at most ``LOAN_MAX_CONNECTIONS``
connections; when a new one comes to a full worker, the held connection that has waited longest
(idle, or still sending its request) is closed to make room (408 if its request had begun), so
slow clients cannot keep new requests and probes waiting in the listen backlog, as gunicorn's
``worker_connections`` did.

On SIGTERM it drains: every connection already waiting in the listen backlog is accepted, then
the listener is closed, and the worker exits once every request it holds has been answered (or
the graceful timeout passes): gunicorn's own worker closes the listener at once, resetting what
waited in the backlog and dropping requests still arriving.
"""
from __future__ import annotations

import contextlib
import errno
import gc
import io
import json
import math
import re
import selectors
import signal
import socket
import threading
import time
from functools import partial
from http import HTTPStatus
from typing import Any

from gunicorn import http
from gunicorn.app.base import BaseApplication
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine, ParseException
from gunicorn.workers.gthread import TConn, ThreadWorker

from loanxai.config import ServerSettings
from loanxai.errors import HeadersTooLarge, InputError, LoanError, RequestLineTooLong, RequestTimeout
from loanxai.monitoring.counters import ConnectionMonitor
from loanxai.serving.common import seldon_error

__all__ = ["GATHERED_BYTES", "WORKER_HEARTBEAT_S", "DeadlineConn", "DeadlineSocket", "DeadlineThreadWorker",
           "serve_grpc", "serve_http"]

#: seconds a gunicorn worker's event loop may stay silent before its arbiter replaces it
WORKER_HEARTBEAT_S = 30
#: seconds between two looks for connections past their deadline (how late a deadline may be kept)
EXPIRY_CHECK_S = 0.25


def serve_http(app: Any, metrics: Any, settings: ServerSettings, port: int, workers: int,
               counted: bool = True) -> None:
    """Serve the Flask ``app`` with gunicorn on ``port``: ``workers`` processes of :class:`DeadlineThreadWorker`;
    ``metrics``: the Seldon metrics kept per process (None: none); ``counted``: count the
    connections closed early (``LOAN_METRICS``)."""
    DeadlineThreadWorker.request_timeout = settings.request_timeout
    DeadlineThreadWorker.max_connections = settings.max_connections
    DeadlineThreadWorker.counted = counted

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{settings.host}:{port}",
                "workers": workers,
                "threads": settings.threads,
                # the worker bounds its connections itself (``max_connections``): gunicorn's bound stops accepting
                "worker_connections": 1 << 30,
                "worker_class": f"{__name__}.DeadlineThreadWorker",
                "timeout": WORKER_HEARTBEAT_S,
                "graceful_timeout": math.ceil(settings.graceful_timeout),
                "keepalive": settings.keepalive,
                "loglevel": settings.log_level.lower(),
                "accesslog": None,
                # the metrics of a worker gone go (none: a server that keeps no Seldon metrics)
                "child_exit": lambda server, worker: metrics is not None and metrics.process_exited(worker.pid),
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:  # in each worker (the serving class was loaded before the fork)
            gc.freeze()  # what is loaded lives as long as the worker: the collector's full passes skip it
            return app

    Server().run()


class DeadlineSocket:
    """What the request parser reads from: each recv waits only for what is left of the
    request's deadline; the socket then goes back to a plain timeout, for writing the answer."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock, self.timeout, self.deadline = sock, timeout, time.monotonic() + timeout

    def recv(self, size: int) -> bytes:
        """Read at most ``size`` bytes, waiting no longer than the request's deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"request not received within {self.timeout:g} s")
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(size)
        finally:
            self.sock.settimeout(self.timeout)


class DeadlineConn(TConn):
    """A connection whose bytes are first gathered in the event loop (:attr:`pending`), then
    parsed in a worker thread from a :class:`DeadlineSocket`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.pending = b""
        self.started = time.monotonic()
        #: requests answered on this connection (0: a new one, whose first request may still be on its way)
        self.served = 0

    def init(self) -> None:
        """Prepare the connection for the worker thread that parses its request: a parser for
        that request alone, fed what the event loop gathered."""
        self.sock.setblocking(True)
        self.reader = DeadlineSocket(self.sock, DeadlineThreadWorker.request_timeout)
        self.parser = http.RequestParser(self.cfg, self.reader, self.client)
        self.parser.unreader.unread(self.pending)
        self.pending = b""
        # what the event loop did not gather must arrive by the request's deadline
        self.reader.deadline = self.started + self.reader.timeout

    def keep_read_ahead(self) -> bool:
        """After an answer, in the worker thread: keep what the parser read past the request (the
        next pipelined request, or part of it) as :attr:`pending`, having first read what the
        application left of the request's body, as gunicorn's parser does before the next
        request (by the request's deadline). False when the connection cannot serve another."""
        try:
            while self.parser.mesg.body.read(8192):
                pass
        except OSError:
            return False
        self.pending = self.parser.unreader.buf.getvalue()
        self.parser.unreader.buf = io.BytesIO()
        return True

    def begin(self) -> None:
        """A request's first bytes have come: its deadline runs from now."""
        self.started = time.monotonic()
        self.timeout = time.time() + DeadlineThreadWorker.request_timeout

    def close_late(self) -> bool:
        """Close the connection from the event loop, answered 408 first if its request had begun
        (then True)."""
        began = bool(self.pending)
        if began:
            with contextlib.suppress(OSError):  # a few hundred bytes: the socket's buffer takes them at once
                self.sock.send(_REQUEST_TIMEOUT)
        self.close()
        return began


class DeadlineThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, except that a connection is handed to a worker thread only once
    its request has arrived: the event loop gathers the bytes of a request (up to
    :data:`GATHERED_BYTES`, all of a usual one), so idle and slow clients hold a socket, never a
    thread. An idle connection is closed after the keep-alive timeout, a request that has not
    arrived whole :attr:`request_timeout` seconds after its first byte is answered 408 and closed;
    pipelined requests are answered in order; at most :attr:`max_connections` are held."""

    request_timeout = 10.0
    max_connections = 1000
    #: count the connections closed early (off with ``LOAN_METRICS=off``)
    counted = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: ``time.monotonic()`` when SIGTERM came (None: serving)
        self.draining_since: float | None = None
        self._next_expiry_check = 0.0
        self.monitor: ConnectionMonitor | None = None

    def init_process(self) -> None:
        """In the worker process, once forked: its counter (if counted), then gunicorn's loop."""
        self.monitor = ConnectionMonitor() if self.counted else None
        super().init_process()

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: drain (see the module's docstring); the event loop does it, between its events."""
        if self.draining_since is None:
            self.draining_since = time.monotonic()

    def accept(self, server: Any, listener: socket.socket) -> bool:
        """Accept a connection, whose request is gathered in the event loop (making room for it
        in a full worker); False when none was waiting."""
        try:
            sock, client = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return error.errno == errno.ECONNABORTED  # another may wait behind an aborted one
        if self.nr_conns >= self.max_connections:
            self._make_room()
        self.nr_conns += 1
        self._wait_for_request(DeadlineConn(self.cfg, sock, client, server))
        return True

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """A request gunicorn's parser refused: answered in Seldon's JSON error form (431 for
        headers past gunicorn's limits, 414 for a request line), not gunicorn's HTML page."""
        if not isinstance(exc, ParseException):
            super().handle_error(req, client, addr, exc)
            return
        error: LoanError
        if isinstance(exc, LimitRequestHeaders):
            error = HeadersTooLarge(f"the request's headers are larger than the server takes ({exc}): at most "
                                    f"{self.cfg.limit_request_fields} headers of {self.cfg.limit_request_field_size} "
                                    "bytes each")
        elif isinstance(exc, LimitRequestLine):
            error = RequestLineTooLong(f"the request line is longer than {self.cfg.limit_request_line} bytes")
        else:
            error = InputError(f"malformed HTTP request: {str(exc)[:200]}")
        with contextlib.suppress(OSError):
            client.sendall(_closing_answer(error))

    def handle(self, conn: DeadlineConn) -> tuple[bool, DeadlineConn]:
        """Answer one request, in a worker thread; keep what came after it on the connection."""
        keepalive, conn = super().handle(conn)
        return keepalive and conn.keep_read_ahead(), conn

    def finish_request(self, fs: Any) -> None:
        """After an answer: serve the connection's next request, or wait for it, or close the
        connection (while draining: once no whole request is left on it)."""
        if fs.cancelled() or fs.exception() is not None:
            self.nr_conns -= 1
            fs.conn.close()
            return
        keepalive, conn = fs.result()
        conn.served += 1
        if conn.pending:
            conn.begin()
        if keepalive and self.alive and conn.pending and _arrived(conn.pending):
            self.enqueue_req(conn)  # pipelined: answered in order, each after the one before
        elif keepalive and self.alive and self.draining_since is None:
            self._wait_for_request(conn)
        else:
            self.nr_conns -= 1
            conn.close()

    def murder_keepalived(self) -> None:
        """Close the connections past their deadline (408 for a request that began arriving);
        while draining, take the next step of the drain."""
        now = time.time()
        if now >= self._next_expiry_check:
            self._next_expiry_check = now + EXPIRY_CHECK_S
            with self._lock:
                late = [conn for conn in self._keep if conn.timeout <= now]
            for conn in late:
                if self._close_held(conn):
                    self._count_closed("request_timeout")
        if self.draining_since is not None:
            self._drain()

    def _make_room(self) -> None:
        """Close the held connection (none is held by a thread) whose request, or wait for one,
        began first: a new connection, whose request is on its way, is the last to go."""
        with self._lock:
            oldest = min(self._keep, key=lambda conn: conn.started, default=None)
        if oldest is not None and self._close_held(oldest) is not None:
            self._count_closed("room")

    def _count_closed(self, why: str) -> None:
        if self.monitor is not None:
            self.monitor.closed[why].inc()

    def _close_held(self, conn: DeadlineConn) -> bool | None:
        """Close a connection held in the event loop: whether it was answered 408 (None: a worker
        thread took it meanwhile, and it stays open)."""
        with self._lock:
            try:
                self._keep.remove(conn)
            except ValueError:
                return None
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        return conn.close_late()

    def _drain(self) -> None:
        if self.sockets:
            for listener in self.sockets:  # what waits in the backlog was sent before the drain: serve it
                server = listener.getsockname()
                while self.accept(server, listener):
                    pass
                self.poller.unregister(listener)
                listener.close()
            self.sockets = []
            self._close_idle()
        busy = self.futures or any(conn.pending or not conn.served for conn in self._keep)
        if not busy or time.monotonic() > self.draining_since + self.cfg.graceful_timeout:
            self.alive = False

    def _close_idle(self) -> None:
        """Close the kept-alive connections with no request coming in: nothing more is served on them."""
        with self._lock:
            idle = [conn for conn in self._keep if conn.served and not conn.pending]
        for conn in idle:
            self._close_held(conn)

    def _wait_for_request(self, conn: DeadlineConn) -> None:
        conn.sock.setblocking(False)
        if not conn.pending:
            conn.set_timeout()  # idle: closed after the keep-alive timeout
        with self._lock:
            self._keep.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._gather, conn))

    def _gather(self, conn: DeadlineConn, client: socket.socket) -> None:
        try:
            data = conn.sock.recv(GATHERED_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not conn.pending:
            conn.begin()
        conn.pending += data
        if not data:  # the client left
            with self._lock:
                self.poller.unregister(conn.sock)
                with contextlib.suppress(ValueError):
                    self._keep.remove(conn)
            self.nr_conns -= 1
            conn.close()
        elif _arrived(conn.pending):
            self.reuse_connection(conn, client)


#: bytes of a request the event loop gathers before a worker thread takes over
GATHERED_BYTES = 64 * 1024
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)



def _closing_answer(error: LoanError) -> bytes:
    """The whole answer to a request the server cannot serve, with Seldon's error body, closing the connection."""
    body = json.dumps(seldon_error(error).to_dict()).encode()
    phrase = HTTPStatus(error.status_code).phrase
    head = (f"HTTP/1.1 {error.status_code} {phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


#: what the event loop sends a request that did not arrive whole in time
_REQUEST_TIMEOUT = _closing_answer(RequestTimeout("the request did not arrive whole in time (LOAN_REQUEST_TIMEOUT)"))


def _arrived(data: bytes) -> bool:
    """Whether ``data`` holds a whole request (or as much as the event loop gathers)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data) >= GATHERED_BYTES  # headers this long: the parser will refuse them
    length = _CONTENT_LENGTH.search(data[:end])
    body = int(length.group(1)) if length else 0  # chunked: the thread reads the rest, by the deadline
    return len(data) - end - 4 >= min(body, GATHERED_BYTES)


def serve_grpc(user_object: Any, metrics: Any, settings: ServerSettings, port: int, annotations: dict[str, str]) -> None:
    """Serve the serving class with the wrapper's gRPC servicer on ``port`` until SIGTERM."""
    from seldon_core.wrapper import get_grpc_server

    server = get_grpc_server(user_object, metrics, annotations=annotations, num_threads=settings.grpc_threads)
    gc.freeze()
    server.add_insecure_port(f"{settings.host}:{port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop(settings.graceful_timeout).wait()
