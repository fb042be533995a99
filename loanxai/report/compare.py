"""How a challenger's decisions differ from the champion's on the same applications, by group.

``loanxai compare`` (``make compare CHALLENGER=...``) reads the decision record: the
champion's decisions of a time window that a challenger shadowing it decided too (paired by
request id and row, :func:`loanxai.records.queries.paired_decisions`). :func:`compare` computes,
on those pairs only, so both models are judged on the same applications:

- agreement, and the decisions that flip each way (``approved_to_rejected``: the challenger
  rejects what the champion approved), overall and by group of each protected attribute;
- each model's approvals, approval rate and adverse impact ratio per protected attribute, as
  the gate computes it (:func:`loanxai.fairness.metrics.adverse_impact`, groups of at least
  the champion's ``min_group_rows`` pairs);
- where outcomes are attached (feedback to the champion's decision: the application's outcome),
  each model's recall, precision and the rest, overall and by group
  (:func:`loanxai.report.production.outcome_figures`);
- the population stability index of the challenger's scores against the champion's, over the
  monitoring's ten score bins (:func:`loanxai.monitoring.references.psi`);
- every application whose decision flips, with both models' scores and recorded reasons.

It writes ``compare.json`` (every figure and flip) and ``compare.html`` (tables and plots).
"""
from __future__ import annotations

import argparse
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from loanxai.artifacts import CLASSIFIER_DIR, REPORTS_DIR
from loanxai.config import CHALLENGER, CHAMPION, Settings
from loanxai.core.cli import command_parser
from loanxai.core.manifest import ClassifierManifest, load_verified_manifest
from loanxai.errors import RecordError
from loanxai.fairness.metrics import adverse_impact
from loanxai.monitoring.references import NOT_GIVEN, SCORE_BINS, psi, score_indices
from loanxai.records.cli import moment
from loanxai.records.queries import Selection, challenger_versions, outcomes_of, paired_decisions, select_decisions
from loanxai.records.store import DecisionStore, reading_store
from loanxai.report.plots import plot_group_approval, plot_score_shares
from loanxai.report.production import outcome_figures
from loanxai.report.render import fmt, md_table, render_html, with_interval

__all__ = ["FLIPS", "compare", "compared", "describe", "parser", "render_comparison", "run", "worst_ratio"]

logger = logging.getLogger(__name__)

#: the two ways a decision flips, champion's decision first
FLIPS = ("approved_to_rejected", "rejected_to_approved")
#: flipped applications the HTML lists (the JSON lists all)
_SHOWN_FLIPS = 50


def compare(store: DecisionStore, champion: ClassifierManifest, challenger: ClassifierManifest, since: datetime | None = None,
            until: datetime | None = None) -> dict[str, Any]:
    """The comparison (see the module's docstring) of the decisions ``champion``'s model made in
    [since, until) (UTC; None: open) with ``challenger``'s of the same applications.

    Raises :class:`~loanxai.errors.RecordError` when the window holds no pair (naming the
    challengers that did decide there) or a decision recorded under either version was made by
    another manifest.
    """
    selection = Selection(since, until, model_version=champion.version, reviewed=False)
    pairs = paired_decisions(store, selection, challenger.version)
    if not pairs:
        found = challenger_versions(store, selection)
        raise RecordError(
            f"no decision of model {champion.version} in the window was decided by challenger {challenger.version} too"
            + (f"; challengers recorded there: {', '.join(f'{v} ({n})' for v, n in found.items())}" if found else
               "; no challenger decided there (make run CHALLENGER=<artifacts> mirrors decisions to one)"))
    for role, manifest, records in ((CHAMPION, champion, [p[0] for p in pairs]),
                                    (CHALLENGER, challenger, [p[1] for p in pairs])):
        foreign = {r["manifest_sha256"] for r in records} - {manifest.sha256}
        if foreign:
            raise RecordError(f"the {role}'s decisions recorded as model {manifest.version} were made by another "
                              f"manifest (sha256 {', '.join(sorted(foreign))}); give the artifacts of the model that decided")
    champion_records = [p[0] for p in pairs]
    groups = {a: [r["protected"].get(a) for r in champion_records] for a in champion.schema.protected}
    truths = outcomes_of(store, selection)
    approved = {role: np.fromiter((r[i]["decision"] == "approved" for r in pairs), bool, len(pairs))
                for i, role in enumerate((CHAMPION, CHALLENGER))}
    scores = {role: np.fromiter((r[i]["probability"] for r in pairs), np.float64, len(pairs))
              for i, role in enumerate((CHAMPION, CHALLENGER))}
    min_rows = champion.gate.thresholds["min_group_rows"]
    shares = {role: (np.bincount(score_indices(s), minlength=len(SCORE_BINS)) / len(s)).tolist()
              for role, s in scores.items()}
    return {
        "since": None if since is None else since.isoformat(), "until": None if until is None else until.isoformat(),
        "models": {role: {"model_version": m.version, "manifest_sha256": m.sha256, "cutoff": m.cutoff}
                   for role, m in ((CHAMPION, champion), (CHALLENGER, challenger))},
        "pairs": len(pairs),
        "unpaired": sum(1 for _ in select_decisions(store, selection)) - len(pairs),
        "min_group_rows": min_rows,
        "flips": _flips(approved[CHAMPION], approved[CHALLENGER], groups),
        "decisions": {role: {"approved": int(a.sum()), "approval_rate": float(a.mean()),
                             "adverse_impact": {attr: adverse_impact(a, g, min_rows) for attr, g in groups.items()},
                             "outcomes": outcome_figures(champion_records, a, groups, truths)}
                      for role, a in approved.items()},
        "score": {"bins": list(SCORE_BINS), "shares": shares, "psi": psi(shares[CHALLENGER], shares[CHAMPION])},
        "flipped": [_flipped(champion_record, challenger_record) for champion_record, challenger_record in pairs
                    if champion_record["decision"] != challenger_record["decision"]],
    }


