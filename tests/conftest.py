"""Shared fixtures: artifacts trained once per run, and the real services started on loopback."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from loanxai.artifacts import CLASSIFIER_DIR, COMPILED_FILE, DATASETS_DIR, EXPLAINER_DIR
from loanxai.core.manifest import MANIFEST_FILE, ClassifierManifest, ExplainerManifest, read_manifest, sha256_file
from loanxai.data.dataset import load_dataset
from loanxai.data.description import CATEGORICAL, DEFAULT_DESCRIPTION, load_description
from loanxai.errors import ArtifactError
from loanxai.monitoring.counters import FLUSH_SECONDS
from loanxai.ops.postgres import LocalPostgres
from loanxai.ops.services import Service, classifier_service, explainer_service, free_port
from loanxai.ops.tokens import make_keys, make_sampling_key
from loanxai.training.staging import staged_directories
from loanxai.training.train import train
from loanxai.training.writers import compile_model

# What the tests start without a record of their own records in a folder of this run's, never
# in the checkout's records/ (a test that looks at the record gives its service its own file)
os.environ.setdefault("LOAN_RECORDS_URL", f"sqlite:///{tempfile.mkdtemp(prefix='loanxai-test-records-')}/decisions.sqlite")
# and share one sampling key (the explainer's requests for sampled rows carry it; no test's caller does)
os.environ.setdefault("LOAN_SAMPLING_KEY_FILE",
                      str(make_sampling_key(Path(tempfile.mkdtemp(prefix="loanxai-test-keys-")) / "sampling-key")))

#: The census, the default dataset: the tests that call the services use its names.
CENSUS = load_description(DEFAULT_DESCRIPTION)
FEATURE_NAMES = CENSUS.feature_names
CATEGORICAL_FEATURES = tuple(c.name for c in CENSUS.features if c.kind == CATEGORICAL)
EXAMPLE_APPLICATION = dict(CENSUS.example)
#: The example with the occupation and hours of a clear rejection (the example itself is approved at the cutoff).
REJECTED_APPLICATION = EXAMPLE_APPLICATION | {"occupation": "Sales", "hours-per-week": 40}
#: The seed project's 12 model inputs (prohibited bases included): what the schema unit tests encode.
SEED_FEATURES = ("age", "workclass", "education", "education-num", "marital-status", "occupation", "relationship",
                 "ethnicity", "gender", "capital-gain", "capital-loss", "hours-per-week")
SEED_CATEGORICAL = ("workclass", "education", "marital-status", "occupation", "relationship", "ethnicity", "gender")


@dataclass
class Artifacts:
    classifier_dir: Path
    explainer_dir: Path
    classifier_manifest: ClassifierManifest
    explainer_manifest: ExplainerManifest


@pytest.fixture(scope="session")
def census():
    """The census, read, cleaned and split as training does."""
    return load_dataset(CENSUS)


def census_sample(folder: Path, rows: int) -> Path:
    """A description of the census's first ``rows`` rows (a CSV of them in ``folder``): the
    default dataset, small enough for a whole search in a test."""
    source = CENSUS.source.read_text().splitlines()
    (folder / "census-sample.csv").write_text("\n".join(source[:rows + 1]) + "\n")
    document = yaml.safe_load(DEFAULT_DESCRIPTION.read_text())
    document["source"] = {"path": "census-sample.csv"}
    document["name"] = f"census-{rows}"
    path = folder / "census-sample.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Artifacts:
    """Both artifacts, trained once with the real settings (50 trees, full census data)."""
    root = tmp_path_factory.mktemp("artifacts")
    classifier_manifest, explainer_manifest = train(root / "loanclassifier", root / "explainer")
    _fill_checkout(root / "loanclassifier", root / "explainer")
    return Artifacts(root / "loanclassifier", root / "explainer", classifier_manifest, explainer_manifest)


def _fill_checkout(classifier_dir: Path, explainer_dir: Path) -> None:
    """Give a checkout with no artifacts these (what `make train` writes: the same default
    training), so the tests that run the checkout's (the demo, the benchmark, the images) do
    not train the census a second time; artifacts already there, whatever their options, stay."""
    try:
        for directory in (CLASSIFIER_DIR, EXPLAINER_DIR):
            read_manifest(directory)
        return
    except ArtifactError:
        pass
    with staged_directories(CLASSIFIER_DIR, EXPLAINER_DIR) as (classifier_stage, explainer_stage):
        shutil.copytree(classifier_dir, classifier_stage, dirs_exist_ok=True)
        shutil.copytree(explainer_dir, explainer_stage, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def loanapp_artifacts(tmp_path_factory) -> Artifacts:
    """Both artifacts of the second dataset (Boston mortgage applications), from a quick search
    (``--quick``: 94 s here, the whole search 343 s); the screen flags its model (race) either way."""
    root = tmp_path_factory.mktemp("loanapp")
    classifier_manifest, explainer_manifest = train(root / "loanclassifier", root / "explainer", DATASETS_DIR / "loanapp.yaml",
                                                    quick=True)
    return Artifacts(root / "loanclassifier", root / "explainer", classifier_manifest, explainer_manifest)


@pytest.fixture
def artifacts_copy(artifacts, tmp_path) -> Artifacts:
    """A private copy of the artifacts that a test may tamper with."""
    classifier_dir = shutil.copytree(artifacts.classifier_dir, tmp_path / "loanclassifier")
    explainer_dir = shutil.copytree(artifacts.explainer_dir, tmp_path / "explainer")
    return Artifacts(classifier_dir, explainer_dir, artifacts.classifier_manifest, artifacts.explainer_manifest)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``check()`` until it is true or ``timeout`` passes; return its last answer. Metrics
    are counted by each process's flush thread, within a second of the answer."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def replace_compiled(classifier_dir: Path, other: Any) -> None:
    """Put another fitted model in ``classifier_dir``'s compiled file, its checksum in the manifest:
    a compiled model that is not the pipeline's, which only the start-up parity check can catch."""
    compile_model(other, classifier_dir / COMPILED_FILE)
    manifest = json.loads((classifier_dir / MANIFEST_FILE).read_text())
    manifest["files"][COMPILED_FILE] = sha256_file(classifier_dir / COMPILED_FILE)
    (classifier_dir / MANIFEST_FILE).write_text(json.dumps(manifest))


