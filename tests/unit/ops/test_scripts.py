"""The shell scripts and the container build contexts, checked without a cluster or Docker."""
import os
import subprocess

import pytest

from loanxai.artifacts import REPO_ROOT

ROOT = REPO_ROOT
SCRIPTS = sorted((ROOT / "scripts").glob("*.sh")) + sorted((ROOT / "s2i" / "bin").glob("*"))


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
    # what the Dockerfile sets with ENV, the s2i-built image gets from .s2i/environment
    for key in ("GRPC_WORKERS", "INCLUDE_METRICS_IN_CLIENT_RESPONSE", "LOAN_RECORDS_URL"):
        assert f"{key}={environment[key]}" in dockerfile
    # the builder's scripts serve both services: an override would run from /tmp/scripts, which
    # the deployment's /tmp volume hides
    assert not (folder / ".s2i" / "bin").exists()


def test_console_build_context():
    folder = ROOT / "models" / "console"
    dockerfile = (folder / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "ARG BASE_IMAGE=python:3.11-slim\n" in dockerfile
    assert "USER 8888" in dockerfile and "EXPOSE 8000" in dockerfile and "LOAN_CONSOLE_PORT=8000" in dockerfile
    assert 'CMD ["python", "-m", "loanxai", "console"]' in dockerfile
    assert "--no-deps -r /tmp/build/requirements.txt" in dockerfile and "pip check" in dockerfile
    assert "COPY artifacts/ ./artifacts/" in dockerfile and "LOAN_REVIEW_ARTIFACTS=/console/artifacts" in dockerfile
    # WeasyPrint's libraries from Debian, without what they only recommend, apt's caches and lists not kept
    assert "--no-install-recommends" in dockerfile and "libpangoft2-1.0-0 fonts-dejavu-core" in dockerfile
    assert "apt-get clean && rm -rf /var/lib/apt/lists/*" in dockerfile
    # not a Seldon microservice: no s2i build of it
    assert not (folder / ".s2i").exists()


def test_s2i_builder():
    builder = ROOT / "s2i"
    dockerfile = (builder / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim\n" in dockerfile and "USER 8888" in dockerfile
    assert "io.openshift.s2i.scripts-url=image:///usr/libexec/s2i" in dockerfile and "WORKDIR /microservice" in dockerfile
    assert all(os.access(builder / "bin" / script, os.X_OK) for script in ("assemble", "run", "usage"))
    assemble = (builder / "bin" / "assemble").read_text()
    assert '--no-deps -r "$src/requirements.txt"' in assemble and "pip check" in assemble
    assert 'exec loanxai-microservice "$MODEL_NAME"' in (builder / "bin" / "run").read_text()
    # s2i's shell-form CMD would leave /bin/sh as PID 1: the script makes it the exec form
    assert """CMD ["\\1"]""" in (ROOT / "scripts" / "s2i-images.sh").read_text()
