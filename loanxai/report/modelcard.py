"""The model card: what the model is for, what it learned from, which prohibited bases are kept
out and why, how it decides and was chosen, how it treats each group, and the rules it is judged
by, in plain words. Written as ``model_card.md`` and inside the report."""
from __future__ import annotations

from typing import Any

from loanxai.artifacts import version
from loanxai.core.manifest import ClassifierManifest
from loanxai.fairness.candidates import SEED_REFERENCE
from loanxai.report.render import fmt, gate_notes, md_table, red, with_interval
from loanxai.report.search import coverage_lines

__all__ = ["LEGAL_CONTEXT", "model_card"]

LEGAL_CONTEXT = """\
- **Prohibited bases are kept out.** Under the Equal Credit Opportunity Act and Regulation B
  (12 CFR 1002.6(b)(1)) a lender may not take race, colour, religion, national origin, sex,
  marital status or age (with exceptions) into account in evaluating credit. Every basis the
  data holds, and every column that directly encodes one, is declared above; none is a model
  input (age excepted where the card says so, under the elderly rule), none is ever a reason,
  an anchor condition or a recourse change; they are kept only to measure and monitor fairness,
  as self-testing allows (12 CFR 1002.15).
- **Age** may be an input of an empirically derived, statistically sound system provided an
  elderly applicant's age (62 or more, 1002.2(o)) is never assigned a negative value
  (1002.6(b)(2)(ii)). Here that holds by construction: an elderly applicant is decided at the
  most favourable age the model tells apart, so age never counts against them and is never
  stated as a reason against them.
- **Disparate impact is screened as a control.** A model can disadvantage a group without
  seeing its members' attribute, through inputs that stand for it (see the proxies). Since
  2026-07-21 federal Regulation B has no effects test (the CFPB's final rule of 2026-04-22
  removed comment 6(a)-2), but disparate impact still binds through state law and attorneys
  general (New Jersey, Massachusetts, California, New York, Illinois), the Fair Housing Act for
  mortgages, and the lender's own policy. The gate screens the adverse impact ratio (the lowest
  group's approval rate over the highest, at the lender's cutoff) against a threshold, by
  default 0.8, the *four-fifths rule* of the employment guidelines (29 CFR 1607.4(D)); when it
  flags, the search for a less discriminatory alternative and a business justification are what
  let the model ship.
- **Rejections need reasons.** A rejected applicant must receive the specific principal
  reasons (12 CFR 1002.9(b)(2)); the commentary says more than four is unlikely to help. The
  reasons here explain the gap between the applicant and approved applicants. Records of
  applications and decisions are kept for 25 months (12 CFR 1002.12).
"""


