"""The report's command: evaluate the trained artifacts and write every file of the report.

``loanxai report`` (``make report``) writes, in ``reports/``: ``report.html``
(self-contained), ``report.md``, ``model_card.md``, the PNG plots and ``report.json`` (every
number). Every figure is at the cutoff training set. ``--fail-on-gate`` exits 1 when the
screen flags the held-out rows (at the recorded thresholds, or those given).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from loanxai.artifacts import CLASSIFIER_DIR, EXPLAINER_DIR
from loanxai.config import Settings
from loanxai.core.cli import command_parser
from loanxai.core.manifest import ClassifierManifest, failed_checks, read_manifest
from loanxai.data.dataset import load_trained_dataset
from loanxai.data.description import LABEL, Protected
from loanxai.fairness.gate import GateThresholds, screen_checks
from loanxai.fairness.metrics import evaluate
from loanxai.report.artifacts import ReportOptions, artifacts_summary, load_model
from loanxai.report.modelcard import model_card
from loanxai.report.proxies import proxy_section
from loanxai.report.render import render_html, render_markdown
from loanxai.report.search import search_section
from loanxai.report.sections import (
    balanced_section,
    data_section,
    explanation_section,
    group_section,
    reasons_section,
    skewed_sample_trap,
)

__all__ = ["build_report", "parser", "run"]

logger = logging.getLogger(__name__)


def build_report(config: ReportOptions) -> dict[str, Any]:
    """Evaluate the artifacts and write every file of the report; return the JSON content."""
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = load_model(config.classifier_dir, config.explainer_dir)
    dataset = load_trained_dataset(model.manifest)
    frame, train, test = dataset.frame, dataset.train, dataset.test
    reference = np.asarray(model.manifest.reference["rows"], dtype=np.float64)
    if not np.array_equal(model.schema.encode_frame(test.head(len(reference))), reference, equal_nan=True):
        raise RuntimeError("the held-out rows differ from those the model was evaluated on at training")
    declared = model.manifest.dataset.protected
    unknown = [a for a in config.protected if a not in declared]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a protected attribute of dataset {dataset.description.name} "
                         f"({', '.join(declared)})")
    # the gate training recorded, unless the caller asks another question
    thresholds = config.thresholds or GateThresholds.from_dict(model.manifest.gate.thresholds)
    config = replace(config, protected=config.protected or declared, thresholds=thresholds)
    protected, min_rows = config.protected, thresholds.min_group_rows
    held_out = test
    if config.sample:
        test = test.sample(n=min(config.sample, len(test)), random_state=config.seed).reset_index(drop=True)
    steps = [
        ("data", lambda: data_section(frame, model.schema, protected, out)),
        # drawn from the whole held-out set: a small --sample may hold fewer than 50 approved
        ("skewed_sample_trap", lambda: skewed_sample_trap(train, held_out, model.schema, config.seed, out)),
        ("balanced_evaluation", lambda: balanced_section(model, test, protected, min_rows, config.seed)),
        ("groups", lambda: group_section(model, test, protected, min_rows, out)),
        ("proxies", lambda: proxy_section(dataset, model.schema, protected, min_rows, out)),
        ("search", lambda: search_section(model.manifest, out)),
        ("explanations", lambda: explanation_section(model, test, protected, config.explanations_per_group,
                                                     config.permutation_repeats, config.seed, out)),
        ("reasons", lambda: reasons_section(model, held_out, config.seed)),
    ]
    report: dict[str, Any] = {
        "artifacts": artifacts_summary(model),
        "config": config.record(),
        "held_out_rows": int(len(test)),
        "decision": asdict(model.manifest.decision),
        "metrics": evaluate(model.approval(model.schema.encode_frame(test)), test[LABEL].to_numpy(), model.cutoff),
    }
    for i, (name, step) in enumerate(steps, 1):
        logger.info("[%d/%d] %s", i, len(steps), name.replace("_", " "))
        report[name] = step()
    report["gate"] = _gate(report, model.manifest, thresholds, protected, dataset.description.protected)
    report["model_card"] = model_card(report, model.manifest)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    (out / "model_card.md").write_text(report["model_card"])
    text = render_markdown(report)
    (out / "report.md").write_text(text)
    (out / "report.html").write_text(render_html(text, out))
    logger.info("report written to %s in %.0f s", out, time.perf_counter() - started)
    return report


def _gate(report: dict[str, Any], manifest: ClassifierManifest, thresholds: GateThresholds, protected: tuple[str, ...],
          declared: Mapping[str, Protected]) -> dict[str, Any]:
    """The screen on the rows the report evaluated (at ``thresholds``), beside the gate training recorded."""
    recorded = manifest.gate
    screened = tuple(a for a in (thresholds.screen if thresholds.screen is not None else protected) if a in protected)
    point = {"features": list(manifest.schema.feature_names),
             "air": {a: report["groups"][a]["adverse_impact"] for a in screened},
             "gaps": {a: report["groups"][a]["gaps"] for a in screened}}
    checks = screen_checks(point, point, thresholds, screened, declared)
    return {"passed": all(c["passed"] for c in checks), "checks": checks, "thresholds": thresholds.to_dict(),
            "recorded": {"status": recorded.status, "passed": recorded.passed, "checks": list(recorded.checks),
                         "failed_checks": recorded.failed_checks, "failed_search": recorded.failed_search},
            "override": recorded.override}


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser(__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=ReportOptions.output_dir, help="where the report is written")
    parser.add_argument("--artifacts", type=Path, default=CLASSIFIER_DIR, help="the classifier's artifacts")
    parser.add_argument("--explainer-artifacts", type=Path, default=EXPLAINER_DIR, help="the explainer's artifacts")
    parser.add_argument("--protected", nargs="+", default=[],
                        help="protected attributes to judge (default: all those the dataset description declares)")
    parser.add_argument("--sample", type=int, default=None, help="evaluate on this many held-out rows")
    parser.add_argument("--explanations-per-group", type=int, default=2, help="anchors shown per protected group")
    parser.add_argument("--permutation-repeats", type=int, default=5, help="repeats of the permutation importance")
    gate = parser.add_argument_group("the gate (default: the thresholds training recorded, from the dataset description)")
    gate.add_argument("--min-group-rows", type=int, help="smaller groups are reported but left out of the gaps and the gate")
    gate.add_argument("--min-adverse-impact-ratio", type=float,
                      help="the screen: lowest judged group's approval rate over the highest")
    gate.add_argument("--max-demographic-parity-difference", type=float, help="largest minus smallest approval rate")
    gate.add_argument("--max-equalized-odds-difference", type=float, help="the larger of the TPR and FPR gaps")
    gate.add_argument("--max-equal-opportunity-difference", type=float, help="the TPR (recall) gap")
    parser.add_argument("--fail-on-gate", action="store_true", help="exit 1 when the screen flags the held-out rows")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Build the report as ``args`` say (``loanxai report``); 1 with ``--fail-on-gate`` when the screen flags."""
    asked = {key: getattr(args, key) for key in GateThresholds.__dataclass_fields__
             if getattr(args, key, None) is not None}
    thresholds = None
    if asked:
        recorded = read_manifest(args.artifacts, ClassifierManifest).gate.thresholds
        thresholds = GateThresholds.from_dict({**recorded, **asked})
    config = ReportOptions(args.output_dir, args.artifacts, args.explainer_artifacts, tuple(args.protected),
                          thresholds, args.sample, args.explanations_per_group, args.permutation_repeats)
    report = build_report(config)
    for check in report["gate"]["checks"]:
        logger.info("screen %s: %s %s = %s (%s)", "pass" if check["passed"] else "FLAG", check["attribute"],
                    check["metric"], "n/a" if check["value"] is None else f"{check['value']:.3f}", check["rule"])
    if args.fail_on_gate and not report["gate"]["passed"]:
        logger.error("the screen flags the held-out rows: %s", "; ".join(failed_checks(report["gate"]["checks"])))
        return 1
    return 0
