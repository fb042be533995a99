"""The report's plots: each function draws one figure and writes it as a PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from sklearn.metrics import ConfusionMatrixDisplay, roc_curve

from loanxai.core.schema import FeatureSchema
from loanxai.data.description import LABEL
from loanxai.fairness.candidates import INCUMBENT


def plot_distributions(frame: pd.DataFrame, schema: FeatureSchema, path: Path) -> None:
    """Each feature's distribution by decision."""
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
    """Approval rate overall and per protected group."""
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
    """A dendrogram of the features' Spearman correlations."""
    distance = 1 - np.abs(correlation)
    np.fill_diagonal(distance, 0)
    linkage = hierarchy.linkage(distance[np.triu_indices(len(distance), k=1)], method="average")
    fig, ax = plt.subplots(figsize=(9, 5))
    hierarchy.dendrogram(linkage, labels=names, ax=ax, leaf_rotation=45)
    ax.set_ylabel("1 - |Spearman correlation|")
    ax.set_title("Feature correlation dendrogram (encoded features)")
    _save(fig, path)


def plot_trap(result: dict[str, Any], path: Path) -> None:
    """The skewed-sample trap: class balance and confusion, validation against production."""
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
    """ROC curves per group."""
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
    """Confusion matrices per group."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices), 3.6), squeeze=False)
    for ax, (group, matrix) in zip(axes[0], matrices.items()):
        ConfusionMatrixDisplay(np.array(matrix), display_labels=["rej", "app"]).plot(ax=ax, colorbar=False)
        ax.set_title(group, fontsize=9)
    fig.suptitle(f"Confusion matrices by {attribute}")
    _save(fig, path)


def plot_importance(ranked: list[tuple[str, float, float]], path: Path) -> None:
    """Permutation importance, the most important first."""
    fig, ax = plt.subplots(figsize=(7, 5))
    names, means, stds = zip(*reversed(ranked))
    ax.barh(names, means, xerr=stds, color="tab:blue")
    ax.set_xlabel("drop in ROC AUC when the feature is shuffled")
    ax.set_title("Permutation importance (held-out rows)")
    _save(fig, path)


def plot_proxies(proxies: dict[str, Any], path: Path) -> None:
    """Per protected attribute: how well each input alone predicts it (held-out ROC AUC)."""
    attributes = list(proxies)
    fig, axes = plt.subplots(1, len(attributes), figsize=(6 * len(attributes), 5), squeeze=False)
    for ax, attribute in zip(axes[0], attributes):
        single = proxies[attribute]["single_inputs"]
        names = [s["feature"] + ("" if s["model_input"] else " (excluded)") for s in single][::-1]
        colours = ["tab:blue" if s["model_input"] else "tab:gray" for s in single]
        ax.barh(names, [s["roc_auc"] for s in single][::-1], color=colours[::-1])
        ax.axvline(0.5, color="k", linestyle=":", linewidth=1)
        ax.axvline(proxies[attribute]["all_inputs"]["roc_auc"], color="tab:red", linewidth=1.5,
                   label=f"all model inputs: {proxies[attribute]['all_inputs']['roc_auc']:.3f}")
        ax.set_xlim(0.4, 1.0)
        ax.set_xlabel(f"held-out ROC AUC predicting {attribute}")
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title(f"Proxies of {attribute}")
    _save(fig, path)


def plot_frontier(search: dict[str, Any], threshold: float | None, path: Path) -> None:
    """The search at a glance: each candidate's cross-validated ROC AUC against its worst
    adverse impact ratio over the groups judged reliably (with the 95% interval), one colour a
    family, each family's frontier (the best worst ratio at each ROC AUC or above), the tolerance
    band below the best AUC the rule measures against, the screen's threshold, the reference
    with the prohibited bases as inputs, the randomized reference, and the choice (candidates
    worse than chance, below 0.5, are off the plot)."""
    fig, ax = plt.subplots(figsize=(8, 6))
    best, tolerance = search["best_roc_auc"], search["tolerance"]
    ax.axhspan(best - tolerance, best, color="tab:green", alpha=0.12,
               label=f"within {tolerance} of the best {' or '.join(search['choose_from'])} ROC AUC")
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", linestyle="--", linewidth=1, label=f"screen: ratio {threshold}")
    data = [r for r in search["data_air"].values() if r is not None]
    if data:
        ax.axvline(min(data), color="k", linestyle=":", linewidth=1,
                   label=f"the data's own decisions: worst ratio {min(data):.2f}")
    colours = dict(zip(search["families"], ("tab:blue", "tab:purple", "tab:olive")))
    points: dict[str, list[tuple[float, float]]] = {family: [] for family in search["families"]}
    for c in search["candidates"]:
        if c["worst"] is None or c["name"] == search["chosen"]:
            continue
        x, y = c["worst"]["ratio"], c["metrics"]["roc_auc"]
        colour = colours[c["family"]] if c["eligible"] else "tab:gray"
        ax.errorbar(x, y, xerr=[[x - c["worst"]["low"]], [c["worst"]["high"] - x]], fmt="none", ecolor=colour,
                    alpha=0.2, linewidth=0.8)
        if c["eligible"]:
            ax.scatter(x, y, color=colour, marker="o", s=14, alpha=0.7)
            points[c["family"]].append((x, y))
        elif c["name"] == INCUMBENT:
            ax.scatter(x, y, color="k", marker="D", s=60, zorder=4, label="incumbent: the served model's recipe")
        else:
            ax.scatter(x, y, color=colour, marker="x", s=50, label="reference: prohibited bases as inputs (never chosen)")
    for family, xy in points.items():
        frontier = _frontier(xy)
        ax.plot(*zip(*frontier), color=colours[family], linewidth=1.5,
                label=f"{family} candidates and frontier" + ("" if family in search["choose_from"] else " (not chosen from)"))
    reference = [(p["worst_air"], p["metrics"]["roc_auc"]) for p in search.get("randomized") or []
                 if p["worst_air"] is not None]
    if reference:
        ax.scatter(*zip(*reference), facecolors="none", edgecolors="tab:brown", marker="s", s=60, zorder=4,
                   label="randomized (ExponentiatedGradient): a reference, never chosen")
    chosen = next(c for c in search["candidates"] if c["name"] == search["chosen"])
    if chosen["worst"] is not None:
        ax.scatter(chosen["worst"]["ratio"], chosen["metrics"]["roc_auc"], color="tab:orange", marker="*", s=260,
                   edgecolor="k", zorder=5, label=f"chosen: {search['chosen']}")
    ax.set_xlabel("worst adverse impact ratio over " + ", ".join(search["screened"])
                  + " (groups judged reliably; 95% interval)")
    ax.set_ylabel(f"ROC AUC ({search['folds']}-fold cross-validation)")
    ax.set_ylim(bottom=max(0.5, ax.get_ylim()[0]))
    ax.set_title("The search for a less discriminatory alternative (at the cutoff)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    _save(fig, path)


def _frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other beats on both ratio and ROC AUC, by ratio: (ratio, ROC AUC) pairs."""
    frontier, best_auc = [], -1.0
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):
        if y > best_auc:
            frontier.append((x, y))
            best_auc = y
    return frontier[::-1]


