"""The docs' commands and examples, run as they stand against the real services, and their
answers compared with what the pages show."""
import contextlib
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from loanxai.artifacts import DOCS_DIR, REPO_ROOT
from loanxai.ops.quoted import QUOTED, REASONED, disagreements
from tests.conftest import EXAMPLE_APPLICATION

QUICKSTART = DOCS_DIR / "quickstart.md"
CALLS = DOCS_DIR / "how-to" / "call-the-services.md"


def blocks(path, language):
    """The fenced blocks of ``language`` ("" for plain fences) in a Markdown file."""
    found, current, inside = [], [], None
    for line in path.read_text().splitlines():
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
        "127.0.0.1:9001", f"127.0.0.1:{explainer.http_port}")


def run_curl(call, classifier, explainer):
    result = subprocess.run(on_test_ports(call, classifier, explainer), shell=True, check=True, capture_output=True,
                            text=True)
    return json.loads(result.stdout)


def shown(path, start):
    """The JSON block shown after the block that starts with ``start`` (the answer the page promises)."""
    text = path.read_text()
    after = text[text.index(start):]
    block = after[after.index("```json\n") + 8:]
    return json.loads(block[:block.index("```")])


def probabilities(body):
    return np.round(np.asarray(body["data"]["ndarray"], dtype=float), 3)


def test_the_readme_starts_with_the_two_commands():
    first = blocks(REPO_ROOT / "README.md", "bash")[0].splitlines()
    assert first[0].startswith("make demo") and first[1].startswith("make test")


def test_the_quickstart_calls_answer_what_it_shows(classifier, explainer, artifacts):
    calls = [b.strip() for b in blocks(QUICKSTART, "bash") if b.lstrip().startswith("curl")]
    assert len(calls) == 2
    prediction, explanation = (run_curl(call, classifier, explainer) for call in calls)
    np.testing.assert_array_equal(probabilities(prediction), probabilities(shown(QUICKSTART, calls[0])))
    promised = shown(QUICKSTART, calls[1])["jsonData"]
    answer = explanation["jsonData"]
    assert answer["anchor"] == promised["anchor"] and answer["prediction"] == promised["prediction"]
    assert round(answer["coverage"], 3) == promised["coverage"] and answer["precision"] == promised["precision"]
    assert answer["application"] == {k: EXAMPLE_APPLICATION[k] for k in artifacts.classifier_manifest.schema.feature_names}


def test_the_quickstart_python_runs_and_prints_what_it_says(classifier, explainer):
    seldon, ours = blocks(QUICKSTART, "python")
    for example in (seldon, ours):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(on_test_ports(example, classifier, explainer), {})
        first, second = (out.getvalue().splitlines() + [""])[:2]
        # the comment after the first print is what it prints, to 3 decimals
        promised = re.search(r"print\(.*\)  # (.*)", example).group(1)
        assert [round(float(x), 3) for x in re.findall(r"0\.\d+", first)] == [float(x) for x in re.findall(r"0\.\d+", promised)]
        assert re.fullmatch(r"(\S+ (=|<=|>|<|>=) \S+( AND )?)*", second), second  # an anchor's text


def test_the_reasons_call_answers_what_the_page_shows(classifier, explainer):
    [call] = [b.strip() for b in blocks(CALLS, "") if b.lstrip().startswith("curl") and '"reasons": true' in b]
    [decision] = run_curl(call, classifier, explainer)["meta"]["tags"]["reasons"]
    [promised] = shown(CALLS, call)["meta"]["tags"]["reasons"]
    assert decision["decision"] == promised["decision"] and len(decision["reasons"]) == 4
    assert [r["text"] for r in decision["reasons"]] == [r["text"] for r in promised["reasons"]]
    assert round(decision["base_value"], 3) == promised["base_value"]


def test_the_feedback_call_answers_what_the_page_shows(classifier, explainer):
    [call] = [b.strip() for b in blocks(CALLS, "") if b.lstrip().startswith("curl") and "/feedback" in b]
    assert run_curl(call, classifier, explainer)["jsonData"] == shown(CALLS, call)["jsonData"]


def test_the_encoded_example_is_the_example_application(artifacts):
    encoded = json.loads(re.search(r'`(\{"data": \{"ndarray": .*?\}\})`', CALLS.read_text()).group(1))["data"]["ndarray"]
    schema = artifacts.classifier_manifest.schema
    assert schema.decode(np.asarray(encoded)) == [{name: EXAMPLE_APPLICATION[name] for name in schema.feature_names}]


@pytest.mark.parametrize("page", sorted(DOCS_DIR.rglob("*.md")), ids=lambda p: str(p.relative_to(DOCS_DIR)))
def test_every_make_target_a_page_names_exists(page):
    targets = set(re.findall(r"^([a-z][\w-]*):", (REPO_ROOT / "Makefile").read_text(), re.M))
    for named in re.findall(r"`make ([a-z][\w-]*)", page.read_text()):
        assert named in targets, f"{page.name} names `make {named}`, which the Makefile does not have"


def test_every_figure_the_docs_quote_is_what_the_model_s_manifest_says(artifacts, tmp_path):
    """Training is deterministic: the model trained here is the one the docs describe, and each
    figure they quote from its manifest must be what it says (rounded as the page rounds it)."""
    manifest = artifacts.classifier_manifest
    origin = f"the model {manifest.version}'s manifest"
    assert disagreements(QUOTED, manifest, origin, DOCS_DIR, REPO_ROOT / "README.md") == []
    # the check can fail: a page whose figure drifted is named, with what it should say
    shutil.copytree(DOCS_DIR, tmp_path / "docs")
    fairness = tmp_path / "docs" / "concepts" / "fairness.md"
    held_out = f"ROC AUC {manifest.metrics['roc_auc']:.3f}, recall"
    fairness.write_text(fairness.read_text().replace(held_out, "ROC AUC 0.999, recall"))
    [wrong] = disagreements(QUOTED, manifest, origin, tmp_path / "docs", REPO_ROOT / "README.md")
    assert wrong.startswith("concepts/fairness.md should say 'Held out (") and held_out in wrong


def test_every_figure_the_docs_quote_of_the_principal_reasons_is_what_the_report_measures(artifacts, census):
    """The report's measure of the principal reasons (500 held-out rejections, its seed), made
    again on the model trained here: what the explanations page says of them."""
    from loanxai.report.artifacts import load_model
    from loanxai.report.sections import reasons_section

    model = load_model(artifacts.classifier_dir, artifacts.explainer_dir)
    reasons = reasons_section(model, census.test, seed=0)
    origin = f"the report's reasons of the model {artifacts.classifier_manifest.version}"
    assert disagreements(REASONED, reasons, origin, DOCS_DIR, REPO_ROOT / "README.md") == []
