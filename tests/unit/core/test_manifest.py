import json
import shutil

import pytest

from loanxai.artifacts import EXPLAINER_FILE, MANIFEST_FILE, MODEL_FILE
from loanxai.core.manifest import (
    ClassifierManifest,
    ExplainerManifest,
    GateRecord,
    load_verified_manifest,
    read_manifest,
    write_manifest,
)
from loanxai.errors import ArtifactError

#: an explainer's sections, the smaller of the two artifacts' (the classifier's are checked on the real training)
SECTIONS = {"created_at": "today", "schema": {"feature_names": ["age"], "category_map": {}},
            "class_names": ["rejected", "approved"], "dataset": {"name": "census"}, "numeric_medians": {"age": 37.0},
            "recourse": {}, "titles": {"age": "age"}, "disc_perc": [25, 50, 75], "anchor_features": ["age"],
            "classifier_files": {MODEL_FILE: "0" * 64}}


@pytest.fixture
def folder(tmp_path):
    (tmp_path / EXPLAINER_FILE).write_bytes(b"explainer bytes")
    write_manifest(tmp_path, [EXPLAINER_FILE], ["numpy", "dill"], "explainer", **SECTIONS)
    return tmp_path


def _rewrite(folder, change):
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    change(manifest)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_manifest_records_checksums_and_versions(folder):
    manifest = load_verified_manifest(folder)
    assert isinstance(manifest, ExplainerManifest)
    assert set(manifest.versions) == {"python", "numpy", "dill"}
    assert len(manifest.files[EXPLAINER_FILE]) == 64
    assert manifest.created_at == "today"
    assert manifest.version == manifest.files[EXPLAINER_FILE][:12]
    # read into declared types, once
    assert manifest.disc_perc == (25, 50, 75) and manifest.schema.feature_names == ("age",)
    assert manifest.dataset.name == "census" and manifest.model_sha256 == "0" * 64


def test_sections_are_declared_once_and_a_missing_one_says_retrain(folder):
    with pytest.raises(ValueError, match="unknown: note, missing: none .declare them in ExplainerManifest"):
        write_manifest(folder, [EXPLAINER_FILE], ["dill"], "explainer", note="x", **SECTIONS)
    without_titles = {key: value for key, value in SECTIONS.items() if key != "titles"}
    with pytest.raises(ValueError, match="unknown: format, missing: titles"):  # nor may a section stand for a computed one
        write_manifest(folder, [EXPLAINER_FILE], ["dill"], "explainer", format=3, **without_titles)
    with pytest.raises(ValueError, match="no manifest type for the artifact 'forest'"):
        write_manifest(folder, [EXPLAINER_FILE], ["dill"], "forest", **SECTIONS)
    _rewrite(folder, lambda m: m.pop("recourse"))
    with pytest.raises(ArtifactError, match=r"manifest.json records no 'recourse': retrain"):
        read_manifest(folder)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(dataset={}), r"manifest.json 'dataset' records no 'name': retrain"),
    (lambda m: m.update(disc_perc=5), r"manifest.json: its 'disc_perc' cannot be read .*: retrain"),
    (lambda m: m.update(schema={"category_map": {}}), r"its 'schema' cannot be read .*feature_names"),
    (lambda m: m.update(artifact="forest"), r"manifest of no artifact this version knows \(loanclassifier, explainer\)"),
])
def test_a_section_that_cannot_be_read_is_refused_at_load_naming_it(folder, change, message):
    _rewrite(folder, change)
    with pytest.raises(ArtifactError, match=message):
        read_manifest(folder)


def test_the_gate_record_words_its_failed_checks_by_step():
    gate = GateRecord.from_dict({"passed": False, "status": "failed", "thresholds": {}, "override": None, "checks": [
        {"step": "screen", "attribute": "gender", "metric": "adverse_impact_ratio", "value": 0.41234, "low": 0.391,
         "high": 0.4349, "rule": ">= 0.8", "passed": False},
        {"step": "screen", "attribute": "race", "metric": "model_input", "value": 1.0, "rule": "", "passed": False},
        {"step": "screen", "attribute": "age", "metric": "adverse_impact_ratio", "value": 0.9, "rule": ">= 0.8",
         "passed": True},
        {"step": "search", "attribute": "all screened", "metric": "less_discriminatory_alternative", "value": 0.05,
         "rule": "<= 0.02", "passed": False, "alternative": "b", "chosen": "a", "eligible": True}]})
    assert gate.failed_checks == ["gender adverse_impact_ratio = 0.412 [0.39, 0.43] (rule >= 0.8)",
                                  "race is a model input (disparate treatment)"]
    assert gate.failed_search == ["b has a worst adverse impact ratio 0.050 higher than a within the tolerance "
                                  "(rule <= 0.02)"]
    assert not gate.shippable
    assert GateRecord.from_dict({**gate.__dict__, "status": "justified", "checks": []}).shippable


def test_a_folder_of_the_other_artifact_is_refused_naming_both(folder):
    assert isinstance(read_manifest(folder, ExplainerManifest), ExplainerManifest)
    with pytest.raises(ArtifactError, match=r"holds the explainer's artifacts, not the loanclassifier's"):
        load_verified_manifest(folder, ClassifierManifest)


def test_tampered_file_is_refused(folder):
    (folder / EXPLAINER_FILE).write_bytes(b"explainer bytez")
    with pytest.raises(ArtifactError, match=f"checksum mismatch for .*{EXPLAINER_FILE}"):
        load_verified_manifest(folder)


def test_missing_file_and_missing_manifest_are_refused(folder):
    (folder / EXPLAINER_FILE).unlink()
    with pytest.raises(ArtifactError, match=f"{EXPLAINER_FILE} listed in the manifest is missing"):
        load_verified_manifest(folder)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(ArtifactError, match="run `make train` first"):
        load_verified_manifest(folder)


def test_version_mismatch_names_the_package(folder):
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["versions"]["dill"] = "0.0.1"
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"dill 0.0.1 when trained, \S+ installed"):
        load_verified_manifest(folder)


def test_artifacts_of_another_format_are_refused(folder):
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    del manifest["format"]
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"manifest format 1, this version reads \d+\): run `make train`"):
        load_verified_manifest(folder)


def test_load_pickle_checks_the_bytes_it_loads(folder):
    import dill

    from loanxai.core.manifest import load_pickle

    (folder / "model.dill").write_bytes(dill.dumps({"a": 1}))
    with pytest.raises(ArtifactError, match="checksum mismatch for .*model.dill"):
        load_pickle(folder, "model.dill")  # changed after the manifest was written
    write_manifest(folder, ["model.dill"], ["dill"], "explainer", **SECTIONS)
    assert load_pickle(folder, "model.dill") == {"a": 1}


def test_the_screened_attributes_are_the_description_s_else_every_declared_one(artifacts, tmp_path):
    manifest = artifacts.classifier_manifest
    assert manifest.screened == ("gender", "ethnicity")  # the census's gate.screen
    shutil.copytree(artifacts.classifier_dir, tmp_path / "classifier")
    _rewrite(tmp_path / "classifier", lambda m: m["gate"]["thresholds"].update(screen=None))
    unscreened = read_manifest(tmp_path / "classifier", ClassifierManifest)
    assert unscreened.screened == manifest.dataset.protected and len(unscreened.screened) > 2
