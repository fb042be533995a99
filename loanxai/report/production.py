"""The monitoring's figures for any past window, recomputed from the decision record.

Prometheus judges a sliding window and keeps what it scraped for its retention (15 days by
default); the record keeps every decision for 25 months. :func:`record_figures` computes, from
the recorded decisions of one model over a window, what the recording rules compute live
(:mod:`loanxai.monitoring.rules`):

- decisions, approvals and each group's approval rate with its 95% Wilson interval, and each
  protected attribute's adverse impact ratio between its groups of at least the gate's
  ``min_group_rows`` decisions (groups not given left out), as the gate computes it
  (:func:`loanxai.fairness.metrics.adverse_impact`);
- the score's and every model input's population stability index against the training shares
  of the manifest (:func:`loanxai.monitoring.references.psi`), inputs read from the record as
  entered;
- from the outcomes feedback attached (the newest of each decision): the outcome counts, recall,
  false positive rate, accuracy, approval rate and precision, overall and by group.

Unlike the rules, nothing waits for a minimum count: the counts stand beside every figure.
``loanxai figures`` (``make figures ARGS=...``) prints them and writes them
as JSON; ``make replay`` prints them for each phase it sent.
"""
from __future__ import annotations

import argparse
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from loanxai.artifacts import CLASSIFIER_DIR
from loanxai.config import Settings
from loanxai.core.cli import command_parser
from loanxai.core.manifest import ClassifierManifest, load_verified_manifest
from loanxai.errors import RecordError
from loanxai.fairness.metrics import adverse_impact
from loanxai.monitoring.references import (
    NOT_GIVEN,
    OUTCOMES,
    SCORE_BINS,
    bin_indices,
    outcome_counts,
    outcome_rates,
    psi,
    score_indices,
)
from loanxai.records.cli import moment
from loanxai.records.queries import Selection, outcomes_of, recorded_features, select_decisions
from loanxai.records.store import DecisionStore, reading_store

__all__ = ["describe", "outcome_figures", "parser", "record_figures", "run"]

logger = logging.getLogger(__name__)


def record_figures(store: DecisionStore, manifest: ClassifierManifest, since: datetime | None = None,
                   until: datetime | None = None) -> dict[str, Any]:
    """The figures of the decisions ``manifest``'s model made in [since, until) (UTC; None: open).

    Raises :class:`~loanxai.errors.RecordError` when a decision recorded under the model's
    version was made by another manifest.
    """
    selection = Selection(since, until, model_version=manifest.version, reviewed=False)
    records = list(select_decisions(store, selection))
    foreign = {r["manifest_sha256"] for r in records} - {manifest.sha256}
    if foreign:
        raise RecordError(f"decisions recorded as model {manifest.version} were made by another manifest "
                          f"(sha256 {', '.join(sorted(foreign))}); give the artifacts of the model that decided")
    n = len(records)
    figures: dict[str, Any] = {
        "model_version": manifest.version, "manifest_sha256": manifest.sha256,
        "since": None if since is None else since.isoformat(), "until": None if until is None else until.isoformat(),
        "applications": n, "approved": sum(r["decision"] == "approved" for r in records),
    }
    if not n:
        return figures
    schema = manifest.schema
    approved = np.fromiter((r["decision"] == "approved" for r in records), bool, n)
    groups = {a: [r["protected"].get(a) for r in records] for a in schema.protected}
    min_rows = manifest.gate.thresholds["min_group_rows"]
    figures["adverse_impact"] = {a: adverse_impact(approved, g, min_rows) for a, g in groups.items()}
    reference = manifest.monitoring
    approval = np.fromiter((r["probability"] for r in records), np.float64, n)
    figures["score"] = _shares(score_indices(approval), reference["score"]["reference"]) | {"bins": list(SCORE_BINS)}
    X = recorded_features(schema, records)
    figures["features"] = {name: _shares(bin_indices(X[:, j], reference["features"][name]["edges"]),
                                         reference["features"][name]["reference"])
                           for j, name in enumerate(schema.feature_names)}
    figures["outcomes"] = outcome_figures(records, approved, groups, outcomes_of(store, selection))
    return figures


