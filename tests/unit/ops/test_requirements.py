"""Each image installs exactly locked versions, and only what its service needs."""

import pytest

from loanxai.artifacts import REPO_ROOT

ROOT = REPO_ROOT


def pins(path):
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.lower().replace("_", "-").split("==") for line in lines if line)


LOCK = pins(ROOT / "requirements" / "constraints.txt")


@pytest.mark.parametrize("service", ["loanclassifier", "explainer", "console"])
def test_service_lock_agrees_with_the_project_lock(service):
    wanted = pins(ROOT / "models" / service / "requirements.in")
    locked = pins(ROOT / "models" / service / "requirements.txt")
    assert wanted["seldon-core"] == "1.17.1"
    assert wanted.items() <= locked.items(), "requirements.txt lacks or changes a requirements.in pin"
    for package, version in locked.items():
        assert LOCK.get(package) == version, f"{service} locks {package}=={version}, the project lock has {LOCK.get(package)}"


def test_classifier_image_has_no_alibi_even_indirectly():
    locked = pins(ROOT / "models" / "loanclassifier" / "requirements.txt")
    assert not {"alibi", "spacy", "transformers"} & set(locked)
    assert pins(ROOT / "models" / "explainer" / "requirements.txt")["alibi"] == "0.9.4"


def test_console_image_has_what_it_imports_and_no_alibi():
    locked = pins(ROOT / "models" / "console" / "requirements.txt")
    assert {"weasyprint", "fairlearn", "pandas", "shap", "scikit-learn", "psycopg", "pyjwt"} <= set(locked)
    # the manifest's check needs the classifier's treelite; nothing needs alibi, nor matplotlib (shap's optional plots)
    assert locked["treelite"] == pins(ROOT / "models" / "loanclassifier" / "requirements.txt")["treelite"]
    assert not {"alibi", "spacy", "matplotlib"} & set(locked)


def test_setuptools_keeps_pkg_resources_for_gunicorn():
    for path in (ROOT / "requirements" / "constraints.txt", *ROOT.glob("models/*/requirements.txt")):
        assert int(pins(path)["setuptools"].split(".")[0]) < 82, path
