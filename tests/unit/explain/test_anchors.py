"""Anchors in process: seeded from the application, the model and the request's seed, whatever
the generators held before; one result type, the one the service and the report show."""
import numpy as np
import pytest

from loanxai.core.pipeline import impute
from loanxai.core.schema import FeatureSchema
from loanxai.explain import anchors
from loanxai.report.artifacts import load_model


@pytest.fixture(scope="module")
def model(loanapp_artifacts):
    return load_model(loanapp_artifacts.classifier_dir, loanapp_artifacts.explainer_dir)


def application(model, i=0):
    x = np.asarray(model.manifest.reference["rows"][i], dtype=float)
    return impute(x, model.schema, model.explainer_manifest.numeric_medians)


def test_the_same_application_model_and_seed_give_the_same_anchor(model):
    x = application(model)
    first = anchors.explain(model.explainer, model.anchor_model, x, {"threshold": 0.9, "seed": 0},
                            model.manifest.model_sha256)
    np.random.seed(12345)  # whatever another explanation left behind
    np.random.random(1000)
    second = anchors.explain(model.explainer, model.anchor_model, x, {"threshold": 0.9, "seed": 0},
                            model.manifest.model_sha256)
    assert first == second and first.conditions
    assert first.decision in ("approved", "rejected") and first.threshold_met == (first.precision >= 0.9)
    assert first.to_dict()["anchor_text"] == " AND ".join(first.conditions)


def test_another_seed_draws_another_sample(model):
    x = application(model, 3)
    found = {anchors.explain(model.explainer, model.anchor_model, x, {"threshold": 0.9, "seed": seed},
                             model.manifest.model_sha256) for seed in range(4)}
    assert len(found) > 1  # another sample: another coverage estimate at least


def test_the_anchor_model_holds_the_applicants_other_inputs_fixed():
    schema = FeatureSchema(("age", "hours", "job"), {"job": ("a", "b")}, basis_inputs={"age": ("young", "old")},
                           bands={"age": (62.0,)}, elderly={"age": 62.0})
    features = anchors.anchor_features(schema)
    asked = []
    model = anchors.AnchorModel(schema, features, lambda X: asked.append(X.copy()) or np.zeros(len(X), dtype=int))
    model.applicant = np.array([70.0, 40.0, 1.0])
    model(np.array([[10.0, 0.0], [20.0, 1.0]]))
    assert features == ("hours", "job")
    assert asked[0].tolist() == [[70.0, 10.0, 0.0], [70.0, 20.0, 1.0]]


def test_the_anchor_parameters_are_those_a_request_may_set():
    assert set(anchors.PARAMETERS) == {"threshold", "beam_size", "max_anchor_size", "delta", "tau"}


def test_importing_the_package_installs_no_import_hook():
    import subprocess
    import sys

    # shap before alibi, the order that broke alibi's import; no finder of ours is left behind
    code = ("import sys; import loanxai, shap, loanxai.explain.anchors; from alibi.explainers import AnchorTabular; "
            "ours = [f for f in sys.meta_path if type(f).__module__.startswith('loanxai')]; assert not ours, ours; "
            "assert sys.modules['shap'] is shap")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
