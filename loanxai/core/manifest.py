"""Artifact manifests: what was saved, with which libraries, the checksum of each file, and
typed access to everything else they record.

A pickle only loads reliably under the library versions that wrote it. Every artifact folder
holds a manifest (:data:`~loanxai.artifacts.MANIFEST_FILE`); a service calls
:func:`load_verified_manifest` before unpickling anything and refuses to start on a changed
file or a different library version. :class:`Manifest` reads the sections by name
(``manifest.gate.status``, ``manifest.dataset.example``): no caller indexes the JSON itself.
"""
from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import dill

from loanxai.artifacts import EXPLAINER_FILE, MANIFEST_FILE, MODEL_FILE, version
from loanxai.core.schema import FeatureSchema
from loanxai.errors import ArtifactError

__all__ = ["MANIFEST_FORMAT", "SECTIONS", "DatasetRecord", "GateRecord", "Manifest", "failed_checks",
           "library_versions", "load_pickle", "load_verified_manifest", "read_manifest", "sha256_file",
           "write_manifest"]

#: bumped whenever what the manifests record changes; older artifacts are refused with "retrain"
MANIFEST_FORMAT = 4
#: what a manifest may record besides its files and versions (each a property of :class:`Manifest`)
SECTIONS = frozenset({
    # both artifacts
    "artifact", "created_at", "schema", "class_names", "dataset",
    # the classifier
    "training", "decision", "search", "held_out", "gate", "monitoring", "reference", "reasons",
    # the explainer
    "numeric_medians", "recourse", "titles", "disc_perc", "anchor_features", "classifier_files",
})


def _interval(check: Mapping[str, Any]) -> str:
    return f" [{check['low']:.2f}, {check['high']:.2f}]" if check.get("low") is not None else ""


