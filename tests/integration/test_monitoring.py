"""Monitoring end to end: the real services (the Boston mortgage model) scraped by a real
Prometheus with the project's rules; held-out traffic, then the seed's trap
replayed with outcomes through the feedback endpoint, each phase's figures recomputed from the
decision record; every dashboard query; bad feedback."""
import re
import time
from datetime import UTC, datetime

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from loanxai.data.description import LABEL
from loanxai.monitoring import dashboard
from loanxai.monitoring.counters import NOT_GIVEN, SCORE_BINS
from loanxai.monitoring.rules import PSI_MAJOR, RuleOptions
from loanxai.monitoring.rules import write as write_rules
from loanxai.ops import replay
from loanxai.ops.prometheus import LocalPrometheus
from loanxai.ops.services import free_port
from loanxai.records.store import DecisionStore
from loanxai.report.production import record_figures
from tests.conftest import eventually, settle, start_classifier, start_explainer

#: short enough to judge each phase alone within a test
WINDOW_S = 40
SETTINGS = RuleOptions(window=f"{WINDOW_S}s", for_="4s", min_applications=300)
TRAP_ALERTS = {"LoanFeatureDrift", "LoanScoreDrift", "LoanAdverseImpactBelowScreen", "LoanRecallDrop"}


@pytest.fixture(scope="module")
def monitored(loanapp_artifacts, tmp_path_factory):
    """Both services on the loanapp artifacts and a Prometheus scraping them every second."""
    folder = tmp_path_factory.mktemp("monitoring")
    classifier = start_classifier(loanapp_artifacts.classifier_dir, folder)
    explainer = start_explainer(loanapp_artifacts.explainer_dir, classifier.predictions_url, folder)
    prometheus = LocalPrometheus(folder / "prometheus", free_port(),
                                 {"classifier": f"127.0.0.1:{classifier.metrics_port}",
                                  "explainer": f"127.0.0.1:{explainer.metrics_port}"},
                                 write_rules(folder / "rules", SETTINGS)[0], interval="1s")
    try:
        classifier.wait_ready()
        explainer.wait_ready()
        prometheus.start()
        yield classifier, explainer, prometheus
    finally:
        prometheus.stop()
        explainer.stop()
        classifier.stop()