def _flips(champion: np.ndarray, challenger: np.ndarray, groups: dict[str, list[str | None]]) -> dict[str, Any]:
    """Agreement and flips each way, overall (``all``) and by group of each attribute."""
    cells = {"all": {"all": np.ones(len(champion), bool)}}
    for attribute, labels in groups.items():
        labels = np.asarray([NOT_GIVEN if g is None else g for g in labels])
        cells[attribute] = {str(g): labels == g for g in sorted(set(labels.tolist()))}

    def counted(rows: np.ndarray) -> dict[str, Any]:
        n = int(rows.sum())
        down, up = int((rows & champion & ~challenger).sum()), int((rows & ~champion & challenger).sum())
        return {"pairs": n, "agreement": (n - down - up) / n, FLIPS[0]: down, FLIPS[1]: up}

    return {attribute: {group: counted(rows) for group, rows in by_group.items()} for attribute, by_group in cells.items()}


def _flipped(champion: dict[str, Any], challenger: dict[str, Any]) -> dict[str, Any]:
    """One flipped application: its ids and groups, and each model's score, decision and reasons."""
    return {"request_id": champion["request_id"], "row": champion["row"], "application_id": champion["application_id"],
            "decided_at": champion["decided_at"].isoformat(), "protected": champion["protected"],
            **{role: {key: record[key] for key in ("probability", "decision", "reasons")}
               for role, record in ((CHAMPION, champion), (CHALLENGER, challenger))}}


def worst_ratio(impacts: dict[str, dict[str, Any]]) -> tuple[str | None, float | None]:
    """The attribute with the lowest judged adverse impact ratio, and that ratio (None, None: none judged)."""
    judged = {a: i["ratio"] for a, i in impacts.items() if i["ratio"] is not None}
    if not judged:
        return None, None
    attribute = min(judged, key=lambda a: (judged[a], a))
    return attribute, judged[attribute]


def describe(comparison: dict[str, Any]) -> str:
    """The comparison in a few lines."""
    models, flips = comparison["models"], comparison["flips"]["all"]["all"]
    lines = [f"champion {models[CHAMPION]['model_version']} and challenger {models[CHALLENGER]['model_version']}: "
             f"{comparison['pairs']} applications decided by both ({comparison['unpaired']} by the champion alone); "
             f"agreement {flips['agreement']:.3f}, {flips[FLIPS[0]]} approvals the challenger rejects, "
             f"{flips[FLIPS[1]]} rejections it approves; score PSI {comparison['score']['psi']:.3f}"]
    for role in (CHAMPION, CHALLENGER):
        figures = comparison["decisions"][role]
        attribute, ratio = worst_ratio(figures["adverse_impact"])
        overall = figures["outcomes"]["all"]["all"]
        recall = (f"recall {fmt(overall['recall'])}, precision {fmt(overall['precision'])} on {overall['outcomes']} "
                  "outcomes" if overall["outcomes"] else "no outcomes attached")
        lines.append(f"  {role}: approval rate {figures['approval_rate']:.3f}; worst adverse impact ratio "
                     + (f"{ratio:.3f} ({attribute})" if ratio is not None else "not judged") + f"; {recall}")
    return "\n".join(lines)