def plot_score_shares(score: dict[str, Any], path: Path) -> None:
    """Each model's share of decisions in each score bin, side by side (``score``: bins, shares by model)."""
    fig, ax = plt.subplots(figsize=(9, 4))
    x, width = np.arange(len(score["bins"])), 0.4
    for i, (model, shares) in enumerate(score["shares"].items()):
        ax.bar(x + (i - 0.5) * width, shares, width, label=model)
    ax.set_xticks(x, score["bins"], rotation=45)
    ax.set_xlabel("probability of approval")
    ax.set_ylabel("share of the applications")
    ax.set_title(f"Scores of the same applications (PSI {score['psi']:.3f})")
    ax.legend()
    _save(fig, path)


def plot_group_approval(impacts: dict[str, dict[str, Any]], path: Path) -> None:
    """Each group's approval rate with its 95% interval, by model, one panel per protected
    attribute (``impacts``: model -> attribute -> :func:`~loanxai.fairness.metrics.adverse_impact`)."""
    models = list(impacts)
    attributes = list(impacts[models[0]])
    fig, axes = plt.subplots(1, len(attributes), figsize=(6 * len(attributes), 4), squeeze=False)
    for ax, attribute in zip(axes.flat, attributes):
        groups = list(impacts[models[0]][attribute]["groups"])
        x, width = np.arange(len(groups)), 0.8 / len(models)
        for i, model in enumerate(models):
            rates = [impacts[model][attribute]["groups"][g] for g in groups]
            centre = np.array([r["rate"] for r in rates])
            error = np.array([[c - r["low"] for c, r in zip(centre, rates)], [r["high"] - c for c, r in zip(centre, rates)]])
            ax.bar(x + (i - (len(models) - 1) / 2) * width, centre, width, yerr=error, capsize=3, label=model)
        ax.set_xticks(x, groups, rotation=30, fontsize=8)
        ax.set_ylabel("approval rate (95% interval)")
        ax.set_title(attribute)
    axes.flat[0].legend()
    fig.suptitle("Approval rate by group, same applications")
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