def service_metadata(service: Service) -> dict[str, Any]:
    """The custom part of a service's Seldon metadata."""
    return requests.get(f"{service.url}/api/v1.0/metadata", timeout=10).json()["custom"]


def settle() -> None:
    """Wait until what the services answered so far has been counted in their metrics."""
    time.sleep(2 * FLUSH_SECONDS)


def start_classifier(artifacts_dir: Path, log_dir: Path, http_port: int | None = None, **env: str) -> Service:
    records = {"LOAN_RECORDS_URL": f"sqlite:///{log_dir}/decisions.sqlite"}
    service = classifier_service(http_port or free_port(), free_port(),
                                 {"LOAN_ARTIFACTS_DIR": str(artifacts_dir), **records, **env})
    service.start(log_dir / "classifier.log")
    return service


def start_explainer(artifacts_dir: Path, classifier_url: str, log_dir: Path, **env: str) -> Service:
    service = explainer_service(classifier_url, free_port(), free_port(), {"LOAN_ARTIFACTS_DIR": str(artifacts_dir), **env})
    service.start(log_dir / "explainer.log")
    return service


@contextmanager
def running(*services: Service) -> Iterator[tuple[Service, ...]]:
    """Wait until each started service is ready, in order; stop them all, the last first, when done."""
    try:
        for service in services:
            service.wait_ready()
        yield services
    finally:
        for service in reversed(services):
            service.stop()


@pytest.fixture(scope="session")
def classifier(artifacts, tmp_path_factory) -> Iterator[Service]:
    """The classifier service, running for the whole test session."""
    service = start_classifier(artifacts.classifier_dir, tmp_path_factory.mktemp("classifier-logs"), LOAN_MAX_BATCH_ROWS="100")
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def explainer(artifacts, classifier, tmp_path_factory) -> Iterator[Service]:
    """The explainer service, calling the session's classifier and recording on its record."""
    service = start_explainer(artifacts.explainer_dir, classifier.predictions_url, tmp_path_factory.mktemp("explainer-logs"),
                              LOAN_RECORDS_URL=classifier.env["LOAN_RECORDS_URL"])
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    """A signing key and its JWKS, made here (``loanxai.ops.tokens``), for the tokens of a module's tests."""
    folder = tmp_path_factory.mktemp("keys")
    make_keys(folder)
    return folder


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    """A new, empty record's database of each kind: a SQLite file, a database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/decisions.sqlite"
    return request.getfixturevalue("postgres").create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server on loopback for the whole session (Debian's postgresql; .ci/run installs it),
    in a folder under /tmp its user can reach."""
    folder = Path(tempfile.mkdtemp(prefix="loanxai-postgres-"))
    server = LocalPostgres(folder, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
