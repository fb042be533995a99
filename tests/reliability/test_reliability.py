"""The reliability suite (``make reliability``; also part of ``make test``): each problem found by
trying the services as an attacker and an operator would, reproduced and shown fixed.

Loopback only, bounded: a few minutes. The figures (recovery times, latencies under load,
errors) go to ``LOAN_RELIABILITY_REPORT`` when set (``make reliability`` writes
``bench/results/reliability.json`` and the docs' Results page from it).
"""
import json
import os
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from loanxai.config import ToolSettings
from loanxai.ops.services import free_port
from tests.conftest import EXAMPLE_APPLICATION, FEATURE_NAMES, eventually, running, start_classifier, start_explainer

pytestmark = pytest.mark.reliability
#: the deployments' probe timeout (deploy/): health must answer within it, or Kubernetes restarts the pod
PROBE_TIMEOUT_S = 3
FIGURES: dict = {}
HOSTILE = {"threshold": 1, "beam_size": 10, "max_anchor_size": 6, "delta": 1e-9, "tau": 1e-9}


def write_report() -> None:
    """Write the figures of every reliability test that ran to ``LOAN_RELIABILITY_REPORT``, if set."""
    path = ToolSettings.from_env().reliability_report
    if path and FIGURES:
        path.parent.mkdir(parents=True, exist_ok=True)
        figures = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **FIGURES}
        path.write_text(json.dumps(figures, indent=2) + "\n")


def children(pid):
    """Direct children of ``pid``."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def rest_workers(service):
    """The REST server's gunicorn workers (its arbiter's pid is in the supervisor's log)."""
    line = next(text for text in service.log_tail(400).splitlines() if "rest server: pid " in text)
    return children(int(line.rsplit(" ", 1)[1]))


def rss_mb(pids):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def group(pid):
    """Every process of the process group ``pid`` leads."""
    out = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def predict(service, timeout=PROBE_TIMEOUT_S, **kwargs):
    return requests.post(service.predictions_url, json={"jsonData": [EXAMPLE_APPLICATION]}, timeout=timeout, **kwargs)


def prediction_and_ping_s(service):
    """Seconds to a prediction and a ``/health/ping``, one after the other, each within the probe timeout."""
    started = time.perf_counter()
    assert predict(service).ok
    assert requests.get(f"{service.url}/health/ping", timeout=PROBE_TIMEOUT_S).ok
    return time.perf_counter() - started


# --- 1. one explanation could take the explainer down -----------------------------------------------------


def test_a_hostile_explanation_answers_504_within_its_budget_and_the_next_is_served(artifacts, classifier, tmp_path):
    explainer = start_explainer(artifacts.explainer_dir, classifier.predictions_url, tmp_path, LOAN_EXPLAIN_BUDGET="3")
    try:
        explainer.wait_ready()
        peak, done = [0.0], threading.Event()

        def watch():
            while not done.wait(0.1):
                peak[0] = max(peak[0], rss_mb(group(explainer.process.pid)))

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.perf_counter()
        response = requests.post(explainer.predictions_url, json={"jsonData": EXAMPLE_APPLICATION, "meta": {"tags": HOSTILE}},
                                 timeout=60)
        seconds = time.perf_counter() - started
        done.set()
        watcher.join()
        assert response.status_code == 504, response.text
        assert "time budget of 3 s (LOAN_EXPLAIN_BUDGET)" in response.json()["status"]["info"]
        assert requests.get(f"{explainer.url}/health/ping", timeout=PROBE_TIMEOUT_S).text.strip() == "pong"
        after = requests.post(explainer.predictions_url, json={"jsonData": EXAMPLE_APPLICATION}, timeout=60)
        assert after.status_code == 200 and after.json()["jsonData"]["anchor_text"]
    finally:
        explainer.stop()
    FIGURES["hostile_explanation"] = {"budget_s": 3, "answered_after_s": round(seconds, 2), "peak_rss_mb": round(peak[0])}


