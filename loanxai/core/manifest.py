"""Artifact manifests: what was saved, with which libraries, the checksum of each file, and
everything else training recorded, as declared types.

A pickle only loads reliably under the library versions that wrote it. Every artifact folder
holds a manifest (:data:`~loanxai.artifacts.MANIFEST_FILE`); a service calls
:func:`load_verified_manifest` before unpickling anything and refuses to start on a changed
file or a different library version. :func:`read_manifest` reads a manifest whole, once, into
a :class:`ClassifierManifest` or an :class:`ExplainerManifest` (``manifest.gate.status``,
``manifest.dataset.example``): a section missing or unreadable is refused there, with the
file and the section named, and no caller indexes the JSON itself.
"""
from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import dill

from loanxai.artifacts import EXPLAINER_FILE, MANIFEST_FILE, MODEL_FILE, version
from loanxai.core.schema import FeatureSchema
from loanxai.errors import ArtifactError

__all__ = ["MANIFESTS", "MANIFEST_FORMAT", "ClassifierManifest", "DatasetName", "DatasetRecord", "DecisionRecord",
           "ExplainerManifest", "GateRecord", "Manifest", "TrainingRecord", "failed_checks", "library_versions",
           "load_pickle", "load_verified_manifest", "read_manifest", "sha256_file", "write_manifest"]

#: bumped whenever what the manifests record changes; older artifacts are refused with "retrain"
MANIFEST_FORMAT = 4
_Record = TypeVar("_Record")
_Kind = TypeVar("_Kind", bound="Manifest")


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


def _read(record: type[_Record], content: Any, where: str, **given: Any) -> _Record:
    """``record`` (a dataclass) from its JSON form ``content`` (the fields in ``given`` as
    given): each field's value read by the ``read`` of its metadata (as is without one); a
    missing field or one that cannot be read is an :class:`~loanxai.errors.ArtifactError`
    naming it and saying to retrain."""
    if not isinstance(content, Mapping):
        raise ArtifactError(f"{where} is not an object: retrain with this version")
    values = dict(given)
    for declared in fields(record):  # type: ignore[arg-type]
        if declared.name in given:
            continue
        key = declared.metadata.get("key", declared.name)
        if key not in content:
            raise ArtifactError(f"{where} records no {key!r}: retrain with this version")
        read = declared.metadata.get("read")
        try:
            values[declared.name] = read(content[key], f"{where} {key!r}") if read else content[key]
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactError(f"{where}: its {key!r} cannot be read ({error!r}): retrain with this version") from None
    return record(**values)


def _as(convert: Callable[[Any], Any]) -> dict[str, Any]:
    """A field's metadata reading its JSON value with ``convert``."""
    return {"read": lambda value, _where: convert(value)}


def _nested(record: type) -> dict[str, Any]:
    """A field's metadata reading its JSON value as the dataclass ``record``."""
    return {"read": lambda value, where: _read(record, value, where)}


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
    checks: tuple[Mapping[str, Any], ...] = field(metadata=_as(tuple))
    override: Mapping[str, Any] | None

    @classmethod
    def from_dict(cls, content: Mapping[str, Any]) -> GateRecord:
        """Read it from its JSON form."""
        return _read(cls, content, "the gate record")

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
    """What a classifier's manifest records of its data (see ``training.writers.dataset_record``):
    its ``name``, the ``description`` as training read it (every default filled in) and where it
    was read from, the sha256 of each ``sources`` file by path, the ``label``'s column and values
    meaning approved and rejected, each ``protected_attributes`` entry as declared, training and
    held-out ``rows``, how sentences name each column (``titles``) and the ``example``
    application the demo, the clients and the smoke test send."""

    name: str
    description: Mapping[str, Any]
    description_path: Path = field(metadata=_as(Path))
    sources: Mapping[str, str]
    label: Mapping[str, Any]
    protected_attributes: tuple[Mapping[str, Any], ...] = field(metadata={**_as(tuple), "key": "protected"})
    rows: Mapping[str, int]
    titles: Mapping[str, str]
    example: Mapping[str, Any]

    @property
    def protected(self) -> tuple[str, ...]:
        """Every protected attribute the description declares, in its order."""
        return tuple(p["name"] for p in self.protected_attributes)

    @property
    def protected_inputs(self) -> tuple[str, ...]:
        """The protected attributes the description lets be model inputs (``model_input: true``)."""
        return tuple(p["name"] for p in self.protected_attributes if p["model_input"])


@dataclass(frozen=True)
class TrainingRecord:
    """How the served model was trained: the ``seed``, the ``candidate`` chosen (one of the
    search's), its ``settings``, and the training and held-out row counts."""

    seed: int
    candidate: str
    settings: Mapping[str, Any]
    n_train: int
    n_test: int