def samples(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample the metrics endpoint serves: (name, labels without Seldon's deployment ones) -> value."""
    result = {}
    for family in text_string_to_metric_families(requests.get(url, timeout=10).text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k in ("attribute", "group", "decision", "bin", "feature",
                                                                        "kind", "outcome", "endpoint", "code")}
            result[sample.name, frozenset(labels.items())] = sample.value
    return result


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


def example(manifest, **protected):
    return {**manifest.dataset.example, **protected}


def test_decisions_are_counted_by_group_score_and_feature(monitored, loanapp_artifacts):
    classifier, _, _ = monitored
    manifest = loanapp_artifacts.classifier_manifest
    application = {k: v for k, v in example(manifest).items() if k in manifest.schema.to_dict()["feature_names"]}
    settle()
    before = samples(classifier.metrics_url)
    answer = requests.post(classifier.predictions_url, json={"jsonData": [{**application, "black": "yes"}]}, timeout=30).json()
    approval = answer["data"]["ndarray"][0][1]
    [decision] = answer["meta"]["tags"]["decisions"]
    assert decision == ("approved" if approval >= manifest.cutoff else "rejected")
    requests_before = value(before, "loan_requests_total")
    assert eventually(lambda: value(samples(classifier.metrics_url), "loan_requests_total") == requests_before + 1)
    after = samples(classifier.metrics_url)
    for attribute, group in (("black", "yes"), ("hispan", NOT_GIVEN), ("male", NOT_GIVEN)):
        assert value(after, "loan_decisions_total", attribute=attribute, group=group, decision=decision) == \
            value(before, "loan_decisions_total", attribute=attribute, group=group, decision=decision) + 1
    score_bin = SCORE_BINS[min(int(approval * 10), 9)]
    assert value(after, "loan_score_total", bin=score_bin) == value(before, "loan_score_total", bin=score_bin) + 1
    gdlin = application["gdlin"]  # the example holds labels
    bin_before = value(before, "loan_feature_total", feature="gdlin", bin=gdlin)
    assert value(after, "loan_feature_total", feature="gdlin", bin=gdlin) == bin_before + 1
    # every bin and group exists from the start, at 0 if never seen: PSI sums over all of them
    bins = manifest.monitoring["features"]["loanamt"]["bins"]
    assert all(("loan_feature_total", frozenset({"feature": "loanamt", "bin": b}.items())) in after for b in bins)
    # the references are served beside the counts
    assert value(after, "loan_gate_min_adverse_impact_ratio") == 0.8
    assert value(after, "loan_cutoff") == manifest.cutoff
    assert value(after, "loan_gate_screened", attribute="black") == 1
    assert value(after, "loan_held_out_recall", attribute="all", group="all") == pytest.approx(
        manifest.metrics["recall"])


def test_every_answer_carries_a_request_id(monitored, loanapp_artifacts):
    classifier, _, _ = monitored
    application = example(loanapp_artifacts.classifier_manifest)
    generated = requests.post(classifier.predictions_url, json={"jsonData": application}, timeout=30).json()["meta"]["puid"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    given = requests.post(classifier.predictions_url, json={"jsonData": application, "meta": {"puid": "req-17"}},
                          timeout=30).json()["meta"]["puid"]
    assert given == "req-17"


def test_an_unknown_group_is_refused_and_makes_no_series(monitored, loanapp_artifacts):
    classifier, _, _ = monitored
    application = example(loanapp_artifacts.classifier_manifest, black="purple")
    answer = requests.post(classifier.predictions_url, json={"jsonData": application},
                           timeout=30)
    assert answer.status_code == 400 and "purple" in answer.json()["status"]["info"]
    assert not any(dict(labels).get("group") == "purple" for _, labels in samples(classifier.metrics_url))


def test_feedback_counts_outcomes_by_group(monitored, loanapp_artifacts):
    classifier, _, _ = monitored
    application = {k: v for k, v in example(loanapp_artifacts.classifier_manifest, black="yes").items() if k != "married"}
    request = {"jsonData": [application]}
    response = requests.post(classifier.predictions_url, json=request, timeout=30).json()
    predicted = response["meta"]["tags"]["decisions"] == ["approved"]
    kind = "true_positive" if predicted else "false_negative"  # the truth: approved
    settle()
    before = samples(classifier.metrics_url)
    answer = requests.post(f"{classifier.url}/api/v1.0/feedback", json={
        "request": request, "response": response, "truth": {"data": {"ndarray": [["approved"]]}}}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["jsonData"] == {"outcomes": 1, "correct": int(predicted), "recorded": 1}  # on the record too
    name = f"seldon_metric_{kind}_total"
    assert eventually(lambda: value(samples(classifier.metrics_url), name, attribute="all", group="all")
                      == value(before, name, attribute="all", group="all") + 1)
    after = samples(classifier.metrics_url)
    for attribute, group in (("all", "all"), ("black", "yes"), ("married", NOT_GIVEN)):
        name = f"seldon_metric_{kind}_total"
        assert value(after, name, attribute=attribute, group=group) == value(before, name, attribute=attribute, group=group) + 1


BAD_FEEDBACK = [
    ({"response": {"data": {"ndarray": [[0.4, 0.6]]}}}, "needs 'truth'"),
    ({"truth": {"data": {"ndarray": [[1]]}}}, "needs 'response'"),
    ({"response": {"data": {"ndarray": [[0.4, 0.6]]}}, "truth": {"data": {"ndarray": [["maybe"]]}}}, "'truth' row 0 must be"),
    ({"response": {"data": {"ndarray": [[0.4, 0.6]]}}, "truth": {"data": {"ndarray": [[1], [0]]}}}, "2 decisions for 1"),
    ({"response": {"data": {"ndarray": [[0.6]]}}, "truth": {"data": {"ndarray": [[1]]}}}, "two probabilities"),
    ({"response": {"data": {"names": ["no", "yes"], "ndarray": [[0.4, 0.6]]}}, "truth": {"data": {"ndarray": [[1]]}}},
     "'response.data.names' must be"),
    ({"request": {"jsonData": [{"loanamt": 100}]}, "response": {"data": {"ndarray": [[0.4, 0.6]]}},
      "truth": {"data": {"ndarray": [[1]]}}}, "missing feature"),
    ({"response": {"data": {"ndarray": [[0.4, 0.6]]}}, "truth": "approved"}, "Invalid JSON"),
]


@pytest.mark.parametrize("feedback, problem", BAD_FEEDBACK)
def test_bad_feedback_is_a_400_naming_the_problem(monitored, loanapp_artifacts, feedback, problem):
    classifier, _, _ = monitored
    settle()
    before = samples(classifier.metrics_url)
    answer = requests.post(f"{classifier.url}/api/v1.0/feedback", json=feedback, timeout=30)
    assert answer.status_code == 400, answer.text
    assert problem in answer.json()["status"]["info"]
    settle()  # what would have been counted is
    after = samples(classifier.metrics_url)
    assert all(value(after, f"seldon_metric_{k}_total", attribute="all", group="all")
               == value(before, f"seldon_metric_{k}_total", attribute="all", group="all")
               for k in ("true_positive", "false_positive", "true_negative", "false_negative"))
    # and the service keeps serving
    assert requests.post(classifier.predictions_url, json={"jsonData": example(loanapp_artifacts.classifier_manifest)},
                         timeout=30).status_code == 200


def test_explanations_are_counted_by_kind_and_outcome(monitored, loanapp_artifacts):
    classifier, explainer, _ = monitored
    settle()
    before, decided_before = samples(explainer.metrics_url), samples(classifier.metrics_url)
    application = example(loanapp_artifacts.classifier_manifest)
    assert requests.post(explainer.predictions_url, json={"jsonData": application}, timeout=60).status_code == 200
    assert requests.post(explainer.predictions_url, json={"jsonData": application, "meta": {"tags": {"kind": "story"}}},
                         timeout=60).status_code == 400
    assert eventually(lambda: value(samples(explainer.metrics_url), "loan_http_requests_total",
                                    endpoint="/api/v1.0/predictions", code="400") >= 1)
    after = samples(explainer.metrics_url)
    assert value(after, "loan_explanations_total", kind="anchor", outcome="ok") == \
        value(before, "loan_explanations_total", kind="anchor", outcome="ok") + 1
    assert value(after, "loan_explanations_total", kind="invalid", outcome="4xx") == \
        value(before, "loan_explanations_total", kind="invalid", outcome="4xx") + 1
    timed_before = value(before, "loan_explanation_seconds_count", kind="anchor")
    assert value(after, "loan_explanation_seconds_count", kind="anchor") == timed_before + 1
    assert value(after, "loan_explanation_model_calls_total", kind="anchor") > value(
        before, "loan_explanation_model_calls_total", kind="anchor"
    )
    # the explainer's samples are not applicants: the classifier answered them and counted no decision
    settle()
    decided = samples(classifier.metrics_url)
    assert value(decided, "loan_http_requests_total", endpoint="/api/v1.0/predictions", code="200") > value(
        decided_before, "loan_http_requests_total", endpoint="/api/v1.0/predictions", code="200"
    )
    assert value(decided, "loan_applications_total") == value(decided_before, "loan_applications_total")


def firing(prometheus):
    return {a["labels"]["alertname"] for a in replay.firing(prometheus.url)}


def wait_window(prometheus, started):
    """Until everything counted before ``started`` has left the rules' window."""
    time.sleep(max(0.0, started + WINDOW_S + 3 - time.monotonic()))


def test_held_out_traffic_raises_nothing_and_the_trap_raises_the_alerts(monitored, loanapp_artifacts):
    classifier, explainer, prometheus = monitored
    wait_window(prometheus, time.monotonic())  # what the other tests sent leaves the window
    schema, test, predicted = replay.held_out_predictions(loanapp_artifacts.classifier_dir)
    outcomes = test[LABEL].to_numpy().astype(bool)

    # held-out traffic: the live figures are the held-out ones
    before = prometheus.query("sum(loan_applications_total)")
    sent_before = float(before[0]["value"][1]) if before else 0.0
    started, since = time.monotonic(), datetime.now(UTC)
    replay.send(classifier.url, replay.applications(schema, test), outcomes)
    until = datetime.now(UTC)
    prometheus.wait_for(f"sum(loan_applications_total) >= {sent_before + len(test)}")
    time.sleep(8)  # two rule evaluations and the alerts' 4 s
    # the live ratios are the held-out ones training recorded: the screen's alert fires if, and only if, they flag
    manifest = loanapp_artifacts.classifier_manifest
    recorded = {a: air["ratio"] for a, air in manifest.held_out["air"].items() if air["ratio"] is not None}
    flagged = any(recorded[a] < 0.8 for a in manifest.gate.thresholds["screen"] or recorded if a in recorded)
    assert firing(prometheus) == ({"LoanAdverseImpactBelowScreen"} if flagged else set())
    psi = {r["metric"]["feature"]: float(r["value"][1]) for r in prometheus.query("loan:feature_psi:window")}
    assert set(psi) == set(schema.feature_names) and max(psi.values()) < PSI_MAJOR, psi
    impact = {r["metric"]["attribute"]: float(r["value"][1]) for r in prometheus.query("loan:adverse_impact_ratio:window")}
    # within a decision or two: on a loaded machine the window's start may cut into the sending
    assert impact == pytest.approx(recorded, abs=0.01), (impact, recorded)
    [recall] = prometheus.query('loan:recall:window{attribute="all"}')
    assert float(recall["value"][1]) == pytest.approx(loanapp_artifacts.classifier_manifest.metrics["recall"], abs=0.01)
    # the record gives the phase's figures exactly: the held-out ones training recorded
    store = DecisionStore(classifier.env["LOAN_RECORDS_URL"])
    figures = record_figures(store, manifest, since, until)
    assert figures["applications"] == len(test) and figures["approved"] == int(predicted.sum())
    assert {a: f["ratio"] for a, f in figures["adverse_impact"].items() if a in recorded} == pytest.approx(recorded, abs=1e-12)
    assert figures["outcomes"]["all"]["all"]["recall"] == pytest.approx(manifest.metrics["recall"], abs=1e-12)
    assert figures["outcomes"]["all"]["all"]["outcomes"] == len(test)
    assert {f: v["psi"] for f, v in figures["features"].items()} == pytest.approx(psi, abs=0.01)
    [score_psi] = prometheus.query("loan:score_psi:window")
    assert figures["score"]["psi"] == pytest.approx(float(score_psi["value"][1]), abs=0.01)

    # the trap: a segment the model serves worst, from the group it approves least
    wait_window(prometheus, started + 5)
    trap = replay.choose_trap(schema, test, predicted, 30, manifest.gate.thresholds["screen"])
    rows = replay.trap_rows(test, trap, 1000, seed=0)
    records = replay.applications(schema, test.iloc[rows])
    since = datetime.now(UTC)
    replay.send(classifier.url, records, outcomes[rows])
    trapped = record_figures(store, manifest, since)
    assert trapped["applications"] == len(rows)
    assert trapped["features"][trap.feature]["psi"] > PSI_MAJOR
    found, approved = predicted[rows] & outcomes[rows], outcomes[rows]
    assert trapped["outcomes"]["all"]["all"]["recall"] == pytest.approx(found.sum() / approved.sum(), abs=1e-12)
    assert replay.explain(explainer.url, records[:2]) == [200] * 4
    fired = replay.wait_for_alerts(prometheus.url, TRAP_ALERTS, 60)
    now = {a["labels"]["alertname"]: a for a in fired}
    assert TRAP_ALERTS <= set(now), replay.describe_alerts(fired)
    assert "LoanErrorRatioHigh" not in now and "LoanExplanationSlow" not in now
    # as `make replay` keeps them: each alert's labels and the value of its expression
    kept = replay.fired_alerts(fired)
    impact = {a["labels"]["attribute"]: a["value"] for a in kept if a["alertname"] == "LoanAdverseImpactBelowScreen"}
    assert 0 <= impact[trap.attribute] < 0.8
    assert all(a["value"] > PSI_MAJOR and "severity" not in a["labels"] for a in kept if a["alertname"] == "LoanFeatureDrift")
    drifted = {r["metric"]["feature"] for r in prometheus.query(f"loan:feature_psi:window > {PSI_MAJOR}")}
    assert trap.feature in drifted

    # every panel of the dashboard shows data
    empty = [expr for expr in dashboard.queries() if not prometheus.query(expr)]
    assert empty == []


def test_metrics_off_counts_nothing(loanapp_artifacts, tmp_path):
    classifier = start_classifier(loanapp_artifacts.classifier_dir, tmp_path, LOAN_METRICS="off")
    try:
        classifier.wait_ready()
        application = example(loanapp_artifacts.classifier_manifest)
        assert requests.post(classifier.predictions_url, json={"jsonData": application}, timeout=30).status_code == 200
        settle()
        names = {name for name, _ in samples(classifier.metrics_url)}
        assert not any(n.startswith(("loan_", "seldon_metric_")) for n in names), names
    finally:
        classifier.stop()
