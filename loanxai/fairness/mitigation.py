"""Bias mitigation at training: candidate models on the same split, compared on held-out rows.

Every candidate is one deterministic scikit-learn Pipeline (imputation and scaling, one-hot
encoding, one random forest): no randomized mixture, no group-specific threshold, and no
protected attribute needed at prediction time.

- ``seed``: the seed project's model, kept for the comparison and never chosen automatically:
  every feature and every protected attribute as inputs, the default forest (fully grown trees);
- ``unaware``: protected attributes (and the description's ``exclude_from_model`` proxies) out
  of the model, a regularised forest (:data:`FOREST`);
- ``reweighing``: unaware, trained with Kamiran-Calders weights ``w(g, y) = P(g) P(y) / P(g, y)``
  over the intersection ``g`` of the protected attributes;
- ``reductions``: unaware, fairlearn's ExponentiatedGradient under DemographicParity for the
  intersection of the protected attributes. Its result is a randomized mixture of forests,
  which a loan decision must not be: of its inner forests, the one :func:`pick` prefers on a
  validation split of the training rows is the candidate.

:func:`choose` picks by the documented rule (:func:`pick`): the most accurate candidate that
passes the gate and reaches the accuracy floor on held-out rows; if none does, among those
reaching the floor the one with the fewest failed checks, then the highest worst-case
disparate impact; if none reaches it, the most accurate. The seed's model is only chosen by
name (``--mitigation none``).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.reductions import DemographicParity, ExponentiatedGradient
from sklearn.pipeline import Pipeline

from loanxai.core.pipeline import SAMPLE_WEIGHT, build_pipeline
from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import Dataset, build_schema
from loanxai.data.description import LABEL
from loanxai.fairness.gate import GateSettings, evaluate_gate
from loanxai.fairness.metrics import evaluate, fairness_gaps, large_groups

__all__ = ["CANDIDATES", "CHOICES", "FOREST", "REDUCTIONS", "SEED_FOREST", "Candidate", "accuracy_floor", "assess",
           "choose", "intersection", "kamiran_calders_weights", "pick", "train_candidates"]

logger = logging.getLogger(__name__)

CANDIDATES = ("seed", "unaware", "reweighing", "reductions")
#: what ``--mitigation`` accepts besides a candidate's name
CHOICES = ("auto", "none", *CANDIDATES)
#: the seed's forest, as the seed trained it
SEED_FOREST: dict[str, Any] = {"n_estimators": 50}
#: the regularised forest of every other candidate: leaves of at least 20 rows and depth 12
#: generalise better (fairness constraints fitted on training rows then hold better on held-out
#: rows); 25 such trees are as accurate as 50 and halve the time of exact TreeSHAP reasons
FOREST: dict[str, Any] = {"n_estimators": 25, "min_samples_leaf": 20, "max_depth": 12}
#: ExponentiatedGradient's settings; the inner forest is chosen on this share of the training rows
REDUCTIONS: dict[str, Any] = {"difference_bound": 0.01, "max_iter": 30, "validation_fraction": 0.2}
SUMMARIES = {
    "seed": "the seed's model: all inputs, protected attributes included (comparison only)",
    "unaware": "protected attributes out of the model",
    "reweighing": "unaware + Kamiran-Calders reweighing over the intersection of the protected attributes",
    "reductions": "unaware + fairlearn ExponentiatedGradient (DemographicParity, intersection); one inner forest",
}


@dataclass
class Candidate:
    """A trained candidate and its held-out assessment."""

    name: str
    schema: FeatureSchema
    pipeline: Pipeline
    settings: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    gaps: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    #: held-out points of the models it was chosen from (the reductions' inner forests):
    #: the measured accuracy / fairness frontier
    frontier: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every gate check passed."""
        return all(check["passed"] for check in self.checks)

    @property
    def failed(self) -> int:
        """How many gate checks failed."""
        return sum(not check["passed"] for check in self.checks)

    @property
    def worst_disparate_impact(self) -> float:
        """The lowest disparate impact over the protected attributes."""
        return min((g["disparate_impact"] for g in self.gaps.values()), default=1.0)

    def record(self) -> dict[str, Any]:
        """What the manifest and the report keep of it."""
        return {
            "name": self.name,
            "summary": SUMMARIES[self.name],
            "features": list(self.schema.feature_names),
            "settings": self.settings,
            "metrics": self.metrics,
            "gaps": self.gaps,
            "checks": self.checks,
            "passed": self.passed,
            "frontier": self.frontier,
        }

    def point(self) -> dict[str, Any]:
        """Its held-out accuracy, ROC AUC and gaps: one point of a trade-off plot."""
        return {"accuracy": self.metrics["accuracy"], "roc_auc": self.metrics["roc_auc"], "gaps": self.gaps}


