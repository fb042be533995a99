"""Artifact manifests: what was saved, with which libraries, and the checksum of each file.

A pickle only loads reliably under the library versions that wrote it. Every artifact folder
holds a ``manifest.json``; a service calls :func:`load_verified_manifest` before unpickling
anything and refuses to start on a changed file or a different library version.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import dill

MANIFEST_NAME = "manifest.json"
#: bumped whenever what the manifests record changes; older artifacts are refused with "retrain"
MANIFEST_FORMAT = 3


class ArtifactError(RuntimeError):
    """The artifacts cannot be trusted: missing, changed, or written by other library versions."""


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
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(
    directory: Path, files: Sequence[str], packages: Sequence[str], **content: Any
) -> dict[str, Any]:
    """Write ``manifest.json`` in ``directory`` and return it.

    Parameters
    ----------
    files : names of the artifact files in ``directory`` to checksum.
    packages : packages whose versions must match when the artifacts are loaded.
    content : anything else to record (schema, metrics, ...), JSON-serialisable.
    """
    manifest = {
        "format": MANIFEST_FORMAT,
        "files": {name: sha256_file(directory / name) for name in files},
        "versions": library_versions(packages),
        "checked_packages": list(packages),
        **content,
    }
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def load_pickle(directory: Path, name: str) -> Any:
    """Unpickle the artifact ``directory/name`` with dill, checking the bytes it unpickles
    against the sha256 its folder's manifest records (the file is read once: what is hashed is
    what is loaded, in every process that loads it)."""
    content = (directory / name).read_bytes()
    expected = json.loads((directory / MANIFEST_NAME).read_text())["files"].get(name)
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise ArtifactError(f"checksum mismatch for {directory / name}: manifest has sha256 {expected}, file has {actual}")
    return dill.loads(content)


def load_verified_manifest(directory: Path) -> dict[str, Any]:
    """Read ``directory/manifest.json`` and check the artifacts against it.

    Raises :class:`ArtifactError` if the manifest or a file is missing, a file's sha256
    differs, or an installed version of a checked package differs from the recorded one.
    """
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ArtifactError(f"no {MANIFEST_NAME} in {directory}: run `make train` first")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path} is not valid JSON: {error}") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{path} was written by another version of loanxai (manifest format "
                            f"{manifest.get('format', 1)}, this version reads {MANIFEST_FORMAT}): run `make train`")
    for name, expected in manifest["files"].items():
        file = directory / name
        if not file.is_file():
            raise ArtifactError(f"artifact {file} listed in the manifest is missing")
        actual = sha256_file(file)
        if actual != expected:
            raise ArtifactError(
                f"checksum mismatch for {file}: manifest has sha256 {expected}, file has {actual}"
            )
    recorded = manifest["versions"]
    installed = library_versions(manifest["checked_packages"])
    mismatched = [
        f"{package} {recorded[package]} when trained, {installed[package]} installed"
        for package in manifest["checked_packages"]
        if recorded[package] != installed[package]
    ]
    if mismatched:
        raise ArtifactError(
            f"artifacts in {directory} were written with other library versions: "
            + "; ".join(mismatched)
            + ". Install the versions the manifest records or retrain."
        )
    return manifest


@contextlib.contextmanager
def staged_directories(*directories: Path) -> Iterator[tuple[Path, ...]]:
    """Write artifact folders atomically: yields an empty staging folder beside each target;
    when the block succeeds, each target is replaced by its staging folder, all at once and
    with SIGINT/SIGTERM held back; when it fails (or is interrupted), the targets stay as
    they were and the staging folders are removed."""
    for target in directories:
        _recover(target)
    staged = tuple(d.parent / f".{d.name}.staged-{os.getpid()}" for d in directories)
    for folder in staged:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    try:
        yield staged
    except BaseException:
        for folder in staged:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        retired = []
        for target, folder in zip(directories, staged):
            if target.exists():
                old = target.parent / f".{target.name}.old-{os.getpid()}"
                target.rename(old)
                retired.append(old)
            folder.rename(target)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    for old in retired:
        shutil.rmtree(old, ignore_errors=True)


def _recover(target: Path) -> None:
    """Clean up after a training that was killed (SIGKILL cannot be held back): remove its
    staging folders, and put the previous artifacts back if it died in the middle of the swap."""
    for leftover in sorted(target.parent.glob(f".{target.name}.*-*")):
        kind, _, pid = leftover.name.rpartition("-")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if kind.endswith(".old") and not target.exists():
            leftover.rename(target)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
