"""What the mesh does for a shadow predictor, on this machine: answer from the champion, mirror to the challenger.

``make run CHALLENGER=<artifacts>`` puts a :class:`Mirror` on the classifier's port. Every
request goes to the champion and its answer, whatever it is, goes back to the caller. A decision
request the champion answered 200 is then sent to the challenger too, with the same
``meta.puid`` (set here when the caller sent none, as Seldon's executor sets it), so both
decisions of an application are recorded under one request id and row. The challenger's answer
is read and dropped. Mirroring runs on threads of its own, behind a bounded queue: a slow,
failing or dead challenger never delays or breaks an answer. A request that finds the queue
full is not mirrored; :attr:`Mirror.counts` says how many were mirrored, dropped or failed.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from loanxai.clients.http import PREDICTIONS_PATH

__all__ = ["CHALLENGER_TIMEOUT_S", "MIRROR_QUEUE", "MIRROR_THREADS", "Mirror"]

logger = logging.getLogger(__name__)

#: seconds a mirrored request may take at the challenger before it counts as failed
CHALLENGER_TIMEOUT_S = 10.0
#: mirrored requests that may wait for the challenger; more are dropped (counted)
MIRROR_QUEUE = 1000
#: requests sent to the challenger at once
MIRROR_THREADS = 4
#: request headers passed on (the rest are the connection's own)
_PASSED = ("Content-Type", "Authorization", "Accept")


class Mirror:
    """A proxy on 127.0.0.1:``port`` in front of the champion at ``champion_url`` (a base URL)
    mirroring decision requests to the challenger at ``challenger_url``."""

    def __init__(self, port: int, champion_url: str, challenger_url: str, timeout: float = CHALLENGER_TIMEOUT_S) -> None:
        self.champion_url, self.challenger_url, self.timeout = champion_url, challenger_url, timeout
        #: ``mirrored``, ``dropped`` (the queue was full), ``failed`` (no 200 from the challenger)
        self.counts: Counter[str] = Counter()
        self._queue: queue.Queue[tuple[bytes, dict[str, str]] | None] = queue.Queue(MIRROR_QUEUE)
        self._champion = requests.Session()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._threads = [threading.Thread(target=self._serve, daemon=True, name="mirror-http")]
        self._threads += [threading.Thread(target=self._send, daemon=True, name=f"mirror-{i}")
                          for i in range(MIRROR_THREADS)]

    @property
    def url(self) -> str:
        """The base URL callers use."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        """Serve and mirror on background threads."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop serving; what is still queued for the challenger is dropped. A mirror never
        started (a service failed to start) only closes its port: ``shutdown`` would wait forever."""
        started = self._threads[0].is_alive()
        if started:
            self._server.shutdown()
        self._server.server_close()
        for _ in range(MIRROR_THREADS if started else 0):
            self._queue.put(None)

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        """Send a request to the champion, mirroring it to the challenger once answered 200."""
        if method == "POST" and path == PREDICTIONS_PATH:
            body = with_puid(body)
        answer = self._champion.request(method, self.champion_url + path, data=body or None, headers=headers,
                                        timeout=None, allow_redirects=False)
        if method == "POST" and path == PREDICTIONS_PATH and answer.status_code == 200:
            try:
                self._queue.put_nowait((body, headers))
            except queue.Full:
                self.counts["dropped"] += 1
        return answer

    def _send(self) -> None:
        session = requests.Session()
        while (item := self._queue.get()) is not None:
            body, headers = item
            try:
                status = session.post(self.challenger_url + PREDICTIONS_PATH, data=body, headers=headers,
                                      timeout=self.timeout).status_code
            except requests.RequestException as error:
                status = None
                logger.debug("the challenger did not answer a mirrored request: %s", error)
            self.counts["mirrored" if status == 200 else "failed"] += 1
            self._queue.task_done()

    def drain(self) -> None:
        """Wait until every request queued so far has been sent to the challenger (or failed)."""
        self._queue.join()


def with_puid(body: bytes) -> bytes:
    """A SeldonMessage's body with ``meta.puid`` set (a new one when it has none); other bodies as they are."""
    try:
        message = json.loads(body)
    except ValueError:
        return body
    if not isinstance(message, dict) or not isinstance(message.get("meta", {}), dict):
        return body
    meta = message.setdefault("meta", {})
    if isinstance(meta.get("puid"), str) and meta["puid"]:
        return body
    meta["puid"] = uuid.uuid4().hex
    return json.dumps(message).encode()


def _handler(mirror: Mirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _proxy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name: self.headers[name] for name in _PASSED if name in self.headers}
            try:
                answer = mirror.forward(self.command, self.path, body, headers)
            except requests.RequestException as error:
                self._reply(502, b'{"status": {"code": 502, "info": "the champion did not answer", '
                                 b'"reason": "CHAMPION_UNAVAILABLE", "status": "FAILURE"}}', "application/json")
                logger.warning("the champion did not answer %s %s: %s", self.command, self.path, error)
                return
            self._reply(answer.status_code, answer.content, answer.headers.get("Content-Type"))

        def _reply(self, status: int, content: bytes, content_type: str | None) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        do_GET = do_POST = do_HEAD = do_OPTIONS = _proxy

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            logger.debug(format, *args)

    return Handler