def intersection(frame: pd.DataFrame, attributes: Sequence[str]) -> pd.Series:
    """Each row's group in the intersection of ``attributes``, e.g. ``"Female / Black"``."""
    return frame[list(attributes)].astype(str).agg(" / ".join, axis=1)


def kamiran_calders_weights(groups: pd.Series, y: np.ndarray) -> np.ndarray:
    """Reweighing (Kamiran and Calders, 2012): ``w(g, y) = P(g) P(y) / P(g, y)``, shape (n,).

    Each (group, label) cell then weighs as much as it would if label and group were
    independent; the weights sum to n.
    """
    groups = pd.Series(np.asarray(groups), name="group")
    labels = pd.Series(np.asarray(y), name="label")
    p_group = groups.map(groups.value_counts(normalize=True))
    p_label = labels.map(labels.value_counts(normalize=True))
    cells = pd.concat([groups, labels], axis=1)
    p_cell = cells.groupby(["group", "label"])["group"].transform("size") / len(cells)
    return (p_group * p_label / p_cell).to_numpy(dtype=np.float64)


def assess(candidate: Candidate, rows: pd.DataFrame, protected: Sequence[str], thresholds: GateSettings) -> Candidate:
    """Fill in the candidate's metrics, fairness gaps and gate checks on ``rows``."""
    X, y = candidate.schema.encode_frame(rows), rows[LABEL].to_numpy()
    candidate.metrics = evaluate(candidate.pipeline, X, y)
    predicted = candidate.pipeline.predict(X).astype(int)
    candidate.gaps = {}
    for attribute in protected:
        groups = rows[attribute]
        judged = groups.isin(large_groups(groups, thresholds.min_group_rows)).to_numpy()
        candidate.gaps[attribute] = fairness_gaps(y[judged].astype(int), predicted[judged], groups[judged])
    inputs = tuple(a for a in protected if a in candidate.schema.feature_names)
    candidate.checks = evaluate_gate(candidate.gaps, thresholds, inputs)
    return candidate


def pick(candidates: Sequence[Candidate], floor: float) -> Candidate:
    """The documented rule: the most accurate candidate that passes the gate with accuracy at
    least ``floor``; else, among those reaching the floor, the one with the fewest failed
    checks, then the highest worst-case disparate impact, then the highest accuracy; else the
    most accurate."""
    accurate = [c for c in candidates if c.metrics["accuracy"] >= floor]
    passing = [c for c in accurate if c.passed]
    if passing:
        return max(passing, key=lambda c: c.metrics["accuracy"])
    if accurate:
        return max(accurate, key=lambda c: (-c.failed, c.worst_disparate_impact, c.metrics["accuracy"]))
    return max(candidates, key=lambda c: c.metrics["accuracy"])


def accuracy_floor(thresholds: dict[str, Any], rows: pd.DataFrame) -> float:
    """The description's ``gate.min_accuracy``, or else the accuracy of always giving the more
    frequent decision on ``rows`` (a model must beat that)."""
    if thresholds.get("min_accuracy") is not None:
        return float(thresholds["min_accuracy"])
    rate = float(rows[LABEL].mean())
    return max(rate, 1 - rate)


