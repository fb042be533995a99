"""LOAN_AUTH=on with real tokens (keys made here), against the real services: every role
against every endpoint, refused tokens, the callers' budgets, and who asked on the record."""
import base64
import csv
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from loanxai.core.cli import main as loanxai
from loanxai.ops.tokens import JWKS_FILE, SIGNING_KEY_FILE, make_keys, mint
from loanxai.records.store import DecisionStore
from tests.conftest import REJECTED_APPLICATION, running, settle, start_classifier, start_explainer

ISSUER, AUDIENCE = "https://idp.test.example", "loanxai"
#: a budget small enough to reach in a test, in windows short enough to wait for
EXPLANATIONS, WINDOW_S = 3, 12


def token(keys, role, subject="caller-1", minutes=10.0, issuer=ISSUER, audience=AUDIENCE):
    return mint(keys / SIGNING_KEY_FILE, subject, [role] if isinstance(role, str) else role, issuer, audience, minutes)


def auth_env(keys):
    return {"LOAN_AUTH": "on", "LOAN_AUTH_KEYS": str(keys / JWKS_FILE), "LOAN_AUTH_ISSUER": ISSUER,
            "LOAN_CALLER_EXPLANATIONS": str(EXPLANATIONS), "LOAN_CALLER_WINDOW": str(WINDOW_S)}


@pytest.fixture(scope="module")
def services(artifacts, keys, tmp_path_factory):
    """A classifier and an explainer with LOAN_AUTH=on; the explainer calls the classifier with a decide token."""
    logs = tmp_path_factory.mktemp("auth-logs")
    token_file = logs / "classifier-token"
    token_file.write_text(token(keys, "decide", subject="loan-explainer", minutes=60))
    classifier = start_classifier(artifacts.classifier_dir, logs, **auth_env(keys))
    explainer = start_explainer(artifacts.explainer_dir, classifier.predictions_url, logs, **auth_env(keys),
                                LOAN_RECORDS_URL=classifier.env["LOAN_RECORDS_URL"],
                                LOAN_CLASSIFIER_TOKEN_FILE=str(token_file))
    with running(classifier, explainer) as services:
        yield services


def call(method, url, bearer=None, **kwargs):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return requests.request(method, url, headers=headers, timeout=60, **kwargs)


def decide(classifier, keys, application_id):
    answer = call("POST", classifier.predictions_url, token(keys, "decide", subject="lender-system"),
                  json={"jsonData": [REJECTED_APPLICATION], "meta": {"tags": {"application_ids": [application_id]}}})
    assert answer.status_code == 200, answer.text
    return answer.json()


def explain_message(application_id, **tags):
    return {"jsonData": REJECTED_APPLICATION, "meta": {"tags": {"application_ids": [application_id], **tags}}}


