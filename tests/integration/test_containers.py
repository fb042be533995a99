"""The images really built with podman, the services' from their Dockerfiles and with s2i, and run as
containers in two network namespaces, the explainer reaching the classifier through a veth address,
then the smoke test, the reviewer console (Dockerfile builds) on the classifier's record, and a
graceful stop (several minutes each)."""
import json
import os
import shutil
import subprocess

import pytest

from loanxai.artifacts import REPO_ROOT
from loanxai.training.train import train

ROOT = REPO_ROOT
IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def justified(artifacts, tmp_path_factory):
    """Build contexts with artifacts trained with a recorded justification, and podman's storage
    (vfs: several GB) for both builds, removed afterwards.

    The screen flags the default census model (see the docs' fairness page), so the images are
    built from artifacts trained with a recorded justification, in build contexts of this
    module's (the search cut to the session's choice, which it is then again): the justification
    must show in the image labels."""
    folder = tmp_path_factory.mktemp("containers")
    models = folder / "models"
    for service in ("loanclassifier", "explainer", "console"):
        shutil.copytree(ROOT / "models" / service, models / service,
                        ignore=shutil.ignore_patterns("artifacts", "wheels", "build-ca.crt"))
    manifest, _ = train(models / "loanclassifier" / "artifacts", models / "explainer" / "artifacts",
                        only=[artifacts.classifier_manifest.candidate],
                        accept_unfair="container smoke test of the default model", accepted_by="CI")
    assert manifest.gate.status == "justified" and manifest.candidate == artifacts.classifier_manifest.candidate
    try:
        yield manifest, models, folder / "podman"
    finally:
        shutil.rmtree(folder / "podman", ignore_errors=True)


@pytest.mark.skipif(not IN_CI and (os.geteuid() != 0 or shutil.which("podman") is None),
                    reason="needs root and podman (CI installs them)")
@pytest.mark.parametrize("builder", ["dockerfile", "s2i"])
def test_images_build_run_pass_the_smoke_test_and_stop_gracefully(justified, builder):
    manifest, models, storage = justified
    env = {**os.environ, "LOANXAI_PODMAN_ROOT": str(storage), "LOANXAI_MODELS_DIR": str(models), "IMAGE_BUILDER": builder}
    result = subprocess.run(["bash", "-c", ". scripts/podman-sandbox.sh && scripts/container-smoke.sh"],
                            cwd=ROOT, capture_output=True, text=True, timeout=1800, env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    assert "classifier container runs as uid 8888" in out
    [labels] = [
        json.loads(line.split(": ", 1)[1])
        for line in out.splitlines()
        if line.startswith("image labels of docker.io/loanxai/loanclassifier")
    ]
    assert labels["io.loanxai.fairness-gate"] == manifest.gate.status
    assert labels["io.loanxai.dataset"] == "census" and labels["io.loanxai.candidate"] == manifest.training.candidate
    assert labels["io.loanxai.fairness-gate.override-reason"] == "container smoke test of the default model"
    assert labels["io.loanxai.fairness-gate.override-accepted-by"] == "CI"
    assert "prediction: POST http://10.231.0.1:9000/api/v1.0/predictions" in out
    assert '"anchor":["' in out
    assert "SeldonClient explanation: " in out and "smoke test passed" in out
    # the record migrated by the image's own command before the classifier started (the init container's step)
    assert "decision record migrated from nothing to" in out
    # the smoke test's decisions are on the record inside the container (SQLite, the image's default)
    recorded = out.split("records in the classifier container:", 1)[1].splitlines()
    assert sum(f"model {manifest.version}" in line for line in recorded) >= 2
    # nothing left behind: the namespaces this run made are gone
    [line] = [line for line in out.splitlines() if line.startswith("network namespaces: ")]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    existing = {entry.split()[0] for entry in listed.splitlines() if entry.strip()}
    assert not set(line.split(": ", 1)[1].split()) & existing
    # the console's image (Dockerfile builds only), as uid 8888 on the classifier's record: its pages and a notice
    if builder == "dockerfile":
        assert "console container runs as uid 8888" in out
        [console_labels] = [json.loads(line.split(": ", 1)[1]) for line in out.splitlines()
                            if line.startswith("image labels of docker.io/loanxai/console:")]
        assert console_labels == labels
        assert "console: /health/status answered" in out and f"console: /models names model {manifest.version}" in out
        assert "console: /monitoring answered" in out
        [notice] = [line for line in out.splitlines() if line.startswith("console: notice of console-smoke-")]
        assert notice.endswith(" bytes") and int(notice.split("a PDF of ")[1].split()[0]) > 1000
    else:
        assert "docker.io/loanxai/console" not in out
    # SIGTERM reaches the server, which drains and exits 0 (s2i's generated shell-form CMD kept it from it)
    assert f"all {3 if builder == 'dockerfile' else 2} containers stopped gracefully" in out
