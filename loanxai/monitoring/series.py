"""Every series the services export, declared once: name, type, labels, meaning, and who exports it.

:mod:`loanxai.monitoring.counters` builds each metric from its declaration here, the docs'
metrics reference is generated from them (:mod:`loanxai.ops.reference`), and a test checks that
every series the rules and the dashboard query is one of them. Every series also carries
Seldon's ``method`` label and deployment labels (``deployment_name``, ``model_name``, ...) and,
for gauges, ``worker_id`` (:mod:`loanxai.serving.server.metrics`). A counter's name ends in
``_total``; prometheus_client is given it without.
"""
from __future__ import annotations

from dataclasses import dataclass

from loanxai.monitoring.references import OUTCOMES

__all__ = [
    "APPLICATIONS", "APPROVALS", "CONNECTIONS_CLOSED", "CUTOFF", "DECISIONS", "EXPLAIN_BUDGET", "EXPLAIN_P95_BUDGET",
    "EXPLANATIONS", "EXPLANATION_MODEL_CALLS", "EXPLANATION_SECONDS", "FEATURE_BINS", "FEATURE_REFERENCE",
    "GATE_MIN_ADVERSE_IMPACT_RATIO", "GATE_MIN_GROUP_ROWS", "GATE_SCREENED", "HELD_OUT_RATES", "HELD_OUT_ROWS",
    "HTTP_REQUESTS", "HTTP_SECONDS", "IN_DOUBT", "MODEL_INFO", "MODEL_ROLE_LABEL", "OUTCOME_COUNTS", "REJECTIONS", "REQUESTS",
    "SAMPLED", "SCORE_BINS_SERIES",
    "SCORE_REFERENCE", "SERIES", "Series", "UNRECORDED",
]


