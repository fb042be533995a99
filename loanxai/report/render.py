"""The report rendered: Markdown with the plots beside it, and self-contained HTML."""
from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import markdown

from loanxai.report.search import coverage_lines, versus_incumbent

__all__ = ["fmt", "gate_notes", "md_table", "red", "render_html", "render_markdown", "with_interval"]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown, with the plots as image links beside it."""
    art, trap, gate, metrics = report["artifacts"], report["skewed_sample_trap"], report["gate"], report["metrics"]
    decision = report["decision"]
    lines = [
        "# Loan model: bias and evaluation report",
        "",
        f"Model `{art['model_version']}` (dataset {art['dataset']}, candidate {art['candidate']}) trained "
        f"{art['trained_at']}; {report['held_out_rows']} held-out applications evaluated. It approves an application "
        f"when its probability of approval is at least **{decision['cutoff']:.4f}** (the decision policy "
        f"`{decision['policy']}`, set on the training rows); every figure below is at that cutoff.",
        "",
        f"**Fairness gate: {gate['recorded']['status'].upper()}**",
        "",
        *gate_notes(gate),
        "The gate as training recorded it (step 1, the screen, on the cross-validated decisions over every training "
        "row, the held-out figures beside; step 2, the search):",
        "",
        md_table(["step", "attribute", "metric", "value [95% interval]", "held out", "groups judged reliably", "rule",
                  "result"],
                 [[c["step"], c["attribute"], c["metric"], with_interval(c), with_interval(c.get("held_out") or {}, "ratio"),
                   _reliably(c.get("reliably_judged")), c["rule"], _result(c)]
                  for c in gate["recorded"]["checks"]]),
        "",
        "On the held-out rows this report evaluated:",
        "",
        md_table(["attribute", "metric", "value [95% interval]", "rule", "result"],
                 [[c["attribute"], c["metric"], with_interval(c), c["rule"], _result(c)]
                  for c in gate["checks"]]),
        "",
        "## Model on the held-out data",
        "",
        md_table(["ROC AUC", "recall", "precision", "approval rate (data's)", "accuracy", "always-reject accuracy"],
                 [[fmt(metrics["roc_auc"]), fmt(metrics["recall"]), fmt(metrics["precision"]),
                   f"{fmt(metrics['predicted_approval_rate'])} ({fmt(metrics['approved_rate'])})", fmt(metrics["accuracy"]),
                   fmt(metrics["always_reject_accuracy"])]]),
        "",
        "Accuracy is shown beside always rejecting, which a skewed sample rewards: it never chooses a model.",
        "",
        "## 1. Data",
        "",
        "![Feature distributions](feature_distributions.png)",
        "",
        "![Class balance](class_balance.png)",
        "",
        "![Correlation dendrogram](correlation_dendrogram.png)",
        "",
        "Categorical features enter the correlations as their codes (labels in alphabetical "
        "order), so their links are indicative only; the numeric ones are exact.",
        "",
        "What balancing each protected group x label cell by resampling would change:",
        "",
        md_table(["attribute", "rows", "smallest / largest cell", "down-sampling: rows (dropped)",
                  "up-sampling: rows (duplicated)"],
                  [[a, r["rows"], f"{min(r['cells'].values())} / {max(r['cells'].values())}",
                    f"{r['downsampled_rows']} ({r['rows_dropped']})", f"{r['upsampled_rows']} ({r['rows_duplicated']})"]
                   for a, r in report["data"]["resampling"].items()]),
        "",
        "## 2. The skewed-sample trap",
        "",
        f"The same pipeline trained on {trap['skewed_sample']['approved']} approved and "
        f"{trap['skewed_sample']['rejected']} rejected applications, deciding at 0.5, scores "
        f"**{trap['validation']['accuracy']:.1%} accuracy** on its own validation split, and on a "
        f"production-like sample of {trap['production_sample']['approved']} approved and "
        f"{trap['production_sample']['rejected']} rejected: accuracy {trap['production']['accuracy']:.1%}, "
        f"and it finds **{trap['production_rare_recall']:.1%}** of the applications that should be "
        f"{trap['rare_decision']}.",
        "",
        "![Skewed-sample trap](skewed_sample_trap.png)",
        "",
        "## 3. Balanced evaluation",
        "",
        md_table(["balanced over", "groups", "rows per group x label", "ROC AUC", "recall", "precision", "accuracy"],
                  [[a, ", ".join(b["groups"]), b["rows_per_cell"],
                    *(fmt(b["overall"][k]) for k in ("roc_auc", "recall", "precision", "accuracy"))]
                   for a, b in report["balanced_evaluation"].items()]),
        "",
        "## 4. Metrics per group",
    ]
    min_rows = gate["thresholds"]["min_group_rows"]
    for attribute, section in report["groups"].items():
        impact = section["adverse_impact"]
        lines += [
            "", f"### {attribute}", "",
            md_table(["group", "rows", "approval rate [95% interval]", "recall", "precision", "false positive rate",
                      "ROC AUC", "judged"],
                     [[g, r["rows"], f"{fmt(r['rate'])} [{fmt(r['low'])}, {fmt(r['high'])}]",
                       fmt(section["by_group"][g]["recall"]), fmt(section["by_group"][g]["precision"]),
                       fmt(section["by_group"][g]["false_positive_rate"]), fmt(section["roc_auc"][g]),
                       "no" if g in impact["not_judged"] else "yes"] for g, r in impact["groups"].items()]),
            "",
            f"Adverse impact ratio: **{with_interval(impact, 'ratio')}**"
            + (f" ({impact['lowest']} over {impact['highest']})" if impact["ratio"] is not None else "")
            + f". Judged: groups of at least {min_rows} rows"
            + ("; not judged (too few rows for a ratio to mean much): "
               + ", ".join(f"{g} ({n} rows)" for g, n in impact["not_judged"].items()) if impact["not_judged"] else "")
            + ".",
            "",
            md_table(["gap between the judged groups", "value"],
                     [[k.replace("_", " "), fmt(v)] for k, v in section["gaps"].items()]),
            "", f"![ROC by {attribute}](roc_by_{attribute}.png)", "",
            f"![Confusion matrices by {attribute}](confusion_by_{attribute}.png)",
        ]
    proxies, search = report["proxies"], report["search"]
    lines += [
        "", "## 5. Proxies", "",
        "How well each protected attribute can be predicted from the model's inputs: held-out ROC AUC of a "
        "logistic regression, one group against the rest averaged over the judged groups (0.5: no information; "
        "1.0: revealed).", "",
        md_table(["attribute", "all model inputs", "strongest single columns"],
                 [[a, fmt(p["all_inputs"]["roc_auc"]),
                   ", ".join(f"{s['feature']} {fmt(s['roc_auc'])}" for s in p["single_inputs"][:3])]
                  for a, p in proxies.items()]),
        "", "![Proxies](proxies.png)", "",
        "## 6. The search for a less discriminatory alternative", "",
        f"{len(search['candidates'])} candidates, each estimated by {search['folds']}-fold cross-validation on the "
        f"training rows at its own cutoff (the same approval rate for all) in {search['seconds']:.0f} s. Rule: "
        f"{search['rule']}. Chosen: **{search['chosen']}** (requested `{search['requested']}`). Within these "
        f"families and this budget:", "", *coverage_lines(search), "",
        "![The search](frontier.png)", "",
        "The standardized mean difference (SMD) compares the scores themselves, whatever the cutoff: a group's "
        "mean probability of approval minus the favoured group's, in pooled standard deviations (0: none; "
        "negative: the group scores lower).", "",
        md_table(["candidate", "family", "ROC AUC", "recall", "precision", "worst adverse impact ratio [95%]",
                  *(f"{a} ratio" for a in search["screened"]), "worst SMD [95%]",
                  *(["ROC AUC, worst ratio vs incumbent"] if search["incumbent_point"] else [])],
                 [[f"**{c['name']}**" if c["name"] == search["chosen"] else c["name"] + ("" if c["eligible"] else " (reference)"),
                   c["family"], fmt(c["metrics"]["roc_auc"]), fmt(c["metrics"]["recall"]), fmt(c["metrics"]["precision"]),
                   (f"{with_interval(c['worst'], 'ratio')} ({c['worst']['attribute']})" if c["worst"] else "n/a"),
                   *(fmt(c["air"][a]["ratio"]) for a in search["screened"]),
                   (f"{with_interval(c['worst_smd'], 'smd')} ({c['worst_smd']['attribute']})" if c["worst_smd"]
                    else "n/a"),
                   *([", ".join(versus_incumbent(c, search["incumbent_point"]))] if search["incumbent_point"] else [])]
                  for c in search["candidates"]]),
    ]
    expl, reasons = report["explanations"], report["reasons"]
    lines += [
        "", "## 7. Explanations", "",
        "![Permutation importance](permutation_importance.png)", "",
        "Anchors never name a declared protected attribute: they are found among the other inputs, the "
        "applicant's own values of the rest held fixed.", "",
        md_table(["group", "prediction", "anchor", "precision", "coverage"],
                  [[f"{a['attribute']} = {a['group']}", a["prediction"], a["anchor_text"] or "(empty)",
                    fmt(a["precision"]), fmt(a["coverage"])] for a in expl["anchors"]]),
        "",
        f"Principal reasons of {reasons['rejections']} held-out rejections, against approved applicants (base value "
        f"{reasons['base_value']:.3f}, at or above the cutoff {reasons['cutoff']:.3f}): the {reasons['max_reasons']} "
        f"stated reasons carry a median **{reasons['gap_share']['median']:.0%}** of the gap to approved applicants "
        f"(quartiles {reasons['gap_share']['q25']:.0%} to {reasons['gap_share']['q75']:.0%}); base value plus "
        f"contributions equals the served probability within {reasons['additivity_max_error']:.1e}.", "",
        md_table(["reason code", "rejections stating it"], [[code, n] for code, n in reasons["codes"].items()]),
        "", "## 8. Artifacts evaluated", "",
        md_table(["file", "sha256"], [[f, s] for f, s in {**art["classifier_files"], **art["explainer_files"]}.items()]),
        "",
        "Library versions: " + ", ".join(f"{k} {v}" for k, v in art["versions"].items()),
        "",
        "---",
        "",
        report["model_card"],
    ]
    return "\n".join(lines)


def render_html(text: str, folder: Path, title: str = "Loan model report") -> str:
    """Self-contained HTML: the Markdown rendered, every PNG inlined as a data URI."""
    body = markdown.markdown(text, extensions=["tables"])

    def inline(match: re.Match) -> str:
        encoded = base64.b64encode((folder / match.group(1)).read_bytes()).decode()
        return f'src="data:image/png;base64,{encoded}"'

    body = re.sub(r'src="([^"]+\.png)"', inline, body)
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}"
             "th{background:#f3f3f3}img{max-width:100%}")
    head = f'<head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>'
    return f"<!DOCTYPE html>\n<html>{head}<body>\n{body}\n</body></html>\n"


def gate_notes(gate: dict[str, Any]) -> list[str]:
    """Red lines for the gate's status: protected attributes as inputs, a screen that flagged,
    the justification recorded or missing, a failed search."""
    recorded, notes = gate["recorded"], []
    inputs = [c["attribute"] for c in recorded["checks"] if c["metric"] == "model_input"]
    if inputs:
        notes += [red(f"Prohibited bases are model inputs: {', '.join(inputs)} (disparate treatment)"), ""]
    override = gate.get("override")
    if recorded["status"] == "justified":
        notes += [red(f"The screen flagged the model ({'; '.join(recorded['failed_checks'])}). The search found no "
                       f"materially less discriminatory alternative within the tolerance, and it ships under the "
                       f"business justification accepted by {override['accepted_by']} at {override['accepted_at']}: "
                       f"{override['reason']}"), ""]
    elif recorded["status"] == "flagged":
        notes += [red(f"The screen flagged the model ({'; '.join(recorded['failed_checks'])}). The search found no "
                       "materially less discriminatory alternative; it may not ship until a business justification is "
                       'recorded (make train ACCEPT_UNFAIR="reason" ACCEPTED_BY="name")'), ""]
    elif recorded["status"] == "failed":
        notes += [red(f"FAILED: {'; '.join(recorded['failed_checks'] + recorded['failed_search'])}. No justification "
                       "ships a model when a less discriminatory alternative was passed over."), ""]
    return notes


def _result(check: dict[str, Any]) -> str:
    """A gate check's result: a ratio below the screen within its noise passes, and says so."""
    if not check["passed"]:
        return "**FLAG**"
    return "pass (below, not significant)" if check.get("below") else "pass"


def _reliably(figure: dict[str, Any] | None) -> str:
    """A screen check's ratio over the groups judged reliably, with its groups ("" for other checks)."""
    if not figure or figure.get("ratio") is None:
        return ""
    return f"{with_interval(figure, 'ratio')} ({figure['lowest']} / {figure['highest']})"


def with_interval(values: dict[str, Any], key: str = "value") -> str:
    """A value with its 95% interval, e.g. ``0.432 [0.39, 0.48]`` (n/a: none)."""
    if values.get(key) is None:
        return "n/a"
    interval = f" [{values['low']:.2f}, {values['high']:.2f}]" if values.get("low") is not None else ""
    return fmt(values[key]) + interval


def red(text: str) -> str:
    """Text in bold red: what a reader must not miss."""
    return f'<strong style="color:#c00">{text}</strong>'


def fmt(value: Any) -> str:
    """A value for a table: numbers to 3 decimals, the rest as text."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) > 1 else f"{value:.3f}"
    return str(value)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
