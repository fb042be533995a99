"""The training references the live metrics are read against: bins, shares and held-out outcomes.

At training, :func:`monitoring_record` writes the manifest's ``monitoring`` section: the bins
of every model input (a categorical feature's categories; a numeric feature's deciles of the
training data, and ``missing``) with the training data's share of each, the held-out
approval-probability ("score") shares in ten bins, and the held-out outcomes at the cutoff by
declared group. The services count decisions into the same bins (:mod:`loanxai.monitoring.counters`);
the rules compare the two (:mod:`loanxai.monitoring.rules`). numpy only: training needs no
Prometheus library.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loanxai.core.schema import FeatureSchema

__all__ = ["MISSING_BIN", "NOT_GIVEN", "NUMERIC_QUANTILES", "OUTCOMES", "PSI_FLOOR", "SCORE_BINS", "bin_indices",
           "feature_bins", "monitoring_record", "outcome_counts", "outcome_rates", "psi", "score_indices"]

#: the group of an application whose request does not give the protected attribute
NOT_GIVEN = "not given"
#: the bin of a missing numeric value
MISSING_BIN = "missing"
#: bins of the approval probability: [0, 0.1), [0.1, 0.2), ... [0.9, 1]
SCORE_BINS = tuple(f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10))
#: quantiles of the training data that bound a numeric feature's bins
NUMERIC_QUANTILES = tuple(q / 10 for q in range(1, 10))
OUTCOMES = ("true_positive", "false_positive", "true_negative", "false_negative")
#: the share an empty bin counts as: a bin never seen must not make the index infinite
PSI_FLOOR = 1e-4


def feature_bins(schema: FeatureSchema, X_train: np.ndarray) -> dict[str, dict[str, Any]]:
    """Each model input's bins: ``{"bins": labels, "edges": upper bounds or None}``.

    A categorical feature's bins are its categories; a numeric feature's are bounded by the
    distinct deciles of ``X_train`` (encoded rows, shape (n, n_features)), right-closed, then
    ``missing``.
    """
    bins = {}
    for j, name in enumerate(schema.feature_names):
        if name in schema.category_map:
            bins[name] = {"bins": list(schema.category_map[name]), "edges": None}
            continue
        column = X_train[:, j]
        edges = np.unique(np.quantile(column[~np.isnan(column)], NUMERIC_QUANTILES)).tolist()
        labels = [f"(-inf, {edges[0]:g}]"]
        labels += [f"({low:g}, {high:g}]" for low, high in zip(edges, edges[1:])]
        labels += [f"({edges[-1]:g}, inf)", MISSING_BIN]
        bins[name] = {"bins": labels, "edges": edges}
    return bins


def bin_indices(column: np.ndarray, edges: Sequence[float] | None) -> np.ndarray:
    """The bin of each value of one encoded column, shape (n,): the category code, or the
    numeric bin (``len(edges) + 1``, the last, for a missing value)."""
    if edges is None:
        return column.astype(np.intp)
    index = np.searchsorted(edges, column, side="left")
    index[np.isnan(column)] = len(edges) + 1
    return index


def score_indices(approval: np.ndarray) -> np.ndarray:
    """The score bin of each approval probability, shape (n,)."""
    return np.minimum((approval * len(SCORE_BINS)).astype(np.intp), len(SCORE_BINS) - 1)


def monitoring_record(
    schema: FeatureSchema, X_train: np.ndarray, approval_test: np.ndarray, cutoff: float, y_test: np.ndarray,
    groups_test: Mapping[str, Sequence[str | None]],
) -> dict[str, Any]:
    """The manifest's ``monitoring`` section: bins and training shares of every input, held-out
    score shares, and held-out outcome counts at the cutoff, overall and by group.

    ``X_train``: encoded training rows, shape (n, n_features); ``approval_test``: the served
    approval probabilities of the held-out rows, shape (m,), approved at ``cutoff`` or more;
    ``y_test``: their decisions in the data (1: approved), shape (m,); ``groups_test``: each
    declared attribute's held-out groups (None: not given).
    """
    features = feature_bins(schema, X_train)
    for j, record in enumerate(features.values()):
        counts = np.bincount(bin_indices(X_train[:, j], record["edges"]), minlength=len(record["bins"]))
        record["reference"] = (counts / counts.sum()).tolist()
    scores = np.bincount(score_indices(approval_test), minlength=len(SCORE_BINS))
    predicted, truth = approval_test >= cutoff, np.asarray(y_test).astype(bool)
    held_out: dict[str, dict[str, dict[str, int]]] = {"all": {"all": outcome_counts(predicted, truth)}}
    for attribute, groups in groups_test.items():
        groups = np.asarray([NOT_GIVEN if g is None else g for g in groups])
        held_out[attribute] = {str(g): outcome_counts(predicted[groups == g], truth[groups == g])
                               for g in sorted(set(groups.tolist()))}
    return {
        "features": features,
        "score": {"bins": list(SCORE_BINS), "reference": (scores / scores.sum()).tolist()},
        "held_out": held_out,
    }


def outcome_counts(predicted: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """True and false positives and negatives of predictions against truth, shape (n,) each."""
    return {
        "true_positive": int(np.sum(predicted & truth)), "false_positive": int(np.sum(predicted & ~truth)),
        "true_negative": int(np.sum(~predicted & ~truth)), "false_negative": int(np.sum(~predicted & truth)),
    }


def outcome_rates(counts: Mapping[str, int]) -> dict[str, float]:
    """Recall, false positive rate, accuracy and approval rate from outcome counts (NaN when undefined)."""
    tp, fp, tn, fn = (counts[name] for name in OUTCOMES)
    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    return {"recall": ratio(tp, tp + fn), "false_positive_rate": ratio(fp, fp + tn),
            "accuracy": ratio(tp + tn, tp + fp + tn + fn), "approval_rate": ratio(tp + fp, tp + fp + tn + fn)}


def psi(shares: Sequence[float], reference: Sequence[float]) -> float:
    """The population stability index of ``shares`` against ``reference`` (each bin's share,
    shape (k,)): sum over bins of (p - q) ln(p / q), shares floored at :data:`PSI_FLOOR`, as the
    recording rules compute it."""
    p = np.maximum(np.asarray(shares, dtype=np.float64), PSI_FLOOR)
    q = np.maximum(np.asarray(reference, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((p - q) * np.log(p / q)))
