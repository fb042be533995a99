"""Prometheus recording rules and alerts for the services' metrics (:mod:`loanxai.monitoring.counters`).

``loanxai rules`` writes ``deploy/monitoring/rules.yml`` (a plain rules file, for
``rule_files``) and ``deploy/monitoring/prometheusrule.yaml`` (the same groups as a
PrometheusRule, for the Prometheus operator); ``--window``, ``--for`` and ``--out`` make other
copies (``make run`` writes a short-window one for its local Prometheus). A test keeps the
files in ``deploy/`` equal to what this module writes.

Recording rules, every series summed ``without`` the labels that tell processes and replicas
apart (:data:`AGGREGATED`), over the window (default 1 hour):

- ``loan:decisions:window``, ``loan:group_decisions:window`` (groups judged: given, and at
  least the gate's ``min_group_rows`` decisions), ``loan:approval_rate:window`` by group with
  its 95% Wilson interval (``loan:approval_rate_low:window``, ``loan:approval_rate_high:window``),
  ``loan:adverse_impact_ratio:window`` per attribute (lowest over highest approval rate of its
  judged groups, as the gate computes it);
- ``loan:feature_psi:window`` per model input and ``loan:score_psi:window``: the population
  stability index against the training shares, sum over bins of (p - q) ln(p / q), shares
  floored at :data:`~loanxai.monitoring.references.PSI_FLOOR`, computed once the window holds ``min_applications`` decisions;
- ``loan:recall:window``, ``loan:false_positive_rate:window``, ``loan:accuracy:window`` and
  ``loan:outcomes:window`` overall and by group, from the outcomes that arrived through
  feedback; ``loan:recall_gap:window`` and ``loan:false_positive_rate_gap:window`` per
  attribute (equalized odds: the larger of the two);
- ``loan:http_error_ratio:window`` (5xx over predictions and feedback) per service and
  ``loan:explanation_seconds:p95`` per kind.

Alerts: the adverse impact ratio of an attribute the gate screens below the screen's
threshold; PSI above 0.25 on a feature or on the score; live recall more than 20% below the
held-out recall once ``min_outcomes`` approved outcomes arrived; a 5xx ratio above 1%; the
explanation p95 above ``LOAN_EXPLAIN_P95_BUDGET``. With a challenger shadowing the champion
(series labelled ``model_role``): its adverse impact ratio of an attribute more than
``challenger_air_tolerance`` below the champion's, or its approval rate of a judged group more
than :data:`MAX_APPROVAL_GAP` from the champion's.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loanxai.artifacts import MONITORING_DIR
from loanxai.config import CHALLENGER, CHAMPION, Settings, ToolSettings
from loanxai.core.cli import command_parser
from loanxai.monitoring.references import PSI_FLOOR
from loanxai.monitoring.series import MODEL_ROLE_LABEL

__all__ = ["AGGREGATED", "APPROVAL_DIFFERENCE", "MAX_APPROVAL_GAP", "MAX_ERROR_RATIO", "NEAR_BUDGET", "PSI_MAJOR",
           "RECALL_FRACTION", "RuleOptions", "alerting_rules", "parser", "prometheus_rule", "recording_rules", "role_ratio",
           "role_series", "rule_groups", "run", "write"]
#: labels told apart by process or replica: what the recording rules sum away
AGGREGATED = "worker_id, method, instance, pod"
#: PSI above this is a major shift (credit-risk practice: < 0.1 stable, 0.1-0.25 some shift)
PSI_MAJOR = 0.25
#: live recall below this fraction of the held-out recall fires the alert
RECALL_FRACTION = 0.8
#: 5xx answers above this fraction of predictions and feedback fire the alert
MAX_ERROR_RATIO = 0.01
#: one caller past this share of its explanation budget fires the alert: the budget is set at what
#: usual work takes, so a caller near it asks far more than the others (model extraction, a runaway script)
NEAR_BUDGET = 0.8
#: a challenger's approval rate of a group further than this from the champion's fires the alert
MAX_APPROVAL_GAP = 0.05
#: the normal quantile of a two-sided 95% interval (as :data:`loanxai.fairness.metrics.Z95`)
Z95 = 1.959964
#: the endpoints whose errors count: predictions and feedback (not probes or metadata)
SERVED_ENDPOINTS = ".*predict.*|.*feedback.*"


@dataclass(frozen=True)
class RuleOptions:
    """What the generated rules can be tuned by.

    window : str
        The range every rate and share is computed over (a Prometheus duration).
    for_ : str
        How long a condition must hold before its alert fires.
    min_applications : int
        Decisions in the window before PSI is computed: with n decisions and k bins, PSI from
        sampling alone is about (k - 1) / n (0.03 for 15 bins at 500).
    min_outcomes : int
        Approved outcomes (true positives and false negatives) in the window before the recall
        alert may fire.
    challenger_air_tolerance : float
        How far below the champion's a challenger's live adverse impact ratio may be (the
        promotion gate's default, ``LOAN_PROMOTE_AIR_TOLERANCE``).
    """

    window: str = "1h"
    for_: str = "10m"
    min_applications: int = 500
    min_outcomes: int = 50
    challenger_air_tolerance: float = ToolSettings().promote_air_tolerance


def _sum(expr: str) -> str:
    return f"sum without ({AGGREGATED}) ({expr})"


def _max(expr: str) -> str:
    return f"max without ({AGGREGATED}) ({expr})"


def _psi(shares: str, reference: str) -> str:
    p, q = f"clamp_min({shares}, {PSI_FLOOR:g})", f"clamp_min({reference}, {PSI_FLOOR:g})"
    return f"sum without (bin) (({p} - {q}) * ln({p} / {q}))"


def _wilson(sign: str) -> str:
    """One bound of the 95% Wilson interval of each group's approval rate."""
    p, n, z2 = "loan:approval_rate:window", "loan:group_decisions:window", Z95 ** 2
    return (f"({p} + {z2 / 2:.6f} / {n} {sign} {Z95} * sqrt({p} * (1 - {p}) / {n} + {z2 / 4:.6f} / {n} ^ 2))"
            f" / (1 + {z2:.6f} / {n})")


def role_series(role: str, expr: str, labels: str) -> str:
    """The series of ``expr`` of the classifier in ``role``, by ``labels`` only (the two roles'
    series differ in their model version, job and predictor: compared on ``labels``)."""
    return f'max by ({labels}) ({expr}{{{MODEL_ROLE_LABEL}="{role}"}})'


def role_ratio(role: str) -> str:
    """The adverse impact ratio of each attribute of the classifier in ``role``."""
    return role_series(role, "loan:adverse_impact_ratio:window", "attribute")


#: the challenger's approval rate of each judged group less the champion's
APPROVAL_DIFFERENCE = (f"{role_series(CHALLENGER, 'loan:approval_rate:window', 'attribute, group')} - on (attribute, group) "
                       f"{role_series(CHAMPION, 'loan:approval_rate:window', 'attribute, group')}")


def recording_rules(settings: RuleOptions) -> list[dict[str, str]]:
    """The recording rules, in evaluation order."""
    w, m = settings.window, settings.min_applications
    outcome = {k: f"loan:{k}:window" for k in ("true_positive", "false_positive", "true_negative", "false_negative")}
    tp, fp, tn, fn = outcome.values()
    rules = [
        # the references, one series per model (replicas export the same values)
        ("loan:gate_min_adverse_impact_ratio", _max("loan_gate_min_adverse_impact_ratio")),
        ("loan:gate_screened", _max("loan_gate_screened")),
        ("loan:gate_min_group_rows", _max("loan_gate_min_group_rows")),
        ("loan:feature_reference_share", _max("loan_feature_reference_share")),
        ("loan:score_reference_share", _max("loan_score_reference_share")),
        ("loan:held_out_recall", _max("loan_held_out_recall")),
        ("loan:explain_p95_budget_seconds", _max("loan_explain_p95_budget_seconds")),
        # decisions by group
        ("loan:decisions:window", _sum(f"increase(loan_decisions_total[{w}])")),
        ("loan:group_decisions:window",
         'sum without (decision) (loan:decisions:window{group!="not given"})'
         " >= ignoring (attribute, group) group_left () loan:gate_min_group_rows"),
        ("loan:approval_rate:window",
         'sum without (decision) (loan:decisions:window{decision="approved"}) / loan:group_decisions:window'),
        ("loan:approval_rate_low:window", _wilson("-")),
        ("loan:approval_rate_high:window", _wilson("+")),
        ("loan:adverse_impact_ratio:window",
         "(min without (group) (loan:approval_rate:window) / max without (group) (loan:approval_rate:window))"
         " and count without (group) (loan:approval_rate:window) >= 2"),
        # population stability
        ("loan:feature_bins:window", _sum(f"increase(loan_feature_total[{w}])")),
        ("loan:feature_share:window",
         f"loan:feature_bins:window / ignoring (bin) group_left () (sum without (bin) (loan:feature_bins:window) >= {m})"),
        ("loan:feature_psi:window", _psi("loan:feature_share:window", "loan:feature_reference_share")),
        ("loan:score_bins:window", _sum(f"increase(loan_score_total[{w}])")),
        ("loan:score_share:window",
         f"loan:score_bins:window / ignoring (bin) group_left () (sum without (bin) (loan:score_bins:window) >= {m})"),
        ("loan:score_psi:window", _psi("loan:score_share:window", "loan:score_reference_share")),
        # outcomes from feedback
        *((name, _sum(f"increase(seldon_metric_{kind}_total[{w}])")) for kind, name in outcome.items()),
        ("loan:outcomes:window", f"{tp} + {fp} + {tn} + {fn}"),
        ("loan:recall:window", f"{tp} / ({tp} + {fn})"),
        ("loan:false_positive_rate:window", f"{fp} / ({fp} + {tn})"),
        ("loan:accuracy:window", f"({tp} + {tn}) / loan:outcomes:window"),
        # gaps between the groups with enough outcomes to judge
        *((f"loan:{rate}_gap:window",
           f"max without (group) (loan:{rate}:window{{attribute!=\"all\", group!=\"not given\"}}"
           f" and loan:outcomes:window >= ignoring (attribute, group) group_left () loan:gate_min_group_rows)"
           f" - min without (group) (loan:{rate}:window{{attribute!=\"all\", group!=\"not given\"}}"
           f" and loan:outcomes:window >= ignoring (attribute, group) group_left () loan:gate_min_group_rows)")
          for rate in ("recall", "false_positive_rate")),
        # service health
        ("loan:http_requests:window", _sum(f"increase(loan_http_requests_total[{w}])")),
        ("loan:http_error_ratio:window",
         f'(sum without (endpoint, code) (loan:http_requests:window{{endpoint=~"{SERVED_ENDPOINTS}", code=~"5.."}})'
         f' or sum without (endpoint, code) (loan:http_requests:window{{endpoint=~"{SERVED_ENDPOINTS}"}}) * 0)'
         f' / sum without (endpoint, code) (loan:http_requests:window{{endpoint=~"{SERVED_ENDPOINTS}"}})'),
        ("loan:explanation_seconds:p95",
         f"histogram_quantile(0.95, {_sum(f'rate(loan_explanation_seconds_bucket[{w}])')})"),
    ]
    return [{"record": name, "expr": expr} for name, expr in rules]


def alerting_rules(settings: RuleOptions) -> list[dict[str, Any]]:
    """The alerts: each names what it compares, with the values in its annotations."""
    def alert(name: str, expr: str, severity: str, summary: str, description: str) -> dict[str, Any]:
        return {"alert": name, "expr": expr, "for": settings.for_, "labels": {"severity": severity},
                "annotations": {"summary": summary, "description": description}}

    window = settings.window
    return [
        alert("LoanAdverseImpactBelowScreen",
              "(loan:adverse_impact_ratio:window < ignoring (attribute) group_left () loan:gate_min_adverse_impact_ratio)"
              " and on (attribute) loan:gate_screened",
              "critical", "Approval rates by {{ $labels.attribute }} fail the fairness screen",
              f"The adverse impact ratio by {{{{ $labels.attribute }}}} over {window} is "
              "{{ $value | printf \"%.2f\" }}, below the screen's threshold (the lowest judged group's approval rate "
              "over the highest)."),
        alert("LoanChallengerAdverseImpactBelowChampion",
              f"{role_ratio(CHALLENGER)} < on (attribute) {role_ratio(CHAMPION)} - {settings.challenger_air_tolerance:g}",
              "warning", "The challenger's approvals by {{ $labels.attribute }} are less even than the champion's",
              f"The challenger's adverse impact ratio by {{{{ $labels.attribute }}}} over {window} is "
              "{{ $value | printf \"%.2f\" }}, more than "
              f"{settings.challenger_air_tolerance:g} below the champion's on the same applications: make promote "
              "would refuse it."),
        alert("LoanChallengerApprovalDeparts",
              f"abs({APPROVAL_DIFFERENCE}) > {MAX_APPROVAL_GAP}",
              "warning", "The challenger approves {{ $labels.attribute }} {{ $labels.group }} at another rate than the "
              "champion",
              f"The challenger's approval rate of {{{{ $labels.attribute }}}} {{{{ $labels.group }}}} over {window} "
              f"differs from the champion's by {{{{ $value | printf \"%.2f\" }}}} (> {MAX_APPROVAL_GAP})."),
        alert("LoanFeatureDrift", f"loan:feature_psi:window > {PSI_MAJOR}", "warning",
              "The applications' {{ $labels.feature }} has shifted from the training data",
              f"Population stability index of {{{{ $labels.feature }}}} over {window} is "
              f"{{{{ $value | printf \"%.2f\" }}}} (> {PSI_MAJOR}: a major shift)."),
        alert("LoanScoreDrift", f"loan:score_psi:window > {PSI_MAJOR}", "warning",
              "The approval probabilities have shifted from the held-out data",
              f"Population stability index of the score over {window} is {{{{ $value | printf \"%.2f\" }}}} "
              f"(> {PSI_MAJOR}: a major shift)."),
        alert("LoanRecallDrop",
              f'loan:recall:window{{attribute="all"}} < {RECALL_FRACTION} * loan:held_out_recall{{attribute="all"}}'
              f' and (loan:true_positive:window{{attribute="all"}} + loan:false_negative:window{{attribute="all"}})'
              f" >= {settings.min_outcomes}",
              "critical", "The model finds far fewer of the applications that deserved approval",
              f"Live recall over {window} is {{{{ $value | printf \"%.2f\" }}}}, more than "
              f"{1 - RECALL_FRACTION:.0%} below the held-out recall (at least {settings.min_outcomes} approved outcomes)."),
        alert("LoanErrorRatioHigh", f"loan:http_error_ratio:window > {MAX_ERROR_RATIO}", "critical",
              "{{ $labels.model_name }} answers too many 5xx",
              f"{{{{ $value | humanizePercentage }}}} of predictions and feedback over {window} were answered 5xx "
              f"(> {MAX_ERROR_RATIO:.0%})."),
        alert("LoanExplanationSlow",
              "loan:explanation_seconds:p95 > ignoring (kind) group_left () loan:explain_p95_budget_seconds",
              "warning", "{{ $labels.kind }} explanations are slow",
              f"The 95th percentile of {{{{ $labels.kind }}}} explanation time over {window} is "
              "{{ $value | humanizeDuration }}, above LOAN_EXPLAIN_P95_BUDGET."),
        alert("LoanExplainCallerNearBudget", f"max without ({AGGREGATED}) (loan_caller_budget_busiest_share) > {NEAR_BUDGET}",
              "warning", "A caller of {{ $labels.model_name }} has nearly used up its explanation budget",
              "One caller has used {{ $value | humanizePercentage }} of its explanations or classifier rows in this "
              f"window (> {NEAR_BUDGET:.0%}): far more than usual work; see who in `loanxai records looked`."),
        alert("LoanExplainCallersRefused",
              f'sum without ({AGGREGATED}, outcome) (increase(loan_caller_explanations_total{{outcome="429"}}[{window}])) > 0',
              "warning", "{{ $labels.role }} callers were refused explanations over their budget",
              f"{{{{ $value | printf \"%.0f\" }}}} explanation requests of role {{{{ $labels.role }}}} over {window} "
              "were answered 429 (CALLER_OVER_BUDGET)."),
    ]


def rule_groups(settings: RuleOptions) -> list[dict[str, Any]]:
    """The rule groups of a Prometheus rules file."""
    return [{"name": "loanxai.records", "rules": recording_rules(settings)},
            {"name": "loanxai.alerts", "rules": alerting_rules(settings)}]


def prometheus_rule(settings: RuleOptions) -> dict[str, Any]:
    """The same groups as a PrometheusRule (labelled for kube-prometheus's default rule selector)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "loanxai", "labels": {"app.kubernetes.io/part-of": "loanxai", "release": "prometheus"}},
        "spec": {"groups": rule_groups(settings)},
    }


def write(out: Path, settings: RuleOptions) -> list[Path]:
    """Write ``rules.yml`` and ``prometheusrule.yaml`` in ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    header = (f"# Generated by `loanxai rules` (window {settings.window}, for {settings.for_}): "
              "edit loanxai/monitoring/rules.py, not this file.\n")
    files = {out / "rules.yml": {"groups": rule_groups(settings)}, out / "prometheusrule.yaml": prometheus_rule(settings)}
    for path, content in files.items():
        path.write_text(header + yaml.safe_dump(content, sort_keys=False, width=120))
    return list(files)


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser(__doc__.splitlines()[0])
    defaults = RuleOptions()
    parser.add_argument("--out", type=Path, default=MONITORING_DIR, help="where the two files are written")
    parser.add_argument("--window", default=defaults.window, help="the range every rate and share is computed over")
    parser.add_argument("--for", dest="for_", default=defaults.for_, help="how long a condition holds before its alert fires")
    parser.add_argument("--min-applications", type=int, default=defaults.min_applications,
                        help="decisions in the window before PSI is computed")
    parser.add_argument("--min-outcomes", type=int, default=defaults.min_outcomes,
                        help="approved outcomes in the window before the recall alert may fire")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Write the rules as ``args`` say (``loanxai rules``); print the files written."""
    settings = RuleOptions(args.window, args.for_, args.min_applications, args.min_outcomes)
    for path in write(args.out, settings):
        print(path)

