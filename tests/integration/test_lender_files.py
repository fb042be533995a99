"""A lender's own file, read exactly: a credit file without a header, with a comment line, a
blank line, the lender's job codes (0-3, mapped to labels by the description) and its own
missing marker; trained end to end, served by the real classifier and decided by the scorer,
with codes as numbers and as strings."""
import csv

import numpy as np
import pytest
import requests
import yaml

from loanxai.clients.score import ScoreError, ScoreOptions, Scorer
from loanxai.training.train import train
from tests.conftest import start_classifier

JOBS = {0: "unskilled non-resident", 1: "unskilled resident", 2: "skilled", 3: "highly skilled"}
COLUMNS = ["age", "amount", "duration", "job", "housing", "sex", "risk"]


def _rows(n: int, seed: int = 7) -> list[list[str]]:
    """Applications whose repayment follows the amount, the duration and the job, never sex."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        age, amount, duration = int(rng.integers(19, 75)), int(rng.integers(250, 15000)), int(rng.integers(4, 72))
        job = int(rng.integers(0, 4))
        housing = str(rng.choice(["own", "rent", "free", "?"], p=[0.5, 0.3, 0.1, 0.1]))
        score = -amount / 5000 - duration / 30 + job * 0.8 + rng.normal(0, 0.7)
        rows.append([str(age), str(amount), str(duration), str(job), housing, str(int(rng.integers(1, 3))),
                     "1" if score > -1.2 else "2"])
    return rows


@pytest.fixture(scope="module")
def lender(tmp_path_factory):
    """The lender's file and description, trained (one candidate of the search), and its classifier."""
    folder = tmp_path_factory.mktemp("lender")
    lines = ["|1x3 Cross validator", *(", ".join(r) for r in _rows(1000)[:500]), "",
             *(", ".join(r) for r in _rows(1000)[500:])]
    (folder / "credit.data").write_text("\n".join(lines) + "\n")
    description = {
        "name": "credit",
        "source": {"path": "credit.data", "columns": COLUMNS, "comment": "|"},
        "label": {"column": "risk", "approved": [1], "rejected": [2]},
        "features": [{"name": "age", "kind": "numeric"}, {"name": "amount", "kind": "numeric"},
                     {"name": "duration", "kind": "numeric"}, {"name": "job", "kind": "categorical", "labels": JOBS},
                     {"name": "housing", "kind": "categorical"}],
        "protected": [{"name": "sex", "basis": ["sex"], "labels": {1: "male", 2: "female"}},
                      {"name": "age", "basis": ["age"], "bands": [25, 62], "model_input": True}],
        "missing": {"markers": ["?"]},
        "gate": {"min_group_rows": 50, "screen": ["sex"]},
    }
    path = folder / "credit.yaml"
    path.write_text(yaml.safe_dump(description, sort_keys=False))
    manifest, _ = train(folder / "loanclassifier", folder / "explainer", path, only=["all, forest"], n_estimators=30)
    service = start_classifier(folder / "loanclassifier", folder)
    try:
        service.wait_ready()
        yield folder, manifest, service
    finally:
        service.stop()


def predict(service, message):
    return requests.post(service.predictions_url, json=message, timeout=30)


APPLICATION = {"age": 35, "amount": 4000, "duration": 24, "job": "skilled", "housing": "own"}


def test_the_headerless_file_is_read_as_described(lender):
    _, manifest, _ = lender
    assert manifest.dataset.rows["train"] + manifest.dataset.rows["test"] == 1000  # the comment and blank lines skipped
    schema = manifest.schema
    assert schema.category_map["job"] == tuple(sorted(JOBS.values()))
    assert "housing" in schema.nullable and "?" not in schema.category_map["housing"]  # "?" is missing, as described


