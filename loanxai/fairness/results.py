"""What the search found: each candidate's assessment, the rule's choice, and the record of both.

:class:`Assessment` is one candidate's cross-validated estimates; :class:`SearchResult` is
every candidate's, the choice, the chosen pipeline refitted, and what the manifest records of
them (:meth:`SearchResult.record`: the rule in words, what the search covered per family with
intervals, the groups too small to judge reliably, the rule's contenders on each fold split, the
incumbent, the randomized reference, every candidate's point). The rule's parameters, :data:`SPLITS` and
:data:`CONTENDERS`, are here with the words that state it; :mod:`loanxai.fairness.search` applies it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from loanxai.core.schema import FeatureSchema
from loanxai.fairness.candidates import Spec

__all__ = ["CONTENDERS", "SPLITS", "Assessment", "SearchResult", "choosable"]

#: fold splits the rule's contenders are estimated on: one split's ranking of near-equal
#: candidates is mostly the folds' noise (measured on the census: 0.01-0.03 of worst ratio)
SPLITS = 3
#: the candidates of the highest worst ratio within the tolerance that the rule re-estimates
CONTENDERS = 8


@dataclass
class Assessment:
    """A candidate's cross-validated estimates: its metrics at its cutoff, each declared
    attribute's adverse impact ratio and standardized mean difference of scores, each screened
    attribute's ratio over its groups judged reliably (``rule_air``) and the worst of those
    (what the rule ranks by), and each screened attribute's other gaps between its judged
    groups (:func:`~loanxai.fairness.metrics.fairness_gaps`)."""

    spec: Spec
    metrics: dict[str, Any]
    air: dict[str, dict[str, Any]]
    smd: dict[str, dict[str, Any]]
    rule_air: dict[str, dict[str, Any]]
    worst_air: float | None
    gaps: dict[str, dict[str, float]]
    approval: np.ndarray = field(repr=False)

    def point(self) -> dict[str, Any]:
        """What the manifest and the report keep of it."""
        return {"name": self.spec.name, "summary": self.spec.summary, "eligible": self.spec.eligible,
                "family": self.spec.family, "features": list(self.spec.features), "metrics": self.metrics,
                "air": self.air, "smd": self.smd, "rule_air": self.rule_air, "worst_air": self.worst_air,
                "gaps": self.gaps}


@dataclass
class SearchResult:
    """Every candidate assessed, the rule's choice, and the chosen one refitted on every training row."""

    assessments: list[Assessment]
    chosen: Assessment
    requested: str
    best_auc: float
    tolerance: float
    folds: int
    pipeline: Pipeline
    schema: FeatureSchema
    cutoff: float
    seconds: float
    #: each screened attribute's adverse impact ratio of the training rows' own decisions (the label)
    data_air: dict[str, float | None]
    #: the families the rule chose from, and every family searched
    choose_from: tuple[str, ...]
    families: tuple[str, ...]
    #: each screened attribute's groups too small to judge reliably: their rows and expected approvals
    unreliable: dict[str, dict[str, dict[str, float]]]
    reliable_approvals: int
    #: the seed of the folds and the models; trees (or boosting iterations), when not the settings' own; grid points
    seed: int
    trees: int | None
    grid_size: int
    #: the rule's second step, its contenders on more fold splits (None: a named candidate was requested)
    repeated: dict[str, Any] | None = None
    #: the served model whose recipe was re-assessed as the candidate "incumbent": its manifest, candidate, date
    incumbent: dict[str, Any] | None = None
    #: ExponentiatedGradient's randomized classifiers, a reference never chosen (None: not run, as with ``only``)
    randomized: list[dict[str, Any]] | None = None

    def coverage(self, threshold: float | None) -> dict[str, Any]:
        """What the search covered and found, per family: its candidates, its best ROC AUC, and
        the best worst ratio within the tolerance of that AUC, with its 95% interval; and whether
        any candidate reaches the screen's ``threshold``."""
        families = {}
        for family in self.families:
            assessed = [a for a in self.assessments if a.spec.eligible and a.spec.family == family]
            if not assessed:  # none asked for (``only``)
                continue
            best = max(a.metrics["roc_auc"] for a in assessed)
            within = [a for a in assessed if a.metrics["roc_auc"] >= best - self.tolerance and a.worst_air is not None]
            top = max(within, key=lambda a: (a.worst_air, a.metrics["roc_auc"]), default=None)
            families[family] = {"candidates": len(assessed), "best_roc_auc": best,
                                "best_worst_air": None if top is None else _worst_figure(top),
                                "reaching_threshold": None if threshold is None else sum(
                                    1 for a in assessed if a.worst_air is not None and a.worst_air >= threshold)}
        reaching = [a for a in self.assessments if a.spec.eligible and threshold is not None
                    and a.worst_air is not None and a.worst_air >= threshold]
        first = max(reaching, key=lambda a: a.metrics["roc_auc"], default=None)
        return {"families": families, "threshold": threshold,
                "best_reaching_threshold": None if first is None else
                {"name": first.spec.name, "roc_auc": first.metrics["roc_auc"], "worst_air": first.worst_air}}

    def record(self, threshold: float | None = None) -> dict[str, Any]:
        """The manifest's ``search`` section: the rule, what it covered, the frontier's every point, the choice."""
        return {
            "rule": f"among the {' and '.join(self.choose_from)} candidates whose cross-validated ROC AUC is within "
                    f"{self.tolerance} of the best of them ({self.best_auc:.3f}), the {CONTENDERS} of the highest worst "
                    f"adverse impact ratio over the screened attributes' groups judged reliably (a group the policy's "
                    f"rate would approve at least {self.reliable_approvals} of) are estimated on {SPLITS} fold splits; "
                    f"the one of the highest mean worst ratio is chosen",
            "requested": self.requested, "chosen": self.chosen.spec.name, "best_roc_auc": self.best_auc,
            "tolerance": self.tolerance, "folds": self.folds, "seconds": round(self.seconds, 1),
            "families": list(self.families), "choose_from": list(self.choose_from),
            "reliable_approvals": self.reliable_approvals, "unreliable": self.unreliable,
            "coverage": self.coverage(threshold), "repeated": self.repeated, "incumbent": self.incumbent,
            "randomized": self.randomized,
            "settings": self.chosen.spec.settings(self.seed, self.trees, self.grid_size),
            "data_air": self.data_air, "candidates": [a.point() for a in self.assessments],
        }


def choosable(spec: Spec, families: Sequence[str]) -> bool:
    """Whether the rule may choose ``spec``: eligible, and of one of ``families``."""
    return spec.eligible and spec.family in families


def _worst_figure(assessed: Assessment) -> dict[str, Any]:
    """The worst reliably judged ratio of a candidate, its attribute and its 95% interval."""
    attribute = min((f["ratio"], a) for a, f in assessed.rule_air.items() if f["ratio"] is not None)[1]
    figure = assessed.rule_air[attribute]
    return {"name": assessed.spec.name, "roc_auc": assessed.metrics["roc_auc"], "attribute": attribute,
            "ratio": figure["ratio"], "low": figure["low"], "high": figure["high"]}
