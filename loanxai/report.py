"""The bias and model evaluation report: the data and the model as an auditor sees them.

``python -m loanxai.report`` (``make report``) evaluates the trained artifacts and writes, in
``reports/``: ``report.html`` (self-contained), ``report.md``, the PNG plots and
``report.json`` (every number). ``--fail-on-gate`` exits 1 when a fairness check fails.
"""
from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import markdown
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from sklearn.inspection import permutation_importance
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix, roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split as sk_split
from sklearn.pipeline import Pipeline

from loanxai.data import LABEL, Dataset, load_trained_dataset
from loanxai.fairness import (
    GateThresholds,
    balanced_sample,
    evaluate_gate,
    fairness_gaps,
    group_metrics,
    large_groups,
    resampling_effect,
)
from loanxai.manifest import load_pickle, load_verified_manifest
from loanxai.schema import FeatureSchema
from loanxai.train import CLASSIFIER_DIR, EXPLAINER_DIR, REPO_ROOT, build_pipeline, evaluate, impute_numeric

logger = logging.getLogger(__name__)

#: The classic trap: a training sample with 100 applications of the rarer decision and 7,900
#: of the other, checked on a production-like sample of 50 and 60 (scaled down to what a
#: smaller dataset holds).
TRAP_SKEWED = (100, 7_900)
TRAP_PRODUCTION = (50, 60)


@dataclass
class ReportConfig:
    """What to evaluate and where to write. ``sample``: held-out rows used (None: all)."""

    output_dir: Path = REPO_ROOT / "reports"
    classifier_dir: Path = CLASSIFIER_DIR
    explainer_dir: Path = EXPLAINER_DIR
    #: protected attributes to judge; empty: all those the dataset description declares
    protected: tuple[str, ...] = ()
    thresholds: GateThresholds = field(default_factory=GateThresholds)
    sample: int | None = None
    explanations_per_group: int = 2
    permutation_repeats: int = 5
    min_group_rows: int = 30
    seed: int = 0


@dataclass
class Model:
    """The evaluated artifacts: the pipeline rebuilt from its pickles, the explainer, manifests."""

    pipeline: Pipeline
    explainer: Any
    schema: FeatureSchema
    manifest: dict[str, Any]
    explainer_manifest: dict[str, Any]


def load_model(classifier_dir: Path, explainer_dir: Path) -> Model:
    """Verify and load both artifacts; the explainer predicts in process with the pipeline."""
    manifest = load_verified_manifest(classifier_dir)
    explainer_manifest = load_verified_manifest(explainer_dir)
    pipeline = Pipeline([("preprocessor", load_pickle(classifier_dir, "preprocessor.dill")),
                         ("classifier", load_pickle(classifier_dir, "model.dill"))])
    explainer = load_pickle(explainer_dir, "explainer.dill")
    explainer.reset_predictor(pipeline.predict)
    return Model(pipeline, explainer, FeatureSchema.from_dict(manifest["schema"]), manifest, explainer_manifest)


# --- sections ---------------------------------------------------------------------------------


def data_section(frame: pd.DataFrame, schema: FeatureSchema, protected: tuple[str, ...], out: Path) -> dict[str, Any]:
    """Distributions, class balance overall and per protected group, correlations, resampling."""
    balance = {"overall": {"rows": int(len(frame)), "approved_rate": float(frame[LABEL].mean())}}
    for attribute in protected:
        grouped = frame.groupby(attribute)[LABEL]
        balance[attribute] = {
            group: {"rows": int(n), "approved_rate": float(rate)}
            for group, n, rate in zip(grouped.size().index, grouped.size(), grouped.mean())
        }
    plot_distributions(frame, schema, out / "feature_distributions.png")
    plot_class_balance(balance, protected, out / "class_balance.png")
    names = list(schema.feature_names)
    # pairwise-complete ranks: missing values leave out only the pairs they are in
    correlation = pd.DataFrame(schema.encode_frame(frame), columns=names).corr(method="spearman").fillna(0.0)
    plot_dendrogram(correlation.to_numpy(), names, out / "correlation_dendrogram.png")
    return {
        "class_balance": balance,
        "spearman_correlation": {name: {k: float(v) for k, v in row.items()} for name, row in correlation.iterrows()},
        "resampling": {attribute: resampling_effect(frame, attribute, LABEL) for attribute in protected},
    }


