"""A challenger shadowing the classifier under `make run CHALLENGER=...`: real services, a real mirror."""
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy import select

from loanxai.core.manifest import read_manifest
from loanxai.ops.services import free_port
from loanxai.records.store import DecisionStore
from loanxai.records.tables import challenger_decisions
from loanxai.training.train import train
from tests.conftest import EXAMPLE_APPLICATION, REJECTED_APPLICATION, eventually
from tests.integration.test_run_local import SCRIPT, leftover_processes

#: a client's bound on one answer: less than the mirror's wait for the challenger (10 s), so a
#: champion's answer that waited for a stopped challenger fails the test
ANSWER_TIMEOUT_S = 5


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


def test_the_challenger_decides_the_champions_requests_and_never_holds_up_an_answer(artifacts, challenger_dir, tmp_path):
    ports = {name: free_port() for name in ("classifier", "explainer", "classifier-metrics", "explainer-metrics",
                                            "challenger", "challenger-metrics", "prometheus")}
    records = f"sqlite:///{tmp_path}/decisions.sqlite"
    process = subprocess.Popen(
        [sys.executable, SCRIPT, "--log-dir", str(tmp_path), "--challenger", str(challenger_dir),
         *[arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "LOAN_RECORDS_URL": records})
    url = f"http://127.0.0.1:{ports['classifier']}"
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops every service" in line:
                break
        assert process.poll() is None, "".join(lines)
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