def test_every_role_against_every_endpoint(services, keys):
    classifier, explainer = services
    application_id = f"roles-{uuid.uuid4().hex[:8]}"
    decided = decide(classifier, keys, application_id)
    endpoints = {
        "classifier predictions": ("POST", classifier.predictions_url, {"json": {"jsonData": [REJECTED_APPLICATION]}}),
        "classifier feedback": ("POST", f"{classifier.url}/api/v1.0/feedback",
                                {"json": {"response": decided, "truth": {"data": {"ndarray": [["approved"]]}}}}),
        "classifier metadata": ("GET", f"{classifier.url}/api/v1.0/metadata", {}),
        "explainer predictions": ("POST", explainer.predictions_url, {"json": explain_message(application_id)}),
        "explainer metadata": ("GET", f"{explainer.url}/api/v1.0/metadata", {}),
    }
    may = {"decide": {"classifier predictions", "classifier feedback", "classifier metadata"},
           "explain": {"explainer predictions", "explainer metadata"},
           "audit": {"explainer predictions", "explainer metadata"}}
    for role, allowed in may.items():
        bearer = token(keys, role, subject=f"matrix-{role}")
        for name, (method, url, body) in endpoints.items():
            answer = call(method, url, bearer, **body)
            if name in allowed:
                assert answer.status_code == 200, (role, name, answer.text)
            else:
                assert answer.status_code == 403, (role, name, answer.text)
                info = answer.json()["status"]
                assert info["reason"] == "FORBIDDEN" and f"has '{role}'" in info["info"], info
    for name, (method, url, body) in endpoints.items():
        answer = call(method, url, None, **body)
        assert answer.status_code == 401, (name, answer.text)
        assert answer.json()["status"]["reason"] == "UNAUTHENTICATED"
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="loanxai"'
    # probes need no token; the metrics port is the mesh's to guard (deploy/base/auth.yaml)
    for service in services:
        for path in ("/health/ping", "/health/status"):
            assert requests.get(service.url + path, timeout=10).status_code == 200
        assert requests.get(service.metrics_url, timeout=10).status_code == 200


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(claims, algorithm, secret=None):
    """A token of valid claims with ``algorithm`` in its header: unsigned (none), or an HMAC of
    ``secret`` (the classic confusion: the public key used as a shared secret)."""
    signing_input = f"{b64(json.dumps({'alg': algorithm, 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_tokens_that_are_not_valid_here_get_401_naming_why(services, keys, tmp_path):
    classifier, _ = services
    good = token(keys, "decide")
    claims = jwt.decode(good, options={"verify_signature": False})
    header, _, signature = good.split(".")
    tampered_claims = b64(json.dumps(claims | {"sub": "someone-else"}).encode())
    make_keys(tmp_path / "other")
    public = serialization.load_pem_private_key((keys / SIGNING_KEY_FILE).read_bytes(), None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    cases = {
        "expired": (token(keys, "decide", minutes=-5), "the token has expired"),
        "tampered": (f"{header}.{tampered_claims}.{signature}", "signature does not verify"),
        "signed by another key": (mint(tmp_path / "other" / SIGNING_KEY_FILE, "x", ["decide"], ISSUER, AUDIENCE, 5),
                                  "key id"),
        "alg none": (forged(claims, "none"), "algorithm 'none' is not accepted"),
        "HS256, the public key as its secret": (forged(claims, "HS256", public), "algorithm 'HS256' is not accepted"),
        "another issuer": (token(keys, "decide", issuer="https://elsewhere"), "not from the issuer"),
        "another audience": (token(keys, "decide", audience="another-service"), "not for this audience"),
        "not a JWT": ("abc.def", "not a JWT"),
    }
    for case, (bearer, words) in cases.items():
        answer = call("POST", classifier.predictions_url, bearer, json={"jsonData": [REJECTED_APPLICATION]})
        assert answer.status_code == 401, (case, answer.text)
        assert words in answer.json()["status"]["info"], (case, answer.json())
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        assert bearer not in answer.text  # the token is never echoed
    assert call("POST", classifier.predictions_url, good, json={"jsonData": [REJECTED_APPLICATION]}).status_code == 200


def test_a_callers_budget_gets_429_with_retry_after_and_resets(services, keys):
    classifier, explainer = services
    application_id = f"budget-{uuid.uuid4().hex[:8]}"
    decide(classifier, keys, application_id)
    officer = token(keys, "explain", subject=f"officer-{uuid.uuid4().hex[:6]}")
    while time.time() % WINDOW_S > WINDOW_S / 3:  # begin early in a window: the whole budget fits in it
        time.sleep(0.2)
    for seed in range(EXPLANATIONS):
        answer = call("POST", explainer.predictions_url, officer, json=explain_message(application_id, seed=seed))
        assert answer.status_code == 200, answer.text
    over = call("POST", explainer.predictions_url, officer, json=explain_message(application_id))
    assert over.status_code == 429, over.text
    assert over.json()["status"]["reason"] == "CALLER_OVER_BUDGET"
    assert f"{EXPLANATIONS} explanations (LOAN_CALLER_EXPLANATIONS: {EXPLANATIONS})" in over.json()["status"]["info"]
    retry_after = int(over.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW_S
    # another caller has a budget of its own
    auditor = token(keys, "audit", subject=f"auditor-{uuid.uuid4().hex[:6]}")
    assert call("POST", explainer.predictions_url, auditor, json=explain_message(application_id)).status_code == 200
    time.sleep(retry_after)
    again = call("POST", explainer.predictions_url, officer, json=explain_message(application_id))
    assert again.status_code == 200, again.text
    metrics = requests.get(explainer.metrics_url, timeout=10).text
    assert 'loan_caller_explanations_total{' in metrics and 'outcome="429"' in metrics and 'role="explain"' in metrics
    assert "loan_caller_budget_busiest_share" in metrics


def test_who_asked_is_on_the_record_and_the_records_command_lists_it(services, keys):
    classifier, explainer = services
    application_id = f"looked-{uuid.uuid4().hex[:8]}"
    decided = decide(classifier, keys, application_id)
    subject = f"auditor-{uuid.uuid4().hex[:6]}"
    answer = call("POST", explainer.predictions_url, token(keys, "audit", subject=subject),
                  json=explain_message(application_id, seed=5))
    assert answer.status_code == 200, answer.text
    request_id = answer.json()["jsonData"]["recorded_for"]["request_id"]
    assert request_id == decided["meta"]["puid"]
    [event] = DecisionStore(classifier.env["LOAN_RECORDS_URL"]).events_of(request_id, 0)
    assert event["content"]["asked_by"] == {"subject": subject, "role": "audit"}
    assert event["content"]["parameters"] == {"kind": "anchor", "seed": 5, "threshold": 0.95}
    looked = subprocess.run([sys.executable, "-m", "loanxai", "records", "looked", application_id], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "LOAN_RECORDS_URL": classifier.env["LOAN_RECORDS_URL"]})
    assert looked.returncode == 0, looked.stderr
    assert "1 explanations asked" in looked.stdout and f"{subject} (audit)  anchor" in looked.stdout, looked.stdout
    # with LOAN_AUTH=on an explanation names the decision it explains: none other is answered
    unnamed = call("POST", explainer.predictions_url, token(keys, "audit", subject=subject),
                   json={"jsonData": REJECTED_APPLICATION})
    assert unnamed.status_code == 400 and "meta.tags.application_ids" in unnamed.json()["status"]["info"]


def test_the_python_clients_carry_each_services_token(services, keys, tmp_path, capsys, caplog):
    classifier, explainer = services
    decide_file, explain_file = tmp_path / "decide", tmp_path / "explain"
    decide_file.write_text(token(keys, "decide", subject="client-system"))
    explain_file.write_text(token(keys, "explain", subject=f"client-officer-{uuid.uuid4().hex[:6]}"))
    arguments = ["--classifier-url", classifier.url, "--explainer-url", explainer.url]
    assert loanxai(["client", *arguments, "--classifier-token-file", str(decide_file),
                    "--explainer-token-file", str(explain_file)]) == 0
    out = capsys.readouterr().out
    assert "SeldonClient explanation: " in out and out.count("model calls") == 2
    # the explainer's token cannot decide: the classifier says so
    assert loanxai(["client", *arguments, "--classifier-token-file", str(explain_file)]) == 1
    assert "403: /api/v1.0/metadata takes the role decide" in caplog.text


def test_the_file_scorer_carries_its_token(services, keys, tmp_path, caplog):
    classifier, _ = services
    applications = tmp_path / "applications.csv"
    with applications.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(REJECTED_APPLICATION))
        writer.writeheader()
        writer.writerows([REJECTED_APPLICATION, REJECTED_APPLICATION | {"hours-per-week": 60}])
    token_file = tmp_path / "decide"
    token_file.write_text(token(keys, "decide", subject="batch-scorer"))
    out = tmp_path / "decisions.csv"
    assert loanxai(["score", str(applications), "--out", str(out), "--classifier-url", classifier.url,
                    "--classifier-token-file", str(token_file)]) == 0
    with out.open() as file:
        assert [row["decision"] for row in csv.DictReader(file)][0] == "rejected"
    assert loanxai(["score", str(applications), "--out", str(tmp_path / "refused.csv"), "--classifier-url", classifier.url]) == 1
    assert "401: /api/v1.0/metadata needs a bearer token" in caplog.text


