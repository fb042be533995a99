"""The mirror's request id: the champion's and the challenger's decisions are paired by it."""
import json

from loanxai.ops.mirror import with_puid


def test_a_request_without_an_id_gets_one_and_one_with_an_id_keeps_it():
    given = json.loads(with_puid(b'{"jsonData": [{"age": 30}]}'))
    assert given["jsonData"] == [{"age": 30}] and len(given["meta"]["puid"]) == 32
    assert json.loads(with_puid(b'{"meta": {"tags": {"x": 1}}}'))["meta"]["tags"] == {"x": 1}
    body = b'{"data": {"ndarray": [[1]]}, "meta": {"puid": "mine"}}'
    assert with_puid(body) == body


def test_a_body_the_classifier_will_refuse_goes_as_it_came():
    for body in (b"not json", b"[1, 2]", b'{"meta": [1]}', b""):
        assert with_puid(body) == body