def model_card(report: dict[str, Any], manifest: ClassifierManifest) -> str:
    """The model card as Markdown."""
    dataset, search, decision = manifest.dataset, report["search"], report["decision"]
    description = dataset.description
    chosen = next(c for c in search["candidates"] if c["name"] == search["chosen"])
    inputs = manifest.schema.feature_names
    declared = description["protected"]
    excluded = description.get("exclude_from_model", [])
    lines = [
        "# Model card",
        "",
        f"Loan decision model `{report['artifacts']['model_version']}`, trained {report['artifacts']['trained_at']} "
        f"on the dataset **{dataset.name}** ({dataset.rows['train']} training and {dataset.rows['test']} "
        f"held-out applications): the candidate **{chosen['name']}** ({chosen['summary']}).",
        "",
        "## Intended use",
        "",
        "Deciding loan applications of the population the data describes, one application or a file at a time, "
        "as a recommendation a lender can explain: every rejection comes with its principal reasons, any decision "
        "with an anchor and a recourse on request, and the services are monitored for approval rates by group, drift "
        f"and live recall. An application is approved when its probability of approval is at least "
        f"**{decision['cutoff']:.4f}**, the same for everyone: the cutoff the decision policy `{decision['policy']}` "
        "set on the training rows (cross-validated probabilities). The probability is served with each decision.",
        "",
        "**Out of scope**: applicants unlike the training population (other countries, eras, products); decisions "
        "without a human able to review them; any use of the protected attributes beyond measuring fairness; "
        "setting prices or limits (the model answers approve or reject only); and shipping a model the screen "
        "flagged without the business justification this card would show.",
        "",
        "## Data and its limits",
        "",
        description.get("about") or "(the dataset description gives no `about` text)",
        "",
        f"Label: `{dataset.label['column']}`; approved means {', '.join(dataset.label['approved'])}, rejected "
        f"{', '.join(dataset.label['rejected'])}. Source files and their sha256: "
        + ", ".join(f"`{path}` ({version(digest)})" for path, digest in dataset.sources.items()) + ".",
        "",
        "## Inputs and the prohibited bases",
        "",
        f"Model inputs ({len(inputs)}): " + ", ".join(f"`{name}`" for name in inputs) + ".",
        "",
        "Declared protected attributes: measured, reported and monitored; never a reason, an anchor condition or a "
        "recourse change.",
        "",
        md_table(["attribute", "prohibited basis", "model input", "why declared"],
                 [[f"`{p['name']}`", ", ".join(p["basis"]), _input(p), p.get("why") or ""] for p in declared]),
    ]
    treatment = [p["name"] for p in declared if p.get("model_input") and p["name"] in inputs and "age" not in p["basis"]]
    if treatment:
        lines += ["", red(f"Prohibited bases used as model inputs: {', '.join(treatment)}. The dataset description "
                           "allows it explicitly; it is disparate treatment in lending, and the gate fails.")]
    elderly = manifest.schema.elderly
    if elderly:
        [(name, age)] = elderly.items()
        lines += ["", f"**The elderly rule.** `{name}` is an input; for an applicant of {age:g} or more the model is "
                      f"asked at every {name} it tells apart below {age:g} and the most favourable answer is used, so "
                      f"{name} never counts against an elderly applicant and is never a reason against one."]
    if excluded:
        lines += ["", "Excluded from the model as proxies: " + ", ".join(f"`{name}`" for name in excluded) + "."]
    if "proxies" in report:
        lines += ["", "Strongest remaining proxies (held-out ROC AUC of predicting the attribute from one column): "
                  + "; ".join(f"{a}: " + ", ".join(report["proxies"][a]["strongest"]) for a in report["proxies"]) + "."]
    reference = next((c for c in search["candidates"] if c["name"] == SEED_REFERENCE), None)
    incumbent = search["incumbent_point"]
    lines += [
        "",
        "## How it was chosen",
        "",
        f"{len(search['candidates'])} candidates ({' and '.join(search['families'])} families at several settings; "
        f"feature sets without the strongest proxies, reweighing strengths, fairlearn reductions under demographic "
        f"parity, true positive rate parity and equalized odds on binary groups) were compared by {search['folds']}-fold "
        f"cross-validation on the training rows at the same approval rate, on ROC AUC and on recall and precision at "
        f"the cutoff; accuracy never chose. Rule: {search['rule']}. Within these families and this budget:",
        "",
        *coverage_lines(search),
        "",
        "![The search: every candidate, each family's frontier, the choice](frontier.png)",
        "",
        md_table(["", "ROC AUC", "recall", "precision", "worst adverse impact ratio", "worst standardized mean difference"],
                 [[f"chosen: {chosen['name']}", *_point(chosen)],
                  *([["incumbent: the served model's recipe, refitted on the same folds", *_point(incumbent)]]
                    if incumbent else []),
                  *([[f"reference: {reference['summary']}", *_point(reference)]] if reference else [])]),
        "",
        f"Held-out check ({report['held_out_rows']} rows): ROC AUC {fmt(report['metrics']['roc_auc'])}, recall "
        f"{fmt(report['metrics']['recall'])}, precision {fmt(report['metrics']['precision'])}, approval rate "
        f"{fmt(report['metrics']['predicted_approval_rate'])}.",
        "",
        "## Metrics per group (held-out rows, at the cutoff)",
        "",
    ]
    for attribute, section in report["groups"].items():
        impact = section["adverse_impact"]
        lines += [f"**{attribute}**: adverse impact ratio {with_interval(impact, 'ratio')}"
                  + (f"; not judged (fewer than {impact['min_rows']} rows): " + ", ".join(impact["not_judged"])
                     if impact["not_judged"] else ""), "",
                  md_table(["group", "rows", "approval rate [95%]", "recall (TPR)", "false positive rate"],
                           [[g, r["rows"], f"{fmt(r['rate'])} [{fmt(r['low'])}, {fmt(r['high'])}]",
                             fmt(section["by_group"][g]["recall"]), fmt(section["by_group"][g]["false_positive_rate"])]
                            for g, r in impact["groups"].items()]), ""]
    reasons = report["reasons"]
    lines += ["## Principal reasons", "",
              f"A rejection's reasons attribute the gap between the applicant's probability of approval and approved "
              f"applicants' ({reasons['base_value']:.3f}, at or above the cutoff); the {reasons['max_reasons']} stated "
              f"carry a median {reasons['gap_share']['median']:.0%} of it over {reasons['rejections']} held-out "
              "rejections. Each reason has a stable code (feature and direction).", "",
              "## Fairness gate", "", _gate_summary(report["gate"]), "",
              "## Legal context in plain words", "", LEGAL_CONTEXT]
    return "\n".join(lines)


def _input(declared: dict[str, Any]) -> str:
    if not declared.get("model_input"):
        return "no"
    return "yes, under the elderly rule" if declared.get("elderly") is not None else "**yes: disparate treatment**"


def _point(candidate: dict[str, Any]) -> list[str]:
    metrics, worst, smd = candidate["metrics"], candidate["worst"], candidate["worst_smd"]
    return [fmt(metrics["roc_auc"]), fmt(metrics["recall"]), fmt(metrics["precision"]),
            f"{with_interval(worst, 'ratio')} ({worst['attribute']})" if worst else "n/a",
            f"{with_interval(smd, 'smd')} ({smd['attribute']})" if smd else "n/a"]


def _gate_summary(gate: dict[str, Any]) -> str:
    recorded = gate["recorded"]
    if recorded["status"] == "passed":
        return f"**PASSED**: {len(recorded['checks'])} checks, thresholds {gate['thresholds']}."
    return f"**{recorded['status'].upper()}**\n\n" + "\n".join(gate_notes(gate))