def post_and_leave(url, message, after_s=0.0):
    """POST ``message`` on a raw connection and close it ``after_s`` later without reading the answer."""
    target = url.removeprefix("http://").split("/", 1)
    host, port = target[0].split(":")
    body = json.dumps(message).encode()
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(f"POST /{target[1]} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    time.sleep(after_s)
    sock.close()


def counted(service, name, **labels):
    """The sum of the samples of ``name`` on the service's metrics port that carry ``labels``."""
    families = text_string_to_metric_families(requests.get(service.metrics_url, timeout=10).text)
    return sum(sample.value for family in families for sample in family.samples
               if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()))


def anchors_answered(explainer, outcome):
    """How many anchor explanations the explainer counted with ``outcome``."""
    return counted(explainer, "loan_explanations_total", kind="anchor", outcome=outcome)


def timed_post(url, message, answers, key):
    started = time.perf_counter()
    response = requests.post(url, json=message, timeout=60)
    answers[key] = (response, time.perf_counter() - started)


def test_an_explanation_waiting_for_the_worker_obeys_its_budget_from_arrival(artifacts, classifier, tmp_path):
    budget = 3
    explainer = start_explainer(artifacts.explainer_dir, classifier.predictions_url, tmp_path,
                                LOAN_EXPLAIN_BUDGET=str(budget))
    try:
        explainer.wait_ready()
        answers = {}
        hostile = {"jsonData": EXAMPLE_APPLICATION, "meta": {"tags": HOSTILE}}
        first = threading.Thread(target=timed_post, args=(explainer.predictions_url, hostile, answers, "first"))
        first.start()
        time.sleep(0.5)  # the first holds the worker's explanation slot for its whole budget
        timed_post(explainer.predictions_url, hostile, answers, "queued")
        first.join()
        for key in ("first", "queued"):
            assert answers[key][0].status_code == 504, answers[key][0].text
        # counted from its arrival: answered within its own budget (not after the first's, then its own)
        assert answers["queued"][1] < budget + 1.5, answers["queued"][1]
    finally:
        explainer.stop()
    FIGURES["queued_explanation"] = {"budget_s": budget, "answered_after_s": round(answers["queued"][1], 2)}


def test_explanations_whose_callers_left_are_abandoned(artifacts, classifier, tmp_path):
    explainer = start_explainer(artifacts.explainer_dir, classifier.predictions_url, tmp_path, LOAN_EXPLAIN_BUDGET="6")
    try:
        explainer.wait_ready()
        hostile = {"jsonData": EXAMPLE_APPLICATION, "meta": {"tags": HOSTILE}}
        # a caller that leaves while its explanation runs: abandoned at its next classifier call
        post_and_leave(explainer.predictions_url, hostile, after_s=0.5)
        started = time.perf_counter()
        after = requests.post(explainer.predictions_url, json={"jsonData": EXAMPLE_APPLICATION}, timeout=60)
        waited = time.perf_counter() - started
        assert after.status_code == 200, after.text
        assert waited < 3, waited  # not behind the 6 s the abandoned one had left
        # callers that leave while they wait for the worker: abandoned before they begin
        answers = {}
        first = threading.Thread(target=timed_post, args=(explainer.predictions_url, hostile, answers, "first"))
        first.start()
        time.sleep(0.5)
        for _ in range(2):
            post_and_leave(explainer.predictions_url, {"jsonData": EXAMPLE_APPLICATION})
        first.join()
        assert answers["first"][0].status_code == 504
        assert eventually(lambda: explainer.log_tail(400).count("abandoned before it began") == 2), explainer.log_tail(40)
        assert explainer.log_tail(400).count("while its explanation ran: abandoned") == 1
        # the three abandoned, counted as answered 499
        assert eventually(lambda: anchors_answered(explainer, "4xx") == 3), anchors_answered(explainer, "4xx")
    finally:
        explainer.stop()
    FIGURES["abandoned_explanations"] = {"next_answered_after_s": round(waited, 2)}


