import numpy as np

from loanxai.manifest import load_pickle, load_verified_manifest
from loanxai.schema import CLASS_NAMES, FEATURE_NAMES


def test_classifier_artifacts_and_manifest(artifacts):
    manifest = load_verified_manifest(artifacts.classifier_dir)
    assert set(manifest["files"]) == {"preprocessor.dill", "model.dill", "model.treelite"}
    assert {"python", "scikit-learn", "numpy", "dill", "treelite"} <= set(manifest["versions"])
    assert manifest["schema"]["feature_names"] == list(FEATURE_NAMES)
    assert manifest["class_names"] == list(CLASS_NAMES)
    assert manifest["training"]["n_estimators"] == 50


def test_held_out_metrics_are_sane(artifacts):
    metrics = artifacts.classifier_manifest["metrics"]
    assert metrics["n_rows"] == 2561
    assert metrics["accuracy"] > 0.8
    assert metrics["accuracy"] > metrics["majority_class_accuracy"]
    assert 0.5 < metrics["roc_auc"] <= 1
    assert 0 < metrics["precision"] <= 1 and 0 < metrics["recall"] <= 1
    assert np.sum(metrics["confusion_matrix"]) == metrics["n_rows"]


def test_loaded_pickles_reproduce_the_reference_predictions(artifacts):
    manifest = artifacts.classifier_manifest
    preprocessor = load_pickle(artifacts.classifier_dir, "preprocessor.dill")
    forest = load_pickle(artifacts.classifier_dir, "model.dill")
    assert forest.n_estimators == 50
    rows = np.asarray(manifest["reference"]["rows"])
    # the forest as trained (n_jobs=-1) adds its trees' votes in thread order: last-bit differences
    np.testing.assert_allclose(forest.predict_proba(preprocessor.transform(rows)), manifest["reference"]["probabilities"],
                               rtol=0, atol=1e-12)


def test_explainer_is_pickled_fitted_and_without_predictor(artifacts):
    manifest = load_verified_manifest(artifacts.explainer_dir)
    assert {"alibi", "dill", "numpy"} <= set(manifest["checked_packages"])
    assert manifest["classifier_files"] == artifacts.classifier_manifest["files"]
    explainer = load_pickle(artifacts.explainer_dir, "explainer.dill")
    assert explainer.predictor is None and explainer.samplers[0].predictor is None
    assert explainer.feature_names == list(FEATURE_NAMES)
    assert explainer.meta["params"]["disc_perc"] == (25, 50, 75)