def test_a_code_a_numeric_string_and_its_label_are_the_same_value(lender):
    _, _, service = lender
    answers = {}
    for job in (2, "2", 2.0, " skilled ", "skilled", 1, "unskilled resident"):
        response = predict(service, {"jsonData": [APPLICATION | {"job": job, "sex": 2}]})
        assert response.status_code == 200, response.text
        answers[job] = response.json()["data"]["ndarray"][0][1]
    assert answers[2] == answers["2"] == answers[2.0] == answers[" skilled "] == answers["skilled"]
    assert answers[1] == answers["unskilled resident"]
    # named rows read values the same way; only rows without names take a number as a category's index
    names = list(APPLICATION)
    named = predict(service, {"data": {"names": names, "ndarray": [[APPLICATION[n] for n in names[:-2]] + [2, "own"]]}})
    assert named.json()["data"]["ndarray"][0][1] == answers["skilled"]


def test_an_unknown_code_is_refused_with_the_valid_values(lender):
    _, _, service = lender
    response = predict(service, {"jsonData": [APPLICATION | {"job": 7}]})
    assert response.status_code == 400
    assert response.json()["status"]["info"] == (
        "unknown category 7 for 'job' in row 0; expected one of: highly skilled, skilled, unskilled non-resident, "
        "unskilled resident (or their raw values: 0, 1, 2, 3)")
    for sex in (3, "x"):
        response = predict(service, {"jsonData": [APPLICATION | {"sex": sex}]})
        assert response.status_code == 400 and "(or their raw values: 1, 2)" in response.json()["status"]["info"]


def test_the_files_own_missing_marker_means_missing(lender):
    _, _, service = lender
    marked = predict(service, {"jsonData": [APPLICATION | {"housing": "?"}, APPLICATION | {"housing": " ? "}]})
    null = predict(service, {"jsonData": [APPLICATION | {"housing": None}]})
    assert marked.status_code == null.status_code == 200, marked.text
    assert marked.json()["data"]["ndarray"] == null.json()["data"]["ndarray"] * 2


def write(path, rows, header):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_scorer_reads_codes_markers_and_ids_as_the_service_does(lender, tmp_path, caplog):
    _, _, service = lender
    header = ["id", "age", "amount", "duration", "job", "housing", "sex", "branch"]
    rows = [["A-1", 35, 4000, 24, 2, "own", 2, "north"],      # the code
            ["A-2", 35, 4000, 24, "skilled", "own", "female", "north"],  # the label
            ["A-3", 35, 4000, 24, "2", "?", 1, "south"],     # the file's missing marker
            ["A-4", 35, 4000, 24, 7, "own", 1, "south"]]     # an unknown code
    write(tmp_path / "apps.csv", rows, header)
    with caplog.at_level("WARNING"):
        counts = Scorer(ScoreOptions(url=service.url, reasons=0)).run(tmp_path / "apps.csv", tmp_path / "d.csv",
                                                                      tmp_path / "e.csv")
    assert counts["decided"] == 3 and counts["errors"] == 1
    assert "column(s) the classifier does not know, ignored: branch" in caplog.text  # listed once
    decisions, errors = read(tmp_path / "d.csv"), read(tmp_path / "e.csv")
    assert [d["id"] for d in decisions] == ["A-1", "A-2", "A-3"] and errors[0]["id"] == "A-4"
    served = predict(service, {"jsonData": [APPLICATION, APPLICATION | {"housing": "?"}]}).json()["data"]["ndarray"]
    assert [float(d["approval_probability"]) for d in decisions] == pytest.approx(
        [served[0][1], served[0][1], served[1][1]], abs=1e-6)
    words = predict(service, {"jsonData": [APPLICATION | {"job": "7"}]}).json()["status"]["info"]  # a file holds text
    assert errors[0]["error"] == words.replace("in row 0", "on line 5")  # the service's words
    with pytest.raises(ScoreError, match="column\\(s\\) the classifier does not know: branch \\(--strict\\)"):
        Scorer(ScoreOptions(url=service.url, strict=True)).run(tmp_path / "apps.csv", tmp_path / "s.csv",
                                                                tmp_path / "s.errors.csv")