# --- 2. a killed worker could hang the classifier for good ----------------------------------------------------


def test_killing_a_worker_under_load_ten_times_recovers_every_time(artifacts, tmp_path):
    service = start_classifier(artifacts.classifier_dir, tmp_path, GUNICORN_WORKERS="2")
    try:
        service.wait_ready()
        stop, errors, served = threading.Event(), [0], [0]

        def load():
            session = requests.Session()
            while not stop.is_set():
                try:
                    ok = session.post(service.predictions_url, json={"jsonData": [EXAMPLE_APPLICATION]}, timeout=10).ok
                except requests.RequestException:
                    ok = False
                served[0] += ok
                errors[0] += not ok

        threads = [threading.Thread(target=load) for _ in range(8)]
        for thread in threads:
            thread.start()
        recoveries = []
        for _ in range(10):
            time.sleep(0.3)
            victim = rest_workers(service)[0]
            os.kill(victim, signal.SIGKILL)  # as the OOM killer does: no cleanup, whatever it held
            killed = time.perf_counter()
            while True:  # back: two live workers (the replacement forked) and answers from both
                workers = rest_workers(service)
                if len(workers) == 2 and victim not in workers and predict(service).ok and \
                        requests.get(f"{service.url}/health/ping", timeout=PROBE_TIMEOUT_S).ok:
                    break
                assert time.perf_counter() - killed < 30, "not recovered after 30 s"
                time.sleep(0.02)
            recoveries.append(time.perf_counter() - killed)
        stop.set()
        for thread in threads:
            thread.join()
        for _ in range(20):  # afterwards every request is answered
            assert predict(service).ok
        metrics = requests.get(service.metrics_url, timeout=PROBE_TIMEOUT_S).text
        assert "loan_requests_total" in metrics  # the metrics server still reads every process's counts
    finally:
        service.stop()
    FIGURES["worker_kills"] = {"kills": 10, "recovery_s_median": round(statistics.median(recoveries), 3),
                               "recovery_s_max": round(max(recoveries), 3), "requests_served": served[0],
                               "requests_failed": errors[0]}


# --- 3. idle and slow connections blocked the workers --------------------------------------------------------


def test_fifty_slow_connections_do_not_stop_predictions_or_health(classifier):
    sockets = []
    for i in range(50):
        sock = socket.create_connection(("127.0.0.1", classifier.http_port))
        if i % 2:  # half idle, half trickling a request one byte at a time
            sock.sendall(b"P")
        sockets.append(sock)
    try:
        latencies = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            for sock in sockets[1::2]:
                try:
                    sock.sendall(b"O")
                except OSError:
                    pass  # closed by the server at its request deadline: as it should
            latencies.append(prediction_and_ping_s(classifier))
            time.sleep(0.2)
    finally:
        for sock in sockets:
            sock.close()
    FIGURES["slow_connections"] = {"connections": 50, "prediction_and_ping_s_median": round(statistics.median(latencies), 4),
                                   "prediction_and_ping_s_max": round(max(latencies), 4)}


def slowloris(port, connections, stop, counts):
    """Hold ``connections`` to ``port``, each having sent part of a request's headers; reconnect
    each one the server closes (as an attacker would), until ``stop`` is set."""
    def connect():
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"POST /api/v1.0/predictions HTTP/1.1\r\nHost: x\r\nContent-Len")
        held.register(sock, selectors.EVENT_READ)

    held = selectors.DefaultSelector()
    for _ in range(connections):
        connect()
    counts["held"] = connections
    while not stop.is_set():
        for key, _ in held.select(0.2):
            held.unregister(key.fileobj)
            counts["answered_408"] += b" 408 " in _first_line(key.fileobj)
            key.fileobj.close()
            counts["reconnected"] += 1
            connect()
    for key in list(held.get_map().values()):
        key.fileobj.close()


def _first_line(sock):
    try:
        return sock.recv(64).split(b"\r\n")[0]
    except OSError:
        return b""


