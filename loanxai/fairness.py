"""Per-group metrics, fairness gaps, balanced samples and the fairness gate.

Approved (label 1) is the favourable outcome: a group's *selection rate* is its approval
rate. Metrics per group come from fairlearn's :class:`~fairlearn.metrics.MetricFrame`; the
gaps from fairlearn's own difference and ratio functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
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
    kwargs = {"y_true": y_true, "y_pred": y_pred, "sensitive_features": groups}
    opportunity = MetricFrame(metrics=true_positive_rate, **kwargs)
    return {
        "demographic_parity_difference": float(demographic_parity_difference(**kwargs)),
        "disparate_impact": float(demographic_parity_ratio(**kwargs)),
        "equalized_odds_difference": float(equalized_odds_difference(**kwargs)),
        "equal_opportunity_difference": float(opportunity.difference()),
    }


@dataclass(frozen=True)
class GateThresholds:
    """Limits a model must meet for every protected attribute (None: not checked)."""

    min_disparate_impact: float | None = 0.8
    max_demographic_parity_difference: float | None = None
    max_equalized_odds_difference: float | None = None
    max_equal_opportunity_difference: float | None = None


def evaluate_gate(gaps_by_attribute: dict[str, dict[str, float]], thresholds: GateThresholds) -> list[dict[str, Any]]:
    """One check per attribute and configured limit: ``{attribute, metric, value, limit, passed}``."""
    limits = [
        ("disparate_impact", ">=", thresholds.min_disparate_impact),
        ("demographic_parity_difference", "<=", thresholds.max_demographic_parity_difference),
        ("equalized_odds_difference", "<=", thresholds.max_equalized_odds_difference),
        ("equal_opportunity_difference", "<=", thresholds.max_equal_opportunity_difference),
    ]
    checks = []
    for attribute, gaps in gaps_by_attribute.items():
        for metric, op, limit in limits:
            if limit is None:
                continue
            value = gaps[metric]
            passed = bool(value >= limit) if op == ">=" else bool(value <= limit)
            checks.append({"attribute": attribute, "metric": metric, "value": value,
                           "rule": f"{op} {limit}", "passed": passed})
    return checks


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
        "cells": {f"{g} / {'approved' if l else 'rejected'}": int(n) for (g, l), n in counts.items()},
        "rows": int(len(frame)),
        "downsampled_rows": smallest * len(counts),
        "rows_dropped": int(len(frame) - smallest * len(counts)),
        "upsampled_rows": largest * len(counts),
        "rows_duplicated": int(largest * len(counts) - len(frame)),
        "approved_rate_now": float(frame[label].mean()),
        "approved_rate_after_resampling": 0.5,
    }
