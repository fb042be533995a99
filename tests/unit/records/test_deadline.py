"""The watchdog cuts the socket of a statement that outlives its deadline, and only then; a
shorter deadline armed while it waits for a longer one is kept (its thread wakes only when an
armed deadline is earlier than the one it waits for)."""
import socket
import time

import pytest

from loanxai.records.deadline import Watchdog

#: how long a read waits for a socket's answer before it raises (the watchdog cuts long before)
PATIENCE_S = 10


class Connection:
    """What the watchdog reads of a DBAPI connection: the file descriptor of its socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()


@pytest.fixture
def pairs():
    made = []

    def pair() -> tuple[socket.socket, socket.socket]:
        ours, peer = socket.socketpair()
        ours.settimeout(PATIENCE_S)
        made.extend((ours, peer))
        return ours, peer

    yield pair
    for sock in made:
        sock.close()


def cut(sock: socket.socket) -> bool:
    """Whether a read on ``sock`` (nothing was sent to it) ends at once as a shut-down socket's does."""
    return sock.recv(1) == b""


def test_a_read_that_outlives_its_deadline_has_its_socket_cut(pairs):
    ours, _peer = pairs()
    with Watchdog().deadline(Connection(ours), 0.2):
        assert cut(ours)  # a read left to its own timeout raises instead


def test_a_shorter_deadline_armed_while_a_longer_one_waits_is_kept(pairs):
    watchdog = Watchdog()
    long_ours, long_peer = pairs()
    short_ours, _ = pairs()
    with watchdog.deadline(Connection(long_ours), 60):
        time.sleep(0.2)  # the watchdog's thread now waits for the 60 s deadline
        with watchdog.deadline(Connection(short_ours), 0.2):
            assert cut(short_ours)
        long_peer.sendall(b"x")
        assert long_ours.recv(1) == b"x"  # the longer one is not cut


def test_a_block_that_ends_in_time_keeps_its_socket(pairs):
    watchdog = Watchdog()
    ours, peer = pairs()
    for _ in range(50):  # many deadlines armed and ended, as commits do
        with watchdog.deadline(Connection(ours), 0.3):
            pass
    time.sleep(0.6)  # past every deadline armed above
    peer.sendall(b"x")
    assert ours.recv(1) == b"x"