@pytest.mark.parametrize("connections", [1000, 5000])
def test_slow_reconnecting_clients_do_not_stop_predictions_or_health(artifacts, tmp_path, connections):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # this process holds the attacker's sockets
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, connections + 1024)), hard))
    service = start_classifier(artifacts.classifier_dir, tmp_path)
    stop, counts = threading.Event(), {"answered_408": 0, "reconnected": 0}
    with running(service):
        attacker = threading.Thread(target=slowloris, args=(service.http_port, connections, stop, counts))
        attacker.start()
        try:
            assert eventually(lambda: counts.get("held") == connections, timeout=60)
            latencies = []
            for _ in range(20):
                latencies.append(prediction_and_ping_s(service))
                time.sleep(0.2)
        finally:
            stop.set()
            attacker.join()
        room = counted(service, "loan_connections_closed_total", why="room")
    assert room > 0 and counts["reconnected"] > 0  # the worker made room: the oldest slow connections were closed
    FIGURES[f"slow_connections_{connections}"] = {
        "connections": connections, "prediction_and_ping_s_median": round(statistics.median(latencies), 4),
        "prediction_and_ping_s_max": round(max(latencies), 4), "closed_to_make_room": int(room)}


def test_a_service_refuses_to_start_when_it_could_not_hold_its_connections(artifacts, tmp_path):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    service = start_classifier(artifacts.classifier_dir, tmp_path, LOAN_MAX_CONNECTIONS=str(hard))
    try:
        assert service.process.wait(timeout=60) == 1
        assert f"LOAN_MAX_CONNECTIONS={hard} with GUNICORN_WORKERS=1 needs" in service.log_tail(), service.log_tail()
        assert "Traceback" not in service.log_tail()
    finally:
        service.stop()


@pytest.mark.parametrize("part", [b"POST /api/v1.0/predictions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
                                  b"GET /health/pi"], ids=["body", "headers"])
def test_a_request_that_never_finishes_arriving_is_answered_408_at_its_deadline(artifacts, tmp_path, part):
    service = start_classifier(artifacts.classifier_dir, tmp_path, LOAN_REQUEST_TIMEOUT="1")
    with running(service):
        sock = socket.create_connection(("127.0.0.1", service.http_port))
        sock.sendall(part)
        sock.settimeout(10)
        started = time.perf_counter()
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        waited = time.perf_counter() - started
        sock.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0] == b"HTTP/1.1 408 Request Timeout", answer
        assert json.loads(body)["status"]["reason"] == "REQUEST_TIMEOUT"
        assert 0.9 < waited < 5
        assert predict(service).ok
        assert counted(service, "loan_connections_closed_total", why="request_timeout") == 1


