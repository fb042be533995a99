from pathlib import Path

import numpy as np
import pytest

from loanxai.core.manifest import load_pickle, load_verified_manifest
from loanxai.core.schema import CLASS_NAMES
from loanxai.data.dataset import load_dataset
from loanxai.errors import ArtifactError
from loanxai.fairness.candidates import INCUMBENT
from loanxai.fairness.search import search
from loanxai.report.search import coverage_lines
from tests.conftest import CENSUS, FEATURE_NAMES, census_sample


def test_classifier_artifacts_and_manifest(artifacts):
    manifest = load_verified_manifest(artifacts.classifier_dir)
    assert set(manifest.files) == {"preprocessor.dill", "model.dill", "model.treelite"}
    assert {"python", "scikit-learn", "numpy", "dill", "treelite"} <= set(manifest.versions)
    assert manifest.schema.feature_names == tuple(manifest.training.settings["features"])
    assert set(manifest.schema.feature_names) <= set(FEATURE_NAMES) and "age" in manifest.schema.feature_names
    assert manifest.schema.ignored == tuple(f for f in FEATURE_NAMES if f not in manifest.schema.feature_names)
    assert manifest.class_names == CLASS_NAMES
    assert manifest.candidate == manifest.search["chosen"] != "seed"


def test_no_declared_basis_but_age_is_an_input(artifacts):
    schema = artifacts.classifier_manifest.schema
    assert set(schema.feature_names) & set(CENSUS.protected) == {"age"}
    assert schema.elderly == {"age": 62.0}
    assert set(schema.groups) == set(CENSUS.protected)


def test_the_cutoff_is_set_on_the_training_rows_at_the_policys_rate(artifacts):
    manifest = artifacts.classifier_manifest
    assert manifest.decision.policy == {"approval_rate": "base"}
    chosen = next(p for p in manifest.search["candidates"] if p["name"] == manifest.candidate)
    # cross-validated over the training rows, the cutoff approves the training data's rate
    assert chosen["metrics"]["cutoff"] == manifest.cutoff
    assert chosen["metrics"]["predicted_approval_rate"] == pytest.approx(chosen["metrics"]["approved_rate"], abs=0.005)
    assert 0.2 < manifest.cutoff < 0.5


def test_held_out_metrics_are_at_the_cutoff_and_beat_always_rejecting(artifacts):
    metrics = artifacts.classifier_manifest.metrics
    assert metrics["n_rows"] == 6512 and metrics["cutoff"] == artifacts.classifier_manifest.cutoff
    assert 0.8 < metrics["roc_auc"] <= 1 and 0.5 < metrics["recall"] <= 1 and 0.5 < metrics["precision"] <= 1
    assert metrics["accuracy"] > metrics["always_reject_accuracy"]
    # the held-out approval rate is the policy's, give or take the sample
    assert metrics["predicted_approval_rate"] == pytest.approx(metrics["approved_rate"], abs=0.03)
    assert np.sum(metrics["confusion_matrix"]) == metrics["n_rows"]


def test_the_gate_is_recorded_in_two_steps(artifacts):
    gate = artifacts.classifier_manifest.gate
    steps = [(c["step"], c["attribute"]) for c in gate.checks]
    assert steps == [("screen", "gender"), ("screen", "ethnicity"), ("search", "all screened")]
    unreliable = artifacts.classifier_manifest.search["unreliable"]
    for check in gate.checks[:2]:
        assert check["low"] <= check["value"] <= check["high"] and check["held_out"]["ratio"] is not None
        # beside the screen's ratio, the rule's: over the groups large enough to judge reliably, never below it
        reliably = check["reliably_judged"]
        assert reliably["lowest"] not in unreliable[check["attribute"]] and reliably["ratio"] >= check["value"]
    # the census's screen flags ethnicity and gender; the search found nothing materially better
    assert gate.status == "flagged" and gate.checks[2]["passed"]


def test_loaded_pickles_reproduce_the_reference_predictions(artifacts):
    manifest = artifacts.classifier_manifest
    preprocessor = load_pickle(artifacts.classifier_dir, "preprocessor.dill")
    forest = load_pickle(artifacts.classifier_dir, "model.dill")
    assert forest.n_estimators == manifest.training.settings["n_estimators"]
    rows = np.asarray(manifest.reference["rows"])
    # the forest as trained (n_jobs=-1) adds its trees' votes in thread order: last-bit differences
    np.testing.assert_allclose(forest.predict_proba(preprocessor.transform(rows)), manifest.reference["probabilities"],
                               rtol=0, atol=1e-12)


def test_explainer_is_pickled_fitted_and_without_predictor(artifacts):
    manifest = load_verified_manifest(artifacts.explainer_dir)
    assert {"alibi", "dill", "numpy"} <= set(manifest.checked_packages)
    assert manifest.classifier_files == artifacts.classifier_manifest.files
    explainer = load_pickle(artifacts.explainer_dir, "explainer.dill")
    assert explainer.predictor is None and explainer.samplers[0].predictor is None
    # an anchor never names a declared basis: age, an input, is held at the applicant's value
    assert explainer.feature_names == [f for f in artifacts.classifier_manifest.schema.feature_names if f != "age"]
    assert manifest.anchor_features == tuple(explainer.feature_names)
    assert explainer.meta["params"]["disc_perc"] == (25, 50, 75)


