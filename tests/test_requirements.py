"""Each service's requirements pin exactly the locked versions, and only what it needs."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pins(path):
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.lower().split("==") for line in lines if line)


LOCK = pins(ROOT / "requirements" / "constraints.txt")


@pytest.mark.parametrize("service", ["loanclassifier", "explainer"])
def test_service_requirements_are_pinned_to_the_lock(service):
    required = pins(ROOT / "models" / service / "requirements.txt")
    assert required["seldon-core"] == "1.17.1"
    for package, version in required.items():
        assert LOCK[package] == version, f"{service} pins {package}=={version}, the lock has {LOCK[package]}"


def test_classifier_does_not_need_alibi():
    assert "alibi" not in pins(ROOT / "models" / "loanclassifier" / "requirements.txt")
    assert pins(ROOT / "models" / "explainer" / "requirements.txt")["alibi"] == "0.9.4"


def test_setuptools_keeps_pkg_resources_for_gunicorn():
    major = int(LOCK["setuptools"].split(".")[0])
    assert major < 82