def read_answers(sock, count):
    """Read ``count`` HTTP answers from ``sock``: their status lines and bodies."""
    data, answers = b"", []
    while len(answers) < count:
        head, found, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next((int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length")), None)
        if found and length is not None and len(rest) >= length:
            answers.append((lines[0], rest[:length]))
            data = rest[length:]
        else:
            chunk = sock.recv(65536)
            assert chunk, f"the connection closed after {len(answers)} answers of {count}"
            data += chunk
    return answers


def test_pipelined_requests_are_answered_in_order(classifier):
    def post(age):
        body = json.dumps({"jsonData": [{**EXAMPLE_APPLICATION, "age": age}], "meta": {"puid": f"pipelined-{age}"}}).encode()
        return (b"POST /api/v1.0/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    ping = b"GET /health/ping HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /health/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", classifier.http_port), timeout=10) as sock:
        started = time.perf_counter()
        sock.sendall(ping + ping + b"".join(post(age) for age in range(30, 35)) + last)
        answers = read_answers(sock, 8)
        seconds = time.perf_counter() - started
        assert sock.recv(1) == b""  # closed as the last request asked
    assert [status for status, _ in answers] == [b"HTTP/1.1 200 OK"] * 8, answers
    assert [json.loads(body)["meta"]["puid"] for _, body in answers[2:7]] == [f"pipelined-{age}" for age in range(30, 35)]
    assert seconds < 3  # not the keep-alive timeout's 5 s

    # a pipelined request still arriving: the one before it is answered, it once it has come
    with socket.create_connection(("127.0.0.1", classifier.http_port), timeout=10) as sock:
        whole, half = post(40), post(41)
        sock.sendall(whole + half[:30])
        [(_, first)] = read_answers(sock, 1)
        sock.sendall(half[30:])
        [(_, second)] = read_answers(sock, 1)
    assert json.loads(first)["meta"]["puid"] == "pipelined-40" and json.loads(second)["meta"]["puid"] == "pipelined-41"


# --- 4. health starved, explanations queued without bound -----------------------------------------------------


def test_health_answers_within_the_probe_timeout_with_sixteen_explanation_clients(explainer):
    stop, answers = threading.Event(), {"ok": 0, "busy": 0, "other": 0, "retry_after": 0}
    lock = threading.Lock()

    def client(i):
        session = requests.Session()
        application = EXAMPLE_APPLICATION | {"age": 30 + i}
        while not stop.is_set():
            response = session.post(explainer.predictions_url, json={"jsonData": application, "meta": {"tags": {"seed": i}}},
                                    timeout=60)
            with lock:
                kind = "ok" if response.ok else "busy" if response.status_code == 503 else "other"
                answers[kind] += 1
                answers["retry_after"] += response.headers.get("Retry-After") == "1"

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    pings = []
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert requests.get(f"{explainer.url}/health/ping", timeout=PROBE_TIMEOUT_S).text.strip() == "pong"
            assert requests.get(f"{explainer.url}/health/status", timeout=PROBE_TIMEOUT_S).ok
            pings.append(time.perf_counter() - started)
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert answers["ok"] > 0 and answers["busy"] > 0 and answers["other"] == 0
    assert answers["retry_after"] == answers["busy"]  # every 503 says when to come back
    FIGURES["explanation_load"] = {"clients": 16, "ping_and_status_s_median": round(statistics.median(pings), 4),
                                   "ping_and_status_s_max": round(max(pings), 4), **answers}


# --- 5. SIGTERM reset requests in flight -------------------------------------------------------------------------


# heavy: about 0.3 s of work each (the census model of 2026-12-07, 50 trees of 31,000 leaves in all: its reasons
# take 1.7 s for 200 rows, five times the 25-tree forest's); 32 of them stay within the request timeout on 2 cores
@pytest.mark.parametrize("applications", [40, 5], ids=["heavy", "light"])
def test_sigterm_with_requests_in_flight_completes_them(artifacts, census, tmp_path, applications):
    # the local runner's drain (0.2 s, ops.services): what waits for the workers is still being taken
    service = start_classifier(artifacts.classifier_dir, tmp_path, GUNICORN_WORKERS="2")
    rows = artifacts.classifier_manifest.schema.encode_frame(census.test.head(applications)).tolist()
    body = {"data": {"ndarray": rows}, "meta": {"tags": {"reasons": True}}}
    results = []
    try:
        service.wait_ready()
        pgid = service.process.pid

        def call():
            try:
                results.append(requests.post(service.predictions_url, json=body, timeout=60).status_code)
            except requests.RequestException as error:
                results.append(type(error).__name__)

        threads = [threading.Thread(target=call) for _ in range(32)]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        service.process.send_signal(signal.SIGTERM)  # as Kubernetes does at every rollout
        stopped = time.perf_counter()
        for thread in threads:
            thread.join()
        assert service.process.wait(timeout=40) == 0
        seconds = time.perf_counter() - stopped
    finally:
        service.stop()
    assert results == [200] * 32, results
    assert not group(pgid)  # nothing of the service is left
    FIGURES[f"sigterm_in_flight_{applications}_applications"] = {
        "requests": 32, "completed": results.count(200), "stopped_after_s": round(seconds, 2)}


# --- 6. gRPC was broken -------------------------------------------------------------------------------------------


def test_grpc_one_row_and_batch_predictions_and_explanations(artifacts, census, tmp_path):
    from seldon_core.seldon_client import SeldonClient

    port = free_port()
    classifier = start_classifier(artifacts.classifier_dir, tmp_path, GRPC_WORKERS="1",
                                  PREDICTIVE_UNIT_GRPC_SERVICE_PORT=str(port))
    explainer_port = free_port()
    explainer = start_explainer(artifacts.explainer_dir, classifier.predictions_url, tmp_path, GRPC_WORKERS="1",
                                PREDICTIVE_UNIT_GRPC_SERVICE_PORT=str(explainer_port))
    try:
        classifier.wait_ready()
        explainer.wait_ready()
        rows = artifacts.classifier_manifest.schema.encode_frame(census.test.head(100))
        client = SeldonClient(gateway="seldon", transport="grpc", gateway_endpoint=f"127.0.0.1:{port}")
        for batch in (rows[:1], rows):
            result = client.predict(data=batch, payload_type="ndarray", client_return_type="dict")
            assert result.success, result.msg
            rest = requests.post(classifier.predictions_url, json={"data": {"ndarray": batch.tolist()}}, timeout=30).json()
            np.testing.assert_allclose(result.response["data"]["ndarray"], rest["data"]["ndarray"], rtol=0, atol=1e-12)
        named = client.predict(data=np.array([[EXAMPLE_APPLICATION[n] for n in FEATURE_NAMES]], dtype=object),
                               names=list(FEATURE_NAMES), payload_type="ndarray", client_return_type="dict")
        assert named.success and len(named.response["data"]["ndarray"]) == 1
        bad = client.predict(data=rows[:1, :3], payload_type="ndarray", client_return_type="dict")
        assert not bad.success and "wrong number of features" in bad.msg
        explained = SeldonClient(gateway="seldon", transport="grpc", gateway_endpoint=f"127.0.0.1:{explainer_port}").predict(
            data=rows[:1], payload_type="ndarray", client_return_type="dict")
        assert explained.success and explained.response["jsonData"]["kind"] == "anchor"
        metrics = requests.get(classifier.metrics_url, timeout=PROBE_TIMEOUT_S).text
        assert 'method="predict"' in metrics
        pids = group(classifier.process.pid)
    finally:
        explainer.stop()
        classifier.stop()
    time.sleep(0.5)
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]  # the gRPC server stopped with the service


# --- 7-9. requests a browser or an attacker sends ---------------------------------------------------------------


ROW = [EXAMPLE_APPLICATION[name] for name in FEATURE_NAMES]
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("method, path, kwargs, status, problem", [
    ("get", "/predict", {"params": {"json": json.dumps({"jsonData": EXAMPLE_APPLICATION})}}, 405, "takes POST only"),
    ("get", "/api/v1.0/predictions", {}, 405, "takes POST only"),
    ("put", "/api/v1.0/predictions", {"json": {}}, 405, "takes POST only"),
    ("delete", "/api/v1.0/predictions", {}, 405, "takes POST only"),
    ("patch", "/api/v1.0/predictions", {"json": {}}, 405, "takes POST only"),
    ("post", "/health/ping", {}, 405, "takes GET only"),
    ("get", "/admin", {}, 404, "no such path: /admin"),
    ("post", "/transform-input", {"json": {}}, 404, "no such path"),
    ("post", "/api/v1.0/predictions", {"data": "[" * 100_000, "headers": JSON}, 400, "nested too deeply"),
    ("post", "/predict", {"data": {"json": "{not json"}}, 400, "form field 'json': invalid JSON"),
    ("post", "/api/v1.0/predictions", {"data": '{"jsonData": {}, "jsonData": []}', "headers": JSON},
     400, "key 'jsonData' appears twice"),
    ("post", "/api/v1.0/predictions", {"json": {"jsonData": [EXAMPLE_APPLICATION], "data": {"ndarray": [ROW]}}}, 400,
     "holds both 'data' and 'jsonData'"),
    ("post", "/api/v1.0/predictions", {"json": {"jsonData": [EXAMPLE_APPLICATION | {"age": 1e308}]}}, 400,
     "value 1e+308 for 'age' in row 0 is outside its plausible range [0, 126.5]"),
    # any JSON type in any field, numbers too large for a float: a 400 naming the field (issue 19, in part)
    ("post", "/api/v1.0/predictions", {"json": {"jsonData": [EXAMPLE_APPLICATION], "meta": [1]}}, 400,
     "'meta' must be an object"),
    ("post", "/api/v1.0/predictions", {"json": {"jsonData": [EXAMPLE_APPLICATION], "meta": "x"}}, 400,
     "'meta' must be an object"),
    ("post", "/api/v1.0/predictions", {"json": {"jsonData": [EXAMPLE_APPLICATION | {"age": 10**400}]}}, 400,
     "(401 characters) for 'age' in row 0 is too large"),
    ("post", "/api/v1.0/predictions", {"json": {"jsonData": [EXAMPLE_APPLICATION | {"gender": 10**400}]}}, 400,
     "for 'gender' in row 0 is too large"),
    ("post", "/api/v1.0/predictions", {"json": {"jsonData": [EXAMPLE_APPLICATION], "meta": {"tags": {"reasons": 10**400}}}},
     400, "prediction parameter 'reasons' must be"),
    # sizes checked before anything is built: 54 bytes asking for 30 million rows
    ("post", "/api/v1.0/predictions", {"json": {"data": {"tensor": {"shape": [30_000_000, 0], "values": []}}}}, 400,
     "batch of 30000000 rows is larger than the limit"),
    ("post", "/api/v1.0/predictions", {"json": {"jsonData": [EXAMPLE_APPLICATION | {"capital-gain": 1e308}]}}, 400,
     "for 'capital-gain' in row 0 is outside its plausible range"),
    ("post", "/api/v1.0/predictions", {"json": {"data": {"names": list(FEATURE_NAMES),
                                                         "ndarray": [ROW[:1] + [-5] + ROW[2:]]}}}, 400,
     "unknown category -5 for 'workclass'"),
    ("post", "/api/v1.0/predictions", {"data": b"x" * (52 << 20), "headers": {"Content-Type": "application/json"}}, 413,
     "larger than the limit of 8388608"),
])
def test_every_bad_request_gets_its_4xx(classifier, method, path, kwargs, status, problem):
    response = getattr(requests, method)(f"{classifier.url}{path}", timeout=30, **kwargs)
    assert response.status_code == status, response.text
    assert problem in response.json()["status"]["info"]
    if status == 405:
        assert response.headers["Allow"] in ("POST", "GET")
    assert predict(classifier).ok  # and the service keeps serving


def test_no_cors_unless_configured(classifier, artifacts, tmp_path):
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    assert "Access-Control-Allow-Origin" not in requests.options(classifier.predictions_url, headers=headers, timeout=10).headers
    assert "Access-Control-Allow-Origin" not in predict(classifier, headers={"Origin": "https://evil.example"}).headers
    # nor on the metrics port, whatever it answers (its 404 and 405 included)
    for method, path in (("get", "/metrics"), ("get", "/nothing"), ("post", "/metrics")):
        answer = getattr(requests, method)(f"http://127.0.0.1:{classifier.metrics_port}{path}", headers=headers, timeout=10)
        assert "Access-Control-Allow-Origin" not in answer.headers, (method, path, answer.status_code)
    service = start_classifier(artifacts.classifier_dir, tmp_path, LOAN_CORS_ORIGINS="https://lender.example")
    try:
        service.wait_ready()
        allowed = predict(service, headers={"Origin": "https://lender.example"})
        refused = predict(service, headers={"Origin": "https://evil.example"})
    finally:
        service.stop()
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://lender.example"
    assert "Access-Control-Allow-Origin" not in refused.headers


# --- 5b. the local runner ---------------------------------------------------------------------------------------------


def runner(tmp_path, extra=(), **popen):
    ports = [free_port() for _ in range(5)]
    names = ["--classifier-port", "--explainer-port", "--classifier-metrics-port", "--explainer-metrics-port",
             "--console-port"]
    arguments = [arg for pair in zip(names, map(str, ports)) for arg in pair]
    process = subprocess.Popen(
        [sys.executable, "-m", "loanxai", "run", "--log-dir", str(tmp_path), *arguments, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )
    for line in process.stdout:
        if "Ctrl-C stops every service" in line:
            break
    return process, ports


def services_of(ports):
    """The ports of ``ports`` some microservice process still serves."""
    found = subprocess.run(["pgrep", "-af", "loanxai-microservice"], capture_output=True, text=True).stdout
    return {p for p in ports for line in found.splitlines() if f"--http-port {p} " in line}


def test_the_runner_stops_on_ctrl_c_even_when_started_ignoring_it(tmp_path):
    process, ports = runner(tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # a shell's `&`
    assert services_of(ports) == set(ports[:2])
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert not services_of(ports)


def test_no_service_outlives_a_killed_runner(tmp_path):
    process, ports = runner(tmp_path)
    assert services_of(ports) == set(ports[:2])
    process.kill()  # SIGKILL: the runner cannot clean up
    process.wait()
    deadline = time.monotonic() + 30
    while services_of(ports) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not services_of(ports)


def test_the_runner_gives_each_service_its_own_grpc_port(tmp_path, census):
    """With gRPC on, both services once bound 5000 (the port is reused, so nothing failed) and
    requests went at random to either: 5 of 6 100-row predictions failed (issue 19, in part)."""
    from seldon_core.seldon_client import SeldonClient

    from loanxai.artifacts import CLASSIFIER_DIR
    from loanxai.core.manifest import read_manifest

    grpc = [free_port(), free_port()]
    process, _ = runner(tmp_path, ["--classifier-grpc-port", str(grpc[0]), "--explainer-grpc-port", str(grpc[1])],
                        env={**os.environ, "GRPC_WORKERS": "1"})
    try:
        rows = read_manifest(CLASSIFIER_DIR).schema.encode_frame(census.test.head(100))
        classifier = SeldonClient(gateway="seldon", transport="grpc", gateway_endpoint=f"127.0.0.1:{grpc[0]}")
        answers = [classifier.predict(data=rows, payload_type="ndarray", client_return_type="dict") for _ in range(6)]
        assert all(a.success and len(a.response["data"]["ndarray"]) == 100 for a in answers), [a.msg for a in answers]
        explainer = SeldonClient(gateway="seldon", transport="grpc", gateway_endpoint=f"127.0.0.1:{grpc[1]}")
        explained = explainer.predict(data=rows[:1], payload_type="ndarray", client_return_type="dict")
        assert explained.success and explained.response["jsonData"]["kind"] == "anchor"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0


def test_the_runner_notices_a_service_that_stops(tmp_path):
    """The runner once stayed paused after its classifier stopped: the explainer, its metrics and
    Prometheus served on, answering 503 (issue 19, in part). Now it says which and why, stops
    everything else and exits with status 1."""
    process, ports = runner(tmp_path)
    try:
        found = subprocess.run(["pgrep", "-af", "loanxai-microservice"], capture_output=True, text=True).stdout.splitlines()
        pids = [int(line.split()[0]) for line in found if f"--http-port {ports[0]} " in line]
        supervisor = next(pid for pid in pids if os.getpgid(pid) == pid)  # the group's leader
        os.kill(supervisor, signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # the runner did not notice: stop it, and its services
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    assert process.returncode == 1, output
    assert "classifier stopped by itself (exit status" in output and "stopping everything else" in output
    assert not services_of(ports)