def test_an_explainer_without_the_classifiers_token_says_so(services, artifacts, keys, tmp_path):
    classifier, _ = services
    application_id = f"tokenless-{uuid.uuid4().hex[:8]}"
    decide(classifier, keys, application_id)
    with running(start_explainer(artifacts.explainer_dir, classifier.predictions_url, tmp_path, **auth_env(keys),
                                 LOAN_RECORDS_URL=classifier.env["LOAN_RECORDS_URL"])) as (explainer,):
        answer = call("POST", explainer.predictions_url, token(keys, "explain"), json=explain_message(application_id))
        assert answer.status_code == 502, answer.text
        assert "answered 401" in answer.json()["status"]["info"] and "bearer token" in answer.json()["status"]["info"]


@pytest.mark.parametrize("env, words", [
    ({"LOAN_AUTH": "on"}, "LOAN_AUTH=on needs LOAN_AUTH_KEYS"),
    ({"LOAN_AUTH": "on", "LOAN_AUTH_KEYS": "/nonexistent/jwks.json", "LOAN_AUTH_ISSUER": ISSUER},
     "LOAN_AUTH_KEYS: cannot read /nonexistent/jwks.json"),
    ({"LOAN_AUTH": "on", "LOAN_AUTH_KEYS": "KEYS", "LOAN_AUTH_ISSUER": ISSUER, "GRPC_WORKERS": "1"},
     "LOAN_AUTH=on covers REST only"),
])
def test_a_service_refuses_to_start_with_auth_half_configured(artifacts, keys, tmp_path, env, words):
    env = {k: str(keys / JWKS_FILE) if v == "KEYS" else v for k, v in env.items()}
    classifier = start_classifier(artifacts.classifier_dir, tmp_path, **env)
    try:
        assert classifier.process.wait(timeout=60) == 1
        assert words in classifier.log_tail(), classifier.log_tail()
        assert "Traceback" not in classifier.log_tail()
    finally:
        classifier.stop()


