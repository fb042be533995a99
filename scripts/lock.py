"""Regenerate the locks: requirements/constraints.txt from the development environment, each
image's requirements.txt (every package it installs: the two services' and the reviewer
console's) resolved from its requirements.in under those constraints, requirements/tools.txt and
bench/mlserver.txt. Run by `make lock`."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
#: pinned as they are, their declared dependencies not resolved (see the file)
NODEPS = ROOT / "requirements" / "nodeps.txt"
#: image folder under models/ -> its packages taken from NODEPS
SERVICES = {"loanclassifier": (), "explainer": ("dice-ml", "raiutils"), "console": ()}


def pip(*arguments: str) -> str:
    """Run pip in this environment; return its output."""
    return subprocess.run([sys.executable, "-m", "pip", *arguments], check=True, capture_output=True, text=True).stdout


def lock_environment() -> None:
    """Rewrite the project's lock from this environment."""
    frozen = [line for line in pip("freeze", "--all", "--exclude-editable").splitlines()
              if not line.startswith(("loanxai==", "pip=="))]
    CONSTRAINTS.write_text("# Locked versions of the development environment (make lock regenerates this file).\n"
                           + "\n".join(frozen) + "\n")


def lock_requirements(source: Path, target: Path, title: str, constraints: Path | None = None,
                      nodeps: tuple[str, ...] = ()) -> None:
    """Resolve ``source`` (a requirements.in) and write every resolved package, pinned, to
    ``target``, with the ``nodeps`` packages of :data:`NODEPS` added as they are."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        options = ["-c", str(constraints)] if constraints else []
        pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), *options, "-r", str(source))
        installed = json.loads(report.read_text())["install"]
    pins = sorted(f"{item['metadata']['name'].lower()}=={item['metadata']['version']}" for item in installed)
    pins = sorted(pins + [line for line in NODEPS.read_text().splitlines() if line.split("==")[0] in nodeps])
    target.write_text(f"# Every package of {title}, resolved from {source.name} by `make lock`. Do not edit by hand.\n"
                      + "\n".join(pins) + "\n")


if __name__ == "__main__":
    lock_environment()
    for name, nodeps in SERVICES.items():
        folder = ROOT / "models" / name
        lock_requirements(folder / "requirements.in", folder / "requirements.txt", f"the {name} image", CONSTRAINTS, nodeps)
    tools = ROOT / "requirements"
    lock_requirements(tools / "tools.in", tools / "tools.txt", "the tools environment")
    lock_requirements(ROOT / "bench" / "mlserver.in", ROOT / "bench" / "mlserver.txt", "the MLServer peer's environment")
