"""A challenger shadowing the classifier under `make run CHALLENGER=...`: real services, a real mirror."""
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.metrics import precision_score, recall_score
from sqlalchemy import select

from loanxai.artifacts import CLASSIFIER_DIR, MODEL_FILE, PREPROCESSOR_FILE
from loanxai.core.elderly import served_rows
from loanxai.core.manifest import load_pickle, read_manifest
from loanxai.data.description import LABEL
from loanxai.ops.replay import applications, held_out_predictions, send
from loanxai.ops.services import free_port
from loanxai.records.queries import Selection, challenger_versions
from loanxai.records.store import DecisionStore
from loanxai.records.tables import challenger_decisions
from loanxai.training.train import train
from tests.conftest import EXAMPLE_APPLICATION, REJECTED_APPLICATION, eventually
from tests.integration.test_run_local import SCRIPT, leftover_processes

#: a client's bound on one answer: less than the mirror's wait for the challenger (10 s), so a
#: champion's answer that waited for a stopped challenger fails the test
ANSWER_TIMEOUT_S = 5
#: held-out applications sent to both models and compared
N_COMPARED = 400


@pytest.fixture(scope="module")
def challenger_dir(artifacts, tmp_path_factory):
    """A challenger trained differently from the champion: another seed, a tenth of the trees."""
    root = tmp_path_factory.mktemp("challenger")
    train(root / "loanclassifier", root / "explainer", seed=11, n_estimators=5,
          only=[artifacts.classifier_manifest.candidate])
    return root / "loanclassifier"


def challenger_rows(records, puid):
    store = DecisionStore(records)
    with store.engine.connect() as connection:
        statement = select(challenger_decisions).where(challenger_decisions.c.request_id == puid)
        return [dict(r._mapping) for r in connection.execute(statement.order_by(challenger_decisions.c.row))]


def decide(url, puid=None):
    applications = [EXAMPLE_APPLICATION, REJECTED_APPLICATION] * 5
    message = {"jsonData": applications, "meta": {"tags": {"application_ids": [f"a-{i}" for i in range(10)]}}}
    if puid:
        message["meta"]["puid"] = puid
    return requests.post(f"{url}/api/v1.0/predictions", json=message, timeout=ANSWER_TIMEOUT_S)


def group_of(port):
    """The process group of the service listening on ``port`` (its supervisor leads it)."""
    return os.getpgid(min(int(line.split()[0]) for line in leftover_processes([port])))


@pytest.fixture(scope="module")
def shadowed(artifacts, challenger_dir, tmp_path_factory):
    """The real runner with a challenger: its process, ports, record URL and output so far."""
    log_dir = tmp_path_factory.mktemp("shadowed")
    ports = {name: free_port() for name in ("classifier", "explainer", "classifier-metrics", "explainer-metrics",
                                            "challenger", "challenger-metrics", "prometheus")}
    records = f"sqlite:///{log_dir}/decisions.sqlite"
    process = subprocess.Popen(
        [sys.executable, SCRIPT, "--log-dir", str(log_dir), "--challenger", str(challenger_dir),
         *[arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "LOAN_RECORDS_URL": records})
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "Ctrl-C stops every service" in line:
            break
    try:
        assert process.poll() is None, "".join(lines)
        yield SimpleNamespace(process=process, ports=ports, records=records, lines=lines,
                              url=f"http://127.0.0.1:{ports['classifier']}")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=60)


def in_process_approval(classifier_dir, rows):
    """The model's probability of approval of held-out ``rows``, computed here from its artifacts."""
    manifest = read_manifest(classifier_dir)
    preprocessor, forest = load_pickle(classifier_dir, PREPROCESSOR_FILE), load_pickle(classifier_dir, MODEL_FILE)
    X = served_rows(manifest.schema.encode_frame(rows), manifest.schema, preprocessor, forest)
    return forest.predict_proba(preprocessor.transform(X))[:, 1], manifest.cutoff


