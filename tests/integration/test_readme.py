"""The README's curl calls and Python example, run as they stand against the real services."""
import contextlib
import io
import json
import re
import subprocess

import numpy as np
import pytest

from loanxai.artifacts import REPO_ROOT
from tests.conftest import EXAMPLE_APPLICATION

README = (REPO_ROOT / "README.md").read_text()


def blocks(language):
    """The README's fenced blocks of ``language`` ("" for plain fences), opening and closing fences paired."""
    found, current, inside = [], [], None
    for line in README.splitlines():
        if line.startswith("```"):
            if inside is None:
                inside, current = line[3:].strip(), []
            else:
                if inside == language:
                    found.append("\n".join(current) + "\n")
                inside = None
        elif inside is not None:
            current.append(line)
    return found


def on_test_ports(text, classifier, explainer):
    return text.replace("127.0.0.1:9000", f"127.0.0.1:{classifier.http_port}").replace(
        "127.0.0.1:9001", f"127.0.0.1:{explainer.http_port}"
    )


def test_readme_starts_with_the_two_commands():
    first = blocks("bash")[0]
    assert first.splitlines()[0].startswith("make demo") and first.splitlines()[1].startswith("make test")


def test_readme_curl_calls_work(classifier, explainer):
    calls = [b.strip() for b in blocks("bash") if b.lstrip().startswith("curl")]
    assert len(calls) == 2
    prediction, explanation = (
        json.loads(subprocess.run(on_test_ports(c, classifier, explainer), shell=True, check=True,
                                  capture_output=True, text=True).stdout)
        for c in calls
    )
    assert prediction["data"]["names"] == ["rejected", "approved"]
    assert np.shape(prediction["data"]["ndarray"]) == (1, 2)
    assert explanation["jsonData"]["application"] == {k: v for k, v in EXAMPLE_APPLICATION.items() if k not in ("gender", "ethnicity")}


def test_readme_reasons_call_works(classifier, explainer):
    [call] = [b.strip() for b in blocks("") if b.lstrip().startswith("curl") and '"reasons": true' in b]
    answer = json.loads(subprocess.run(on_test_ports(call, classifier, explainer), shell=True, check=True,
                                       capture_output=True, text=True).stdout)
    [decision] = answer["meta"]["tags"]["reasons"]
    assert decision["decision"] == "rejected" and len(decision["reasons"]) == 4
    assert decision["reasons"][0]["text"].endswith("points")


def test_readme_seldon_client_example_runs(classifier, explainer):
    [example] = blocks("python")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(on_test_ports(example, classifier, explainer), {})
    first, second = (out.getvalue().splitlines() + [""])[:2]
    assert "'names': ['rejected', 'approved']" in first
    assert re.fullmatch(r"(\S+ (=|<=|>|<|>=) \S+( AND )?)*", second), second  # the anchor's text


def test_readme_encoded_example_is_the_example_application(artifacts):

    encoded = json.loads(re.search(r'`(\{"data": \{"ndarray": .*?\}\})`', README).group(1))["data"]["ndarray"]
    schema = artifacts.classifier_manifest.schema
    assert schema.decode(np.asarray(encoded)) == [{name: EXAMPLE_APPLICATION[name] for name in schema.feature_names}]


CONFIG = (REPO_ROOT / "loanxai" / "config.py").read_text()
#: every variable config.py reads (PREDICTIVE_UNIT_*_SERVICE_PORT are documented as one row)
SETTINGS = sorted({name for name in re.findall(r'"((?:LOAN|GUNICORN|GRPC|SELDON|PREDICTIVE_UNIT)_[A-Z_0-9]+)"', CONFIG)
                   if not name.endswith("_SERVICE_PORT")})


def test_settings_are_found():
    assert len(SETTINGS) > 20 and "LOAN_METRICS" in SETTINGS


@pytest.mark.parametrize("variable", SETTINGS)
def test_every_setting_is_documented(variable):
    assert f"`{variable}`" in README


def test_readme_feedback_call_works(classifier, explainer):
    [call] = [b.strip() for b in blocks("") if b.lstrip().startswith("curl") and "/feedback" in b]
    answer = json.loads(subprocess.run(on_test_ports(call, classifier, explainer), shell=True, check=True,
                                       capture_output=True, text=True).stdout)
    assert answer["jsonData"] == {"correct": 0, "outcomes": 1}
