"""The mirror's request id (the champion's and the challenger's decisions are paired by it), and its stop."""
import json
import socket
import threading

from loanxai.ops.mirror import Mirror, with_puid
from loanxai.ops.services import free_port


def test_a_request_without_an_id_gets_one_and_one_with_an_id_keeps_it():
    given = json.loads(with_puid(b'{"jsonData": [{"age": 30}]}'))
    assert given["jsonData"] == [{"age": 30}] and len(given["meta"]["puid"]) == 32
    assert json.loads(with_puid(b'{"meta": {"tags": {"x": 1}}}'))["meta"]["tags"] == {"x": 1}
    body = b'{"data": {"ndarray": [[1]]}, "meta": {"puid": "mine"}}'
    assert with_puid(body) == body


def test_a_body_the_classifier_will_refuse_goes_as_it_came():
    for body in (b"not json", b"[1, 2]", b'{"meta": [1]}', b""):
        assert with_puid(body) == body


def test_a_mirror_never_started_stops_at_once():
    """The runner stops the mirror when a service failed to start, before the mirror ever served."""
    mirror = Mirror(free_port(), "http://127.0.0.1:9", "http://127.0.0.1:9")
    stopping = threading.Thread(target=mirror.stop, daemon=True)
    stopping.start()
    stopping.join(timeout=10)
    assert not stopping.is_alive(), "stop() waits for a server that never served"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", int(mirror.url.rsplit(":", 1)[1])))  # the port is free again
