"""Metrics at the lender's cutoff, approval rates by group with their intervals, and the gaps.

Approved (label 1) is the favourable outcome: a group's *selection rate* is its approval rate.
Every figure is at the cutoff the decision policy sets (:func:`policy_cutoff`), never at 0.5
unless that is the policy. The adverse impact ratio (AIR) of a protected attribute is its
lowest judged group's approval rate over its highest, with a 95% interval (Katz's log method
for a ratio of two proportions); each group's rate has a 95% Wilson interval; only groups
with at least ``min_rows`` rows are judged, the others are reported as not judged. Metrics per
group come from fairlearn's :class:`~fairlearn.metrics.MetricFrame`. The standardized mean
difference (SMD) compares the scores themselves, whatever the cutoff: a group's mean score
minus the favoured group's, over their pooled standard deviation, with a 95% interval (Hedges
and Olkin's large-sample variance).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from sklearn import metrics as skmetrics
from sklearn.metrics import accuracy_score, precision_score, recall_score

__all__ = ["METRICS", "Z95", "adverse_impact", "balanced_sample", "evaluate", "fairness_gaps", "group_metrics",
           "group_rates", "large_groups", "policy_cutoff", "policy_rate", "resampling_effect",
           "standardized_mean_difference", "wilson"]

#: the normal quantile of a two-sided 95% interval
Z95 = 1.959964
# precision and recall are undefined (NaN) for a group with no predicted or no actual approvals
METRICS = {
    "count": count,
    "accuracy": accuracy_score,
    "precision": lambda y, p: precision_score(y, p, zero_division=np.nan),
    "recall": lambda y, p: recall_score(y, p, zero_division=np.nan),
    "false_positive_rate": false_positive_rate,
    "false_negative_rate": false_negative_rate,
    "selection_rate": selection_rate,
}


def policy_rate(policy: Mapping[str, Any], base_rate: float) -> float:
    """The share of applications the policy approves: its ``approval_rate`` (``base``:
    ``base_rate``, the training data's); a policy of a fixed cutoff names none, and the base
    rate stands in for it."""
    rate = policy.get("approval_rate", "base")
    return base_rate if rate == "base" else float(rate)


def policy_cutoff(approval: np.ndarray, policy: Mapping[str, Any], base_rate: float) -> float:
    """The probability of approval at or above which an application is approved: the policy's
    fixed ``cutoff``, or the quantile of ``approval`` (probabilities, shape (n,)) that approves
    the policy's rate of them (:func:`policy_rate`)."""
    if "cutoff" in policy:
        return float(policy["cutoff"])
    return float(np.quantile(approval, 1 - policy_rate(policy, base_rate)))


def evaluate(approval: np.ndarray, y: np.ndarray, cutoff: float) -> dict[str, Any]:
    """ROC AUC, and at ``cutoff`` recall, precision, the approval rate, accuracy beside the
    always-reject baseline's, and the confusion matrix; ``approval``: probabilities, shape (n,),
    ``y``: the decisions the data holds (1: approved), shape (n,)."""
    y = np.asarray(y).astype(int)
    predicted = approval >= cutoff
    return {
        "n_rows": int(len(y)),
        "cutoff": float(cutoff),
        "approved_rate": float(np.mean(y)),
        # how many the model approves: the policy's rate, give or take the sample
        "predicted_approval_rate": float(np.mean(predicted)),
        "roc_auc": float(skmetrics.roc_auc_score(y, approval)),
        "recall": float(skmetrics.recall_score(y, predicted, zero_division=0)),
        "precision": float(skmetrics.precision_score(y, predicted, zero_division=0)),
        "accuracy": float(skmetrics.accuracy_score(y, predicted)),
        # accuracy of always rejecting: what accuracy must be read against (never the criterion)
        "always_reject_accuracy": float(1 - np.mean(y)),
        "confusion_matrix": skmetrics.confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
    }


def wilson(approved: int, rows: int) -> tuple[float, float]:
    """The 95% Wilson interval of a rate of ``approved`` in ``rows``."""
    if rows == 0:
        return (0.0, 1.0)
    p, z2 = approved / rows, Z95 ** 2
    centre = (p + z2 / (2 * rows)) / (1 + z2 / rows)
    half = Z95 * math.sqrt(p * (1 - p) / rows + z2 / (4 * rows ** 2)) / (1 + z2 / rows)
    return (max(0.0, centre - half), min(1.0, centre + half))


def group_rates(decisions: np.ndarray, groups: Sequence[str | None]) -> dict[str, dict[str, Any]]:
    """Each group's rows, approvals, approval rate and its 95% interval, for decisions (bool,
    shape (n,)) and each row's group (None: not given, left out)."""
    frame = pd.DataFrame({"group": list(groups), "approved": np.asarray(decisions, dtype=bool)}).dropna()
    result = {}
    for group, rows in frame.groupby("group")["approved"]:
        n, approved = int(len(rows)), int(rows.sum())
        low, high = wilson(approved, n)
        result[str(group)] = {"rows": n, "approved": approved, "rate": approved / n, "low": low, "high": high}
    return result


def adverse_impact(decisions: np.ndarray, groups: Sequence[str | None], min_rows: int) -> dict[str, Any]:
    """The adverse impact ratio of one attribute: its lowest judged group's approval rate over
    its highest (None with fewer than two groups of ``min_rows``), its 95% interval, the
    groups' rates, and those too small to judge."""
    rates = group_rates(decisions, groups)
    judged = {g: r for g, r in rates.items() if r["rows"] >= min_rows}
    result: dict[str, Any] = {"ratio": None, "low": None, "high": None, "lowest": None, "highest": None,
                              "groups": rates, "min_rows": min_rows,
                              "not_judged": {g: r["rows"] for g, r in rates.items() if g not in judged}}
    if len(judged) < 2:
        return result
    lowest = min(judged, key=lambda g: (judged[g]["rate"], g))
    highest = max(judged, key=lambda g: (judged[g]["rate"], g))
    a, b = judged[lowest], judged[highest]
    if b["approved"] == 0:
        return result | {"ratio": 1.0, "low": 1.0, "high": 1.0, "lowest": lowest, "highest": highest}
    ratio = a["rate"] / b["rate"]
    # Katz: the log of the ratio is about normal; half a count each keeps a zero finite
    x1, x2 = max(a["approved"], 0.5), b["approved"]
    se = math.sqrt(max((1 - x1 / a["rows"]) / x1 + (1 - x2 / b["rows"]) / x2, 0.0))
    centre = math.log(max(x1 / a["rows"], 1e-12) / b["rate"])
    return result | {"ratio": ratio, "low": math.exp(centre - Z95 * se), "high": math.exp(centre + Z95 * se),
                     "lowest": lowest, "highest": highest}


def standardized_mean_difference(scores: np.ndarray, groups: Sequence[str | None], min_rows: int) -> dict[str, Any]:
    """The standardized mean difference of one attribute's scores (shape (n,), the probability of
    approval; None groups left out): among the groups of at least ``min_rows`` rows, each one's
    mean score minus that of the group with the highest, over their pooled standard deviation.
    ``smd`` is the lowest (0 or below; None with fewer than two such groups), with its 95%
    interval, its group (``lowest``) and the favoured one (``highest``); each group's rows and mean."""
    frame = pd.DataFrame({"group": list(groups), "score": np.asarray(scores, dtype=np.float64)}).dropna()
    stats = frame.groupby("group")["score"].agg(["count", "mean", "var"])
    means = {str(g): {"rows": int(r["count"]), "mean": float(r["mean"])} for g, r in stats.iterrows()}
    result: dict[str, Any] = {"smd": None, "low": None, "high": None, "lowest": None, "highest": None, "groups": means}
    judged = stats[stats["count"] >= max(min_rows, 2)]
    if len(judged) < 2:
        return result
    highest = max(judged.index, key=lambda g: (judged.loc[g, "mean"], str(g)))
    favoured = judged.loc[highest]
    differences = {}
    for group, other in judged.drop(index=highest).iterrows():
        n1, n2 = other["count"], favoured["count"]
        pooled = math.sqrt(((n1 - 1) * other["var"] + (n2 - 1) * favoured["var"]) / (n1 + n2 - 2))
        d = 0.0 if pooled == 0 else (other["mean"] - favoured["mean"]) / pooled
        differences[str(group)] = (d, Z95 * math.sqrt((n1 + n2) / (n1 * n2) + d * d / (2 * (n1 + n2))))
    lowest = min(differences, key=lambda g: (differences[g][0], g))
    d, half = differences[lowest]
    return result | {"smd": d, "low": d - half, "high": d + half, "lowest": lowest, "highest": str(highest)}


def group_metrics(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> MetricFrame:
    """Accuracy, precision, recall, FPR, FNR and selection rate, overall and for each group.

    ``y_true`` and ``y_pred`` are 0/1 arrays, shape (n,); ``groups`` the group of each row.
    """
    return MetricFrame(metrics=METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=groups)


def fairness_gaps(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict[str, float]:
    """The gaps between the best- and worst-treated groups.

    - ``demographic_parity_difference``: largest minus smallest approval rate;
    - ``adverse_impact_ratio``: smallest over largest approval rate (demographic parity ratio;
      the four-fifths rule asks for at least 0.8);
    - ``equalized_odds_difference``: the larger of the TPR gap and the FPR gap;
    - ``equal_opportunity_difference``: the TPR (recall) gap.

    What fairlearn's ``MetricFrame`` of selection rate, TPR and FPR gives with ``difference()``
    and ``ratio()`` (a test holds them equal), from one pandas grouping: MetricFrame stacks every
    row of every group into its own array, 0.4 s a call on the census's training rows, and the
    search calls it for every screened attribute of every candidate.
    """
    frame = pd.DataFrame({"group": np.asarray(groups), "truth": np.asarray(y_true).astype(bool),
                          "approved": np.asarray(y_pred).astype(float)})
    by_group = frame.groupby("group")
    selection = by_group["approved"].mean()
    # a group with no applicant the data approved (rejected) has a TPR (FPR) of 0, as in fairlearn
    tpr = frame[frame["truth"]].groupby("group")["approved"].mean().reindex(selection.index, fill_value=0.0)
    fpr = frame[~frame["truth"]].groupby("group")["approved"].mean().reindex(selection.index, fill_value=0.0)
    gap = {name: float(rates.max() - rates.min()) for name, rates in (("selection", selection), ("tpr", tpr), ("fpr", fpr))}
    return {
        "demographic_parity_difference": gap["selection"],
        "adverse_impact_ratio": float(selection.min() / selection.max()) if selection.max() else 1.0,
        "equalized_odds_difference": max(gap["tpr"], gap["fpr"]),
        "equal_opportunity_difference": gap["tpr"],
    }


def large_groups(groups: pd.Series, min_rows: int) -> list[str]:
    """Groups with at least ``min_rows`` rows: gaps between smaller groups are mostly noise."""
    sizes = groups.value_counts()
    return sorted(sizes[sizes >= min_rows].index)


def balanced_sample(frame: pd.DataFrame, group: str, label: str, seed: int = 0) -> pd.DataFrame:
    """As many rows of every (group, label) cell as the smallest cell has, drawn without
    replacement; groups lacking one of the labels are left out."""
    counts = pd.crosstab(frame[group], frame[label])
    kept = counts[(counts > 0).all(axis=1)]
    size = int(kept.to_numpy().min())
    cells = frame[frame[group].isin(kept.index)].groupby([group, label])
    return cells.sample(n=size, random_state=seed).reset_index(drop=True)


def resampling_effect(frame: pd.DataFrame, group: str, label: str) -> dict[str, Any]:
    """Cell counts of (group, label) now, after down-sampling every cell to the smallest,
    and after up-sampling every cell to the largest (rows duplicated)."""
    counts = frame.groupby([group, label], observed=True).size()
    smallest, largest = int(counts.min()), int(counts.max())
    return {
        "cells": {f"{g} / {'approved' if label else 'rejected'}": int(n) for (g, label), n in counts.items()},
        "rows": int(len(frame)),
        "downsampled_rows": smallest * len(counts),
        "rows_dropped": int(len(frame) - smallest * len(counts)),
        "upsampled_rows": largest * len(counts),
        "rows_duplicated": int(largest * len(counts) - len(frame)),
        "approved_rate_now": float(frame[label].mean()),
        "approved_rate_after_resampling": 0.5,
    }
