"""Run a serving class as a Seldon Core microservice that holds up under load, faults and hostile clients.

``loanxai-microservice LoanClassifier`` (the images' command; ``python -m loanxai.microservice``)
stands in for ``seldon-core-microservice``: the same serving class, ports and variables
(``--http-port`` 9000, ``--grpc-port`` 5000, ``--metrics-port`` 6000, ``PREDICTIVE_UNIT_*``,
``GUNICORN_WORKERS``/``_THREADS``/``_KEEPALIVE``, ``GRPC_WORKERS``/``_THREADS``), and the
wrapper's own Flask app and gRPC servicer, so requests, answers and metadata are Seldon's. It
changes what the wrapper cannot be configured to do:

- workers: gunicorn's threaded workers, where a connection waits for its request in the event
  loop, not in a thread (idle and slow clients hold a socket, never a thread), and a request
  must arrive whole within ``LOAN_REQUEST_TIMEOUT`` (:class:`DeadlineThreadWorker`);
- custom metrics counted in each process (:mod:`loanxai.metrics`): no lock a killed worker
  can leave held, and no IPC on every request;
- the request guards of :mod:`loanxai.web` (methods, paths, body size, strict JSON, CORS);
- graceful shutdown: on SIGTERM readiness fails at once, the service keeps serving for
  ``LOAN_DRAIN_SECONDS`` (Kubernetes removes it from the endpoints meanwhile), then stops
  accepting and finishes what is in flight within ``LOAN_GRACEFUL_TIMEOUT``; REST, gRPC and
  metrics servers are children of one supervisor, which stops them all, and which they follow
  if it is killed;
- gRPC (``GRPC_WORKERS`` > 0): the wrapper's servicer in a child process, stopped with the rest.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import gc
import importlib
import json
import logging
import math
import multiprocessing
import os
import re
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import TConn, ThreadWorker

logger = logging.getLogger("loanxai.microservice")

LOG_FORMAT = "%(asctime)s - %(name)s:%(funcName)s:%(lineno)s - %(levelname)s:  %(message)s"
#: seconds a gunicorn worker's event loop may stay silent before its arbiter replaces it
WORKER_HEARTBEAT_S = 30


def main(argv: list[str] | None = None) -> int:
    # prometheus_client picks its multiprocess mode when imported: the folder comes first
    directory = tempfile.mkdtemp(prefix="loanxai-metrics-")
    os.environ["prometheus_multiproc_dir"] = directory
    try:
        return _run(argv, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run(argv: list[str] | None, directory: str) -> int:
    from seldon_core import wrapper
    from seldon_core.microservice import load_annotations, parse_parameters

    from loanxai.config import ServerSettings, Settings
    from loanxai.metrics import ProcessMetrics
    from loanxai.web import harden

    settings = ServerSettings.from_env()
    args = _arguments(argv, settings)
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
    sys.path.append(os.getcwd())
    module = importlib.import_module(args.interface_name)
    user_object = getattr(module, args.interface_name)(**parse_parameters(json.loads(args.parameters)))
    metrics = ProcessMetrics(directory, extra=[user_object.collect_metrics] if hasattr(user_object, "collect_metrics") else [])
    draining = multiprocessing.Value("b", 0)
    app = harden(wrapper.get_rest_microservice(user_object, metrics), settings.max_body_bytes, settings.cors_origins,
                 lambda: bool(draining.value), metrics=Settings.from_env().metrics)
    metrics_app = wrapper.get_metrics_microservice(metrics)
    metrics_app.after_request_funcs[None] = []  # no CORS on metrics either
    children = {
        "rest": partial(_serve_http, app, user_object, metrics, settings, args.http_port, settings.workers),
        "metrics": partial(_serve_http, metrics_app, None, metrics, settings, args.metrics_port, 1),
    }
    if settings.grpc_workers:
        children["grpc"] = partial(_serve_grpc, user_object, metrics, settings, args.grpc_port, load_annotations())
    logger.info("serving %s on %s: REST :%d (%d workers x %d threads), metrics :%d%s, gRPC %s", args.interface_name,
                settings.host, args.http_port, settings.workers, settings.threads, args.metrics_port, wrapper.METRICS_ENDPOINT,
                f":{args.grpc_port}" if settings.grpc_workers else "off")
    return _supervise(children, settings, draining)


def _arguments(argv: list[str] | None, settings: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve a class as a Seldon Core microservice (see loanxai.microservice).")
    parser.add_argument("interface_name", help="the serving class, found in the module of the same name")
    parser.add_argument("--service-type", default="MODEL", choices=["MODEL"])
    parser.add_argument("--parameters", default=settings.parameters, help="PREDICTIVE_UNIT_PARAMETERS")
    parser.add_argument("--http-port", type=int, default=settings.http_port)
    parser.add_argument("--grpc-port", type=int, default=settings.grpc_port)
    parser.add_argument("--metrics-port", type=int, default=settings.metrics_port)
    return parser.parse_args(argv)


# --- the supervisor ----------------------------------------------------------------------------------


def _supervise(children: dict[str, Any], settings: Any, draining: Any) -> int:
    """Start the children, wait for a signal or a child's death, then stop them all gracefully."""
    signals: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: signals.append(number))
    processes = {}
    for name, target in children.items():
        processes[name] = multiprocessing.Process(target=_child, args=(target, os.getpid()), name=name, daemon=False)
        processes[name].start()
        logger.info("%s server: pid %d", name, processes[name].pid)
    status = 0
    while not signals:
        dead = [name for name, process in processes.items() if not process.is_alive()]
        if dead:
            logger.error("the %s server exited (code %s): stopping the service", dead[0], processes[dead[0]].exitcode)
            status = 1
            break
        time.sleep(0.2)
    else:
        draining.value = 1
        logger.info("signal %d: draining for %g s, then finishing what is in flight (at most %g s)",
                    signals[0], settings.drain_seconds, settings.graceful_timeout)
        _wait(lambda: len(signals) > 1, settings.drain_seconds)
    for process in processes.values():
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + settings.graceful_timeout + 5
    for process in processes.values():
        # a second signal stops waiting: whoever sent it wants the service gone now
        _wait(lambda: not process.is_alive() or len(signals) > 1, deadline - time.monotonic())
        if process.is_alive():
            logger.warning("the %s server did not stop in time: killing it", process.name)
            process.kill()
        process.join()
    logger.info("stopped")
    return status