@dataclass(frozen=True)
class Series:
    """One exported series: ``kind`` is ``counter``, ``gauge`` or ``histogram``; ``labels``
    those the project sets; ``service`` the one that exports it."""

    name: str
    kind: str
    labels: tuple[str, ...]
    meaning: str
    service: str

    @property
    def metric_name(self) -> str:
        """The name prometheus_client is given (a counter's without ``_total``, which it adds)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name


CLASSIFIER, EXPLAINER, BOTH = "classifier", "explainer", "both"

REQUESTS = Series("loan_requests_total", "counter", (), "prediction requests decided", CLASSIFIER)
APPLICATIONS = Series("loan_applications_total", "counter", (), "applications decided", CLASSIFIER)
APPROVALS = Series("loan_approvals_total", "counter", (), "applications approved", CLASSIFIER)
REJECTIONS = Series("loan_rejections_total", "counter", (), "applications rejected", CLASSIFIER)
DECISIONS = Series("loan_decisions_total", "counter", ("attribute", "group", "decision"),
                   "decided applications by each declared protected attribute's group, as the request gives it "
                   "(a numeric one's band; `not given` otherwise)", CLASSIFIER)
UNRECORDED = Series("loan_unrecorded_applications_total", "counter", (), "applications answered 503 because their "
                    "decision could not be recorded (never answered 200)", CLASSIFIER)
IN_DOUBT = Series("loan_record_in_doubt_applications_total", "counter", (), "applications answered 503 "
                  "`RECORD_IN_DOUBT`: the database's answer to their commit was lost and the record could not be read "
                  "to tell (a retry with the same `meta.puid` settles it)", CLASSIFIER)
SAMPLED = Series("loan_sampled_rows_total", "counter", (), "rows an explainer made up for its explanations, answered "
                 "with the sampling key and never recorded (no decisions)", CLASSIFIER)
SCORE_BINS_SERIES = Series("loan_score_total", "counter", ("bin",),
                           "decided applications by approval probability bin (`0.0-0.1` ... `0.9-1.0`)", CLASSIFIER)
FEATURE_BINS = Series("loan_feature_total", "counter", ("feature", "bin"),
                      "decided applications by model input bin: a categorical input's categories, a numeric one's "
                      "training deciles and `missing`", CLASSIFIER)
OUTCOME_COUNTS = tuple(
    Series(f"seldon_metric_{kind}_total", "counter", ("attribute", "group"),
           f"outcomes from feedback that were {kind.replace('_', ' ')}s, by group (`all`, `all`: every outcome), "
           "as Seldon's metrics server names them", CLASSIFIER)
    for kind in OUTCOMES)
FEATURE_REFERENCE = Series("loan_feature_reference_share", "gauge", ("feature", "bin"),
                           "the training data's share of each model input bin", CLASSIFIER)
SCORE_REFERENCE = Series("loan_score_reference_share", "gauge", ("bin",),
                         "the held-out share of each approval probability bin", CLASSIFIER)
HELD_OUT_RATES = tuple(
    Series(f"loan_held_out_{rate}", "gauge", ("attribute", "group"),
           f"the served model's held-out {rate.replace('_', ' ')}, overall and by group", CLASSIFIER)
    for rate in ("recall", "false_positive_rate", "accuracy", "approval_rate"))
HELD_OUT_ROWS = Series("loan_held_out_rows", "gauge", ("attribute", "group"), "held-out applications, by group", CLASSIFIER)
GATE_MIN_ADVERSE_IMPACT_RATIO = Series("loan_gate_min_adverse_impact_ratio", "gauge", (),
                                       "the fairness gate's screen: the lowest adverse impact ratio it accepts (0: "
                                       "none)", CLASSIFIER)
GATE_SCREENED = Series("loan_gate_screened", "gauge", ("attribute",), "1 for each protected attribute the fairness "
                       "gate's screen judges (the live adverse impact alert watches these)", CLASSIFIER)
CUTOFF = Series("loan_cutoff", "gauge", (), "the probability of approval at or above which the model approves "
                "(the decision policy's, set at training)", CLASSIFIER)
GATE_MIN_GROUP_ROWS = Series("loan_gate_min_group_rows", "gauge", (), "the smallest group the gate judges", CLASSIFIER)
MODEL_INFO = Series("loan_model_info", "gauge", ("version", "dataset", "candidate", "gate"),
                    "the model served (always 1)", CLASSIFIER)
EXPLANATIONS = Series("loan_explanations_total", "counter", ("kind", "outcome"),
                      "explanation requests by kind and outcome (`ok`, `4xx`, `502`, `503`, `504`, `5xx`)", EXPLAINER)
EXPLANATION_SECONDS = Series("loan_explanation_seconds", "histogram", ("kind",),
                             "explanation time, seconds (Seldon's timer buckets)", EXPLAINER)
EXPLANATION_MODEL_CALLS = Series("loan_explanation_model_calls_total", "counter", ("kind",),
                                 "classifier calls made by explanations", EXPLAINER)
EXPLAIN_BUDGET = Series("loan_explain_budget_seconds", "gauge", (), "the time budget of one explanation "
                        "(`LOAN_EXPLAIN_BUDGET`)", EXPLAINER)
EXPLAIN_P95_BUDGET = Series("loan_explain_p95_budget_seconds", "gauge", (), "the time 95% of explanations should "
                            "stay under (`LOAN_EXPLAIN_P95_BUDGET`)", EXPLAINER)
CALLER_EXPLANATIONS = Series("loan_caller_explanations_total", "counter", ("role", "outcome"),
                             "explanation requests of authenticated callers (`LOAN_AUTH=on`) by role (`explain`, "
                             "`review`, `audit`) and outcome (`ok`, `429`: over the caller's budget, `4xx`, `5xx`)", EXPLAINER)
CALLER_BUDGET_SHARE = Series("loan_caller_budget_busiest_share", "gauge", (), "the largest share of its window's "
                             "budget any one caller has used, 0 to 1 (`LOAN_AUTH=on`; the `LoanExplainCallerNearBudget` "
                             "alert fires above 0.8)", EXPLAINER)
HTTP_REQUESTS = Series("loan_http_requests_total", "counter", ("endpoint", "code"), "answers, by endpoint and HTTP "
                       "status", BOTH)
HTTP_SECONDS = Series("loan_http_request_seconds", "histogram", ("endpoint",), "time to answer, seconds, by endpoint",
                      BOTH)
CONNECTIONS_CLOSED = Series("loan_connections_closed_total", "counter", ("why",), "connections a worker closed before "
                            "their request had come whole: `request_timeout` (408, `LOAN_REQUEST_TIMEOUT`) or `room` "
                            "(the worker held `LOAN_MAX_CONNECTIONS`: a new one took the place of the one that had "
                            "waited longest)", BOTH)

#: the label the scrape gives a classifier's series: its model role (``champion``, ``challenger``), from
#: the pod's label ``loanxai.io/model-role`` in the cluster (the PodMonitor), from the job's locally
MODEL_ROLE_LABEL = "model_role"

#: every series, in the reference's order
SERIES: tuple[Series, ...] = (
    REQUESTS, APPLICATIONS, APPROVALS, REJECTIONS, DECISIONS, UNRECORDED, IN_DOUBT, SAMPLED, SCORE_BINS_SERIES,
    FEATURE_BINS, *OUTCOME_COUNTS,
    FEATURE_REFERENCE, SCORE_REFERENCE, *HELD_OUT_RATES, HELD_OUT_ROWS, GATE_MIN_ADVERSE_IMPACT_RATIO, GATE_MIN_GROUP_ROWS,
    GATE_SCREENED, CUTOFF,
    MODEL_INFO, EXPLANATIONS, EXPLANATION_SECONDS, EXPLANATION_MODEL_CALLS, EXPLAIN_BUDGET, EXPLAIN_P95_BUDGET,
    CALLER_EXPLANATIONS, CALLER_BUDGET_SHARE, HTTP_REQUESTS, HTTP_SECONDS, CONNECTIONS_CLOSED,
)
