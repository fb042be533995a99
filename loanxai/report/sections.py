"""The report's analyses of the data and the served model: data, the skewed-sample trap,
balanced evaluation, metrics per group at the cutoff with intervals, explanations (anchors and
principal reasons)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import confusion_matrix, roc_auc_score
from sklearn.model_selection import train_test_split as sk_split

from loanxai.config import ServiceSettings
from loanxai.core.pipeline import build_pipeline, impute
from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import group_column
from loanxai.data.description import LABEL
from loanxai.explain import anchors
from loanxai.fairness.metrics import (
    adverse_impact,
    balanced_sample,
    evaluate,
    fairness_gaps,
    group_metrics,
    large_groups,
    resampling_effect,
)
from loanxai.report.artifacts import Model
from loanxai.report.plots import (
    plot_class_balance,
    plot_dendrogram,
    plot_distributions,
    plot_group_confusion,
    plot_group_roc,
    plot_importance,
    plot_trap,
)

__all__ = ["ANCHOR_THRESHOLD", "REASON_ROWS", "SEED_CUTOFF", "TRAP_PRODUCTION", "TRAP_SKEWED", "balanced_section",
           "data_section", "explanation_section", "group_section", "reasons_section", "skewed_sample_trap", "trap_counts"]

#: the precision an anchor in the report must reach: the explainer's default (LOAN_EXPLAIN_THRESHOLD)
ANCHOR_THRESHOLD = ServiceSettings().explain_threshold
#: The classic trap: a training sample with 100 applications of the rarer decision and 7,900
#: of the other, checked on a production-like sample of 50 and 60 (scaled down to what a
#: smaller dataset holds).
TRAP_SKEWED = (100, 7_900)
TRAP_PRODUCTION = (50, 60)
#: the seed project's decision threshold, which the trap reproduces
SEED_CUTOFF = 0.5
#: held-out rejections whose principal reasons the report measures
REASON_ROWS = 500
#: the column a table's rows' groups are put in beside the data (a numeric attribute stays a number)
GROUP = "__group__"
#: principal reasons stated per rejection (the commentary: more than four is unlikely to help)
MAX_REASONS = 4


def data_section(frame: pd.DataFrame, schema: FeatureSchema, protected: tuple[str, ...], out: Path) -> dict[str, Any]:
    """Distributions, class balance overall and per protected group, correlations, resampling."""
    balance = {"overall": {"rows": int(len(frame)), "approved_rate": float(frame[LABEL].mean())}}
    # each declared attribute as its groups (a numeric one's bands)
    labelled = frame.assign(**{attribute: group_column(frame, schema, attribute) for attribute in protected})
    for attribute in protected:
        grouped = labelled.groupby(attribute)[LABEL]
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
        "resampling": {attribute: resampling_effect(labelled, attribute, LABEL) for attribute in protected},
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
        "validation": evaluate(pipeline.predict_proba(schema.encode_frame(validation))[:, 1],
                               validation[LABEL].to_numpy(), SEED_CUTOFF),
        "production": evaluate(pipeline.predict_proba(schema.encode_frame(production))[:, 1],
                               production[LABEL].to_numpy(), SEED_CUTOFF),
    }
    # how many of the rare decision's applications the model finds (recall of that class)
    (tn, fp), (fn, tp) = result["production"]["confusion_matrix"]
    rare_approved = result["rare_decision"] == "approved"
    result["production_rare_recall"] = (tp / max(1, tp + fn)) if rare_approved else (tn / max(1, tn + fp))
    plot_trap(result, out / "skewed_sample_trap.png")
    return result


def balanced_section(model: Model, test: pd.DataFrame, protected: tuple[str, ...], min_group_rows: int,
                     seed: int) -> dict[str, Any]:
    """Metrics at the cutoff on held-out sets balanced over protected group x label (groups with
    at least ``min_group_rows`` rows)."""
    result = {}
    for attribute in protected:
        labelled = test.assign(**{GROUP: group_column(test, model.schema, attribute)})
        judged = labelled[labelled[GROUP].isin(large_groups(labelled[GROUP], min_group_rows))]
        balanced = balanced_sample(judged, GROUP, LABEL, seed)
        X, y = model.schema.encode_frame(balanced), balanced[LABEL].to_numpy()
        approval = model.approval(X)
        frame = group_metrics(y, approval >= model.cutoff, balanced[GROUP])
        result[attribute] = {
            "groups": sorted(balanced[GROUP].unique()),
            "rows_per_cell": int(len(balanced) // (2 * balanced[GROUP].nunique())),
            "overall": evaluate(approval, y, model.cutoff),
            "by_group": _table(frame.by_group),
        }
    return result


def group_section(model: Model, test: pd.DataFrame, protected: tuple[str, ...], min_group_rows: int, out: Path) -> dict[str, Any]:
    """Per-group metrics at the cutoff, each group's rows and approval rate with its 95%
    interval, the adverse impact ratio with its interval, ROC/AUC and confusion matrices, and
    the gaps between the groups with at least ``min_group_rows`` held-out rows (the others are
    listed as not judged)."""
    X, y = model.schema.encode_frame(test), test[LABEL].to_numpy()
    score = model.approval(X)
    predicted = (score >= model.cutoff).astype(int)
    result = {}
    for attribute in protected:
        groups = group_column(test, model.schema, attribute)
        frame = group_metrics(y, predicted, groups)
        names = sorted(groups.dropna().unique())
        auc = {
            group: float(roc_auc_score(y[mask], score[mask])) if len(set(y[mask])) == 2 else None
            for group, mask in ((g, (groups == g).to_numpy()) for g in names)
        }
        impact = adverse_impact(predicted.astype(bool), groups.tolist(), min_group_rows)
        judged = [g for g in names if g not in impact["not_judged"]]
        mask = groups.isin(judged).to_numpy()
        result[attribute] = {
            "overall": {k: float(v) for k, v in frame.overall.items()},
            "by_group": _table(frame.by_group),
            "roc_auc": auc,
            "adverse_impact": impact,
            "confusion_matrices": {
                g: confusion_matrix(y[(groups == g).to_numpy()], predicted[(groups == g).to_numpy()], labels=[0, 1]).tolist()
                for g in names
            },
            "gaps": fairness_gaps(y[mask], predicted[mask], groups[mask]) if len(judged) >= 2 else {},
            "groups_too_small": impact["not_judged"],
        }
        plot_group_roc(y, score, groups, auc, out / f"roc_by_{attribute}.png")
        plot_group_confusion(result[attribute]["confusion_matrices"], attribute, out / f"confusion_by_{attribute}.png")
    return result


def explanation_section(model: Model, test: pd.DataFrame, protected: tuple[str, ...], per_group: int, repeats: int,
                        seed: int, out: Path) -> dict[str, Any]:
    """Permutation importance on the held-out rows, and anchors for a few applications per group."""
    X, y = model.schema.encode_frame(test), test[LABEL].to_numpy()
    importance = permutation_importance(
        model.pipeline, X, y, scoring=lambda _, rows, truth: roc_auc_score(truth, model.approval(rows)),
        n_repeats=repeats, random_state=seed,
    )
    names = model.schema.feature_names
    ranked = sorted(zip(names, importance.importances_mean, importance.importances_std), key=lambda r: -r[1])
    plot_importance(ranked, out / "permutation_importance.png")
    found = []
    for attribute in protected:
        groups = group_column(test, model.schema, attribute)
        for group in sorted(groups.dropna().unique()):
            rows = _approved_and_rejected(test[(groups == group).to_numpy()], model, per_group)
            encoded = impute(model.schema.encode_frame(rows), model.schema, model.explainer_manifest.numeric_medians)
            for record, x in zip(model.schema.decode(model.schema.encode_frame(rows)), encoded):
                # the anchor the explainer service gives for this application (seed 0)
                anchor = anchors.explain(model.explainer, model.anchor_model, x,
                                         {"threshold": ANCHOR_THRESHOLD, "seed": 0}, model.manifest.model_sha256)
                found.append({"attribute": attribute, "group": group, "application": record, **anchor.to_dict()})
    return {
        "permutation_importance": {
            "scoring": "roc_auc", "n_repeats": repeats,
            "features": [{"feature": f, "mean": float(m), "std": float(s)} for f, m, s in ranked],
        },
        "anchors": found,
    }


def reasons_section(model: Model, test: pd.DataFrame, seed: int) -> dict[str, Any]:
    """The principal reasons of up to :data:`REASON_ROWS` held-out rejections: the reference's
    base value beside the cutoff, the share of each gap the stated reasons carry (median and
    quartiles), how exactly the contributions add up, and the most frequent reason codes."""
    X = model.schema.encode_frame(test)
    asked = model.asked(X)
    approval = model.pipeline.predict_proba(asked)[:, 1]
    rejected = np.flatnonzero(approval < model.cutoff)
    rows = np.sort(np.random.default_rng(seed).choice(rejected, size=min(REASON_ROWS, len(rejected)), replace=False))
    explained = model.reasons.explain(asked[rows], approval[rows], model.cutoff, MAX_REASONS, shown=X[rows])
    shares = np.array([r.gap_share for r in explained], dtype=float)
    additivity = max(abs(r.base_value + sum(r.contributions.values()) - r.approval_probability) for r in explained)
    codes = pd.Series([reason.code for r in explained for reason in r.reasons]).value_counts()
    return {
        "rejections": int(len(explained)),
        "base_value": model.reasons.base_value,
        "cutoff": model.cutoff,
        "max_reasons": MAX_REASONS,
        "gap_share": {"median": float(np.median(shares)), "q25": float(np.quantile(shares, 0.25)),
                      "q75": float(np.quantile(shares, 0.75))},
        "additivity_max_error": float(additivity),
        "codes": {code: int(n) for code, n in codes.head(10).items()},
    }


def _draw(frame: pd.DataFrame, counts: dict[str, int], seed: int) -> pd.DataFrame:
    parts = [frame[frame[LABEL] == (name == "approved")].sample(n=n, random_state=seed) for name, n in counts.items()]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _approved_and_rejected(rows: pd.DataFrame, model: Model, n: int) -> pd.DataFrame:
    """The first ``n`` rows, taking the model's first approval and first rejection first."""
    predicted = model.decide(model.schema.encode_frame(rows))
    firsts = [np.flatnonzero(predicted == label)[:1] for label in (1, 0)]
    order = list(dict.fromkeys([*np.concatenate(firsts).tolist(), *range(len(rows))]))
    return rows.iloc[order[:n]]


def _table(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """MetricFrame.by_group as plain JSON; undefined values (NaN) become None."""
    return {str(g): {k: None if pd.isna(v) else float(v) for k, v in row.items()} for g, row in frame.iterrows()}