# --- the third round's probes (make reliability runs them too) ---------------------------------------


def es256_forged(claims, kid=None):
    """A token saying alg ES256 (the keys are RSA) with a garbage signature."""
    header = {"alg": "ES256", "typ": "JWT"} | ({"kid": kid} if kid is not None else {})
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(b'x' * 64)}"


@pytest.mark.reliability
def test_every_token_failure_is_a_401_never_a_500(services, keys):
    classifier, explainer = services
    claims = jwt.decode(token(keys, "decide"), options={"verify_signature": False})
    kid = jwt.get_unverified_header(token(keys, "decide"))["kid"]
    cases = {
        "ES256 on an RSA key, garbage signature": (es256_forged(claims, kid), "does not fit its key"),
        "ES256, no key id": (es256_forged(claims), "does not fit its key"),
        "an unknown algorithm": (forged(claims, "RS999"), "algorithm 'RS999' is not accepted"),
        "a key id that is an object": (forged(claims, "RS256").replace(
            b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()),
            b64(json.dumps({"alg": "RS256", "kid": {"a": 1}}).encode())), "Key ID header parameter must be a string"),
        "valid for a hundred years": (token(keys, "decide", minutes=100 * 365 * 24 * 60),
                                      "longer than the 86400 s accepted (LOAN_AUTH_MAX_LIFETIME)"),
        "a subject with an escape sequence": (token(keys, "decide", subject="x\x1b[2J"), "the token's sub holds"),
    }
    for service in services:
        for case, (bearer, words) in cases.items():
            answer = call("POST", service.predictions_url, bearer, json={"jsonData": [REJECTED_APPLICATION]})
            assert answer.status_code == 401, (case, answer.text)
            assert words in answer.json()["status"]["info"], (case, answer.json())


@pytest.mark.reliability
def test_a_decide_token_never_gets_an_unrecorded_decision(services, keys):
    classifier, _ = services
    puid = uuid.uuid4().hex
    sampling = {"jsonData": [REJECTED_APPLICATION], "meta": {"puid": puid, "tags": {"purpose": "explanation"}}}
    for subject in ("lender-system", "loan-explainer"):  # the explainer's own token holds the decide role too
        answer = call("POST", classifier.predictions_url, token(keys, "decide", subject=subject), json=sampling)
        assert answer.status_code == 403, answer.text
        assert "only the explainer may ask" in answer.json()["status"]["info"]
    assert DecisionStore(classifier.env["LOAN_RECORDS_URL"]).decisions_of_request(puid) == []


