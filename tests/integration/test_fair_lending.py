"""Fair lending as the served models practise it, on both datasets: no reason, anchor or recourse
ever names a declared prohibited basis, whatever the applicant's group; a decision does not
move when only a basis changes; age, the one basis the census lets in, never counts against
an applicant of 62 or more."""
import numpy as np
import pandas as pd
import pytest
import requests

from loanxai.core.pipeline import impute
from loanxai.data.dataset import LABEL, group_column, load_trained_dataset
from loanxai.explain import anchors
from loanxai.explain.recourse import RecourseFinder
from loanxai.report.artifacts import load_model
from tests.conftest import start_classifier

#: applications drawn from each group of each declared attribute
PER_GROUP = 8
#: anchors and recourses per group (each takes about a second in process)
EXPLAINED_PER_GROUP = 1


def records(frame):
    rows = frame.drop(columns=[LABEL]).to_dict("records")
    return [{k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows]


def from_every_group(dataset, schema, n):
    """Up to ``n`` held-out applications of every group of every declared attribute."""
    test = dataset.test
    chosen = set()
    for attribute in schema.groups:
        groups = group_column(test, schema, attribute)
        for group in groups.dropna().unique():
            chosen.update(np.flatnonzero((groups == group).to_numpy())[:n].tolist())
    return test.iloc[sorted(chosen)]


@pytest.fixture(scope="module", params=["census", "loanapp"])
def served(request, tmp_path_factory):
    """A dataset's artifacts, its held-out applications of every group, and its classifier service."""
    trained = request.getfixturevalue("artifacts" if request.param == "census" else "loanapp_artifacts")
    manifest = trained.classifier_manifest
    dataset = load_trained_dataset(manifest)
    service = start_classifier(trained.classifier_dir, tmp_path_factory.mktemp(f"{request.param}-logs"))
    try:
        service.wait_ready()
        yield trained, dataset, from_every_group(dataset, manifest.schema, PER_GROUP), service
    finally:
        service.stop()


def post(service, applications, **tags):
    """The answers for ``applications``, 100 a request (the session classifier's batch limit)."""
    answers = []
    for start in range(0, len(applications), 100):
        response = requests.post(service.predictions_url, timeout=120,
                                 json={"jsonData": applications[start:start + 100], "meta": {"tags": tags}})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def test_no_reason_names_a_declared_basis_for_any_group(served):
    trained, _, applications, service = served
    manifest = trained.classifier_manifest
    declared = set(manifest.dataset.protected)
    stated = []
    for answer in post(service, records(applications), reasons=4):
        for decision in answer["meta"]["tags"]["reasons"]:
            stated += [(r["feature"], decision["decision"]) for r in decision["reasons"]]
            assert decision["base_value"] + sum(decision["contributions"].values()) == pytest.approx(
                decision["approval_probability"], abs=1e-6)
            if decision["decision"] == "rejected":
                assert decision["base_value"] >= decision["cutoff"]
    assert len(stated) > len(applications)
    # age, an input of the census model under the elderly rule, may be a reason for a younger applicant only
    assert not {feature for feature, _ in stated} & (declared - set(manifest.schema.elderly))


@pytest.fixture(scope="module")
def census_applications(census):
    return records(census.test)


def test_no_reason_says_age_counted_against_an_applicant_of_62_or_more(classifier, artifacts, census_applications):
    assert artifacts.classifier_manifest.schema.elderly == {"age": 62.0}
    rows = [r for r in census_applications if r["age"] >= 62]
    ages = [r["age"] for r in rows]
    assert len(rows) > 200
    every = artifacts.classifier_manifest.schema.n_features  # every feature that lowered it is stated
    decisions = [d for answer in post(classifier, rows, reasons=every) for d in answer["meta"]["tags"]["reasons"]]
    assert len(decisions) == len(ages) and {d["decision"] for d in decisions} == {"approved", "rejected"}
    for age, decision in zip(ages, decisions):
        assert age >= 62 and not [r for r in decision["reasons"] if r["feature"] == "age" and r["contribution"] < 0]


def test_the_elderly_rule_never_lowers_the_probability_as_age_rises_past_61(classifier, census_applications):
    base = census_applications[:60]
    ages = list(range(17, 91))
    asked = [dict(r, age=age) for r in base for age in ages]
    answers = post(classifier, asked)
    approval = np.concatenate([np.asarray(a["data"]["ndarray"])[:, 1] for a in answers]).reshape(len(base), len(ages))
    at = {age: approval[:, i] for i, age in enumerate(ages)}
    younger = approval[:, [i for i, age in enumerate(ages) if age < 62]]
    for age in range(62, 91):
        # no lower than at 61, and no lower than at any younger age: age never counts against them
        assert (at[age] >= at[61]).all() and (at[age] >= younger.max(axis=1) - 1e-12).all()
        assert (at[age] >= at[age - 1]).all() if age > 62 else True
    assert (younger.max(axis=1) > younger.min(axis=1)).any()  # the model does use age below 62


def test_a_decision_does_not_move_when_only_a_basis_changes(served):
    trained, dataset, applications, service = served
    schema = trained.classifier_manifest.schema
    base = records(applications.head(200))
    answers = post(service, base)
    expected = np.concatenate([np.asarray(a["data"]["ndarray"]) for a in answers])
    for attribute, groups in schema.protected.items():  # the declared bases that are not inputs
        for group in groups[:3]:
            changed = [dict(r, **{attribute: group}) for r in base]
            got = np.concatenate([np.asarray(a["data"]["ndarray"]) for a in post(service, changed)])
            assert np.array_equal(got, expected), (attribute, group)


def test_no_anchor_or_recourse_names_a_declared_basis_for_any_group(served):
    trained, _, applications, _ = served
    manifest = trained.classifier_manifest
    model = load_model(trained.classifier_dir, trained.explainer_dir)
    declared = set(manifest.dataset.protected)
    finder = RecourseFinder(model.schema, model.explainer_manifest.recourse, model.explainer_manifest.titles,
                            lambda X: ((p := model.approval(X)), p >= model.cutoff))
    picked = from_every_group(load_trained_dataset(manifest), manifest.schema, EXPLAINED_PER_GROUP)
    X = impute(model.schema.encode_frame(picked), model.schema, model.explainer_manifest.numeric_medians)
    conditions, changes = [], []
    for x in X:
        anchor = anchors.explain(model.explainer, model.anchor_model, x, {"threshold": 0.9, "seed": 0},
                                 manifest.model_sha256)
        conditions += [c.split(" ")[0] for c in anchor.conditions]
        if anchor.decision == "rejected":
            recourse = finder.find(x, 2, 0, manifest.model_sha256)
            changes += [c.feature for cf in recourse.counterfactuals for c in cf.changes]
    assert conditions and not set(conditions) & declared
    assert not set(changes) & declared
