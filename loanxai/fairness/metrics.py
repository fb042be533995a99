"""Per-group metrics, fairness gaps and balanced samples.

Approved (label 1) is the favourable outcome: a group's *selection rate* is its approval
rate. Metrics per group come from fairlearn's :class:`~fairlearn.metrics.MetricFrame`; the
gaps from fairlearn's own difference and ratio functions.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn import metrics as skmetrics
from sklearn.metrics import accuracy_score, precision_score, recall_score

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


def evaluate(model: Any, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Accuracy, precision, recall, ROC AUC (approved = positive) and the confusion matrix of a
    fitted classifier (anything with ``predict_proba``) on encoded rows ``X``, labels ``y``."""
    proba = model.predict_proba(X)[:, 1]
    predicted = proba >= 0.5
    return {
        "n_rows": int(len(y)),
        "approved_rate": float(np.mean(y)),
        # how many the model approves: a model can gain on a gap by approving fewer people
        "predicted_approval_rate": float(np.mean(predicted)),
        "accuracy": float(skmetrics.accuracy_score(y, predicted)),
        "precision": float(skmetrics.precision_score(y, predicted, zero_division=0)),
        "recall": float(skmetrics.recall_score(y, predicted)),
        "roc_auc": float(skmetrics.roc_auc_score(y, proba)),
        # accuracy of always giving the more frequent decision: what accuracy must be read against
        "majority_class_accuracy": float(max(np.mean(y), 1 - np.mean(y))),
        "confusion_matrix": skmetrics.confusion_matrix(y, predicted).tolist(),
    }


def group_metrics(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> MetricFrame:
    """Accuracy, precision, recall, FPR, FNR and selection rate, overall and for each group.

    ``y_true`` and ``y_pred`` are 0/1 arrays, shape (n,); ``groups`` the group of each row.
    """
    return MetricFrame(metrics=METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=groups)


def fairness_gaps(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict[str, float]:
    """The gaps between the best- and worst-treated groups.

    - ``demographic_parity_difference``: largest minus smallest approval rate;
    - ``disparate_impact``: smallest over largest approval rate (demographic parity ratio;
      the four-fifths rule asks for at least 0.8);
    - ``equalized_odds_difference``: the larger of the TPR gap and the FPR gap;
    - ``equal_opportunity_difference``: the TPR (recall) gap.
    """
    # one MetricFrame for all four: what fairlearn's demographic_parity_difference / _ratio and
    # equalized_odds_difference compute, without grouping the rows four times
    rates = MetricFrame(metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
                        y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    difference, ratio = rates.difference(), rates.ratio()
    return {
        "demographic_parity_difference": float(difference["selection_rate"]),
        "disparate_impact": float(ratio["selection_rate"]),
        "equalized_odds_difference": float(max(difference["tpr"], difference["fpr"])),
        "equal_opportunity_difference": float(difference["tpr"]),
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
