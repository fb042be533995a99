"""Replay production traffic at the local services and read the alerts Prometheus raises.

``make replay`` (``loanxai replay``) sends the served model's held-out applications,
then the seed's trap, each followed by their outcomes through the feedback endpoint:

1. **held-out**: every held-out application once, with its protected attributes, then its
   recorded outcome. The live metrics equal the held-out ones: a model whose screen passed
   raises no alert (one the screen flagged raises the adverse impact alert, as it should).
2. **trap**: the seed's story in production, a population unlike the training data and
   approvals biased against one group. A share (80%) of the applications comes from one
   group ``U`` of one protected attribute, within one input category ``W``, the rest from the
   held-out population. ``U`` is the group the model approves least, of the first screened
   protected attribute with two groups large enough to judge; ``W`` is the category whose trap would give
   the lowest live recall, computed from the held-out rows (the segment's approved applicants
   the model misses, weighed by how many of the trap's approved applicants it holds; at least
   3 approved applications): a channel of applicants the model serves worst. Applications are drawn with replacement, seeded; the
   outcomes are those recorded in the data, never invented. The drift (PSI on ``W``'s feature
   and on the score), adverse impact and recall alerts fire.

Between the phases the replay waits for the rules' window to pass, so each phase is judged
alone. A few explanations (anchor and recourse) are asked in each phase for the explainer's metrics.
After each phase the replay prints the phase's figures as the decision record gives them
(:mod:`loanxai.report.production`), beside the alerts Prometheus raised. With ``--results`` it
writes what each phase sent and every alert that fired, with its value, as JSON: ``make
replay`` keeps them beside the replay page (:data:`~loanxai.ops.reference.REPLAY_RESULTS`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from seldon_core.metrics import DEFAULT_LABELS

from loanxai.artifacts import CLASSIFIER_DIR, MODEL_FILE, PREPROCESSOR_FILE
from loanxai.clients.http import DEFAULT_CLASSIFIER_URL, DEFAULT_EXPLAINER_URL, FEEDBACK_PATH, PREDICTIONS_PATH, answer, session
from loanxai.config import ServiceSettings, Settings
from loanxai.core.cli import command_parser
from loanxai.core.elderly import served_rows
from loanxai.core.manifest import ClassifierManifest, load_pickle, load_verified_manifest
from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import load_trained_dataset
from loanxai.data.description import LABEL
from loanxai.errors import LoanError
from loanxai.fairness.metrics import large_groups
from loanxai.ops.prometheus import alerts
from loanxai.records.store import reading_store
from loanxai.report.production import describe, record_figures

__all__ = ["MIN_APPROVED", "TRAP_SHARE", "Trap", "applications", "choose_trap", "explain", "fired_alerts",
           "held_out_predictions", "parser", "run", "send", "trap_rows", "wait_for_alerts"]

logger = logging.getLogger(__name__)

#: share of the trap's applications drawn from the weak segment
TRAP_SHARE = 0.8
#: approved held-out applications a segment needs to have a recall to compare
MIN_APPROVED = 3
#: an alert's labels that say nothing of what it is about: the scrape's, the graph node's, Seldon's defaults
_NOT_ABOUT = {"alertname", "severity", "job", "instance", "model_name", *DEFAULT_LABELS}


@dataclass(frozen=True)
class Trap:
    """The trap's segment: ``attribute`` = ``group`` and ``feature`` = ``category``, with the
    model's held-out recall there, its size, and the recall the whole trap should show."""

    attribute: str
    group: str
    feature: str
    category: str
    recall: float
    approved: int
    rows: int
    live_recall: float

    def describe(self) -> str:
        """The trap in words."""
        return (f"{TRAP_SHARE:.0%} of the applications from {self.attribute} = {self.group} with {self.feature} = "
                f"{self.category} (held-out: {self.rows} applications, {self.approved} approved, model recall "
                f"{self.recall:.2f}), the rest from the held-out population (expected live recall {self.live_recall:.2f})")


def held_out_predictions(classifier_dir: Path) -> tuple[FeatureSchema, pd.DataFrame, np.ndarray]:
    """The served model's schema, its held-out rows (with protected attributes and labels) and
    its decisions on them (True: approved), from its artifacts."""
    manifest = load_verified_manifest(classifier_dir, ClassifierManifest)
    dataset = load_trained_dataset(manifest)
    preprocessor, classifier = load_pickle(classifier_dir, PREPROCESSOR_FILE), load_pickle(classifier_dir, MODEL_FILE)
    X = served_rows(dataset.schema.encode_frame(dataset.test), dataset.schema, preprocessor, classifier)
    approval = classifier.predict_proba(preprocessor.transform(X))[:, 1]
    return dataset.schema, dataset.test.reset_index(drop=True), approval >= manifest.cutoff


