"""Principal reasons: the gap to approved applicants, exact, additive to the served probability,
deterministic, with stable codes, never a prohibited basis."""
import numpy as np
import pytest
import requests

from loanxai.core.elderly import served_rows
from loanxai.core.pipeline import CLASSIFIER_STEP, PREPROCESSOR_STEP
from loanxai.data.dataset import LABEL, load_dataset
from loanxai.data.description import load_description
from loanxai.explain.reasons import approved_reference, reason_explainer
from loanxai.fairness.fits import served_approval
from loanxai.fairness.search import search
from tests.conftest import EXAMPLE_APPLICATION, REJECTED_APPLICATION, census_sample, start_classifier


def post(service, message):
    return requests.post(service.predictions_url, json=message, timeout=60)


@pytest.fixture(scope="module")
def held_out(census):
    """100 held-out applications (the session classifier's batch limit), protected attributes included."""
    rows = census.test.head(100).drop(columns=[LABEL])
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows.to_dict("records")]


def test_reasons_add_up_to_the_served_probability_against_approved_applicants(classifier, held_out, artifacts):
    cutoff = artifacts.classifier_manifest.cutoff
    response = post(classifier, {"jsonData": held_out, "meta": {"tags": {"reasons": True}}})
    assert response.status_code == 200, response.text
    body = response.json()
    approval = np.asarray(body["data"]["ndarray"])[:, 1]
    decisions = body["meta"]["tags"]["reasons"]
    assert len(decisions) == len(held_out)
    for p, decision, served in zip(approval, decisions, body["meta"]["tags"]["decisions"]):
        assert decision["base_value"] + sum(decision["contributions"].values()) == pytest.approx(p, abs=1e-6)
        # the reference is approved applicants: its probability is at or above the cutoff
        assert decision["base_value"] >= decision["cutoff"] == cutoff
        assert decision["approval_probability"] == p
        assert decision["decision"] == served == ("approved" if p >= cutoff else "rejected")
        reasons = decision["reasons"]
        assert len(reasons) <= 4
        signs = [r["contribution"] for r in reasons]
        if decision["decision"] == "rejected":
            assert reasons and all(c < 0 for c in signs) and signs == sorted(signs)  # the strongest first
            assert decision["gap_share"] == pytest.approx(sum(signs) / (p - decision["base_value"]))
        else:
            assert all(c > 0 for c in signs) and signs == sorted(signs, reverse=True)
            assert decision["gap_share"] is None
        for reason in reasons:
            assert reason["contribution"] == decision["contributions"][reason["feature"]]
            assert reason["code"] == reason["feature"] + ("-low" if reason["contribution"] < 0 else "-high")
            assert "the probability of approval by" in reason["text"] and reason["text"].endswith("approved applicants")
    assert {d["decision"] for d in decisions} == {"approved", "rejected"}


def test_the_stated_reasons_carry_most_of_the_gap(classifier, held_out):
    body = post(classifier, {"jsonData": held_out, "meta": {"tags": {"reasons": True}}}).json()
    shares = [d["gap_share"] for d in body["meta"]["tags"]["reasons"] if d["decision"] == "rejected"]
    assert len(shares) > 30 and np.median(shares) > 0.5


def test_reasons_are_deterministic_and_optional(classifier, held_out):
    message = {"jsonData": held_out[:20], "meta": {"tags": {"reasons": 2}}}
    first, second = post(classifier, message).json(), post(classifier, message).json()
    for answer in (first, second):  # the ids the decisions are recorded under: the request's own
        assert answer["meta"]["tags"].pop("application_ids") == [f"{answer['meta']['puid']}-{i}" for i in range(20)]
    assert first["meta"].pop("puid") != second["meta"].pop("puid")  # a new id per prediction, as Seldon's
    assert first == second
    assert all(len(d["reasons"]) <= 2 for d in first["meta"]["tags"]["reasons"])
    plain = post(classifier, {"jsonData": held_out[:20]}).json()
    assert set(plain["meta"]["tags"]) == {"decisions", "cutoff", "application_ids"} and plain["data"] == first["data"]