def test_the_comparison_gives_what_both_models_compute_on_the_same_rows(shadowed, challenger_dir, tmp_path):
    schema, test, _ = held_out_predictions(CLASSIFIER_DIR)
    rows = test.iloc[:N_COMPARED]
    outcomes = rows[LABEL].to_numpy().astype(bool)
    since = datetime.now(UTC)
    send(shadowed.url, applications(schema, rows), outcomes, batch=50)
    store = DecisionStore(shadowed.records)
    shadow_version = read_manifest(challenger_dir).version
    assert eventually(lambda: challenger_versions(store, Selection(since)) == {shadow_version: N_COMPARED}, timeout=30)
    out = tmp_path / "compare"
    run = subprocess.run([sys.executable, "-m", "loanxai.compare", "--url", shadowed.records, "--challenger",
                          str(challenger_dir), "--since", since.isoformat(), "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    comparison = json.loads((out / "compare.json").read_text())
    assert "<img src=\"data:image/png;base64," in (out / "compare.html").read_text()
    assert f"{N_COMPARED} applications decided by both" in run.stdout

    # the same figures, computed here from both models' artifacts on the same rows
    champion_score, champion_cutoff = in_process_approval(CLASSIFIER_DIR, rows)
    challenger_score, challenger_cutoff = in_process_approval(challenger_dir, rows)
    champion, challenger = champion_score >= champion_cutoff, challenger_score >= challenger_cutoff
    assert (champion != challenger).any(), "the two models should disagree somewhere for the test to mean anything"
    assert comparison["pairs"] == N_COMPARED and comparison["unpaired"] == 0
    overall = comparison["flips"]["all"]["all"]
    assert overall["agreement"] == pytest.approx((champion == challenger).mean())
    assert overall["approved_to_rejected"] == int((champion & ~challenger).sum())
    assert overall["rejected_to_approved"] == int((~champion & challenger).sum())
    ids = [f"{r['request_id']}/{r['row']}" for r in comparison["flipped"]]
    assert len(ids) == int((champion != challenger).sum()) == len(set(ids))
    flipped = np.flatnonzero(champion != challenger)
    assert [f["challenger"]["probability"] for f in comparison["flipped"]] == pytest.approx(challenger_score[flipped])
    min_rows = comparison["min_group_rows"]
    for role, approved in (("champion", champion), ("challenger", challenger)):
        decided = comparison["decisions"][role]
        assert decided["approval_rate"] == pytest.approx(approved.mean())
        for attribute in schema.protected:
            rates = pd.Series(approved).groupby(rows[attribute].astype(str).to_numpy()).agg(["mean", "size"])
            judged = rates[rates["size"] >= min_rows]["mean"]
            ratio = decided["adverse_impact"][attribute]["ratio"]
            assert ratio == (pytest.approx(judged.min() / judged.max()) if len(judged) >= 2 else None), (role, attribute)
        result = decided["outcomes"]["all"]["all"]
        assert result["outcomes"] == N_COMPARED
        assert result["recall"] == pytest.approx(recall_score(outcomes, approved))
        assert result["precision"] == pytest.approx(precision_score(outcomes, approved))
    shares = {role: np.histogram(score, bins=10, range=(0, 1))[0] / N_COMPARED
              for role, score in (("champion", champion_score), ("challenger", challenger_score))}
    p, q = (np.maximum(shares[role], 1e-4) for role in ("challenger", "champion"))
    assert comparison["score"]["psi"] == pytest.approx(np.sum((p - q) * np.log(p / q)))


# last: it kills the challenger
def test_the_challenger_decides_the_champions_requests_and_never_holds_up_an_answer(artifacts, challenger_dir, shadowed):
    process, ports, records, lines, url = (shadowed.process, shadowed.ports, shadowed.records, shadowed.lines,
                                           shadowed.url)
    try:
        # the caller gets the champion's answer; the challenger decides the same request, recorded apart
        answer = decide(url)
        assert answer.status_code == 200, answer.text
        puid = answer.json()["meta"]["puid"]
        champion = DecisionStore(records).decisions_of_request(puid)
        assert [r["decision"] for r in champion] == answer.json()["meta"]["tags"]["decisions"]
        assert {r["model_version"] for r in champion} == {artifacts.classifier_manifest.version}
        assert eventually(lambda: len(challenger_rows(records, puid)) == 10)
        shadow = challenger_rows(records, puid)
        assert [r["application_id"] for r in shadow] == [r["application_id"] for r in champion]
        assert [r["inputs"] for r in shadow] == [r["inputs"] for r in champion]
        assert {r["model_version"] for r in shadow} == {read_manifest(challenger_dir).version}
        assert [r["probability"] for r in shadow] != [r["probability"] for r in champion]
        # a challenger that stops answering: the champion's answers come at once all the same
        challenger = group_of(ports["challenger"])
        os.killpg(challenger, signal.SIGSTOP)
        try:
            for i in range(3):
                assert decide(url, f"stopped-{i}").status_code == 200
        finally:
            os.killpg(challenger, signal.SIGCONT)
        assert eventually(lambda: len(challenger_rows(records, "stopped-2")) == 10, timeout=30)
        # a killed challenger: logged, the champion goes on answering, nothing else stops
        os.killpg(challenger, signal.SIGKILL)
        for i in range(3):
            assert decide(url, f"killed-{i}").status_code == 200
        assert len(DecisionStore(records).decisions_of_request("killed-2")) == 10
        assert challenger_rows(records, "killed-2") == []
        time.sleep(1)  # the runner looks every 0.5 s
        assert process.poll() is None
        assert requests.get(f"http://127.0.0.1:{ports['explainer']}/health/ping", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        out = process.communicate(timeout=60)[0]
    assert process.returncode == 0, "".join(lines) + out
    assert "the challenger stopped by itself (killed by SIGKILL): the classifier goes on answering" in out
    assert not leftover_processes(list(ports.values()))