def trap_counts(train: pd.DataFrame, test: pd.DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    """Rows of each decision in the skewed sample and in the production-like sample: the rarer
    decision of the training data is made rare, with :data:`TRAP_SKEWED` and
    :data:`TRAP_PRODUCTION` scaled down when the data holds fewer rows."""
    rare = "approved" if train[LABEL].mean() < 0.5 else "rejected"
    common = "rejected" if rare == "approved" else "approved"
    available = {name: int((train[LABEL] == (name == "approved")).sum()) for name in (rare, common)}
    n_common = min(TRAP_SKEWED[1], available[common])
    n_rare = max(2, round(n_common * TRAP_SKEWED[0] / TRAP_SKEWED[1]))
    held = {name: int((test[LABEL] == (name == "approved")).sum()) for name in (rare, common)}
    scale = min(1.0, held[rare] / TRAP_PRODUCTION[0], held[common] / TRAP_PRODUCTION[1])
    production = {rare: max(1, int(TRAP_PRODUCTION[0] * scale)), common: max(1, int(TRAP_PRODUCTION[1] * scale))}
    return {rare: n_rare, common: n_common}, production


def skewed_sample_trap(train: pd.DataFrame, test: pd.DataFrame, schema: FeatureSchema, seed: int, out: Path) -> dict[str, Any]:
    """Train the same pipeline on a sample where one decision is rare, then meet production."""
    skewed_counts, production_counts = trap_counts(train, test)
    skewed = _draw(train, skewed_counts, seed)
    fit_rows, validation = sk_split(skewed, test_size=0.25, stratify=skewed[LABEL], random_state=seed)
    pipeline = build_pipeline(schema, seed=seed).fit(schema.encode_frame(fit_rows), fit_rows[LABEL])
    production = _draw(test, production_counts, seed)
    result = {
        "skewed_sample": {"rows": len(skewed), **skewed_counts},
        "production_sample": {"rows": len(production), **production_counts},
        "rare_decision": min(skewed_counts, key=skewed_counts.get),
        "validation": evaluate(pipeline, schema.encode_frame(validation), validation[LABEL].to_numpy()),
        "production": evaluate(pipeline, schema.encode_frame(production), production[LABEL].to_numpy()),
    }
    # how many of the rare decision's applications the model finds (recall of that class)
    (tn, fp), (fn, tp) = result["production"]["confusion_matrix"]
    rare_approved = result["rare_decision"] == "approved"
    result["production_rare_recall"] = (tp / max(1, tp + fn)) if rare_approved else (tn / max(1, tn + fp))
    plot_trap(result, out / "skewed_sample_trap.png")
    return result


def balanced_section(model: Model, test: pd.DataFrame, protected: tuple[str, ...], min_group_rows: int, seed: int) -> dict[str, Any]:
    """Metrics on held-out sets balanced over protected group x label (groups with at least
    ``min_group_rows`` rows)."""
    result = {}
    for attribute in protected:
        judged = test[test[attribute].isin(large_groups(test[attribute], min_group_rows))]
        balanced = balanced_sample(judged, attribute, LABEL, seed)
        X, y = model.schema.encode_frame(balanced), balanced[LABEL].to_numpy()
        predicted = model.pipeline.predict(X)
        frame = group_metrics(y, predicted, balanced[attribute])
        result[attribute] = {
            "groups": sorted(balanced[attribute].unique()),
            "rows_per_cell": int(len(balanced) // (2 * balanced[attribute].nunique())),
            "overall": evaluate(model.pipeline, X, y),
            "by_group": _table(frame.by_group),
        }
    return result


def group_section(model: Model, test: pd.DataFrame, protected: tuple[str, ...], min_group_rows: int, out: Path) -> dict[str, Any]:
    """Per-group metrics, ROC/AUC and confusion matrices, and the fairness gaps between the
    groups with at least ``min_group_rows`` held-out rows."""
    X, y = model.schema.encode_frame(test), test[LABEL].to_numpy()
    score = model.pipeline.predict_proba(X)[:, 1]
    predicted = (score >= 0.5).astype(int)
    result = {}
    for attribute in protected:
        groups = test[attribute]
        frame = group_metrics(y, predicted, groups)
        auc = {
            group: float(roc_auc_score(y[mask], score[mask])) if len(set(y[mask])) == 2 else None
            for group, mask in ((g, (groups == g).to_numpy()) for g in sorted(groups.unique()))
        }
        result[attribute] = {
            "overall": {k: float(v) for k, v in frame.overall.items()},
            "by_group": _table(frame.by_group),
            "roc_auc": auc,
            "confusion_matrices": {
                g: confusion_matrix(y[(groups == g).to_numpy()], predicted[(groups == g).to_numpy()], labels=[0, 1]).tolist()
                for g in sorted(groups.unique())
            },
        }
        judged = large_groups(groups, min_group_rows)
        mask = groups.isin(judged).to_numpy()
        result[attribute]["gaps"] = fairness_gaps(y[mask], predicted[mask], groups[mask])
        result[attribute]["groups_too_small"] = {g: int(n) for g, n in groups.value_counts().items() if g not in judged}
        plot_group_roc(y, score, groups, auc, out / f"roc_by_{attribute}.png")
        plot_group_confusion(result[attribute]["confusion_matrices"], attribute, out / f"confusion_by_{attribute}.png")
    return result


def explanation_section(model: Model, test: pd.DataFrame, config: ReportConfig, out: Path) -> dict[str, Any]:
    """Permutation importance on the held-out rows, and anchors for a few applications per group."""
    X, y = model.schema.encode_frame(test), test[LABEL].to_numpy()
    importance = permutation_importance(
        model.pipeline, X, y, scoring="roc_auc", n_repeats=config.permutation_repeats, random_state=config.seed
    )
    names = model.schema.feature_names
    ranked = sorted(zip(names, importance.importances_mean, importance.importances_std), key=lambda r: -r[1])
    plot_importance(ranked, out / "permutation_importance.png")
    anchors = []
    for attribute in config.protected:
        for group in sorted(test[attribute].unique()):
            rows = _approved_and_rejected(test[test[attribute] == group], model, config.explanations_per_group)
            encoded = impute_numeric(model.schema.encode_frame(rows), model.schema, model.explainer_manifest["numeric_medians"])
            for record, x in zip(model.schema.decode(model.schema.encode_frame(rows)), encoded):
                explanation = model.explainer.explain(x, threshold=0.95)
                anchors.append({
                    "attribute": attribute, "group": group, "application": record,
                    "prediction": "approved" if int(explanation.raw["prediction"][0]) == 1 else "rejected",
                    "anchor": " AND ".join(explanation.anchor),
                    "precision": float(explanation.precision), "coverage": float(explanation.coverage),
                })
    return {
        "permutation_importance": {
            "scoring": "roc_auc", "n_repeats": config.permutation_repeats,
            "features": [{"feature": f, "mean": float(m), "std": float(s)} for f, m, s in ranked],
        },
        "anchors": anchors,
    }


def build_report(config: ReportConfig) -> dict[str, Any]:
    """Evaluate the artifacts and write every file of the report; return the JSON content."""
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = load_model(config.classifier_dir, config.explainer_dir)
    dataset = load_trained_dataset(model.manifest)
    frame, train, test = dataset.frame, dataset.train, dataset.test
    reference = np.asarray(model.manifest["reference"]["rows"], dtype=np.float64)
    if not np.array_equal(model.schema.encode_frame(test.head(len(reference))), reference, equal_nan=True):
        raise RuntimeError("the held-out rows differ from those the model was evaluated on at training")
    declared = tuple(model.manifest["dataset"]["protected"])
    unknown = [a for a in config.protected if a not in declared]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a protected attribute of dataset {dataset.description.name} "
                         f"({', '.join(declared)})")
    config.protected = config.protected or declared
    held_out = test
    if config.sample:
        test = test.sample(n=min(config.sample, len(test)), random_state=config.seed).reset_index(drop=True)
    steps = [
        ("data", lambda: data_section(frame, model.schema, config.protected, out)),
        # drawn from the whole held-out set: a small --sample may hold fewer than 50 approved
        ("skewed_sample_trap", lambda: skewed_sample_trap(train, held_out, model.schema, config.seed, out)),
        ("balanced_evaluation", lambda: balanced_section(model, test, config.protected, config.min_group_rows, config.seed)),
        ("groups", lambda: group_section(model, test, config.protected, config.min_group_rows, out)),
        ("explanations", lambda: explanation_section(model, test, config, out)),
    ]
    report: dict[str, Any] = {
        "artifacts": _artifacts(model),
        "config": _config(config),
        "held_out_rows": int(len(test)),
        "metrics": evaluate(model.pipeline, model.schema.encode_frame(test), test[LABEL].to_numpy()),
    }
    for i, (name, step) in enumerate(steps, 1):
        logger.info("[%d/%d] %s", i, len(steps), name.replace("_", " "))
        report[name] = step()
    checks = evaluate_gate({a: report["groups"][a]["gaps"] for a in config.protected}, config.thresholds)
    report["gate"] = {"passed": all(c["passed"] for c in checks), "checks": checks}
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    text = render_markdown(report)
    (out / "report.md").write_text(text)
    (out / "report.html").write_text(render_html(text, out))
    logger.info("report written to %s in %.0f s", out, time.perf_counter() - started)
    return report


# --- plots --------------------------------------------------------------------------------------


def plot_distributions(frame: pd.DataFrame, schema: FeatureSchema, path: Path) -> None:
    rows = -(-schema.n_features // 4)
    fig, axes = plt.subplots(rows, 4, figsize=(18, 4 * rows), squeeze=False)
    for ax in axes.flat[schema.n_features:]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, schema.feature_names):
        if name in schema.numeric_features:
            bins = np.histogram_bin_edges(frame[name].dropna(), bins=30)
            for approved, colour in ((False, "tab:red"), (True, "tab:green")):
                ax.hist(frame.loc[frame[LABEL] == approved, name].dropna(), bins=bins, alpha=0.6, color=colour,
                        label="approved" if approved else "rejected")
            ax.set_yscale("log")
        else:
            counts = pd.crosstab(frame[name], frame[LABEL]).rename(columns={False: "rejected", True: "approved"})
            counts.plot.barh(stacked=True, ax=ax, color=["tab:red", "tab:green"], legend=False)
            ax.tick_params(axis="y", labelsize=7)
        ax.set_title(name)
    axes.flat[0].legend()
    fig.suptitle("Feature distributions by label (numeric: log count)")
    _save(fig, path)


def plot_class_balance(balance: dict[str, Any], protected: tuple[str, ...], path: Path) -> None:
    fig, axes = plt.subplots(1, len(protected) + 1, figsize=(6 * (len(protected) + 1), 4.5))
    panels = [("overall", {"all": balance["overall"]})] + [(a, balance[a]) for a in protected]
    for ax, (title, groups) in zip(np.atleast_1d(axes), panels):
        names = list(groups)
        rates = [groups[g]["approved_rate"] for g in names]
        bars = ax.bar(names, rates, color="tab:green")
        for bar, g in zip(bars, names):
            ax.annotate(f"n={groups[g]['rows']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("approved rate")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    _save(fig, path)


def plot_dendrogram(correlation: np.ndarray, names: list[str], path: Path) -> None:
    distance = 1 - np.abs(correlation)
    np.fill_diagonal(distance, 0)
    linkage = hierarchy.linkage(distance[np.triu_indices(len(distance), k=1)], method="average")
    fig, ax = plt.subplots(figsize=(9, 5))
    hierarchy.dendrogram(linkage, labels=names, ax=ax, leaf_rotation=45)
    ax.set_ylabel("1 - |Spearman correlation|")
    ax.set_title("Feature correlation dendrogram (encoded features)")
    _save(fig, path)


def plot_trap(result: dict[str, Any], path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(10, 9))
    for col, (sample, metrics_key, title) in enumerate(
        (("skewed_sample", "validation", "skewed training sample"),
         ("production_sample", "production", "production-like sample"))
    ):
        counts = result[sample]
        axes[0, col].bar(["rejected", "approved"], [counts["rejected"], counts["approved"]], color=["tab:red", "tab:green"])
        axes[0, col].set_title(f"class balance: {title}", fontsize=9)
        metrics = result[metrics_key]
        ConfusionMatrixDisplay(np.array(metrics["confusion_matrix"]), display_labels=["rejected", "approved"]).plot(
            ax=axes[1, col], colorbar=False)
        axes[1, col].set_title(f"{'its own validation split' if col == 0 else 'production'}: "
                               f"accuracy {metrics['accuracy']:.2f}, recall {metrics['recall']:.2f}", fontsize=9)
    fig.suptitle("The skewed-sample trap")
    _save(fig, path)


def plot_group_roc(y: np.ndarray, score: np.ndarray, groups: pd.Series, auc: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 5))
    for group in sorted(groups.unique()):
        mask = (groups == group).to_numpy()
        if auc[group] is None:
            continue
        fpr, tpr, _ = roc_curve(y[mask], score[mask])
        ax.plot(fpr, tpr, label=f"{group} (AUC {auc[group]:.3f}, n={mask.sum()})")
    ax.plot([0, 1], [0, 1], "k:", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC by {groups.name}")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_group_confusion(matrices: dict[str, list], attribute: str, path: Path) -> None:
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices), 3.6), squeeze=False)
    for ax, (group, matrix) in zip(axes[0], matrices.items()):
        ConfusionMatrixDisplay(np.array(matrix), display_labels=["rej", "app"]).plot(ax=ax, colorbar=False)
        ax.set_title(group, fontsize=9)
    fig.suptitle(f"Confusion matrices by {attribute}")
    _save(fig, path)


