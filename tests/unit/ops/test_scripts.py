"""The shell scripts and the container build contexts, checked without a cluster or Docker."""
import os
import subprocess

import pytest

from loanxai.artifacts import REPO_ROOT

ROOT = REPO_ROOT
SCRIPTS = sorted((ROOT / "scripts").glob("*.sh")) + sorted(ROOT.glob("models/*/.s2i/bin/*"))


def test_shellcheck_passes_on_every_script():
    assert len(SCRIPTS) >= 10
    result = subprocess.run([str(ROOT / ".venv-tools" / "bin" / "shellcheck"), "-x", *map(str, SCRIPTS)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", ["kind-up.sh", "deploy.sh", "kind-down.sh"])
def test_cluster_scripts_name_missing_tools(script, tmp_path):
    # a PATH with bash and coreutils only: no kind, helm or kubectl
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "cat", "grep", "mktemp", "rm"):
        os.symlink(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip(), bin_dir / tool)
    result = subprocess.run(["bash", str(ROOT / "scripts" / script)], capture_output=True, text=True,
                            env={"PATH": str(bin_dir)})
    assert result.returncode == 1
    assert "error: missing tool(s): kind" in result.stderr


@pytest.mark.parametrize("service, model", [("loanclassifier", "LoanClassifier"), ("explainer", "LoanExplainer")])
def test_build_context(service, model):
    folder = ROOT / "models" / service
    dockerfile = (folder / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "ARG BASE_IMAGE=python:3.11-slim\n" in dockerfile
    assert "USER 8888" in dockerfile and "EXPOSE 9000 6000" in dockerfile
    assert f'CMD ["loanxai-microservice", "{model}"]' in dockerfile
    assert "-r /tmp/build/requirements.txt" in dockerfile and "COPY artifacts/" in dockerfile
    environment = dict(line.split("=", 1) for line in (folder / ".s2i" / "environment").read_text().split())
    assert {k: environment[k] for k in ("MODEL_NAME", "SERVICE_TYPE", "API_TYPE", "PERSISTENCE")} == {
        "MODEL_NAME": model, "SERVICE_TYPE": "MODEL", "API_TYPE": "REST", "PERSISTENCE": "0"}
    assert os.access(folder / ".s2i" / "bin" / "assemble", os.X_OK) and os.access(folder / ".s2i" / "bin" / "run", os.X_OK)
    assert "requirements.txt" in (folder / ".s2i" / "bin" / "assemble").read_text()
