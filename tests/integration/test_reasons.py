"""Principal reasons: exact, additive to the served probability, deterministic, never protected."""
import numpy as np
import pytest
import requests

from loanxai.data.dataset import LABEL
from loanxai.explain.reasons import ReasonExplainer, column_features
from loanxai.fairness.mitigation import train_candidates
from loanxai.serving.fastpath import FastClassifier
from loanxai.training.writers import compile_forest
from tests.conftest import EXAMPLE_APPLICATION, start_classifier


def post(service, message):
    return requests.post(service.predictions_url, json=message, timeout=60)


@pytest.fixture(scope="module")
def held_out(census):
    """100 held-out applications (the session classifier's batch limit), protected attributes included."""
    rows = census.test.head(100).drop(columns=[LABEL])
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows.to_dict("records")]


def test_reasons_add_up_to_the_served_probability(classifier, held_out):
    response = post(classifier, {"jsonData": held_out, "meta": {"tags": {"reasons": True}}})
    assert response.status_code == 200, response.text
    body = response.json()
    approval = np.asarray(body["data"]["ndarray"])[:, 1]
    decisions = body["meta"]["tags"]["reasons"]
    assert len(decisions) == len(held_out)
    for p, decision in zip(approval, decisions):
        assert decision["base_value"] + sum(decision["contributions"].values()) == pytest.approx(p, abs=1e-6)
        assert decision["approval_probability"] == p
        assert decision["decision"] == ("approved" if p >= 0.5 else "rejected")
        reasons = decision["reasons"]
        assert 1 <= len(reasons) <= 4
        signs = [r["contribution"] for r in reasons]
        if decision["decision"] == "rejected":
            assert all(c < 0 for c in signs) and signs == sorted(signs)  # the strongest first
        else:
            assert all(c > 0 for c in signs) and signs == sorted(signs, reverse=True)
        for reason in reasons:
            assert reason["feature"] not in ("gender", "ethnicity")
            assert reason["contribution"] == decision["contributions"][reason["feature"]]
            assert "the probability of approval by" in reason["text"]
    assert {d["decision"] for d in decisions} == {"approved", "rejected"}


def test_reasons_are_deterministic_and_optional(classifier, held_out):
    message = {"jsonData": held_out[:20], "meta": {"tags": {"reasons": 2}}}
    first, second = post(classifier, message).json(), post(classifier, message).json()
    assert first["meta"].pop("puid") != second["meta"].pop("puid")  # a new id per prediction, as Seldon's
    assert first == second
    assert all(len(d["reasons"]) <= 2 for d in first["meta"]["tags"]["reasons"])
    plain = post(classifier, {"jsonData": held_out[:20]}).json()
    assert "tags" not in plain["meta"] and plain["data"] == first["data"]


def test_the_readme_application_gets_reasons_in_words(classifier):
    body = post(classifier, {"jsonData": [EXAMPLE_APPLICATION], "meta": {"tags": {"reasons": True}}}).json()
    [decision] = body["meta"]["tags"]["reasons"]
    assert decision["decision"] == "rejected"
    assert all(r["text"].split(":")[0] in ("age", "work sector", "education", "years of education", "marital status",
                                           "occupation", "relationship in the household", "capital gains",
                                           "capital losses", "hours worked per week") for r in decision["reasons"])


@pytest.mark.parametrize("tags, problem", [
    ({"reasons": "many"}, "prediction parameter 'reasons' must be true, false or an integer from 0 to 10"),
    ({"reasons": 11}, "from 0 to 10, got 11"),
    ({"purpose": "audit"}, "prediction parameter 'purpose' must be one of: decision, explanation, got 'audit'"),
])
def test_bad_reason_requests_get_400(classifier, tags, problem):
    response = post(classifier, {"jsonData": [EXAMPLE_APPLICATION], "meta": {"tags": tags}})
    assert response.status_code == 400 and problem in response.json()["status"]["info"]


def test_other_tags_are_left_to_their_owners(classifier):
    # seldon-batch-processor tags its requests: no prediction parameter, and they come back as Seldon's wrapper does
    response = post(classifier, {"jsonData": [EXAMPLE_APPLICATION], "meta": {"tags": {"batch_id": "x", "batch_index": 3}}})
    assert response.status_code == 200 and response.json()["meta"]["tags"] == {"batch_id": "x", "batch_index": 3}


def test_a_thousand_applications_in_one_call(artifacts, held_out, tmp_path):
    service = start_classifier(artifacts.classifier_dir, tmp_path)  # the default limit: 1,000 rows
    try:
        service.wait_ready()
        body = post(service, {"jsonData": (held_out * 10)[:1000], "meta": {"tags": {"reasons": True}}}).json()
    finally:
        service.stop()
    assert len(body["meta"]["tags"]["reasons"]) == 1000


def test_a_protected_model_input_is_never_a_reason(census, tmp_path):
    """Even the seed's model, which takes gender and ethnicity as inputs, gets no protected reason."""
    small = census.test.head(400)
    [seed] = train_candidates(type(census)(census.description, census.train.head(4000), small, census.schema,
                                           census.source_sha256), names=["seed"], n_estimators=10)
    preprocessor, forest = seed.pipeline.named_steps.values()
    compile_forest(forest, tmp_path / "model.treelite")
    fast = FastClassifier(preprocessor, tmp_path / "model.treelite")
    reasons = ReasonExplainer(forest, fast.transform,
                              column_features(fast.numeric_columns, fast.categorical_columns, fast.categories),
                              seed.schema, protected=["gender", "ethnicity"])
    X = seed.schema.encode_frame(small)
    approval = fast.predict_proba(X)[:, 1]
    contributions = reasons.contributions(X)
    gender = seed.schema.feature_names.index("gender")
    assert np.abs(contributions[:, gender]).max() > 0  # the model uses it ...
    named = {r.feature for d in reasons.explain(X, approval, 10) for r in d.reasons}
    assert named and not {"gender", "ethnicity"} & named  # ... but it is never given as a reason
    np.testing.assert_allclose(reasons.base_value + contributions.sum(axis=1), approval, atol=1e-9)