def sampled_rows(classifier):
    from tests.reliability.test_reliability import counted

    return counted(classifier, "loan_sampled_rows_total")


def budgeted_explainer(services, artifacts, keys, tmp_path, **env):
    """A decided application's id, and an explainer of the module's classifier with budgets of ``env``'s (a window of
    an hour unless set) and its own token for the classifier."""
    classifier, _ = services
    application_id = f"budget-{uuid.uuid4().hex[:8]}"
    decide(classifier, keys, application_id)
    token_file = tmp_path / "classifier-token"
    token_file.write_text(token(keys, "decide", subject="loan-explainer", minutes=60))
    explainer = start_explainer(artifacts.explainer_dir, classifier.predictions_url, tmp_path,
                                **auth_env(keys) | {"LOAN_CALLER_WINDOW": "3600"} | env,
                                LOAN_RECORDS_URL=classifier.env["LOAN_RECORDS_URL"], LOAN_CLASSIFIER_TOKEN_FILE=str(token_file))
    return application_id, explainer


@pytest.mark.reliability
def test_concurrent_explanations_never_take_more_rows_than_the_callers_budget(services, artifacts, keys, tmp_path):
    classifier, _ = services
    budget_rows = 6000  # about two recourse searches (some 2,500 rows each, in calls of up to 1,000)
    application_id, explainer = budgeted_explainer(services, artifacts, keys, tmp_path, LOAN_CALLER_EXPLANATIONS="100",
                                                   LOAN_CALLER_MODEL_ROWS=str(budget_rows), GUNICORN_WORKERS="3",
                                                   LOAN_EXPLAIN_QUEUE="4")
    with running(explainer):
        officer = token(keys, "explain", subject=f"officer-{uuid.uuid4().hex[:6]}")
        before = sampled_rows(classifier)
        answers = []

        def ask(seed):
            answers.append(call("POST", explainer.predictions_url, officer,
                                json=explain_message(application_id, kind="recourse", seed=seed)))

        threads = [threading.Thread(target=ask, args=(seed,)) for seed in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        settle()  # the classifier counts within a second of its answers
        taken = sampled_rows(classifier) - before
    statuses = sorted(a.status_code for a in answers)
    assert 429 in statuses, statuses  # interleaved, the twelve may use the budget up before any ends
    assert all(s in (200, 429, 503) for s in statuses), [a.text for a in answers]
    assert 0 < taken <= budget_rows, taken
    over = next(a for a in answers if a.status_code == 429)
    assert "LOAN_CALLER_MODEL_ROWS" in over.json()["status"]["info"] and int(over.headers["Retry-After"]) >= 1
    from tests.reliability.test_reliability import FIGURES

    FIGURES["concurrent_recourse_rows"] = {"budget_rows": budget_rows, "rows_taken": int(taken),
                                          "answers": dict(sorted((str(s), statuses.count(s)) for s in set(statuses)))}


@pytest.mark.reliability
def test_busy_refusals_are_not_charged_to_the_callers_budget(services, artifacts, keys, tmp_path):
    explanations = 3
    application_id, explainer = budgeted_explainer(services, artifacts, keys, tmp_path,
                                                   LOAN_CALLER_EXPLANATIONS=str(explanations), LOAN_EXPLAIN_QUEUE="0")
    with running(explainer):
        officer = token(keys, "explain", subject=f"officer-{uuid.uuid4().hex[:6]}")
        answers = []
        threads = [threading.Thread(target=lambda seed=seed: answers.append(call(
            "POST", explainer.predictions_url, officer, json=explain_message(application_id, seed=seed))))
            for seed in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        busy = sum(a.status_code == 503 and a.json()["status"]["reason"] == "EXPLAINER_BUSY" for a in answers)
        served = sum(a.status_code == 200 for a in answers)
        assert busy >= 1 and served + busy == 6, [a.status_code for a in answers]
        # the busy ones cost nothing: the caller still has every explanation it was not served
        for seed in range(explanations - served):
            again = call("POST", explainer.predictions_url, officer, json=explain_message(application_id, seed=10 + seed))
            assert again.status_code == 200, again.text
        over = call("POST", explainer.predictions_url, officer, json=explain_message(application_id, seed=99))
        assert over.status_code == 429, over.text
