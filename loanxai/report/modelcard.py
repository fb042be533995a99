"""The model card: what the model is for, what it learned from, how it treats each group, and
the rules it is judged by, in plain words. Written as ``model_card.md`` and inside the report."""
from __future__ import annotations

from typing import Any

from loanxai.artifacts import version
from loanxai.core.manifest import Manifest, failed_checks
from loanxai.report.render import fmt, md_table

__all__ = ["LEGAL_CONTEXT", "model_card"]

LEGAL_CONTEXT = """\
- **Protected attributes are never a reason.** Under the Equal Credit Opportunity Act and
  Regulation B (12 CFR 1002.6(b)(1)) a lender may not take race, colour, religion, national
  origin, sex, marital status or age (with exceptions) into account in evaluating credit. This
  model does not receive them (unless the card says otherwise above, in red), and no
  explanation it gives can name them; they are kept only to measure and monitor fairness, as
  self-testing allows (12 CFR 1002.15).
- **Disparate impact is judged by effects.** A model can disadvantage a group without seeing
  its members' attribute, through inputs that stand for it (see the proxies). Lending law uses
  an *effects test* with no fixed ratio (Regulation B, comment 6(a)-2; the 1994 interagency
  policy statement): a practice with a disproportionate effect must be justified by business
  need and no less discriminatory alternative must exist. The gate's default, a disparate
  impact of at least 0.8, is the *four-fifths rule* of the employment guidelines
  (29 CFR 1607.4(D)), used here as a screening threshold; every threshold is a setting of the
  dataset description.
- **Rejections need reasons.** A rejected applicant must receive the specific principal
  reasons (12 CFR 1002.9(b)(2)); the commentary says more than four is unlikely to help.
  Records of applications and decisions are kept for 25 months (12 CFR 1002.12).
"""


def model_card(report: dict[str, Any], manifest: Manifest) -> str:
    """The model card as Markdown."""
    dataset = manifest.dataset
    description = dataset.description
    gate = report["gate"]
    candidates = report["candidates"]
    chosen = next(c for c in candidates["candidates"] if c["name"] == candidates["chosen"])
    protected = list(dataset.protected)
    inputs = manifest.schema.feature_names
    excluded = description.get("exclude_from_model", [])
    protected_inputs = [a for a in protected if a in inputs]
    lines = [
        "# Model card",
        "",
        f"Loan decision model `{report['artifacts']['model_version']}`, trained {report['artifacts']['trained_at']} "
        f"on the dataset **{dataset.name}** ({dataset.rows['train']} training and {dataset.rows['test']} "
        f"held-out applications); the mitigation candidate **{chosen['name']}** ({chosen['summary']}).",
        "",
        "## Intended use",
        "",
        "Deciding loan applications of the population the data describes, one application or a file at a time, "
        "as a recommendation a lender can explain: every decision comes with an anchor explanation, and the "
        "services are monitored for approval rates by group, drift and live accuracy. The probability of approval "
        "is served with each decision; the decision threshold is 0.5, the same for everyone.",
        "",
        "**Out of scope**: applicants unlike the training population (other countries, eras, products); decisions "
        "without a human able to review them; any use of the protected attributes beyond measuring fairness; "
        "setting prices or limits (the model answers approve or reject only); and shipping a model that failed "
        "the fairness gate without the recorded, justified override this card would show.",
        "",
        "## Data and its limits",
        "",
        description.get("about") or "(the dataset description gives no `about` text)",
        "",
        f"Label: `{dataset.label['column']}`; approved means {', '.join(dataset.label['approved'])}, rejected "
        f"{', '.join(dataset.label['rejected'])}. Source files and their sha256: "
        + ", ".join(f"`{path}` ({version(digest)})" for path, digest in dataset.sources.items()) + ".",
        "",
        "## Inputs and excluded attributes",
        "",
        f"Model inputs ({len(inputs)}): " + ", ".join(f"`{name}`" for name in inputs) + ".",
        "",
        "Protected attributes (measured and monitored, "
        + ("never model inputs" if not protected_inputs else "**some are model inputs**") + "): "
        + ", ".join(f"`{name}`" for name in protected) + ".",
    ]
    if protected_inputs:
        lines += ["", _red(f"Protected attributes used as model inputs: {', '.join(protected_inputs)}. The dataset "
                           "description allows it explicitly; it is disparate treatment in lending, and the gate fails.")]
    if excluded:
        lines += ["", "Excluded from the model as proxies: " + ", ".join(f"`{name}`" for name in excluded) + "."]
    if "proxies" in report:
        lines += ["", "Strongest remaining proxies (held-out ROC AUC of predicting the attribute from one input): "
                  + "; ".join(f"{a}: " + ", ".join(report["proxies"][a]["strongest"]) for a in report["proxies"]) + "."]
    lines += [
        "",
        "## Candidates and the choice",
        "",
        f"Rule: {candidates['rule']}. Requested: `{candidates['requested']}`; chosen: `{candidates['chosen']}`.",
        "",
        _candidate_table(candidates["candidates"], protected, candidates["chosen"]),
        "",
        "## Metrics per group (held-out rows)",
        "",
    ]
    for attribute, section in report["groups"].items():
        lines += [f"**{attribute}**", "",
                  md_table(["group", "rows", "approval rate", "recall (TPR)", "false positive rate"],
                           [[g, *(fmt(row[k]) for k in ("count", "selection_rate", "recall", "false_positive_rate"))]
                            for g, row in section["by_group"].items()]), ""]
    lines += ["## Fairness gate", "", _gate_summary(gate), "", "## Legal context in plain words", "", LEGAL_CONTEXT]
    return "\n".join(lines)


def _candidate_table(candidates: list[dict[str, Any]], protected: list[str], chosen: str) -> str:
    header = ["candidate", "accuracy", "ROC AUC", *(f"{a}: DI / EOD" for a in protected), "gate"]
    rows = [[f"**{c['name']}**" if c["name"] == chosen else c["name"], fmt(c["metrics"]["accuracy"]),
             fmt(c["metrics"]["roc_auc"]),
             *(f"{fmt(c['gaps'][a]['disparate_impact'])} / {fmt(c['gaps'][a]['equalized_odds_difference'])}" for a in protected),
             "pass" if c["passed"] else "FAIL"] for c in candidates]
    return md_table(header, rows)


def _gate_summary(gate: dict[str, Any]) -> str:
    if gate["passed"]:
        return f"**PASSED**: {len(gate['checks'])} checks, thresholds {gate['thresholds']}."
    text = _red("FAILED: " + "; ".join(failed_checks(gate["checks"])))
    override = gate.get("override")
    if override:
        text += ("\n\n" + _red(f"Shipped under an override accepted by {override['accepted_by']} at "
                               f"{override['accepted_at']}. Reason given: {override['reason']}"))
    else:
        text += "\n\nNo override: the image build, the deployment and the container smoke test refuse this model."
    return text


def _red(text: str) -> str:
    return f'<strong style="color:#c00">{text}</strong>'
