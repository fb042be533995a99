"""The exact fast path: identical to the pipeline on the held-out set, refused when it is not."""

import numpy as np
import pytest
import requests
import treelite.gtil
from sklearn.ensemble import RandomForestClassifier

from loanxai.artifacts import COMPILED_FILE
from loanxai.core.elderly import served_rows
from loanxai.core.manifest import load_pickle
from loanxai.serving.fastpath import PARITY_TOLERANCE, TREES_FROM_ROWS, FastClassifier, check_parity
from tests.conftest import replace_compiled, service_metadata, start_classifier


@pytest.fixture(scope="module")
def pipeline_parts(artifacts):
    return load_pickle(artifacts.classifier_dir, "preprocessor.dill"), load_pickle(artifacts.classifier_dir, "model.dill")


@pytest.fixture(scope="module")
def held_out(census, artifacts):
    return artifacts.classifier_manifest.schema.encode_frame(census.test)


def test_fast_path_equals_the_pipeline_on_the_whole_held_out_set(artifacts, pipeline_parts, held_out):
    preprocessor, forest = pipeline_parts
    fast = FastClassifier(preprocessor, forest, artifacts.classifier_dir / COMPILED_FILE)
    expected = forest.predict_proba(preprocessor.transform(held_out))
    actual = fast.predict_proba(held_out)
    cutoff = artifacts.classifier_manifest.cutoff
    assert len(held_out) == 6512
    assert np.array_equal(actual[:, 1] >= cutoff, expected[:, 1] >= cutoff)
    assert np.max(np.abs(actual - expected)) <= PARITY_TOLERANCE
    assert check_parity(fast, expected, held_out, cutoff)["holds"]


@pytest.mark.parametrize("engine", ["gtil_proba", "trees_proba"])
def test_each_engine_equals_the_pipeline_whatever_the_batch(artifacts, pipeline_parts, held_out, engine):
    """Both engines, on batches each would not be chosen for: the same probabilities, bit for bit."""
    preprocessor, forest = pipeline_parts
    fast = FastClassifier(preprocessor, forest, artifacts.classifier_dir / COMPILED_FILE)
    predict = getattr(fast, engine)
    for rows in (held_out[:1], held_out[:TREES_FROM_ROWS - 1], held_out):
        assert np.array_equal(predict(rows), forest.predict_proba(preprocessor.transform(rows)))


def test_the_float32_rounding_is_what_makes_it_exact(artifacts, pipeline_parts, held_out):
    preprocessor, forest = pipeline_parts
    fast = FastClassifier(preprocessor, forest, artifacts.classifier_dir / COMPILED_FILE)
    expected = forest.predict_proba(preprocessor.transform(held_out))
    unrounded = treelite.gtil.predict(fast.compiled, fast.transform(held_out)).reshape(len(held_out), -1)
    # without the rounding, rows near a threshold take the other branch: answers move by far more than the tolerance
    assert np.max(np.abs(unrounded - expected)) > 1000 * PARITY_TOLERANCE


def test_preprocessing_matches_scikit_learn_bit_for_bit(artifacts, pipeline_parts, held_out):
    preprocessor, forest = pipeline_parts
    fast = FastClassifier(preprocessor, forest, artifacts.classifier_dir / COMPILED_FILE)
    rows = held_out[:40].copy()
    rows[:5, 0] = np.nan      # imputed with the median
    rows[5:8, 1] = 99         # unknown code: all zeros, as handle_unknown='ignore'
    expected = preprocessor.transform(rows)
    expected = expected.toarray() if hasattr(expected, "toarray") else expected
    assert np.array_equal(fast.transform(rows), expected)


def test_service_serves_the_fast_path_when_parity_holds(classifier):
    custom = service_metadata(classifier)
    assert custom["prediction_path"] == "treelite"
    assert float(custom["parity_max_difference"]) <= PARITY_TOLERANCE
    assert requests.get(f"{classifier.url}/health/status", timeout=10).json()["jsonData"]["prediction_path"] == "treelite"


def test_a_perturbed_compiled_model_is_refused(artifacts_copy, pipeline_parts, held_out, tmp_path):
    """A compiled forest that is not the pipeline's (here: another seed), with a valid checksum."""
    preprocessor, forest = pipeline_parts
    X, y = held_out[:1500], np.arange(1500) % 2
    other = RandomForestClassifier(n_estimators=5, random_state=1).fit(preprocessor.transform(X), y)
    directory = artifacts_copy.classifier_dir
    replace_compiled(directory, other)
    service = start_classifier(directory, tmp_path)
    try:
        service.wait_ready()
        assert service_metadata(service)["prediction_path"] == "scikit-learn"
        answer = requests.post(service.predictions_url, json={"data": {"ndarray": held_out[:20].tolist()}}, timeout=30)
        asked = served_rows(held_out[:20], artifacts_copy.classifier_manifest.schema, preprocessor, forest)
        expected = forest.predict_proba(preprocessor.transform(asked))
        np.testing.assert_allclose(answer.json()["data"]["ndarray"], expected, rtol=0, atol=1e-12)
    finally:
        service.stop()
    assert "disagrees with the pipeline" in service.log_tail(200)
    assert "serves the scikit-learn path" in service.log_tail(200)


def test_the_scikit_learn_path_can_be_forced(artifacts, tmp_path):
    service = start_classifier(artifacts.classifier_dir, tmp_path, LOAN_PREDICTION_PATH="scikit-learn")
    try:
        service.wait_ready()
        assert service_metadata(service)["prediction_path"] == "scikit-learn"
    finally:
        service.stop()