def folder_bytes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_bad_data_stops_training_and_leaves_the_artifacts_as_they_were(artifacts_copy, tmp_path):
    import yaml

    from loanxai.core.cli import main as loanxai
    from loanxai.data.description import DEFAULT_DESCRIPTION
    from tests.conftest import start_classifier

    before = folder_bytes(artifacts_copy.classifier_dir), folder_bytes(artifacts_copy.explainer_dir)
    document = yaml.safe_load(DEFAULT_DESCRIPTION.read_text())
    document["label"]["approved"] = [">60K"]  # every census ">50K" is now neither approved nor rejected
    document["source"]["path"] = str(Path(__import__("xai").__file__).parent / "data" / "census.csv")
    del document["source"]["package"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    arguments = ["--dataset", str(bad), "--artifacts", str(artifacts_copy.classifier_dir),
                 "--explainer-artifacts", str(artifacts_copy.explainer_dir)]
    assert loanxai(["train", *arguments]) == 1
    assert (folder_bytes(artifacts_copy.classifier_dir), folder_bytes(artifacts_copy.explainer_dir)) == before
    assert not list(artifacts_copy.classifier_dir.parent.glob(".*"))  # no staging folder left
    service = start_classifier(artifacts_copy.classifier_dir, tmp_path)
    try:
        service.wait_ready()
    finally:
        service.stop()


def test_interrupted_training_leaves_the_artifacts_as_they_were(artifacts_copy, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    before = folder_bytes(artifacts_copy.classifier_dir), folder_bytes(artifacts_copy.explainer_dir)
    parent = artifacts_copy.classifier_dir.parent
    # a small sample and the quick search: over in seconds, the writing begins soon
    process = subprocess.Popen([sys.executable, "-m", "loanxai", "train", "--artifacts", str(artifacts_copy.classifier_dir),
                                "--explainer-artifacts", str(artifacts_copy.explainer_dir), "--n-estimators", "3",
                                "--quick", "--no-search-cache", "--dataset", str(census_sample(tmp_path, 4000))])
    deadline = time.monotonic() + 300
    while not list(parent.glob(".loanclassifier.staged-*/model.dill")) and process.poll() is None:
        assert time.monotonic() < deadline, "the training never began writing"
        time.sleep(0.05)
    assert process.poll() is None, "the training ended before it was interrupted"
    process.send_signal(signal.SIGINT)  # Ctrl-C while the new artifacts are half written
    assert process.wait(timeout=60) != 0
    assert (folder_bytes(artifacts_copy.classifier_dir), folder_bytes(artifacts_copy.explainer_dir)) == before
    assert not list(parent.glob(".*"))


def test_too_few_rows_to_judge_any_group_stop_the_rule_before_the_search(tmp_path):
    import subprocess
    import sys

    arguments = ["--dataset", str(census_sample(tmp_path, 1500)), "--artifacts", str(tmp_path / "classifier"),
                 "--explainer-artifacts", str(tmp_path / "explainer"), "--quick", "--no-search-cache"]
    result = subprocess.run([sys.executable, "-m", "loanxai", "train", *arguments], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    error = result.stderr
    assert "census-1500: the rule cannot choose, as no screened attribute (gender, ethnicity) has two groups" in error
    assert "--candidate NAME" in error and "Traceback" not in error and "search:" not in error
    assert not (tmp_path / "classifier").exists()


def test_a_killed_swap_is_repaired_by_the_next_training(tmp_path):
    from loanxai.training.staging import staged_directories

    target = tmp_path / "artifacts"
    # what SIGKILL between the two renames of a swap leaves: the old folder aside, no target
    (tmp_path / ".artifacts.old-999999999").mkdir()
    (tmp_path / ".artifacts.old-999999999" / "model.dill").write_bytes(b"previous")
    (tmp_path / ".artifacts.staged-999999999").mkdir()
    with pytest.raises(RuntimeError):
        with staged_directories(target):
            raise RuntimeError("this training fails too")
    assert (target / "model.dill").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts"]


def test_the_incumbents_recipe_refitted_on_the_same_folds_reproduces_its_recorded_point(artifacts):
    manifest = artifacts.classifier_manifest
    result = search(load_dataset(CENSUS), seed=manifest.training.seed, requested=manifest.candidate,
                    only=[manifest.candidate], incumbent=manifest)
    points = {p["name"]: p for p in result.record(0.8)["candidates"]}
    incumbent, recorded = points[INCUMBENT], next(p for p in manifest.search["candidates"] if p["name"] == manifest.candidate)
    assert not incumbent["eligible"] and result.chosen.spec.name == manifest.candidate
    assert incumbent["metrics"] == recorded["metrics"] and incumbent["air"] == recorded["air"]
    record = result.record(0.8)
    assert record["incumbent"]["candidate"] == manifest.candidate
    # the report's and the model card's sentence: the same recipe gains nothing on itself
    [line] = [line for line in coverage_lines(record) if line.startswith("- The incumbent")]
    assert f"({manifest.candidate}, trained {manifest.created_at})" in line
    assert line.endswith("the chosen against it: ROC AUC +0.000, worst ratio +0.000.")


def test_an_incumbent_of_other_data_is_refused_before_the_search(artifacts, loanapp_artifacts):
    with pytest.raises(ArtifactError, match=r"manifest.json: the incumbent was trained on dataset 'loanapp'"):
        search(load_dataset(CENSUS), incumbent=loanapp_artifacts.classifier_manifest)
