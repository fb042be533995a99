"""Deciding a file: every row exactly once, bad rows aside, resumed after being killed halfway."""
import csv
import signal
import subprocess
import sys
import time

import pytest
import requests

from loanxai.clients.score import ScoreError, ScoreOptions, Scorer
from loanxai.data.dataset import LABEL


@pytest.fixture(scope="module")
def applications(census, tmp_path_factory):
    """2,000 held-out applications (protected attributes included) and three bad rows."""
    frame = census.test.drop(columns=[LABEL]).head(2000).astype(object).reset_index(drop=True)
    frame.loc[3, "age"] = "old"
    frame.loc[10, "workclass"] = "Martian"
    frame.loc[20, "gender"] = "Robot"
    path = tmp_path_factory.mktemp("score") / "applications.csv"
    frame.to_csv(path, index=False)
    return path, frame


def read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_file_is_decided_with_reasons_and_bad_rows_aside(classifier, applications, tmp_path):
    path, frame = applications
    scorer = Scorer(ScoreOptions(url=classifier.url, batch_size=300, concurrency=3))
    counts = scorer.run(path, tmp_path / "d.csv", tmp_path / "e.csv")
    decisions, errors = read(tmp_path / "d.csv"), read(tmp_path / "e.csv")
    assert counts == {"decided": 1997, "rejected": sum(d["decision"] == "rejected" for d in decisions), "errors": 3}
    assert [int(d["line"]) for d in decisions] == [i + 2 for i in range(2000) if i not in (3, 10, 20)]  # input order
    # the classifier's own words, with the valid values
    assert [e["line"] for e in errors] == ["5", "12", "22"]
    assert errors[0]["error"] == "non-numeric value 'old' for numeric feature 'age' on line 5"
    assert errors[1]["error"].startswith("unknown category 'Martian' for 'workclass' on line 12; expected one of: ")
    assert errors[2]["error"] == "unknown category 'Robot' for 'gender' on line 22; expected one of: Female, Male"
    # the same answers as the classifier gives one call at a time
    sample = [0, 1, 2, 50, 1999]
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[i].items()} for i in sample]
    served = requests.post(classifier.predictions_url, json={"jsonData": records}, timeout=30).json()
    by_line = {int(d["line"]): d for d in decisions}
    for i, p, verdict in zip(sample, served["data"]["ndarray"], served["meta"]["tags"]["decisions"]):
        assert float(by_line[i + 2]["approval_probability"]) == pytest.approx(p[1], abs=1e-6)
        assert by_line[i + 2]["decision"] == verdict  # the classifier's decision, at its cutoff
    cutoff = served["meta"]["tags"]["cutoff"]
    for decision in decisions:
        assert decision["model_version"] and decision["decision"] in ("approved", "rejected")
        assert (float(decision["approval_probability"]) >= cutoff - 1e-6) is (decision["decision"] == "approved")
        if decision["decision"] == "rejected":
            assert decision["reason_1"] and "lowered the probability of approval" in decision["reason_1"]
            codes = decision["reason_codes"].split(";")
            texts = [decision[k] for k in decision if k.startswith("reason_") and k != "reason_codes" and decision[k]]
            assert len(codes) == len(texts) and all(code.endswith("-low") for code in codes)
        else:
            assert not decision["reason_1"] and not decision["reason_codes"]
    assert not (tmp_path / "d.csv.parts").exists()


def test_a_killed_run_resumes_with_every_row_exactly_once(classifier, applications, tmp_path):
    path, _ = applications
    out = tmp_path / "d.csv"
    command = [sys.executable, "-m", "loanxai", "score", str(path), "--out", str(out), "--classifier-url", classifier.url,
               "--batch-size", "100", "--concurrency", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "d.csv.parts"
    deadline = time.monotonic() + 120
    while len(list(parts.glob("batch-*.errors.csv"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # halfway, as an OOM kill or a lost machine would
    process.wait()
    assert 5 <= len(list(parts.glob("batch-*.errors.csv"))) < 20 and not out.exists()
    assert subprocess.run(command, capture_output=True).returncode == 0
    lines = [int(d["line"]) for d in read(out)]
    assert lines == sorted(set(lines)) and len(lines) == 1997  # none lost, none twice
    assert [int(e["line"]) for e in read(tmp_path / "d.errors.csv")] == [5, 12, 22]


def test_another_run_in_the_same_place_is_refused(classifier, applications, tmp_path):
    path, _ = applications
    (tmp_path / "d.csv.parts").mkdir()
    (tmp_path / "d.csv.parts" / "run.json").write_text('{"source": "elsewhere.csv"}')
    with pytest.raises(ScoreError, match="holds an unfinished run with another source"):
        Scorer(ScoreOptions(url=classifier.url)).run(path, tmp_path / "d.csv", tmp_path / "e.csv")