def plot_importance(ranked: list[tuple[str, float, float]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 5))
    names, means, stds = zip(*reversed(ranked))
    ax.barh(names, means, xerr=stds, color="tab:blue")
    ax.set_xlabel("drop in ROC AUC when the feature is shuffled")
    ax.set_title("Permutation importance (held-out rows)")
    _save(fig, path)


# --- rendering ------------------------------------------------------------------------------------


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown, with the plots as image links beside it."""
    art, trap, gate = report["artifacts"], report["skewed_sample_trap"], report["gate"]
    lines = [
        "# Loan model: bias and evaluation report",
        "",
        f"Model `{art['model_version']}` trained {art['trained_at']}; "
        f"{report['held_out_rows']} held-out applications evaluated.",
        "",
        f"**Fairness gate: {'PASS' if gate['passed'] else 'FAIL'}**",
        "",
        _md_table(["attribute", "metric", "value", "rule", "result"],
                  [[c["attribute"], c["metric"], _fmt(c["value"]), c["rule"], "pass" if c["passed"] else "**FAIL**"]
                   for c in gate["checks"]]),
        "",
        "## Model on the held-out data",
        "",
        _md_table(["accuracy", "precision", "recall", "ROC AUC", "always-reject accuracy"],
                  [[_fmt(report["metrics"][k]) for k in ("accuracy", "precision", "recall", "roc_auc", "majority_class_accuracy")]]),
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
        _md_table(["attribute", "rows", "smallest / largest cell", "down-sampling: rows (dropped)", "up-sampling: rows (duplicated)"],
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
        _md_table(["balanced over", "groups", "rows per group x label", "accuracy", "precision", "recall", "ROC AUC"],
                  [[a, ", ".join(b["groups"]), b["rows_per_cell"], *(_fmt(b["overall"][k]) for k in ("accuracy", "precision", "recall", "roc_auc"))]
                   for a, b in report["balanced_evaluation"].items()]),
        "",
        "## 4. Metrics per group",
    ]
    for attribute, section in report["groups"].items():
        columns = list(next(iter(section["by_group"].values())))
        lines += [
            "", f"### {attribute}", "",
            _md_table(["group", *columns, "ROC AUC"],
                      [[g, *(_fmt(v) for v in row.values()), _fmt(section["roc_auc"][g])] for g, row in section["by_group"].items()]),
            "",
            _md_table(["gap", "value"], [[k.replace("_", " "), _fmt(v)] for k, v in section["gaps"].items()]),
            "",
            "Gaps are measured between groups with at least "
            f"{report['config']['min_group_rows']} held-out rows"
            + ("; too small to judge: " + ", ".join(f"{g} ({n} rows)" for g, n in section["groups_too_small"].items())
               if section["groups_too_small"] else "") + ".",
            "", f"![ROC by {attribute}](roc_by_{attribute}.png)", "",
            f"![Confusion matrices by {attribute}](confusion_by_{attribute}.png)",
        ]
    expl = report["explanations"]
    lines += [
        "", "## 5. Explanations", "",
        "![Permutation importance](permutation_importance.png)", "",
        _md_table(["group", "prediction", "anchor", "precision", "coverage"],
                  [[f"{a['attribute']} = {a['group']}", a["prediction"], a["anchor"] or "(empty)",
                    _fmt(a["precision"]), _fmt(a["coverage"])] for a in expl["anchors"]]),
        "", "## 6. Artifacts evaluated", "",
        _md_table(["file", "sha256"], [[f, s] for f, s in {**art["classifier_files"], **art["explainer_files"]}.items()]),
        "",
        "Library versions: " + ", ".join(f"{k} {v}" for k, v in art["versions"].items()),
        "",
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
    return f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Loan model report</title><style>{style}</style></head><body>\n{body}\n</body></html>\n"


# --- helpers --------------------------------------------------------------------------------------


def _draw(frame: pd.DataFrame, counts: dict[str, int], seed: int) -> pd.DataFrame:
    parts = [frame[frame[LABEL] == (name == "approved")].sample(n=n, random_state=seed) for name, n in counts.items()]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _approved_and_rejected(rows: pd.DataFrame, model: Model, n: int) -> pd.DataFrame:
    """The first ``n`` rows, taking the model's first approval and first rejection first."""
    predicted = model.pipeline.predict(model.schema.encode_frame(rows))
    firsts = [np.flatnonzero(predicted == label)[:1] for label in (1, 0)]
    order = list(dict.fromkeys([*np.concatenate(firsts).tolist(), *range(len(rows))]))
    return rows.iloc[order[:n]]


