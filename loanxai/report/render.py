"""The report rendered: Markdown with the plots beside it, and self-contained HTML."""
from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import markdown

from loanxai.core.manifest import failed_checks

__all__ = ["fmt", "md_table", "render_html", "render_markdown"]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown, with the plots as image links beside it."""
    art, trap, gate = report["artifacts"], report["skewed_sample_trap"], report["gate"]
    lines = [
        "# Loan model: bias and evaluation report",
        "",
        f"Model `{art['model_version']}` (dataset {art['dataset']}, candidate {art['candidate']}) trained "
        f"{art['trained_at']}; {report['held_out_rows']} held-out applications evaluated.",
        "",
        f"**Fairness gate: {'PASS' if gate['passed'] else 'FAIL'}**",
        "",
        *_gate_notes(gate),
        md_table(["attribute", "metric", "value", "rule", "result"],
                  [[c["attribute"], c["metric"], fmt(c["value"]), c["rule"], "pass" if c["passed"] else "**FAIL**"]
                   for c in gate["checks"]]),
        "",
        "## Model on the held-out data",
        "",
        md_table(["accuracy", "precision", "recall", "ROC AUC", "majority-decision accuracy"],
                  [[fmt(report["metrics"][k])
                    for k in ("accuracy", "precision", "recall", "roc_auc", "majority_class_accuracy")]]),
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
        f"{trap['skewed_sample']['rejected']} rejected applications scores "
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
        md_table(["balanced over", "groups", "rows per group x label", "accuracy", "precision", "recall", "ROC AUC"],
                  [[a, ", ".join(b["groups"]), b["rows_per_cell"],
                    *(fmt(b["overall"][k]) for k in ("accuracy", "precision", "recall", "roc_auc"))]
                   for a, b in report["balanced_evaluation"].items()]),
        "",
        "## 4. Metrics per group",
    ]
    for attribute, section in report["groups"].items():
        columns = list(next(iter(section["by_group"].values())))
        lines += [
            "", f"### {attribute}", "",
            md_table(["group", *columns, "ROC AUC"],
                      [[g, *(fmt(v) for v in row.values()), fmt(section["roc_auc"][g])]
                       for g, row in section["by_group"].items()]),
            "",
            md_table(["gap", "value"], [[k.replace("_", " "), fmt(v)] for k, v in section["gaps"].items()]),
            "",
            "Gaps are measured between groups with at least "
            f"{report['gate']['thresholds']['min_group_rows']} held-out rows"
            + ("; too small to judge: " + ", ".join(f"{g} ({n} rows)" for g, n in section["groups_too_small"].items())
               if section["groups_too_small"] else "") + ".",
            "", f"![ROC by {attribute}](roc_by_{attribute}.png)", "",
            f"![Confusion matrices by {attribute}](confusion_by_{attribute}.png)",
        ]
    proxies, mitigation = report["proxies"], report["candidates"]
    lines += [
        "", "## 5. Proxies", "",
        "How well each protected attribute can be predicted from the model's inputs: held-out ROC AUC of a "
        "logistic regression, one group against the rest averaged over the judged groups (0.5: no information; "
        "1.0: revealed).", "",
        md_table(["attribute", "all model inputs", "strongest single inputs"],
                 [[a, fmt(p["all_inputs"]["roc_auc"]),
                   ", ".join(f"{s['feature']} {fmt(s['roc_auc'])}" for s in p["single_inputs"][:3])]
                  for a, p in proxies.items()]),
        "", "![Proxies](proxies.png)", "",
        "## 6. Mitigation candidates", "",
        f"Trained on the same split, compared on the held-out rows. Rule: {mitigation['rule']}. "
        f"Chosen: **{mitigation['chosen']}** (requested `{mitigation['requested']}`).", "",
        md_table(["candidate", "what", "accuracy", "ROC AUC", "approves", "recall", "gate",
                  *(f"{a} DI" for a in proxies), *(f"{a} EOD" for a in proxies)],
                 [[c["name"], c["summary"], fmt(c["metrics"]["accuracy"]), fmt(c["metrics"]["roc_auc"]),
                   fmt(c["metrics"]["predicted_approval_rate"]), fmt(c["metrics"]["recall"]),
                   "pass" if c["passed"] else "FAIL", *(fmt(c["gaps"][a]["disparate_impact"]) for a in proxies),
                   *(fmt(c["gaps"][a]["equalized_odds_difference"]) for a in proxies)] for c in mitigation["candidates"]]),
        "",
        f"The grey points are the {mitigation['frontier_points']} other forests the reductions produced (each one "
        "deterministic), evaluated on the same held-out rows: the measured frontier between accuracy and fairness.",
        "", "![Trade-off](mitigation_tradeoff.png)",
    ]
    expl = report["explanations"]
    lines += [
        "", "## 7. Explanations", "",
        "![Permutation importance](permutation_importance.png)", "",
        md_table(["group", "prediction", "anchor", "precision", "coverage"],
                  [[f"{a['attribute']} = {a['group']}", a["prediction"], a["anchor_text"] or "(empty)",
                    fmt(a["precision"]), fmt(a["coverage"])] for a in expl["anchors"]]),
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


def render_html(text: str, folder: Path) -> str:
    """Self-contained HTML: the Markdown rendered, every PNG inlined as a data URI."""
    body = markdown.markdown(text, extensions=["tables"])

    def inline(match: re.Match) -> str:
        encoded = base64.b64encode((folder / match.group(1)).read_bytes()).decode()
        return f'src="data:image/png;base64,{encoded}"'

    body = re.sub(r'src="([^"]+\.png)"', inline, body)
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}"
             "th{background:#f3f3f3}img{max-width:100%}")
    head = f'<head><meta charset="utf-8"><title>Loan model report</title><style>{style}</style></head>'
    return f"<!DOCTYPE html>\n<html>{head}<body>\n{body}\n</body></html>\n"


def _gate_notes(gate: dict[str, Any]) -> list[str]:
    """Red lines for a failed gate, an override, and protected attributes used as inputs."""
    notes = []
    inputs = [c["attribute"] for c in gate["checks"] if c["metric"] == "model_input"]
    if inputs:
        notes += [f'<strong style="color:#c00">Protected attributes are model inputs: {", ".join(inputs)}</strong>', ""]
    override = gate.get("override")
    if override:
        notes += [f'<strong style="color:#c00">Failed checks shipped under an override accepted by '
                  f'{override["accepted_by"]} at {override["accepted_at"]}: {override["reason"]} '
                  f'({"; ".join(override["failed_checks"])})</strong>', ""]
    elif not gate["passed"]:
        notes += [f'<strong style="color:#c00">FAILED: {"; ".join(failed_checks(gate["checks"]))}. This model may not '
                  "ship (no override recorded).</strong>", ""]
    return notes


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
