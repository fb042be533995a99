"""The clients' session: the environment's proxy for the one service it calls, read once."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loanxai.clients.http import session


class _Recorder(BaseHTTPRequestHandler):
    """Answers every GET with its own name, remembering the request line (a proxy's is an absolute URL)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _server(name: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.name, server.seen = name, []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture()
def servers() -> Iterator[tuple[ThreadingHTTPServer, ThreadingHTTPServer]]:
    service, proxy = _server("service"), _server("proxy")
    yield service, proxy
    for server in (service, proxy):
        server.shutdown()
        server.server_close()


def test_the_proxy_of_the_environment_is_read_once(servers, monkeypatch) -> None:
    service, proxy = servers
    url = f"http://127.0.0.1:{service.server_port}/health/ping"
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_port}")
    http = session(url=url)
    assert http.get(url, timeout=5).text == "proxy"
    assert proxy.seen == [url]  # the proxy was asked for the service's URL
    # read once: the environment changed after the session was made does not move it
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert http.get(url, timeout=5).text == "proxy"
    # a session made now reads NO_PROXY: the service directly
    assert session(url=url).get(url, timeout=5).text == "service"
    assert service.seen == ["/health/ping"]