def _wait(done: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def die_with_parent() -> None:
    """This process gets SIGTERM when its parent dies, however it dies (Linux PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _child(target: Any, supervisor: int) -> None:
    """A child process: it follows the supervisor."""
    die_with_parent()
    if os.getppid() != supervisor:  # the supervisor died before prctl: nobody would stop us
        sys.exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops the children
    target()


# --- HTTP: gunicorn, threaded workers with deadlines ---------------------------------------------------


def _serve_http(app: Any, user_object: Any, metrics: Any, settings: Any, port: int, workers: int) -> None:
    DeadlineThreadWorker.request_timeout = settings.request_timeout

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{settings.host}:{port}",
                "workers": workers,
                "threads": settings.threads,
                "worker_class": "loanxai.microservice.DeadlineThreadWorker",
                "timeout": WORKER_HEARTBEAT_S,
                "graceful_timeout": math.ceil(settings.graceful_timeout),
                "keepalive": settings.keepalive,
                "loglevel": settings.log_level.lower(),
                "accesslog": None,
                "child_exit": lambda server, worker: metrics.process_exited(worker.pid),
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:  # in each worker: the serving class loads what it loads per process
            if user_object is not None and hasattr(user_object, "load"):
                user_object.load()
            gc.freeze()  # what is loaded lives as long as the worker: the collector's full passes skip it
            return app

    Server().run()


class DeadlineSocket:
    """What the request parser reads from: each recv waits only for what is left of the
    request's deadline; the socket then goes back to a plain timeout, for writing the answer."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock, self.timeout, self.deadline = sock, timeout, time.monotonic() + timeout

    def recv(self, size: int) -> bytes:
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

    def init(self) -> None:
        self.sock.setblocking(True)
        if self.parser is None:
            self.reader = DeadlineSocket(self.sock, DeadlineThreadWorker.request_timeout)
            self.parser = http.RequestParser(self.cfg, self.reader, self.client)
        self.parser.unreader.unread(self.pending)
        self.pending = b""
        # what the event loop did not gather must arrive by the request's deadline
        self.reader.deadline = self.started + self.reader.timeout


class DeadlineThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, except that a connection is handed to a worker thread only once
    its request has arrived: the event loop gathers the bytes of a request (up to
    :data:`GATHERED_BYTES`, all of a usual one), so idle and slow clients hold a socket, never a
    thread. An idle connection is closed after the keep-alive timeout, a request that has not
    arrived whole :attr:`request_timeout` seconds after its first byte is closed too."""

    request_timeout = 10.0

    def accept(self, server: Any, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._wait_for_request(DeadlineConn(self.cfg, sock, client, server))

    def finish_request(self, fs: Any) -> None:
        if fs.cancelled() or fs.exception() is not None:
            self.nr_conns -= 1
            fs.conn.close()
            return
        keepalive, conn = fs.result()
        if keepalive and self.alive:
            self._wait_for_request(conn)
        else:
            self.nr_conns -= 1
            conn.close()

    def _wait_for_request(self, conn: DeadlineConn) -> None:
        conn.sock.setblocking(False)
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
            conn.started = time.monotonic()
            conn.timeout = time.time() + self.request_timeout  # from its first byte, the request's deadline
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


def _arrived(data: bytes) -> bool:
    """Whether ``data`` holds a whole request (or as much as the event loop gathers)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data) >= GATHERED_BYTES  # headers this long: the parser will refuse them
    length = _CONTENT_LENGTH.search(data[:end])
    body = int(length.group(1)) if length else 0  # chunked: the thread reads the rest, by the deadline
    return len(data) - end - 4 >= min(body, GATHERED_BYTES)


# --- gRPC -------------------------------------------------------------------------------------------------


def _serve_grpc(user_object: Any, metrics: Any, settings: Any, port: int, annotations: dict[str, str]) -> None:
    from seldon_core.wrapper import get_grpc_server

    server = get_grpc_server(user_object, metrics, annotations=annotations, num_threads=settings.grpc_threads)
    if hasattr(user_object, "load"):
        user_object.load()
    gc.freeze()
    server.add_insecure_port(f"{settings.host}:{port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop(settings.graceful_timeout).wait()


if __name__ == "__main__":
    sys.exit(main())