@dataclass(frozen=True)
class DecisionRecord:
    """The decision policy (``policy``: the description's ``decision``), the ``cutoff`` it set on
    the training rows, and the ``rule`` in words: approved when the probability of approval is at
    least the cutoff."""

    policy: Mapping[str, Any]
    cutoff: float = field(metadata=_as(float))
    rule: str


@dataclass(frozen=True)
class DatasetName:
    """The dataset an explainer was fitted on, by name."""

    name: str


@dataclass(frozen=True)
class Manifest:
    """What both artifacts' manifests record: the sha256 of each file by name, the library
    ``versions`` when trained (and ``python``), the ``checked_packages`` whose versions must match
    at load, when it was ``created_at`` (UTC, ISO 8601), the feature ``schema`` and the
    ``class_names``. Read and checked whole by :func:`read_manifest`, as
    :class:`ClassifierManifest` or :class:`ExplainerManifest`."""

    #: ``loanclassifier`` or ``explainer``: which artifact a manifest is of
    ARTIFACT: ClassVar[str]
    directory: Path
    format: int
    files: Mapping[str, str]
    versions: Mapping[str, str]
    checked_packages: tuple[str, ...] = field(metadata=_as(tuple))
    created_at: str
    schema: FeatureSchema = field(metadata=_as(FeatureSchema.from_dict))
    class_names: tuple[str, ...] = field(metadata=_as(tuple))

    @property
    def version(self) -> str:
        """The artifact's version: its model file's (the classifier) or explainer file's."""
        return version(self.files[MODEL_FILE])

    @property
    def path(self) -> Path:
        """The manifest's file."""
        return self.directory / MANIFEST_FILE

    @cached_property
    def sha256(self) -> str:
        """The sha256 of the manifest file (which holds every artifact file's): what a decision records."""
        return sha256_file(self.path)


@dataclass(frozen=True)
class ClassifierManifest(Manifest):
    """The classifier's manifest: besides :class:`Manifest`, its ``dataset``, ``training``,
    ``decision``, the ``search`` for a less discriminatory alternative (the rule, every
    candidate's cross-validated point, the choice: :mod:`loanxai.fairness.search`), the chosen
    model ``held_out`` (metrics and adverse impact ratios at the cutoff), the fairness ``gate``,
    the ``monitoring`` bins, training shares and held-out outcomes the live metrics are read
    against, the ``reference`` held-out rows and probabilities a loaded model must reproduce,
    and the approved applicants its principal ``reasons`` are measured against."""

    ARTIFACT = "loanclassifier"
    dataset: DatasetRecord = field(metadata=_nested(DatasetRecord))
    training: TrainingRecord = field(metadata=_nested(TrainingRecord))
    decision: DecisionRecord = field(metadata=_nested(DecisionRecord))
    search: Mapping[str, Any]
    held_out: Mapping[str, Any]
    gate: GateRecord = field(metadata=_nested(GateRecord))
    monitoring: Mapping[str, Any]
    reference: Mapping[str, Any]
    reasons: Mapping[str, Any]

    @property
    def metrics(self) -> Mapping[str, Any]:
        """The served model's metrics on the held-out rows, at the cutoff (:func:`loanxai.fairness.metrics.evaluate`)."""
        return self.held_out["metrics"]

    @property
    def candidate(self) -> str:
        """The name of the candidate served (one of the search's)."""
        return self.training.candidate

    @property
    def cutoff(self) -> float:
        """The probability of approval at or above which an application is approved."""
        return self.decision.cutoff

    @property
    def screened(self) -> tuple[str, ...]:
        """The protected attributes the gate's screen judges: the description's ``gate.screen``,
        else every one it declares."""
        screen = self.gate.thresholds["screen"]
        return self.dataset.protected if screen is None else tuple(screen)

    @property
    def model_sha256(self) -> str:
        """The sha256 of the forest this classifier holds."""
        return self.files[MODEL_FILE]


@dataclass(frozen=True)
class ExplainerManifest(Manifest):
    """The explainer's manifest: besides :class:`Manifest`, the ``dataset`` it was fitted on, the
    median imputed for each numeric feature, what a ``recourse`` may change, how sentences name
    each feature (``titles``), the percentiles binning the numeric features for anchors
    (``disc_perc``), the features an anchor may name (the model inputs that are no declared
    basis) and the ``classifier_files`` of the classifier it was fitted with."""

    ARTIFACT = "explainer"
    dataset: DatasetName = field(metadata=_nested(DatasetName))
    numeric_medians: Mapping[str, float]
    recourse: Mapping[str, Any]
    titles: Mapping[str, str]
    disc_perc: tuple[int, ...] = field(metadata=_as(tuple))
    anchor_features: tuple[str, ...] = field(metadata=_as(tuple))
    classifier_files: Mapping[str, str]

    @property
    def version(self) -> str:
        """The explainer's version: its file's."""
        return version(self.files[EXPLAINER_FILE])

    @property
    def model_sha256(self) -> str:
        """The sha256 of the forest the explainer was fitted with."""
        return self.classifier_files[MODEL_FILE]


