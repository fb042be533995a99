"""Container image names, the version tag derived from the trained artifacts, and image labels.

The tag is ``<package version>-<12 hex>``: the version (:func:`loanxai.artifacts.version`) of a
digest covering the sha256 of every artifact file of both services, so an image tag names
exactly the model and explainer inside it.
Training is deterministic (fixed seeds), so the same code and data give the same tag.
The labels carry the dataset, the candidate the search chose and the fairness gate's result,
with any override (``io.loanxai.fairness-gate.*``).

``python -m loanxai.images`` prints the two image references; ``--labels`` prints the labels,
one ``key=value`` per line.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path

from loanxai.artifacts import CLASSIFIER_DIR, EXPLAINER_DIR, version
from loanxai.core.cli import command_parser
from loanxai.core.manifest import read_manifest
from loanxai.fairness.gate import labels as gate_labels

__all__ = ["REPOSITORIES", "image_labels", "image_references", "image_tag", "main", "parser"]

#: service folder under models/ -> image repository
REPOSITORIES = {"loanclassifier": "loanxai/loanclassifier", "explainer": "loanxai/explainer"}


def image_tag(classifier_dir: Path = CLASSIFIER_DIR, explainer_dir: Path = EXPLAINER_DIR) -> str:
    """``<package version>-<12 hex>``: a digest of both artifacts' file checksums."""
    files = {name: dict(read_manifest(directory).files)
             for name, directory in (("loanclassifier", classifier_dir), ("explainer", explainer_dir))}
    digest = version(hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest())
    return f"{metadata.version('loanxai')}-{digest}"


def image_references(tag: str) -> dict[str, str]:
    """Each service's image reference for ``tag``."""
    return {service: f"{repository}:{tag}" for service, repository in REPOSITORIES.items()}


def image_labels(classifier_dir: Path = CLASSIFIER_DIR) -> dict[str, str]:
    """OCI labels for both images: version, dataset, candidate, and the fairness gate."""
    manifest = read_manifest(classifier_dir)
    return {
        "org.opencontainers.image.version": metadata.version("loanxai"),
        "io.loanxai.dataset": manifest.dataset.name,
        "io.loanxai.candidate": manifest.candidate,
        **gate_labels(manifest.gate),
    }


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser(__doc__.splitlines()[0])
    parser.add_argument("--classifier-dir", type=Path, default=CLASSIFIER_DIR, help="the classifier's artifacts")
    parser.add_argument("--explainer-dir", type=Path, default=EXPLAINER_DIR, help="the explainer's artifacts")
    parser.add_argument("--labels", action="store_true", help="print the image labels instead of the references")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status."""
    args = parser().parse_args(argv)
    if args.labels:
        lines = [f"{key}={value}" for key, value in image_labels(args.classifier_dir).items()]
    else:
        references = image_references(image_tag(args.classifier_dir, args.explainer_dir))
        lines = [f"{service} {reference}" for service, reference in references.items()]
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
