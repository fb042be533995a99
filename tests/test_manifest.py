import json

import pytest

from loanxai.manifest import MANIFEST_NAME, ArtifactError, load_verified_manifest, write_manifest


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "model.dill").write_bytes(b"model bytes")
    write_manifest(tmp_path, ["model.dill"], ["numpy", "dill"], note="x")
    return tmp_path


def test_manifest_records_checksums_and_versions(folder):
    manifest = load_verified_manifest(folder)
    assert set(manifest["versions"]) == {"python", "numpy", "dill"}
    assert len(manifest["files"]["model.dill"]) == 64
    assert manifest["note"] == "x"


def test_tampered_file_is_refused(folder):
    (folder / "model.dill").write_bytes(b"model bytez")
    with pytest.raises(ArtifactError, match="checksum mismatch for .*model.dill"):
        load_verified_manifest(folder)


def test_missing_file_and_missing_manifest_are_refused(folder):
    (folder / "model.dill").unlink()
    with pytest.raises(ArtifactError, match="model.dill listed in the manifest is missing"):
        load_verified_manifest(folder)
    (folder / MANIFEST_NAME).unlink()
    with pytest.raises(ArtifactError, match="run `make train` first"):
        load_verified_manifest(folder)


def test_version_mismatch_names_the_package(folder):
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["versions"]["dill"] = "0.0.1"
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"dill 0.0.1 when trained, \S+ installed"):
        load_verified_manifest(folder)


def test_artifacts_of_another_format_are_refused(folder):
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    del manifest["format"]
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"manifest format 1, this version reads \d+\): run `make train`"):
        load_verified_manifest(folder)


def test_load_pickle_checks_the_bytes_it_loads(folder):
    import dill

    from loanxai.manifest import load_pickle

    (folder / "model.dill").write_bytes(dill.dumps({"a": 1}))
    with pytest.raises(ArtifactError, match="checksum mismatch for .*model.dill"):
        load_pickle(folder, "model.dill")  # changed after the manifest was written
    write_manifest(folder, ["model.dill"], ["dill"])
    assert load_pickle(folder, "model.dill") == {"a": 1}