def choose_trap(schema: FeatureSchema, test: pd.DataFrame, predicted: np.ndarray, min_group_rows: int,
                screened: Sequence[str] | None = None) -> Trap:
    """The trap's segment (see the module's docstring) among the ``screened`` protected
    attributes (None: all); ValueError if the data holds none."""
    approved = test[LABEL].to_numpy().astype(bool)
    found, positive = (approved & predicted).mean(), approved.mean()  # the rest of the trap: the held-out population
    for attribute in screened if screened is not None else schema.protected:
        groups = large_groups(test[attribute].astype(str), min_group_rows)
        if len(groups) < 2:
            continue
        rates = {g: predicted[(test[attribute].astype(str) == g).to_numpy()].mean() for g in groups}
        group = min(rates, key=rates.get)
        in_group = (test[attribute].astype(str) == group).to_numpy()
        candidates = []
        for feature in schema.category_map:
            for category in sorted(test[feature].dropna().unique()):
                rows = in_group & (test[feature] == category).to_numpy()
                n_rows, n_approved = int(rows.sum()), int((rows & approved).sum())
                n_found = int((rows & approved & predicted).sum())
                if n_approved >= MIN_APPROVED:
                    live_recall = ((TRAP_SHARE * n_found / n_rows + (1 - TRAP_SHARE) * found)
                                   / (TRAP_SHARE * n_approved / n_rows + (1 - TRAP_SHARE) * positive))
                    candidates.append((live_recall, -n_approved, feature, str(category), n_rows, n_found / n_approved))
        if candidates:
            live_recall, minus_approved, feature, category, n_rows, recall = min(candidates)
            return Trap(attribute, group, feature, category, recall, -minus_approved, n_rows, live_recall)
    raise ValueError("no protected attribute has two groups large enough, and a segment with approved applications")


def trap_rows(test: pd.DataFrame, trap: Trap, n: int, seed: int) -> np.ndarray:
    """Indices into ``test`` of ``n`` trap applications, drawn with replacement."""
    segment = np.flatnonzero(((test[trap.attribute].astype(str) == trap.group)
                              & (test[trap.feature] == trap.category)).to_numpy())
    rng = np.random.default_rng(seed)
    from_segment = rng.random(n) < TRAP_SHARE
    return np.where(from_segment, rng.choice(segment, n), rng.integers(0, len(test), n))


