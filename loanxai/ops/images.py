"""Container image names, the version tag derived from the trained artifacts, and image labels.

The tag is ``<package version>-<12 hex>``: the version (:func:`loanxai.artifacts.version`) of a
digest covering the sha256 of every artifact file of both services, so an image tag names
exactly the model and explainer inside it. The reviewer console's image has the same tag: it
holds the classifier's artifacts (to decide contested decisions again) and is built beside them.
Training is deterministic (fixed seeds), so the same code and data give the same tag.
The labels carry the dataset, the candidate the search chose and the fairness gate's result,
with any override (``io.loanxai.fairness-gate.*``).

``loanxai images`` prints the image references (classifier, explainer, console);
``--labels`` prints the labels, one ``key=value`` per line; ``--pin champion`` (or
``challenger``) writes the tag into the kustomization that deploys the model in that role
(:data:`PINS`): the champion's in ``deploy/base/``, the shadowing challenger's in ``deploy/challenger/``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path

from loanxai.artifacts import CLASSIFIER_DIR, DEPLOY_DIR, EXPLAINER_DIR, version
from loanxai.config import CHALLENGER, CHAMPION, MODEL_ROLES, Settings
from loanxai.core.cli import command_parser
from loanxai.core.manifest import ClassifierManifest, read_manifest
from loanxai.errors import ArtifactError
from loanxai.fairness.gate import labels as gate_labels

__all__ = ["PINS", "REPOSITORIES", "image_labels", "image_references", "image_tag", "parser", "pin_tag", "pinned_tag", "run"]

#: build context folder under models/ -> image repository
REPOSITORIES = {"loanclassifier": "loanxai/loanclassifier", "explainer": "loanxai/explainer", "console": "loanxai/console"}
#: model role -> the kustomization (under deploy/) whose ``images`` pin that role's tag
PINS = {CHAMPION: Path("base") / "kustomization.yaml", CHALLENGER: Path("challenger") / "kustomization.yaml"}
#: an ``images`` entry's tag line (the file's comments are kept: it is edited, not re-dumped)
_NEW_TAG = re.compile(r"^(\s+newTag:\s*)(\S+)\s*$", re.MULTILINE)


def image_tag(classifier_dir: Path = CLASSIFIER_DIR, explainer_dir: Path = EXPLAINER_DIR) -> str:
    """``<package version>-<12 hex>``: a digest of both artifacts' file checksums."""
    files = {name: dict(read_manifest(directory).files)
             for name, directory in (("loanclassifier", classifier_dir), ("explainer", explainer_dir))}
    digest = version(hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest())
    return f"{metadata.version('loanxai')}-{digest}"


def image_references(tag: str) -> dict[str, str]:
    """Each image's reference for ``tag``, by build context folder."""
    return {service: f"{repository}:{tag}" for service, repository in REPOSITORIES.items()}


def image_labels(classifier_dir: Path = CLASSIFIER_DIR) -> dict[str, str]:
    """OCI labels for every image: version, dataset, candidate, and the fairness gate."""
    manifest = read_manifest(classifier_dir, ClassifierManifest)
    return {
        "org.opencontainers.image.version": metadata.version("loanxai"),
        "io.loanxai.dataset": manifest.dataset.name,
        "io.loanxai.candidate": manifest.candidate,
        **gate_labels(manifest.gate),
    }


def pinned_tag(role: str, deploy_dir: Path = DEPLOY_DIR) -> str:
    """The image tag the kustomization of ``role`` deploys (:class:`~loanxai.errors.ArtifactError`
    when it pins none, or more than one)."""
    path = deploy_dir / PINS[role]
    try:
        tags = set(_NEW_TAG.findall(path.read_text(encoding="utf-8")))
    except OSError as error:
        raise ArtifactError(f"{path}: cannot read the {role}'s kustomization ({error.strerror}): is "
                            f"{deploy_dir} the manifests' folder?") from None
    if len({tag for _, tag in tags}) != 1:
        raise ArtifactError(f"{path}: expected one image tag (newTag) for the {role}, found "
                            f"{', '.join(sorted(t for _, t in tags)) or 'none'}")
    return tags.pop()[1]


def pin_tag(role: str, tag: str, deploy_dir: Path = DEPLOY_DIR) -> Path:
    """Write ``tag`` as every image tag of the kustomization of ``role``; its path."""
    path = deploy_dir / PINS[role]
    pinned_tag(role, deploy_dir)
    path.write_text(_NEW_TAG.sub(lambda match: match.group(1) + tag, path.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser(__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=CLASSIFIER_DIR, help="the classifier's artifacts")
    parser.add_argument("--explainer-artifacts", type=Path, default=EXPLAINER_DIR, help="the explainer's artifacts")
    parser.add_argument("--labels", action="store_true", help="print the image labels instead of the references")
    parser.add_argument("--pin", choices=MODEL_ROLES, help="write the tag into the kustomization deploying this role")
    parser.add_argument("--deploy-dir", type=Path, default=DEPLOY_DIR, help="the manifests' folder (with --pin)")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Print the images' references or labels, or pin a tag, as ``args`` say (``loanxai images``)."""
    if args.labels:
        lines = [f"{key}={value}" for key, value in image_labels(args.artifacts).items()]
    elif args.pin:
        tag = image_tag(args.artifacts, args.explainer_artifacts)
        lines = [f"{args.pin} {tag} pinned in {pin_tag(args.pin, tag, args.deploy_dir)}"]
    else:
        references = image_references(image_tag(args.artifacts, args.explainer_artifacts))
        lines = [f"{service} {reference}" for service, reference in references.items()]
    sys.stdout.write("".join(line + "\n" for line in lines))

