"""Gradient boosting served as exactly as the forest: a description may let the search choose it,
and then the fast path, the principal reasons and the service all serve it."""
import shutil

import numpy as np
import pytest
import requests
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier

from loanxai.artifacts import COMPILED_FILE, MODEL_FILE, PREPROCESSOR_FILE
from loanxai.core.elderly import served_rows
from loanxai.core.manifest import load_pickle
from loanxai.data.dataset import LABEL, load_trained_dataset
from loanxai.explain.reasons import reason_explainer
from loanxai.serving.fastpath import PARITY_TOLERANCE, FastClassifier, check_parity
from loanxai.training.train import train
from tests.conftest import census_sample, replace_compiled, service_metadata, start_classifier


@pytest.fixture(scope="module")
def boosted(tmp_path_factory):
    """A quick search over boosting alone, on 6,000 census rows: the rule chooses gradient boosting."""
    root = tmp_path_factory.mktemp("boosting")
    path = census_sample(root, 6000)
    document = yaml.safe_load(path.read_text())
    document["selection"] |= {"families": ["boosting"], "choose_from": ["boosting"]}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    manifest, _ = train(root / "loanclassifier", root / "explainer", path, quick=True, cache=None)
    return root / "loanclassifier", manifest


@pytest.fixture(scope="module")
def parts(boosted):
    directory, manifest = boosted
    dataset = load_trained_dataset(manifest)
    preprocessor, model = load_pickle(directory, PREPROCESSOR_FILE), load_pickle(directory, MODEL_FILE)
    X = served_rows(manifest.schema.encode_frame(dataset.test), manifest.schema, preprocessor, model)
    return preprocessor, model, X


def test_the_search_chose_and_wrote_gradient_boosting(boosted, parts):
    _, manifest = boosted
    _, model, _ = parts
    assert isinstance(model, HistGradientBoostingClassifier)
    chosen = next(c for c in manifest.search["candidates"] if c["name"] == manifest.search["chosen"])
    assert chosen["family"] == "boosting"


def test_the_fast_path_equals_the_pipeline_on_the_held_out_set(boosted, parts):
    directory, manifest = boosted
    preprocessor, model, X = parts
    fast = FastClassifier(preprocessor, model, directory / COMPILED_FILE)
    expected = model.predict_proba(preprocessor.transform(X))
    assert fast.engines == (fast.gtil_proba,)  # boosting has no per-tree engine
    for rows in (X[:1], X[:15], X):
        actual = fast.predict_proba(rows)
        assert actual.shape == (len(rows), 2)
        assert np.max(np.abs(actual - expected[:len(rows)])) <= PARITY_TOLERANCE
    parity = check_parity(fast, expected, X, manifest.cutoff)
    assert parity["holds"] and parity["same_class"] and parity["rows"] == len(X) > 1000


def test_the_reasons_add_up_to_the_pipelines_probability(boosted, parts):
    _, manifest = boosted
    preprocessor, model, X = parts
    reasons = reason_explainer(preprocessor, model, manifest.schema, np.asarray(manifest.reasons["reference"]))
    rows = X[:300]
    approval = model.predict_proba(preprocessor.transform(rows))[:, 1]
    total = reasons.base_value + reasons.contributions(rows).sum(axis=1)
    # exact Shapley values of the probability: the same 1e-8 the forest's keep
    assert np.max(np.abs(total - approval)) <= 1e-8
    assert reasons.base_value >= manifest.cutoff  # the reference is approved applicants


def test_the_service_serves_boosting_on_the_fast_path_with_reasons(boosted, parts, tmp_path):
    directory, manifest = boosted
    preprocessor, model, X = parts
    dataset = load_trained_dataset(manifest)
    rows = dataset.test.head(20).drop(columns=[LABEL])
    applications = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows.to_dict("records")]
    service = start_classifier(directory, tmp_path)
    try:
        service.wait_ready()
        assert service_metadata(service)["prediction_path"] == "treelite"
        answer = requests.post(service.predictions_url, json={"jsonData": applications, "meta": {"tags": {"reasons": True}}},
                               timeout=60)
        assert answer.status_code == 200, answer.text
    finally:
        service.stop()
    body = answer.json()
    served = np.asarray(body["data"]["ndarray"])
    np.testing.assert_allclose(served, model.predict_proba(preprocessor.transform(X[:20])), rtol=0, atol=PARITY_TOLERANCE)
    for p, decision in zip(served[:, 1], body["meta"]["tags"]["reasons"]):
        assert decision["base_value"] + sum(decision["contributions"].values()) == pytest.approx(p, abs=1e-8)
        assert decision["decision"] == ("approved" if p >= manifest.cutoff else "rejected")


def test_a_perturbed_compiled_model_is_refused(boosted, parts, tmp_path):
    """A compiled model that is not the pipeline's: the service serves scikit-learn's gradient
    boosting, in workers forked after the master predicted with it (the parity check)."""
    directory, manifest = boosted
    preprocessor, model, X = parts
    copy = shutil.copytree(directory, tmp_path / "loanclassifier")
    replace_compiled(copy, HistGradientBoostingClassifier(max_iter=5, random_state=1).fit(
        preprocessor.transform(X), np.arange(len(X)) % 2))
    service = start_classifier(copy, tmp_path)
    try:
        service.wait_ready()
        assert service_metadata(service)["prediction_path"] == "scikit-learn"
        answer = requests.post(service.predictions_url, json={"data": {"ndarray": X[:20].tolist()}}, timeout=30)
        assert answer.status_code == 200, answer.text
    finally:
        service.stop()
    expected = model.predict_proba(preprocessor.transform(X[:20]))
    np.testing.assert_allclose(answer.json()["data"]["ndarray"], expected, rtol=0, atol=1e-12)