#: each artifact's manifest type, by its ``artifact``
MANIFESTS: dict[str, type[Manifest]] = {kind.ARTIFACT: kind for kind in (ClassifierManifest, ExplainerManifest)}


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


def write_manifest(directory: Path, files: Sequence[str], packages: Sequence[str], artifact: str,
                   **sections: Any) -> Manifest:
    """Write the manifest of the artifact folder ``directory`` and return it, as read back.

    Parameters
    ----------
    files : names of the artifact files in ``directory`` to checksum.
    packages : packages whose versions must match when the artifacts are loaded.
    artifact : which artifact it is, a key of :data:`MANIFESTS`.
    sections : the rest, each a field of that artifact's manifest type, JSON-serialisable.
    """
    if artifact not in MANIFESTS:
        raise ValueError(f"no manifest type for the artifact {artifact!r}: one of {', '.join(MANIFESTS)}")
    kind = MANIFESTS[artifact]
    computed = {f.name for f in fields(Manifest)} - {"created_at", "schema", "class_names"}
    declared = {f.metadata.get("key", f.name) for f in fields(kind)} - computed
    if set(sections) ^ declared:
        raise ValueError(f"the {artifact}'s manifest needs the sections {', '.join(sorted(declared))}; "
                         f"unknown: {', '.join(sorted(set(sections) - declared)) or 'none'}, "
                         f"missing: {', '.join(sorted(declared - set(sections))) or 'none'} (declare them in {kind.__name__})")
    content = {
        "format": MANIFEST_FORMAT,
        "files": {name: sha256_file(directory / name) for name in files},
        "versions": library_versions(packages),
        "checked_packages": list(packages),
        "artifact": artifact,
        **sections,
    }
    text = json.dumps(content, indent=2, sort_keys=True) + "\n"
    # read back from its JSON, as every later reader reads it
    manifest = _manifest(json.loads(text), directory / MANIFEST_FILE)
    manifest.path.write_text(text)
    return manifest


def _manifest(content: Any, path: Path) -> Manifest:
    """The manifest at ``path`` from its JSON form, of its artifact's type."""
    artifact = content.get("artifact") if isinstance(content, Mapping) else None
    kind = MANIFESTS.get(artifact) if isinstance(artifact, str) else None
    if kind is None:
        raise ArtifactError(f"{path} is the manifest of no artifact this version knows "
                            f"({', '.join(MANIFESTS)}): retrain with this version")
    return _read(kind, content, str(path), directory=path.parent)


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


def read_manifest(directory: Path, kind: type[_Kind] = Manifest) -> _Kind:  # type: ignore[assignment]
    """The manifest of ``directory``, of this format and of the artifact ``kind`` (any by
    default), without checking the files against it."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"no {MANIFEST_FILE} in {directory}: run `make train` first")
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path} is not valid JSON: {error}") from None
    written = content.get("format", 1) if isinstance(content, dict) else None
    if written != MANIFEST_FORMAT:
        raise ArtifactError(f"{path} was written by another version of loanxai (manifest format "
                            f"{written}, this version reads {MANIFEST_FORMAT}): run `make train`")
    manifest = _manifest(content, path)
    if not isinstance(manifest, kind):
        raise ArtifactError(f"{directory} holds the {manifest.ARTIFACT}'s artifacts, not the {kind.ARTIFACT}'s")
    return manifest


def load_verified_manifest(directory: Path, kind: type[_Kind] = Manifest) -> _Kind:  # type: ignore[assignment]
    """The manifest of ``directory`` (of the artifact ``kind``, any by default), with the
    artifacts checked against it.

    Raises :class:`~loanxai.errors.ArtifactError` if the manifest or a file is missing, a
    file's sha256 differs, or an installed version of a checked package differs from the
    recorded one.
    """
    manifest = read_manifest(directory, kind)
    for name, expected in manifest.files.items():
        file = directory / name
        if not file.is_file():
            raise ArtifactError(f"artifact {file} listed in the manifest is missing")
        actual = sha256_file(file)
        if actual != expected:
            raise ArtifactError(
                f"checksum mismatch for {file}: manifest has sha256 {expected}, file has {actual}"
            )
    checked = manifest.checked_packages
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
