"""`make demo` and `make run`: loanxai run as a user runs it."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from loanxai.ops.services import free_port
from loanxai.records.store import DecisionStore

#: `loanxai run`, as `make run` and `make demo` call it
RUN = [sys.executable, "-m", "loanxai", "run"]


def port_arguments():
    ports = [free_port() for _ in range(5)]
    names = ["--classifier-port", "--explainer-port", "--classifier-metrics-port", "--explainer-metrics-port",
             "--console-port"]
    return ports, [arg for pair in zip(names, map(str, ports)) for arg in pair]


def leftover_processes(ports):
    found = subprocess.run(["pgrep", "-af", "loanxai-microservice"], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if any(f"--http-port {p} " in line for p in ports)]


def test_demo_prints_a_prediction_and_an_explanation_then_stops(tmp_path):
    ports, arguments = port_arguments()
    records = f"sqlite:///{tmp_path}/decisions.sqlite"
    result = subprocess.run(
        [*RUN, "--demo", "--log-dir", str(tmp_path), *arguments],
        capture_output=True, text=True, timeout=600, env={**os.environ, "LOAN_RECORDS_URL": records},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("$ curl -sS -H 'Content-Type: application/json'") == 4
    # a rejected application, its anchor asked by its id, its record and its notice, HTML and PDF
    [application_id] = set(re.findall(r"python -m loanxai records show (demo-\w+)", out))
    assert f"application {application_id}: rejected at " in out and "reason " in out
    assert f'"recorded_for": {{"application_id": "{application_id}", ' in out
    assert re.search(r"then, [-0-9: ]+ UTC: anchor '.+' \(precision ", out), out
    written = re.findall(rf"notice of application {application_id} written to (\S+)", result.stderr)
    assert [Path(p).suffix for p in written] == [".html", ".pdf"] and all(Path(p).is_file() for p in written)
    page = Path(written[0]).read_text()  # every part of the forms: the applicant, the credit, the score's disclosure
    assert "Demo Applicant (an example)" in page and "Personal loan, $5,000" in page and "Your credit score" in page
    assert [r["application_id"] for r in DecisionStore(records).decisions_of_application(application_id)] == [application_id]
    assert '"names": [\n      "rejected",\n      "approved"\n    ]' in out
    assert '"anchor_text": ' in out
    # the census example is approved at the lender's cutoff
    assert "SeldonClient prediction:  approved (probability of approval 0." in out
    assert "SeldonClient explanation: approved because " in out
    assert "LOAN_AUTH=off: anyone on this machine may call both services" in result.stderr
    assert not leftover_processes(ports)


def test_the_demo_refuses_to_run_with_auth_on_naming_the_setting(tmp_path):
    result = subprocess.run([*RUN, "--demo", "--log-dir", str(tmp_path)], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "LOAN_AUTH": "on", "LOAN_AUTH_KEYS": "/k",
                                                         "LOAN_AUTH_ISSUER": "i"})
    assert result.returncode == 1
    assert "LOAN_AUTH=on: the demo calls the services without tokens; unset LOAN_AUTH" in result.stderr


def test_run_serves_until_ctrl_c_then_stops_both_process_groups(tmp_path):
    ports, arguments = port_arguments()
    process = subprocess.Popen(
        [*RUN, "--log-dir", str(tmp_path), *arguments],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops every service" in line:
                break
        assert any("curl" in line and f"127.0.0.1:{ports[1]}" in line for line in lines), "".join(lines)
        for port in (*ports[:2], ports[4]):  # the classifier, the explainer and the reviewer console
            assert requests.get(f"http://127.0.0.1:{port}/health/ping", timeout=10).status_code == 200
        running = leftover_processes(ports)  # the wrapper forks: several processes per service
        assert all(any(f"--http-port {p} " in line for line in running) for p in ports[:2])
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:  # an assertion failed above: still stop the services cleanly
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    time.sleep(0.5)
    assert not leftover_processes(ports)
    for port in ports:
        try:
            requests.get(f"http://127.0.0.1:{port}/health/ping", timeout=2)
            raise AssertionError(f"port {port} still answers")
        except requests.ConnectionError:
            pass
