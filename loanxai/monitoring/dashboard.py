"""The Grafana dashboard of the services (``deploy/monitoring/dashboard.json``).

``loanxai dashboard`` writes it; a test keeps the file equal to what this module
writes and runs every panel's query against a real Prometheus scraping the real services.
Panels read the recording rules of :mod:`loanxai.monitoring.rules` and the services' own series, with
only the labels they emit (``attribute``, ``group``, ``feature``, ``kind``, ``endpoint``,
``code``, Seldon's ``model_name``...) and ``model_role``, which Prometheus gives each
classifier's series (the champion, and a challenger shadowing it). Time series panels sum
``without`` the labels telling processes and replicas apart, over 5-minute rates. The last row
(:data:`CHALLENGER_PANELS`) sets a challenger beside the champion: empty without one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from loanxai.artifacts import MONITORING_DIR
from loanxai.config import CHALLENGER, CHAMPION, Settings
from loanxai.core.cli import command_parser
from loanxai.monitoring.rules import AGGREGATED, APPROVAL_DIFFERENCE, MAX_APPROVAL_GAP, RuleOptions, role_ratio

__all__ = ["CHALLENGER_PANELS", "PANELS", "challenger_queries", "dashboard", "parser", "queries", "run", "write"]

DASHBOARD_FILE = "dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: the range of the dashboard's own rates
RATE = "5m"


def _rate(metric: str, by: str = "") -> str:
    return f"sum without ({AGGREGATED}{', ' + by if by else ''}) (rate({metric}[{RATE}]))"


#: (title, kind, unit, [(query, legend)], description), row by row
PANELS: list[tuple[str, str, str, list[tuple[str, str]], str]] = [
    ("Approval rate by group", "timeseries", "percentunit",
     [("loan:approval_rate:window", "{{model_role}} {{attribute}} = {{group}}"),
      ("loan:approval_rate_low:window", "{{model_role}} {{attribute}} = {{group}}, 95% low"),
      ("loan:approval_rate_high:window", "{{model_role}} {{attribute}} = {{group}}, 95% high")],
     "Approved share of the decisions (at the model's cutoff) for each declared protected group the requests give, "
     "with its 95% Wilson interval (groups with at least the gate's min_group_rows decisions in the rules' window)."),
    ("Adverse impact ratio", "timeseries", "none",
     [("loan:adverse_impact_ratio:window", "{{model_role}} {{attribute}}"),
      ("loan:gate_min_adverse_impact_ratio", "screen threshold")],
     "Lowest judged group's approval rate over the highest, per declared attribute; the alert fires below the "
     "screen's threshold for the attributes the gate screens."),
    ("Population stability index by feature", "heatmap", "none",
     [("loan:feature_psi:window", "{{feature}}")],
     "PSI of each model input against the training data: < 0.1 stable, 0.1-0.25 some shift, > 0.25 major shift."),
    ("Population stability index of the score", "timeseries", "none",
     [("loan:score_psi:window", "{{model_role}} score")],
     "PSI of the approval probabilities against the held-out data."),
    ("Live recall, false positive rate and accuracy", "timeseries", "percentunit",
     [('loan:recall:window{attribute="all"}', "{{model_role}} recall"),
      ('loan:held_out_recall{attribute="all"}', "held-out recall"),
      ('loan:false_positive_rate:window{attribute="all"}', "false positive rate"),
      ('loan:accuracy:window{attribute="all"}', "accuracy")],
     "From the outcomes that arrived through the feedback endpoint, against the held-out recall."),
    ("Live recall by group", "timeseries", "percentunit",
     [('loan:recall:window{attribute!="all"}', "{{model_role}} {{attribute}} = {{group}}")],
     "Recall of each protected group from the outcomes that arrived."),
    ("Equalized odds gaps", "timeseries", "percentunit",
     [("loan:recall_gap:window", "recall gap, {{attribute}}"),
      ("loan:false_positive_rate_gap:window", "false positive rate gap, {{attribute}}")],
     "Largest minus smallest recall and false positive rate between the groups with enough outcomes."),
    ("Outcomes arrived", "timeseries", "short",
     [('loan:outcomes:window{attribute="all"}', "outcomes in the window")],
     "Decisions whose outcome arrived through feedback, in the rules' window."),
    ("Decisions per second", "timeseries", "reqps",
     [(_rate("loan_applications_total"), "{{model_name}} applications"),
      (_rate("loan_approvals_total"), "{{model_name}} approvals")],
     "Applications decided and approved."),
    ("Requests per second by status", "timeseries", "reqps",
     [(_rate("loan_http_requests_total"), "{{model_name}} {{endpoint}} {{code}}")],
     "Every answer of both services, by endpoint and HTTP status."),
    ("Latency p95 by endpoint", "timeseries", "s",
     [(f"histogram_quantile(0.95, {_rate('loan_http_request_seconds_bucket')})", "{{model_name}} {{endpoint}}")],
     "95th percentile of the time to answer, per service and endpoint."),
    ("Error ratio", "timeseries", "percentunit",
     [("loan:http_error_ratio:window", "{{model_name}}")],
     "5xx answers over predictions and feedback; the alert fires above 1%."),
    ("Explanations by outcome", "timeseries", "reqps",
     [(_rate("loan_explanations_total"), "{{kind}} {{outcome}}")],
     "Explanation requests: ok, 4xx, 503 (busy, classifier away), 504 (over budget)."),
    ("Explanation time p95", "timeseries", "s",
     [("loan:explanation_seconds:p95", "{{kind}}"), ("loan:explain_p95_budget_seconds", "p95 budget")],
     "95th percentile of explanation time by kind, against LOAN_EXPLAIN_P95_BUDGET."),
    ("Explanations by caller role", "timeseries", "reqps",
     [(_rate("loan_caller_explanations_total"), "{{role}} {{outcome}}")],
     "With LOAN_AUTH=on: explanations asked by credit officers (explain) and auditors (audit), 429 past a caller's "
     "budget (zero with LOAN_AUTH=off)."),
    ("Connections closed before their request came", "timeseries", "cps",
     [(_rate("loan_connections_closed_total"), "{{why}}")],
     "request_timeout: answered 408 (LOAN_REQUEST_TIMEOUT); room: a full worker (LOAN_MAX_CONNECTIONS) closed the "
     "connection that had waited longest. A rise of either is slow or hostile clients."),
    ("Served model", "table", "none",
     [("loan_model_info", "")],
     "Model version, dataset, the search's candidate and fairness gate status of every replica."),
]


#: the challenger beside the champion, on the applications both decide (the alerts' comparisons)
CHALLENGER_PANELS: list[tuple[str, str, str, list[tuple[str, str]], str]] = [
    ("Adverse impact ratio: challenger beside champion", "timeseries", "none",
     [(role_ratio(role), f"{role} {{{{attribute}}}}") for role in (CHAMPION, CHALLENGER)],
     "Each model's adverse impact ratio per attribute on the same requests; the alert fires when the challenger's "
     f"is more than {RuleOptions().challenger_air_tolerance:g} below the champion's (make promote refuses it)."),
    ("Approval rate by group: challenger minus champion", "timeseries", "percentunit",
     [(APPROVAL_DIFFERENCE, "{{attribute}} = {{group}}")],
     f"The challenger's approval rate of each judged group less the champion's; the alert fires beyond "
     f"{MAX_APPROVAL_GAP:g} either way."),
]


def _panel(index: int, title: str, kind: str, unit: str, targets: list[tuple[str, str]], description: str) -> dict[str, Any]:
    panel: dict[str, Any] = {
        "id": index + 1,
        "title": title,
        "description": description,
        "type": kind,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
                     **({"format": "table", "instant": True} if kind == "table" else {})}
                    for i, (expr, legend) in enumerate(targets)],
    }
    if kind == "heatmap":
        # series as rows, as they come: no bucketing of values
        panel["options"] = {"calculate": False, "yAxis": {"axisPlacement": "left"}, "color": {"scheme": "Oranges"}}
    return panel


def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (schema 39, Grafana 10 and later)."""
    return {
        "uid": "loanxai",
        "title": "Loan decisions: fairness, drift, outcomes",
        "tags": ["loanxai", "seldon"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": [_panel(i, *panel) for i, panel in enumerate(PANELS + CHALLENGER_PANELS)],
    }


def queries() -> list[str]:
    """Every query of the panels that show data with the champion alone, in order."""
    return [expr for _, _, _, targets, _ in PANELS for expr, _ in targets]


def challenger_queries() -> list[str]:
    """Every query of the panels comparing a challenger with the champion."""
    return [expr for _, _, _, targets, _ in CHALLENGER_PANELS for expr, _ in targets]


def write(out: Path) -> Path:
    """Write ``dashboard.json`` in ``out``; return its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / DASHBOARD_FILE
    path.write_text(json.dumps(dashboard(), indent=2) + "\n")
    return path


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser(__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MONITORING_DIR, help="where dashboard.json is written")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Write the dashboard into ``args.out`` (``loanxai dashboard``); print the file written."""
    print(write(args.out))

