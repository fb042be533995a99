"""The clients' session and pool: the environment's proxy and login for the one service they call, read once."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loanxai.clients.http import pool, session
from loanxai.errors import SettingError


class _Recorder(BaseHTTPRequestHandler):
    """Answers every GET with its own name, remembering the request line (a proxy's is an absolute URL)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        self.server.logins.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        self.server.proxy_logins.append(self.headers.get("Proxy-Authorization"))  # type: ignore[attr-defined]
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _server(name: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.name, server.seen, server.logins, server.proxy_logins = name, [], [], []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture()
def servers() -> Iterator[tuple[ThreadingHTTPServer, ThreadingHTTPServer]]:
    service, proxy = _server("service"), _server("proxy")
    yield service, proxy
    for server in (service, proxy):
        server.shutdown()
        server.server_close()


def _proxied(monkeypatch, proxy: ThreadingHTTPServer) -> None:
    """The environment names ``proxy`` for every plain-HTTP host."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_port}")


def test_the_proxy_of_the_environment_is_read_once(servers, monkeypatch) -> None:
    service, proxy = servers
    url = f"http://127.0.0.1:{service.server_port}/health/ping"
    _proxied(monkeypatch, proxy)
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


def test_the_pool_reads_the_proxy_once_as_the_session_does(servers, monkeypatch) -> None:
    service, proxy = servers
    url = f"http://127.0.0.1:{service.server_port}/health/ping"
    _proxied(monkeypatch, proxy)
    http = pool(url)
    assert http.request("GET", url, timeout=5).data == b"proxy"
    assert proxy.seen == [url]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert http.request("GET", url, timeout=5).data == b"proxy"
    assert pool(url).request("GET", url, timeout=5).data == b"service"
    assert service.seen == ["/health/ping"]


def test_the_pool_sends_the_netrc_login_for_its_host(servers, monkeypatch, tmp_path) -> None:
    service, _ = servers
    url = f"http://127.0.0.1:{service.server_port}/health/ping"
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login explainer password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    http = pool(url)
    assert http.request("GET", url, timeout=5).data == b"service"
    assert service.logins == ["Basic ZXhwbGFpbmVyOnMzY3JldA=="]  # base64 of explainer:s3cret


def test_the_pool_takes_a_proxy_as_requests_does(servers, monkeypatch) -> None:
    service, proxy = servers
    url = f"http://127.0.0.1:{service.server_port}/health/ping"
    _proxied(monkeypatch, proxy)
    # "host:port" is plain HTTP, and a login in the proxy's URL goes to the proxy
    for proxy_url in (f"127.0.0.1:{proxy.server_port}", f"http://proxier:s3cret@127.0.0.1:{proxy.server_port}"):
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, proxy_url)
        assert pool(url).request("GET", url, timeout=5).data == b"proxy"
    assert proxy.proxy_logins == [None, "Basic cHJveGllcjpzM2NyZXQ="]  # base64 of proxier:s3cret
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, f"socks5://127.0.0.1:{proxy.server_port}")
    with pytest.raises(SettingError, match="not an HTTP proxy: name the service in NO_PROXY"):
        pool(url)
