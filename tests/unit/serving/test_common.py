"""The one place an error becomes Seldon's answer: a bug of ours is a 500 with the request's id,
never Python's words (issue 19, in part)."""
import logging

import pytest
from seldon_core.flask_utils import SeldonMicroserviceException

from loanxai.errors import InputError
from loanxai.serving.common import serve_json


def broken(message):
    return {}["the bug"]  # a KeyError: what an unforeseen path would raise


def test_a_bug_is_a_500_with_the_request_id_and_no_python_words(caplog):
    with caplog.at_level(logging.ERROR), pytest.raises(SeldonMicroserviceException) as raised:
        serve_json(broken, {"jsonData": {}, "meta": {"puid": "req-42"}})
    body = raised.value.to_dict()
    assert raised.value.status_code == 500 and body["status"]["reason"] == "MICROSERVICE_INTERNAL_ERROR"
    assert body["status"]["info"] == ("internal error answering request req-42 (logged with that id); "
                                      "the service keeps serving")
    assert "KeyError" not in str(body) and "the bug" not in str(body)
    assert "req-42" in caplog.text and "KeyError: 'the bug'" in caplog.text  # the whole traceback, in the log


def test_without_a_valid_request_id_one_is_made():
    for message in ({"jsonData": {}}, {"meta": {"puid": ["x"]}}, ["not", "an", "object"]):
        with pytest.raises(SeldonMicroserviceException) as raised:
            serve_json(broken, message)
        info = raised.value.to_dict()["status"]["info"]
        request_id = info.split("request ")[1].split(" ")[0]
        assert len(request_id) == 32 and int(request_id, 16) >= 0


def test_a_clients_error_keeps_its_status_and_words():
    def refuse(message):
        raise InputError("missing feature 'age' in row 0")

    with pytest.raises(SeldonMicroserviceException) as raised:
        serve_json(refuse, {})
    assert raised.value.status_code == 400 and raised.value.to_dict()["status"]["info"] == "missing feature 'age' in row 0"