def render_comparison(comparison: dict[str, Any], out: Path) -> Path:
    """Write ``compare.json``, the plots and ``compare.html`` into ``out``; the HTML's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(comparison, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    plot_score_shares(comparison["score"], out / "compare_scores.png")
    plot_group_approval({role: d["adverse_impact"] for role, d in comparison["decisions"].items()},
                        out / "compare_groups.png")
    html = out / "compare.html"
    html.write_text(render_html(_markdown(comparison), out, title="Champion and challenger"), encoding="utf-8")
    return html


def _markdown(comparison: dict[str, Any]) -> str:
    models, decided = comparison["models"], comparison["decisions"]
    window = f"{comparison['since'] or 'the first decision'} to {comparison['until'] or 'now'}"
    lines = ["# Champion and challenger", "",
             f"Champion **{models[CHAMPION]['model_version']}** (cutoff {fmt(models[CHAMPION]['cutoff'])}) and challenger "
             f"**{models[CHALLENGER]['model_version']}** (cutoff {fmt(models[CHALLENGER]['cutoff'])}), decisions of "
             f"{window}: {comparison['pairs']} applications decided by both, {comparison['unpaired']} by the champion "
             "alone (not compared).", "", "## Decisions by group", "",
             md_table(["attribute", "group", "pairs", "agreement", "approved → rejected", "rejected → approved"],
                      [[a, g, c["pairs"], fmt(c["agreement"]), c[FLIPS[0]], c[FLIPS[1]]]
                       for a, by_group in comparison["flips"].items() for g, c in by_group.items()]), "",
             "## Approval and adverse impact", "", '<img src="compare_groups.png">', ""]
    rows = []
    for attribute in decided[CHAMPION]["adverse_impact"]:
        rows.append([attribute] + [with_interval(decided[role]["adverse_impact"][attribute], "ratio")
                                   for role in (CHAMPION, CHALLENGER)])
    lines += [md_table(["attribute", "champion's ratio", "challenger's ratio"], rows), "",
              f"Ratios of groups of at least {comparison['min_group_rows']} pairs (the champion's gate).", "",
              "## Outcomes", ""]
    outcomes = [[a, g] + [_recall_precision(decided[role]["outcomes"][a][g]) for role in (CHAMPION, CHALLENGER)]
                for a, by_group in decided[CHAMPION]["outcomes"].items() for g in by_group]
    lines += [md_table(["attribute", "group", "champion: recall / precision (outcomes)",
                        "challenger: recall / precision (outcomes)"], outcomes), "",
              "## Scores", "", f"PSI of the challenger's scores against the champion's: {fmt(comparison['score']['psi'])}.",
              "", '<img src="compare_scores.png">', "", "## Decisions that flip", ""]
    flipped = comparison["flipped"]
    lines += [f"{len(flipped)} applications" + (f", the first {_SHOWN_FLIPS} shown (compare.json lists all)"
                                                if len(flipped) > _SHOWN_FLIPS else "") + ".", "",
              md_table(["application", "groups", "champion", "challenger", "champion's reasons", "challenger's reasons"],
                       [[f["application_id"], _groups(f["protected"])]
                        + [f"{f[r]['decision']} ({f[r]['probability']:.3f})" for r in (CHAMPION, CHALLENGER)]
                        + [_reasons(f[r]["reasons"]) for r in (CHAMPION, CHALLENGER)]
                        for f in flipped[:_SHOWN_FLIPS]])]
    return "\n".join(lines) + "\n"


def _recall_precision(figures: dict[str, Any]) -> str:
    return f"{fmt(figures['recall'])} / {fmt(figures['precision'])} ({figures['outcomes']})"


def _groups(protected: dict[str, Any]) -> str:
    return ", ".join(f"{a} {g}" for a, g in protected.items() if g is not None) or NOT_GIVEN


def _reasons(reasons: dict[str, Any] | None) -> str:
    """The recorded principal reasons' features, in order (not asked: none recorded)."""
    if reasons is None:
        return "not asked"
    return ", ".join(r["feature"] for r in reasons["reasons"]) or "none"


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    root = command_parser(__doc__.splitlines()[0])
    root.add_argument("--challenger", type=Path, required=True, help="the challenger's classifier artifacts")
    root.add_argument("--champion", type=Path, default=CLASSIFIER_DIR, help="the champion's classifier artifacts")
    root.add_argument("--record-url", help="the record's SQLAlchemy URL (default: LOAN_RECORDS_URL)")
    root.add_argument("--since", type=moment, help="decided at or after (UTC, ISO 8601)")
    root.add_argument("--until", type=moment, help="decided before (UTC, ISO 8601)")
    root.add_argument("--out", type=Path, default=REPORTS_DIR / "compare", help="where compare.html and compare.json go")
    return root


def compared(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The comparison ``args`` ask for: ``champion`` and ``challenger`` folders, the record, the period."""
    champion, challenger = (load_verified_manifest(folder, ClassifierManifest) for folder in (args.champion, args.challenger))
    return compare(reading_store(args.record_url, settings.service), champion, challenger, args.since, args.until)


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Compare the challenger with the champion as ``args`` say (``loanxai compare``)."""
    comparison = compared(args, settings)
    print(describe(comparison))
    logger.info("comparison written to %s", render_comparison(comparison, args.out))

