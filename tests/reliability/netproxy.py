"""A TCP proxy on loopback that makes a network path fail the ways real ones do, between a service and the real PostgreSQL.

- :meth:`NetProxy.silence`: the connections open now stop carrying anything, either way, and
  stay open (a half-open path after a failover, a firewall that dropped its state, a frozen
  peer); new connections work.
- :meth:`NetProxy.blackhole`: every connection, open or new, carries nothing (the database's
  host unreachable); :meth:`NetProxy.restore` ends it.
- :meth:`NetProxy.lose_next_commit_answer`: the next answer PostgreSQL gives a ``COMMIT``
  (its CommandComplete message) is not delivered and the connection is cut: the commit happened,
  the client cannot know (and, asked, every connection goes dark at that moment).

The proxy is the network, not a database: PostgreSQL behind it is the real server.
"""
from __future__ import annotations

import socket
import threading

from loanxai.ops.services import free_port

#: PostgreSQL's CommandComplete message for COMMIT: type 'C', length 11 (itself and "COMMIT\0")
COMMIT_COMPLETE = b"C\x00\x00\x00\x0bCOMMIT\x00"


class _Link:
    """One proxied connection: the client's socket and the server's."""

    def __init__(self, client: socket.socket, server: socket.socket | None, silent: bool) -> None:
        self.client, self.server, self.silent = client, server, silent

    def close(self) -> None:
        for sock in (self.client, self.server):
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


class NetProxy:
    """Listens on 127.0.0.1 (:attr:`port`) and forwards to 127.0.0.1:``target_port`` (see the module)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.lock = threading.Lock()
        self.links: list[_Link] = []
        self.holed = False
        self.lose_commit = False
        self.dark_after_loss = False
        self.commits_lost = 0
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database_url: str) -> str:
        """``database_url`` (a PostgreSQL URL on 127.0.0.1) through the proxy."""
        return database_url.replace(f"127.0.0.1:{self.target_port}", f"127.0.0.1:{self.port}")

    def silence(self) -> None:
        """The connections open now carry nothing more, and stay open."""
        with self.lock:
            for link in self.links:
                link.silent = True

    def blackhole(self) -> None:
        """Every connection, open or new, carries nothing."""
        with self.lock:
            self.holed = True
            for link in self.links:
                link.silent = True

    def restore(self) -> None:
        """New connections work again (silenced ones stay silent, as on a real network)."""
        with self.lock:
            self.holed = False

    def lose_next_commit_answer(self, then_blackhole: bool = False) -> None:
        """Cut the connection that next carries PostgreSQL's answer to a COMMIT, that answer
        undelivered; ``then_blackhole``: and :meth:`blackhole` at that moment."""
        with self.lock:
            self.lose_commit, self.dark_after_loss = True, then_blackhole

    def close(self) -> None:
        self.running = False
        self.listener.close()
        with self.lock:
            for link in self.links:
                link.close()

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                holed = self.holed
            server = None
            if not holed:
                try:
                    server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                    server.settimeout(None)
                except OSError:
                    client.close()
                    continue
            link = _Link(client, server, silent=holed)
            with self.lock:
                self.links.append(link)
            if server is not None:
                threading.Thread(target=self._pump, args=(link, client, server, False), daemon=True).start()
                threading.Thread(target=self._pump, args=(link, server, client, True), daemon=True).start()

    def _pump(self, link: _Link, source: socket.socket, destination: socket.socket, from_server: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                link.close()
                return
            if link.silent:
                continue  # lost on the way: the sockets stay open
            if from_server and COMMIT_COMPLETE in data:
                with self.lock:
                    lose, self.lose_commit = self.lose_commit, False
                if lose:
                    self.commits_lost += 1
                    if self.dark_after_loss:
                        self.blackhole()
                    link.close()
                    return
            try:
                destination.sendall(data)
            except OSError:
                link.close()
                return
