"""Container image names and the version tag derived from the trained artifacts.

The tag is ``<package version>-<12 hex>``: the hex digest covers the sha256 of every artifact
file of both services, so an image tag names exactly the model and explainer inside it.
Training is deterministic (fixed seeds), so the same code and data give the same tag.
``python -m loanxai.images`` prints the two image references.
"""
from __future__ import annotations

import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path

from loanxai.manifest import MANIFEST_NAME
from loanxai.train import CLASSIFIER_DIR, EXPLAINER_DIR

#: service folder under models/ -> image repository
REPOSITORIES = {"loanclassifier": "loanxai/loanclassifier", "explainer": "loanxai/explainer"}


def image_tag(classifier_dir: Path = CLASSIFIER_DIR, explainer_dir: Path = EXPLAINER_DIR) -> str:
    files = {}
    for name, directory in (("loanclassifier", classifier_dir), ("explainer", explainer_dir)):
        files[name] = json.loads((directory / MANIFEST_NAME).read_text())["files"]
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
    return f"{metadata.version('loanxai')}-{digest}"


def image_references(tag: str) -> dict[str, str]:
    return {service: f"{repository}:{tag}" for service, repository in REPOSITORIES.items()}


if __name__ == "__main__":
    for service, reference in image_references(image_tag()).items():
        sys.stdout.write(f"{service} {reference}\n")