def failed_checks(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each failed gate check in words, e.g. ``ethnicity adverse_impact_ratio = 0.432 [0.39, 0.48]
    (rule >= 0.8)``, or for the search step the alternative passed over."""
    words = []
    for c in checks:
        if c["passed"] and c.get("eligible", True):
            continue
        if c["metric"] == "model_input":
            words.append(f"{c['attribute']} is a model input (disparate treatment)")
        elif c["step"] == "search" and not c.get("eligible", True):
            words.append(f"{c['chosen']} is a reference, not a candidate (a prohibited basis is an input)")
        elif c["step"] == "search":
            words.append(f"{c['alternative']} has a worst adverse impact ratio {c['value']:.3f} higher than "
                         f"{c['chosen']} within the tolerance (rule {c['rule']})")
        else:
            words.append(f"{c['attribute']} {c['metric']} = {c['value']:.3f}{_interval(c)} (rule {c['rule']})")
    return words


@dataclass(frozen=True)
class GateRecord:
    """The fairness gate as training recorded it (:mod:`loanxai.fairness.gate`). ``passed``: the
    screen passed; ``status``: ``passed``, ``justified`` (the screen flagged, the search found no
    materially less discriminatory alternative, a business justification is recorded in
    ``override``: reason, who, when), ``flagged`` (no justification yet) or ``failed`` (a less
    discriminatory alternative was passed over)."""

    passed: bool
    status: str
    thresholds: Mapping[str, Any]
    checks: tuple[Mapping[str, Any], ...]
    override: Mapping[str, Any] | None

    @classmethod
    def from_dict(cls, content: Mapping[str, Any]) -> GateRecord:
        """Read it from its JSON form."""
        return cls(content["passed"], content["status"], content["thresholds"], tuple(content["checks"]),
                   content["override"])

    @property
    def failed_checks(self) -> list[str]:
        """Each check of the screen (step 1) that flagged, in words."""
        return failed_checks([c for c in self.checks if c["step"] == "screen"])

    @property
    def failed_search(self) -> list[str]:
        """Step 2 in words, if it failed."""
        return failed_checks([c for c in self.checks if c["step"] == "search"])

    @property
    def shippable(self) -> bool:
        """It passed, or it is justified."""
        return self.status in ("passed", "justified")


@dataclass(frozen=True)
class DatasetRecord:
    """What a classifier's manifest records of its data (see ``training.writers.dataset_record``)."""

    content: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The dataset's name."""
        return self.content["name"]

    @property
    def description(self) -> Mapping[str, Any]:
        """The description as training read it, every default filled in."""
        return self.content["description"]

    @property
    def description_path(self) -> Path:
        """Where the description was read from."""
        return Path(self.content["description_path"])

    @property
    def sources(self) -> Mapping[str, str]:
        """sha256 of each source file, by path."""
        return self.content["sources"]

    @property
    def label(self) -> Mapping[str, Any]:
        """The label's ``column`` and the values meaning ``approved`` and ``rejected``."""
        return self.content["label"]

    @property
    def protected(self) -> tuple[str, ...]:
        """Every protected attribute the description declares, in its order."""
        return tuple(p["name"] for p in self.content["protected"])

    @property
    def protected_inputs(self) -> tuple[str, ...]:
        """The protected attributes the description lets be model inputs (``model_input: true``)."""
        return tuple(p["name"] for p in self.content["protected"] if p["model_input"])

    @property
    def rows(self) -> Mapping[str, int]:
        """Training and held-out rows."""
        return self.content["rows"]

    @property
    def titles(self) -> Mapping[str, str]:
        """How sentences name each column."""
        return self.content["titles"]

    @property
    def example(self) -> dict[str, Any]:
        """The application the demo, the clients and the smoke test send."""
        return dict(self.content["example"])


@dataclass(frozen=True)
class Manifest:
    """A manifest's content, read by section; a section the artifacts lack is an
    :class:`~loanxai.errors.ArtifactError` saying to retrain."""

    content: Mapping[str, Any]
    directory: Path

    def section(self, key: str) -> Any:
        """The section ``key``; :class:`~loanxai.errors.ArtifactError` saying to retrain if the artifacts lack it."""
        if key not in self.content:
            raise ArtifactError(f"{self.directory / MANIFEST_FILE} records no {key!r}: retrain with this version")
        return self.content[key]

    @property
    def files(self) -> Mapping[str, str]:
        """sha256 of each artifact file, by name."""
        return self.content["files"]

    @property
    def versions(self) -> Mapping[str, str]:
        """Library versions when trained, and ``python``."""
        return self.content["versions"]

    @property
    def artifact(self) -> str:
        """``loanclassifier`` or ``explainer``."""
        return self.section("artifact")

    @property
    def version(self) -> str:
        """The artifact's version: its model file's (the classifier) or explainer file's."""
        return version(self.files[EXPLAINER_FILE if self.artifact == "explainer" else MODEL_FILE])

    @cached_property
    def sha256(self) -> str:
        """The sha256 of the manifest file (which holds every artifact file's): what a decision records."""
        return sha256_file(self.directory / MANIFEST_FILE)

    @property
    def created_at(self) -> str:
        """When training wrote it (UTC, ISO 8601)."""
        return self.section("created_at")

    @cached_property
    def schema(self) -> FeatureSchema:
        """The feature schema."""
        return FeatureSchema.from_dict(self.section("schema"))

    @property
    def dataset(self) -> DatasetRecord:
        """What it records of the data."""
        return DatasetRecord(self.section("dataset"))

    @property
    def metrics(self) -> Mapping[str, Any]:
        """The served model's metrics on the held-out rows, at the cutoff (:func:`loanxai.fairness.metrics.evaluate`)."""
        return self.held_out["metrics"]

    @property
    def training(self) -> Mapping[str, Any]:
        """Seed, rows and the chosen candidate's settings."""
        return self.section("training")

    @property
    def candidate(self) -> str:
        """The name of the candidate served (one of the search's)."""
        return self.training["candidate"]

    @property
    def decision(self) -> Mapping[str, Any]:
        """The decision policy (``policy``: the description's ``decision``) and the ``cutoff`` it
        set on the training rows: approved when the probability of approval is at least it."""
        return self.section("decision")

    @property
    def cutoff(self) -> float:
        """The probability of approval at or above which an application is approved."""
        return float(self.decision["cutoff"])

    @property
    def search(self) -> Mapping[str, Any]:
        """The search for a less discriminatory alternative: the rule, every candidate's
        cross-validated point, the choice (:mod:`loanxai.fairness.search`)."""
        return self.section("search")

    @property
    def held_out(self) -> Mapping[str, Any]:
        """The chosen model on the held-out rows at the cutoff: metrics and adverse impact ratios."""
        return self.section("held_out")

    @property
    def reasons(self) -> Mapping[str, Any]:
        """The reference of approved applicants the principal reasons are measured against."""
        return self.section("reasons")

    @property
    def gate(self) -> GateRecord:
        """The fairness gate's record."""
        return GateRecord.from_dict(self.section("gate"))

    @property
    def monitoring(self) -> Mapping[str, Any]:
        """Bins, training shares and held-out outcomes, for the live metrics."""
        return self.section("monitoring")

    @property
    def reference(self) -> Mapping[str, Any]:
        """Held-out rows and their probabilities: a loaded model must reproduce them."""
        return self.section("reference")

    @property
    def numeric_medians(self) -> Mapping[str, float]:
        """The median imputed for each numeric feature."""
        return self.section("numeric_medians")

    @property
    def recourse(self) -> Mapping[str, Any]:
        """What a recourse may change."""
        return self.section("recourse")

    @property
    def titles(self) -> Mapping[str, str]:
        """How sentences name each feature."""
        return self.section("titles")

    @property
    def anchor_features(self) -> tuple[str, ...]:
        """The features an anchor may name: the model inputs that are no declared basis."""
        return tuple(self.section("anchor_features"))

    @property
    def disc_perc(self) -> tuple[int, ...]:
        """The percentiles binning the numeric features for anchors."""
        return tuple(self.section("disc_perc"))

    @property
    def model_sha256(self) -> str:
        """The sha256 of the classifier's forest: the one this classifier holds, or the one the
        explainer was fitted with."""
        files = self.section("classifier_files") if self.artifact == "explainer" else self.files
        return files[MODEL_FILE]


def library_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed version of each package, plus ``python``."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def sha256_file(path: Path) -> str:
    """The sha256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, files: Sequence[str], packages: Sequence[str], **sections: Any) -> Manifest:
    """Write the manifest of the artifact folder ``directory`` and return it.

    Parameters
    ----------
    files : names of the artifact files in ``directory`` to checksum.
    packages : packages whose versions must match when the artifacts are loaded.
    sections : the rest, each one of :data:`SECTIONS`, JSON-serialisable.
    """
    unknown = sorted(set(sections) - SECTIONS)
    if unknown:
        raise ValueError(f"unknown manifest section(s) {', '.join(unknown)}: add them to SECTIONS and to Manifest")
    content = {
        "format": MANIFEST_FORMAT,
        "files": {name: sha256_file(directory / name) for name in files},
        "versions": library_versions(packages),
        "checked_packages": list(packages),
        **sections,
    }
    (directory / MANIFEST_FILE).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    return Manifest(content, directory)


def load_pickle(directory: Path, name: str) -> Any:
    """Unpickle the artifact ``directory/name`` with dill, checking the bytes it unpickles
    against the sha256 its folder's manifest records (the file is read once: what is hashed is
    what is loaded, in every process that loads it)."""
    content = (directory / name).read_bytes()
    expected = json.loads((directory / MANIFEST_FILE).read_text())["files"].get(name)
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise ArtifactError(f"checksum mismatch for {directory / name}: manifest has sha256 {expected}, file has {actual}")
    return dill.loads(content)


def read_manifest(directory: Path) -> Manifest:
    """The manifest of ``directory``, of this format, without checking the files against it."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"no {MANIFEST_FILE} in {directory}: run `make train` first")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path} is not valid JSON: {error}") from None
    if content.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{path} was written by another version of loanxai (manifest format "
                            f"{content.get('format', 1)}, this version reads {MANIFEST_FORMAT}): run `make train`")
    return Manifest(content, directory)


def load_verified_manifest(directory: Path) -> Manifest:
    """The manifest of ``directory``, with the artifacts checked against it.

    Raises :class:`~loanxai.errors.ArtifactError` if the manifest or a file is missing, a
    file's sha256 differs, or an installed version of a checked package differs from the
    recorded one.
    """
    manifest = read_manifest(directory)
    for name, expected in manifest.files.items():
        file = directory / name
        if not file.is_file():
            raise ArtifactError(f"artifact {file} listed in the manifest is missing")
        actual = sha256_file(file)
        if actual != expected:
            raise ArtifactError(
                f"checksum mismatch for {file}: manifest has sha256 {expected}, file has {actual}"
            )
    checked = manifest.content["checked_packages"]
    installed = library_versions(checked)
    mismatched = [
        f"{package} {manifest.versions[package]} when trained, "
        f"{'not installed' if installed[package] == 'not installed' else installed[package] + ' installed'}"
        for package in checked
        if manifest.versions[package] != installed[package]
    ]
    if mismatched:
        raise ArtifactError(
            f"artifacts in {directory} were written with other library versions: "
            + "; ".join(mismatched)
            + ". Install the versions the manifest records or retrain."
        )
    return manifest