def applications(schema: FeatureSchema, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as jsonData applications: features (labels, null when missing) and protected attributes."""
    records = schema.decode(schema.encode_frame(rows))
    for record, (_, row) in zip(records, rows.iterrows()):
        record.update({name: str(row[name]) for name in schema.protected})
    return records


def send(classifier_url: str, records: Sequence[dict[str, Any]], outcomes: Sequence[bool], batch: int = 10) -> dict[str, int]:
    """Ask the classifier to decide ``records`` (``batch`` per request), then send each
    request's outcomes through the feedback endpoint; return the counts sent."""
    sent = {"applications": 0, "approved": 0, "outcomes": 0}
    with session() as http:
        for start in range(0, len(records), batch):
            request = {"jsonData": list(records[start:start + batch])}
            response = answer(http.post(classifier_url + PREDICTIONS_PATH, json=request, timeout=30))
            truth = [[int(o)] for o in outcomes[start:start + batch]]
            answer(http.post(classifier_url + FEEDBACK_PATH, timeout=30,
                             json={"request": request, "response": response, "truth": {"data": {"ndarray": truth}}}))
            sent["applications"] += len(truth)
            sent["approved"] += response["meta"]["tags"]["decisions"].count("approved")
            sent["outcomes"] += len(truth)
    return sent


def explain(explainer_url: str, records: Iterable[dict[str, Any]]) -> list[int]:
    """One anchor and one recourse for each application; return the answers' status codes."""
    codes = []
    with session() as http:
        for record in records:
            for kind in ("anchor", "recourse"):
                response = http.post(explainer_url + PREDICTIONS_PATH, timeout=60,
                                     json={"jsonData": record, "meta": {"tags": {"kind": kind}}})
                codes.append(response.status_code)
    return codes


def firing(prometheus_url: str) -> list[dict[str, Any]]:
    """The alerts firing now."""
    return [a for a in alerts(prometheus_url) if a["state"] == "firing"]


def wait_for_alerts(prometheus_url: str, names: set[str], timeout: float) -> list[dict[str, Any]]:
    """Poll until every alert in ``names`` has fired (or ``timeout``; with no names, for all of
    ``timeout``); return every alert seen firing meanwhile (one per label set, as last seen):
    an alert whose condition left the window before the others fired still counts."""
    deadline = time.monotonic() + timeout
    seen: dict[str, dict[str, Any]] = {}
    while True:
        seen.update((json.dumps(a["labels"], sort_keys=True), a) for a in firing(prometheus_url))
        if (names and names <= {a["labels"]["alertname"] for a in seen.values()}) or time.monotonic() > deadline:
            return list(seen.values())
        time.sleep(1)


def fired_alerts(firing_alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each alert as the results keep it: its name, what it is about (its labels but the
    scrape's, Seldon's defaults and the severity) and the value of its expression, sorted."""
    kept = [{"alertname": a["labels"]["alertname"],
             "labels": {k: v for k, v in a["labels"].items() if k not in _NOT_ABOUT},
             "value": float(a["value"])} for a in firing_alerts]
    return sorted(kept, key=lambda a: (a["alertname"], json.dumps(a["labels"], sort_keys=True)))


def describe_alerts(firing_alerts: list[dict[str, Any]]) -> str:
    if not firing_alerts:
        return "  (none)"
    return "\n".join(f"  {a['labels']['alertname']}: {a['annotations'].get('description', '')}"
                     for a in sorted(firing_alerts, key=lambda a: (a["labels"]["alertname"], json.dumps(a["labels"]))))


def recorded(url: str | None, service: ServiceSettings, manifest: ClassifierManifest, since: datetime) -> str:
    """The figures of the decisions recorded since ``since`` in the record at ``url`` (else the
    service's), or why there are none."""
    if (url or service.records_url) == "off":
        return "  (not read: the record is off)"
    try:
        return describe(record_figures(reading_store(url, service), manifest, since))
    except LoanError as error:
        return f"  (the record cannot be read: {error.message})"


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser(__doc__.splitlines()[0])
    parser.add_argument("--classifier-url", default=DEFAULT_CLASSIFIER_URL, help="the classifier's base URL")
    parser.add_argument("--explainer-url", default=DEFAULT_EXPLAINER_URL, help="the explainer's base URL")
    parser.add_argument("--prometheus-url", default="http://127.0.0.1:9090", help="the Prometheus scraping them")
    parser.add_argument("--artifacts", type=Path, default=CLASSIFIER_DIR, help="the served classifier's artifacts")
    parser.add_argument("--phase", choices=["held-out", "trap", "both"], default="both")
    parser.add_argument("--applications", type=int, default=2000, help="applications in the trap")
    parser.add_argument("--window", type=float, default=60.0, help="the rules' window, seconds (waited between phases)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait for alerts after a phase")
    parser.add_argument("--seed", type=int, default=0, help="the trap's draws")
    parser.add_argument("--record-url", help="the classifier's record (default: LOAN_RECORDS_URL; off: not read)")
    parser.add_argument("--results", type=Path, help="write what each phase sent and the alerts it fired here (JSON)")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Replay as ``args`` say, against running services (``loanxai replay``)."""
    schema, test, predicted = held_out_predictions(args.artifacts)
    outcomes = test[LABEL].to_numpy().astype(bool)
    manifest = load_verified_manifest(args.artifacts, ClassifierManifest)
    phases = ["held-out", "trap"] if args.phase == "both" else [args.phase]
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": manifest.version,
                               "dataset": manifest.dataset.name, "phases": {}}
    for i, phase in enumerate(phases):
        if i:
            logger.info("waiting %.0f s for the rules' window to pass", args.window)
            time.sleep(args.window)
        if phase == "held-out":
            rows, expected, trap = np.arange(len(test)), set(), None
            print(f"\n== held-out traffic: the {len(test)} held-out applications, then their outcomes")
        else:
            thresholds = manifest.gate.thresholds
            trap = choose_trap(schema, test, predicted, thresholds["min_group_rows"], thresholds["screen"])
            rows = trap_rows(test, trap, args.applications, args.seed)
            expected = {"LoanFeatureDrift", "LoanScoreDrift", "LoanAdverseImpactBelowScreen", "LoanRecallDrop"}
            print(f"\n== the trap: {len(rows)} applications, {trap.describe()}; then their outcomes")
        records = applications(schema, test.iloc[rows])
        since = datetime.now(UTC)
        counts = send(args.classifier_url, records, outcomes[rows])
        print(f"the phase as the decision record gives it:\n{recorded(args.record_url, settings.service, manifest, since)}")
        codes = explain(args.explainer_url, records[:2])
        print(f"sent {counts['applications']} applications ({counts['approved']} approved by the model), "
              f"{counts['outcomes']} outcomes, {len(codes)} explanations (status {sorted(set(codes))})")
        # held-out traffic: watch for the settling time; the trap: until the alerts expected fired
        fired = wait_for_alerts(args.prometheus_url, expected, args.settle + (args.window if expected else 0))
        print(f"alerts that fired ({args.prometheus_url}/alerts):\n{describe_alerts(fired)}")
        missing = expected - {a["labels"]["alertname"] for a in fired}
        if missing:
            print(f"expected but not fired: {', '.join(sorted(missing))}")
        results["phases"][phase] = {**counts, "explanations": codes, "alerts": fired_alerts(fired),
                                    "expected_not_fired": sorted(missing),
                                    "trap": None if trap is None else {**dataclasses.asdict(trap), "share": TRAP_SHARE}}
    if args.results is not None:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=2) + "\n")
        logger.info("the replay's results: %s", args.results)

