"""The rules, alerts, PodMonitor and dashboard in deploy/monitoring/: generated from the code,
checked and unit-tested by promtool, validated against the Prometheus operator's real CRDs."""
import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from loanxai.artifacts import MONITORING_DIR, REPO_ROOT
from loanxai.fairness.metrics import wilson
from loanxai.monitoring import dashboard, rules
from loanxai.ops import deploycheck, kubedocs

ROOT = REPO_ROOT
RULES_TEST = Path(__file__).with_name("rules_test.yml")
PROMTOOL = shutil.which("promtool")


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool is missing: apt-get install prometheus (.ci/run installs it)"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def test_deploy_files_are_what_the_code_writes(tmp_path):
    rules.write(tmp_path, rules.RuleOptions())
    dashboard.write(tmp_path)
    for name in ("rules.yml", "prometheusrule.yaml", "dashboard.json"):
        assert (tmp_path / name).read_text() == (MONITORING_DIR / name).read_text(), \
            f"deploy/monitoring/{name} is stale: run make monitoring-files"


def test_the_prometheus_rule_holds_the_rules_file():
    plain = yaml.safe_load((MONITORING_DIR / "rules.yml").read_text())
    resource = yaml.safe_load((MONITORING_DIR / "prometheusrule.yaml").read_text())
    assert resource["spec"]["groups"] == plain["groups"]


def test_promtool_checks_the_rules():
    result = promtool("check", "rules", str(MONITORING_DIR / "rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in rules.rule_groups(rules.RuleOptions()))} rules found" in result.stdout


def test_promtool_unit_tests_every_rule_and_alert():
    result = promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = RULES_TEST.read_text()
    for rule in rules.recording_rules(rules.RuleOptions()) + rules.alerting_rules(rules.RuleOptions()):
        name = rule.get("record") or rule["alert"]
        # each rule's result is asserted, or used by a rule whose result is
        assert name in tested or any(name in other["expr"] for other in rules.recording_rules(rules.RuleOptions())
                                     + rules.alerting_rules(rules.RuleOptions())), f"{name} is not tested"


def test_the_unit_tests_fail_on_a_wrong_threshold(tmp_path):
    """The promtool tests can fail: a recall alert at 50% of the held-out recall misses the drop."""
    broken = yaml.safe_load((MONITORING_DIR / "rules.yml").read_text())
    for group in broken["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "LoanRecallDrop":
                rule["expr"] = rule["expr"].replace(f"< {rules.RECALL_FRACTION} *", "< 0.5 *")
    # the same layout as the repository's, so that the test file's relative path finds the broken rules
    copy = tmp_path / RULES_TEST.relative_to(ROOT)
    (tmp_path / MONITORING_DIR.relative_to(ROOT)).mkdir(parents=True)
    (tmp_path / MONITORING_DIR.relative_to(ROOT) / "rules.yml").write_text(yaml.safe_dump(broken))
    copy.parent.mkdir(parents=True)
    shutil.copy(RULES_TEST, copy)
    result = promtool("test", "rules", str(copy))
    assert result.returncode != 0 and "LoanRecallDrop" in result.stdout + result.stderr


def test_settings_reach_the_rules():
    settings = rules.RuleOptions(window="15m", for_="1m", min_applications=100, min_outcomes=20)
    text = yaml.safe_dump(rules.rule_groups(settings))
    assert "increase(loan_decisions_total[15m])" in text and ">= 100)" in text and ">= 20" in text
    assert {r["for"] for r in rules.alerting_rules(settings)} == {"1m"}


@pytest.fixture(scope="module")
def monitoring_documents():
    return deploycheck.render(MONITORING_DIR)


def test_monitoring_kustomization_renders(monitoring_documents):
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in monitoring_documents)
    assert kinds == [("ConfigMap", "loanxai-dashboard"), ("PodMonitor", "loanxai"), ("PrometheusRule", "loanxai")]
    config_map = next(d for d in monitoring_documents if d["kind"] == "ConfigMap")
    assert config_map["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert json.loads(config_map["data"]["loanxai.json"]) == dashboard.dashboard()


@pytest.mark.parametrize("kind", ["PodMonitor", "PrometheusRule"])
def test_monitoring_resources_validate_against_the_crds(monitoring_documents, kind):
    path = deploycheck.CRD_FILES[kind]
    assert path.is_file(), f"the CRD is expected at {path}"
    schema = deploycheck.crd_schema(path)
    assert deploycheck.schema_problems(monitoring_documents, schema, kind) == []
    # strict: a misspelled field fails
    broken = copy.deepcopy(monitoring_documents)
    target = next(d for d in broken if d["kind"] == kind)
    target["spec"]["podMetricsEndpoint" if kind == "PodMonitor" else "group"] = []
    assert deploycheck.schema_problems(broken, schema, kind)


def test_the_pod_monitor_scrapes_what_the_operator_serves(monitoring_documents):
    monitor = next(d for d in monitoring_documents if d["kind"] == "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/managed-by": "seldon-core"}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["podMetricsEndpoints"]] == [("metrics", kubedocs.METRICS_PATH)]


def test_dashboard_uses_only_labels_the_services_emit():
    text = json.dumps(dashboard.dashboard())
    # the defects of Seldon's "Prediction Analytics" dashboard (monitoring facts)
    assert "status=" not in text and "/Predict" not in text
    for expr in dashboard.queries():
        assert "{{" not in expr


def test_the_live_intervals_are_the_reports():
    """The Wilson bounds the promtool test expects of the recording rules are those the report
    and the gate compute (to the rules' six decimals of z)."""
    tested = yaml.safe_load(RULES_TEST.read_text())["tests"][0]["promql_expr_test"]
    bounds = {t["expr"]: [s["value"] for s in t["exp_samples"]] for t in tested if "approval_rate_" in t["expr"]}
    low, high = bounds['loan:approval_rate_low:window{attribute="gender"}'], bounds[
        'loan:approval_rate_high:window{attribute="gender"}']
    for (expected_low, expected_high), (approved, rows) in zip(zip(low, high), ((600, 2400), (1200, 2400))):
        assert wilson(approved, rows) == pytest.approx((expected_low, expected_high), abs=1e-7)