def _table(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """MetricFrame.by_group as plain JSON; undefined values (NaN) become None."""
    return {str(g): {k: None if pd.isna(v) else float(v) for k, v in row.items()} for g, row in frame.iterrows()}


def _artifacts(model: Model) -> dict[str, Any]:
    return {
        "model_version": model.manifest["files"]["model.dill"][:12],
        "trained_at": model.manifest["created_at"],
        "classifier_files": model.manifest["files"],
        "explainer_files": model.explainer_manifest["files"],
        "versions": model.manifest["versions"],
    }


def _config(config: ReportConfig) -> dict[str, Any]:
    content = asdict(config)
    for key in ("output_dir", "classifier_dir", "explainer_dir"):
        content[key] = str(content[key])
    return content


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) > 1 else f"{value:.3f}"
    return str(value)


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=ReportConfig.output_dir)
    parser.add_argument("--classifier-dir", type=Path, default=CLASSIFIER_DIR)
    parser.add_argument("--explainer-dir", type=Path, default=EXPLAINER_DIR)
    parser.add_argument("--protected", nargs="+", default=[],
                        help="protected attributes to judge (default: all those the dataset description declares)")
    parser.add_argument("--sample", type=int, default=None, help="evaluate on this many held-out rows")
    parser.add_argument("--explanations-per-group", type=int, default=2)
    parser.add_argument("--permutation-repeats", type=int, default=5)
    parser.add_argument("--min-group-rows", type=int, default=30,
                        help="smaller groups are reported but left out of the gaps and the gate")
    parser.add_argument("--min-disparate-impact", type=float, default=0.8)
    parser.add_argument("--max-demographic-parity-difference", type=float)
    parser.add_argument("--max-equalized-odds-difference", type=float)
    parser.add_argument("--max-equal-opportunity-difference", type=float)
    parser.add_argument("--fail-on-gate", action="store_true", help="exit 1 when a fairness check fails")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    thresholds = GateThresholds(args.min_disparate_impact, args.max_demographic_parity_difference,
                                args.max_equalized_odds_difference, args.max_equal_opportunity_difference)
    config = ReportConfig(args.output_dir, args.classifier_dir, args.explainer_dir, tuple(args.protected),
                          thresholds, args.sample, args.explanations_per_group, args.permutation_repeats,
                          args.min_group_rows)
    report = build_report(config)
    for check in report["gate"]["checks"]:
        logger.info("gate %s: %s %s = %.3f (%s)", "pass" if check["passed"] else "FAIL",
                    check["attribute"], check["metric"], check["value"], check["rule"])
    if args.fail_on_gate and not report["gate"]["passed"]:
        logger.error("fairness gate failed: this model must not be deployed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
