"""One root error carrying its status, turned into Seldon's error answer in one place."""
import pytest
import requests

from loanxai import errors
from loanxai.clients.http import answer
from loanxai.serving.common import seldon_error

CLASSES = [getattr(errors, name) for name in errors.__all__]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_derives_from_the_root_with_a_status_and_a_reason(cls):
    assert issubclass(cls, errors.LoanError)
    assert 400 <= cls.status_code < 600 and cls.reason.isupper() and cls.__doc__


def test_an_error_becomes_seldons_answer_with_its_status():
    answer_ = seldon_error(errors.ExplainerBusy("busy: retry in a moment"))
    assert answer_.status_code == 503
    assert answer_.to_dict() == {"status": {"status": 1, "info": "busy: retry in a moment", "code": -1,
                                            "reason": "EXPLAINER_BUSY"}}
    assert str(answer_) == "busy: retry in a moment"  # what gRPC answers with


def test_an_input_error_is_not_a_value_error():
    """Flask's JSON loading turns a ValueError into "no JSON": the error's own words would be lost."""
    assert not issubclass(errors.InputError, ValueError)


def test_a_client_reads_the_services_own_words():
    response = requests.Response()
    response.status_code = 400
    response._content = b'{"status": {"code": -1, "info": "missing feature \'age\' in row 0", "status": 1}}'
    with pytest.raises(errors.ServiceError) as raised:
        answer(response)
    assert raised.value.status_code == 400 and str(raised.value) == "400: missing feature 'age' in row 0"
    response._content = b"<html>502 Bad Gateway</html>"  # a proxy's page, not Seldon's shape
    with pytest.raises(errors.ServiceError, match="<html>502 Bad Gateway"):
        answer(response)