def _shares(index: np.ndarray, reference: list[float]) -> dict[str, Any]:
    """Each bin's share of the window, and the window's PSI against the training ``reference``."""
    counts = np.bincount(index, minlength=len(reference))
    shares = counts / counts.sum()
    return {"shares": shares.tolist(), "psi": psi(shares, reference)}


def outcome_figures(records: list[dict[str, Any]], approved: np.ndarray, groups: dict[str, list[str | None]],
              truths: dict[tuple[str, int], str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Outcome counts and rates overall (``all``) and by group (attribute -> group -> figures) of
    the ``records`` with an outcome in ``truths``, as decided by ``approved`` (shape (n,))."""
    known = np.fromiter(((r["request_id"], r["row"]) in truths for r in records), bool, len(records))
    truth = np.asarray([truths.get((r["request_id"], r["row"])) == "approved" for r in records])
    cells = {"all": {"all": known}}
    for attribute, labels in groups.items():
        labels = np.asarray([NOT_GIVEN if g is None else g for g in labels])
        cells[attribute] = {str(g): known & (labels == g) for g in sorted(set(labels.tolist()))}
    return {attribute: {group: _rates(outcome_counts(approved[rows], truth[rows])) for group, rows in by_group.items()}
            for attribute, by_group in cells.items()}


def _rates(counts: dict[str, int]) -> dict[str, Any]:
    """Counts and rates (None where undefined: no outcome of the kind it divides by)."""
    approvals = counts["true_positive"] + counts["false_positive"]
    rates = {**outcome_rates(counts), "precision": counts["true_positive"] / approvals if approvals else None}
    return {**counts, "outcomes": sum(counts[k] for k in OUTCOMES),
            **{name: None if rate is None or np.isnan(rate) else rate for name, rate in rates.items()}}


def _figure(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def describe(figures: dict[str, Any]) -> str:
    """The figures in a few lines, as the dashboard shows them."""
    window = f"{figures['since'] or 'the first decision'} to {figures['until'] or 'now'}"
    lines = [f"model {figures['model_version']}, {window}: {figures['applications']} decisions, "
             f"{figures['approved']} approved"]
    if not figures["applications"]:
        return lines[0]
    for attribute, impact in figures["adverse_impact"].items():
        rates = ", ".join(f"{g} {r['rate']:.3f} ({r['rows']})" for g, r in impact["groups"].items())
        ratio = "not judged" if impact["ratio"] is None else _figure(impact["ratio"])
        lines.append(f"  {attribute}: adverse impact ratio {ratio}; approval rates {rates}")
    drifted = sorted(figures["features"].items(), key=lambda item: -item[1]["psi"])[:3]
    lines.append(f"  PSI: score {figures['score']['psi']:.3f}; inputs most shifted "
                 + ", ".join(f"{name} {f['psi']:.3f}" for name, f in drifted))
    overall = figures["outcomes"]["all"]["all"]
    if overall["outcomes"]:
        lines.append(f"  outcomes: {overall['outcomes']}; recall {_figure(overall['recall'])}, precision "
                     f"{_figure(overall['precision'])}, false positive rate {_figure(overall['false_positive_rate'])}")
    else:
        lines.append("  outcomes: none attached yet")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    root = command_parser(__doc__.splitlines()[0])
    root.add_argument("--record-url", help="the record's SQLAlchemy URL (default: LOAN_RECORDS_URL)")
    root.add_argument("--artifacts", type=Path, default=CLASSIFIER_DIR, help="the artifacts of the model that decided")
    root.add_argument("--since", type=moment, help="decided at or after (UTC, ISO 8601)")
    root.add_argument("--until", type=moment, help="decided before (UTC, ISO 8601)")
    root.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    return root


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Print the record's figures as ``args`` select them (``loanxai figures``)."""
    manifest = load_verified_manifest(args.artifacts, ClassifierManifest)
    figures = record_figures(reading_store(args.record_url, settings.service), manifest, args.since, args.until)
    print(describe(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        logger.info("figures written to %s", args.json)

