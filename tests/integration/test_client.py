"""The Python clients (requests and SeldonClient) against the real services."""
import pytest

from loanxai.clients.api import LoanClient, ServiceError, seldon_client, seldon_predict
from loanxai.core.cli import main as loanxai
from tests.conftest import EXAMPLE_APPLICATION


@pytest.fixture
def loan_client(classifier, explainer):
    return LoanClient(classifier.url, explainer.url)


def test_loan_client_predicts_and_explains(loan_client):
    [answer] = loan_client.predict(EXAMPLE_APPLICATION)
    assert set(answer) == {"decision", "rejected", "approved", "application_id"}
    assert answer["rejected"] + answer["approved"] == pytest.approx(1)
    explanation = loan_client.explain(EXAMPLE_APPLICATION, threshold=0.9)
    assert explanation["anchor"] and explanation["threshold"] == 0.9
    assert explanation["prediction"] == answer["decision"]


def test_loan_client_raises_with_the_service_reason(loan_client):
    with pytest.raises(ServiceError, match="400: unknown category 'Martian'") as error:
        loan_client.predict(EXAMPLE_APPLICATION | {"gender": "Martian"})
    assert error.value.status_code == 400


def test_seldon_client_against_both_services(classifier, explainer, loan_client):
    answer = seldon_predict(seldon_client(classifier.url), EXAMPLE_APPLICATION)
    assert answer["data"]["names"] == ["rejected", "approved"]
    [prediction] = loan_client.predict(EXAMPLE_APPLICATION)
    assert answer["data"]["ndarray"][0] == pytest.approx([prediction["rejected"], prediction["approved"]])
    assert answer["meta"]["tags"]["decisions"] == [prediction["decision"]]
    explanation = seldon_predict(seldon_client(explainer.url), EXAMPLE_APPLICATION, threshold=0.9)["jsonData"]
    assert explanation["anchor"] and explanation["threshold"] == 0.9


def test_seldon_client_reports_bad_input(classifier):
    with pytest.raises(ServiceError, match="400: unknown category 'Martian'"):
        seldon_predict(seldon_client(classifier.url), EXAMPLE_APPLICATION | {"gender": "Martian"})


def test_client_command_prints_both_answers(classifier, explainer, capsys):
    assert loanxai(["client", "--classifier-url", classifier.url, "--explainer-url", explainer.url]) == 0
    out = capsys.readouterr().out
    assert "SeldonClient prediction:  approved (probability of approval 0." in out
    assert "requests    explanation: approved because " in out
    assert out.count("model calls") == 2


def test_seldon_client_for_an_ingress_url_targets_the_deployment():
    client = seldon_client("http://localhost:8080/seldon/loan/loan-classifier")
    assert (client.config["gateway"], client.config["namespace"], client.config["deployment_name"],
            client.config["gateway_endpoint"]) == ("istio", "loan", "loan-classifier", "localhost:8080")
    bare = seldon_client("http://127.0.0.1:9000")
    assert (bare.config["gateway"], bare.config["gateway_endpoint"]) == ("seldon", "127.0.0.1:9000")