def test_a_rejection_gets_reasons_in_words(classifier):
    body = post(classifier, {"jsonData": [REJECTED_APPLICATION], "meta": {"tags": {"reasons": True}}}).json()
    [decision] = body["meta"]["tags"]["reasons"]
    assert decision["decision"] == "rejected" and decision["gap_share"] > 0.5
    assert decision["reasons"] and all(r["text"].split(":")[0] in (
        "age", "work sector", "education", "years of education", "occupation", "capital gains", "capital losses",
        "hours worked per week") for r in decision["reasons"])


@pytest.mark.parametrize("tags, problem", [
    # at most one reason per model input
    ({"reasons": "many"}, "prediction parameter 'reasons' must be true, false or an integer from 0 to {n}"),
    ({"reasons": 11}, "from 0 to {n}, got 11"),
    ({"purpose": "audit"}, "prediction parameter 'purpose' must be one of: decision, explanation, got 'audit'"),
])
def test_bad_reason_requests_get_400(classifier, artifacts, tags, problem):
    response = post(classifier, {"jsonData": [EXAMPLE_APPLICATION], "meta": {"tags": tags}})
    problem = problem.format(n=artifacts.classifier_manifest.schema.n_features)
    assert response.status_code == 400 and problem in response.json()["status"]["info"]


def test_other_tags_are_left_to_their_owners(classifier):
    # seldon-batch-processor tags its requests: no prediction parameter, and they come back as Seldon's wrapper does
    response = post(classifier, {"jsonData": [EXAMPLE_APPLICATION], "meta": {"tags": {"batch_id": "x", "batch_index": 3}}})
    tags = response.json()["meta"]["tags"]
    assert response.status_code == 200 and {k: tags[k] for k in ("batch_id", "batch_index")} == {"batch_id": "x",
                                                                                                   "batch_index": 3}


def test_a_thousand_applications_in_one_call(artifacts, held_out, tmp_path):
    service = start_classifier(artifacts.classifier_dir, tmp_path)  # the default limit: 1,000 rows
    try:
        service.wait_ready()
        body = post(service, {"jsonData": (held_out * 10)[:1000], "meta": {"tags": {"reasons": True}}}).json()
    finally:
        service.stop()
    assert len(body["meta"]["tags"]["reasons"]) == 1000


def test_a_prohibited_basis_as_an_input_is_never_a_reason(tmp_path):
    """Even the seed's model, which takes gender, ethnicity, marital status and relationship as
    inputs, gets none of them as a reason."""
    sample = load_dataset(load_description(census_sample(tmp_path, 3000)))
    seed = search(sample, requested="none", only=["all, forest"], n_estimators=10)
    preprocessor, forest = seed.pipeline.named_steps[PREPROCESSOR_STEP], seed.pipeline.named_steps[CLASSIFIER_STEP]
    X = seed.schema.encode_frame(sample.train)
    approval = served_approval(seed.pipeline, X, seed.schema)
    reasons = reason_explainer(preprocessor, forest, seed.schema, approved_reference(X, approval, seed.cutoff, 0))
    test = seed.schema.encode_frame(sample.test)
    asked = served_rows(test, seed.schema, preprocessor, forest)  # the elderly rule applied
    approval = forest.predict_proba(preprocessor.transform(asked))[:, 1]
    contributions = reasons.contributions(asked)
    gender = seed.schema.feature_names.index("gender")
    assert np.abs(contributions[:, gender]).max() > 0  # the model uses it ...
    named = {r.feature for d in reasons.explain(asked, approval, seed.cutoff, 10, shown=test) for r in d.reasons}
    assert named and not {"gender", "ethnicity", "marital-status", "relationship"} & named  # ... never as a reason
    np.testing.assert_allclose(reasons.base_value + contributions.sum(axis=1), approval, atol=1e-6)