def train_candidates(
    dataset: Dataset, seed: int = 0, names: Sequence[str] = CANDIDATES, n_estimators: int | None = None
) -> list[Candidate]:
    """Train the named candidates on the dataset's training rows and assess each on its held-out
    rows. ``n_estimators`` replaces every candidate's number of trees (for quick runs)."""
    description = dataset.description
    protected = tuple(description.protected)
    thresholds = GateSettings.from_dict(description.gate)
    frame = dataset.frame
    unaware = dataset.schema
    everything = build_schema(frame, description, inputs=[c.name for c in description.features]
                              + [a for a in protected if a not in [c.name for c in description.features]])
    train, y = dataset.train, dataset.train[LABEL].to_numpy()
    trees = {} if n_estimators is None else {"n_estimators": n_estimators}
    seed_forest, forest = {**SEED_FOREST, **trees}, {**FOREST, **trees}
    trainers = {
        "seed": lambda: _fit(everything, train, y, seed, seed_forest),
        "unaware": lambda: _fit(unaware, train, y, seed, forest),
        "reweighing": lambda: _fit(unaware, train, y, seed, forest,
                                   kamiran_calders_weights(intersection(train, protected), y),
                                   "Kamiran-Calders over " + " x ".join(protected)),
        "reductions": lambda: _reductions(dataset, unaware, seed, forest, thresholds),
    }
    candidates = []
    for name in names:
        started = time.perf_counter()
        pipeline, settings, others = trainers[name]()
        schema = everything if name == "seed" else unaware
        candidate = assess(Candidate(name, schema, pipeline, settings), dataset.test, protected, thresholds)
        candidate.frontier = [assess(Candidate(name, schema, p, {}), dataset.test, protected, thresholds).point()
                              for p in others]
        logger.info("candidate %-10s held-out accuracy %.3f, worst disparate impact %.3f, gate %s (%.0f s)", name,
                    candidate.metrics["accuracy"], candidate.worst_disparate_impact,
                    "pass" if candidate.passed else "FAIL", time.perf_counter() - started)
        candidates.append(candidate)
    return candidates


def choose(candidates: Sequence[Candidate], requested: str, floor: float) -> Candidate:
    """The candidate ``requested`` names (``none``: the seed's), or by :func:`pick` for ``auto``."""
    by_name = {c.name: c for c in candidates}
    if requested == "auto":
        return pick([c for c in candidates if c.name != "seed"] or candidates, floor)
    return by_name["seed" if requested == "none" else requested]


def _fit(schema: FeatureSchema, rows: pd.DataFrame, y: np.ndarray, seed: int, forest: dict[str, Any],
         weights: np.ndarray | None = None, weighting: str | None = None) -> tuple[Pipeline, dict[str, Any], list[Pipeline]]:
    pipeline = build_pipeline(schema, seed, **forest)
    pipeline.fit(schema.encode_frame(rows), y, **{SAMPLE_WEIGHT: weights})
    settings = {"random_state": seed, **forest}
    if weighting:
        settings["sample_weight"] = weighting
    return pipeline, settings, []


def _reductions(dataset: Dataset, schema: FeatureSchema, seed: int, forest: dict[str, Any],
                thresholds: GateSettings) -> tuple[Pipeline, dict[str, Any], list[Pipeline]]:
    """ExponentiatedGradient on part of the training rows; its inner forest :func:`pick`
    prefers on the rest (and the other inner forests, for the frontier)."""
    protected = tuple(dataset.description.protected)
    validation = dataset.train.sample(frac=REDUCTIONS["validation_fraction"], random_state=seed)
    fit_rows = dataset.train.drop(validation.index)
    mitigator = ExponentiatedGradient(
        build_pipeline(schema, seed, **forest),
        DemographicParity(difference_bound=REDUCTIONS["difference_bound"]),
        max_iter=REDUCTIONS["max_iter"],
        sample_weight_name=SAMPLE_WEIGHT,
    )
    mitigator.fit(schema.encode_frame(fit_rows), fit_rows[LABEL].to_numpy(), sensitive_features=intersection(fit_rows, protected))
    inner = [assess(Candidate("reductions", schema, pipeline, {}), validation, protected, thresholds)
             for pipeline in mitigator.predictors_]
    floor = accuracy_floor(dataset.description.gate, validation)
    best = pick(inner, floor)
    index = next(i for i, c in enumerate(inner) if c is best)
    settings = {
        "random_state": seed, **forest,
        "constraint": "DemographicParity over " + " x ".join(protected),
        "difference_bound": REDUCTIONS["difference_bound"], "max_iter": REDUCTIONS["max_iter"],
        "inner_forests": len(inner), "chosen_inner_forest": index,
        "chosen_on": f"{len(validation)} validation rows of the training set (accuracy {best.metrics['accuracy']:.3f}, "
                     f"worst disparate impact {best.worst_disparate_impact:.3f})",
        "trained_on_rows": len(fit_rows),
    }
    return best.pipeline, settings, [c.pipeline for c in inner if c is not best]
