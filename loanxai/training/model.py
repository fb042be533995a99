"""The model training serves: the search for a less discriminatory alternative, its choice
checked on the held-out rows, and the fairness gate's two steps."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from loanxai.core.manifest import ClassifierManifest
from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import Dataset
from loanxai.fairness.fits import served_approval
from loanxai.fairness.gate import GateThresholds, gate_record, screen_checks, search_check
from loanxai.fairness.results import SearchResult
from loanxai.fairness.search import held_out_check, search

__all__ = ["TrainedModel", "train_model"]

logger = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """The search's result (the chosen pipeline and its cutoff among them), the dataset, the
    held-out check, and the gate's record."""

    result: SearchResult
    dataset: Dataset
    search_record: dict[str, Any]
    held_out: dict[str, Any]
    gate: dict[str, Any]

    @property
    def pipeline(self) -> Pipeline:
        """The chosen candidate's pipeline, fitted on every training row."""
        return self.result.pipeline

    @property
    def schema(self) -> FeatureSchema:
        """The feature schema of the chosen candidate's inputs."""
        return self.result.schema

    @property
    def cutoff(self) -> float:
        """The probability of approval at or above which the served model approves."""
        return self.result.cutoff

    @cached_property
    def X_train(self) -> np.ndarray:
        """The training rows, encoded."""
        return self.schema.encode_frame(self.dataset.train)

    @cached_property
    def X_test(self) -> np.ndarray:
        """The held-out rows, encoded."""
        return self.schema.encode_frame(self.dataset.test)

    def approval(self, X: np.ndarray) -> np.ndarray:
        """The probabilities of approval the classifier serves for encoded rows ``X``, shape (n,)."""
        return served_approval(self.pipeline, X, self.schema)


def train_model(dataset: Dataset, seed: int = 0, requested: str = "auto", accept_unfair: str | None = None,
                accepted_by: str | None = None, n_estimators: int | None = None,
                only: Sequence[str] | None = None, quick: bool = False, cache: Path | None = None,
                incumbent: ClassifierManifest | None = None) -> TrainedModel:
    """Search the candidates (``only``: these names; ``quick``, ``cache``, ``incumbent``: as
    :func:`~loanxai.fairness.search.search`), choose one (``requested``: by the rule, or a name),
    check it on the held-out rows, and run the gate's two steps."""
    result = search(dataset, seed, requested, n_estimators, only, quick, cache, incumbent)
    held_out = held_out_check(result, dataset)
    description = dataset.description
    settings = GateThresholds.from_dict(description.gate)
    record = result.record(settings.min_adverse_impact_ratio)
    checks = [*screen_checks(result.chosen.point(), held_out, settings, description.screened, description.protected),
              search_check(record, settings)]
    gate = gate_record(checks, settings, accept_unfair, accepted_by)
    cv, final = result.chosen.metrics, held_out["metrics"]
    logger.info("chose %s in %.0f s: cross-validated ROC AUC %.3f (best %.3f), worst adverse impact ratio %s; "
                "held out (%d rows, cutoff %.4f): ROC AUC %.3f, recall %.3f, precision %.3f; gate %s",
                result.chosen.spec.name, result.seconds, cv["roc_auc"], result.best_auc,
                "n/a" if result.chosen.worst_air is None else f"{result.chosen.worst_air:.3f}", final["n_rows"],
                result.cutoff, final["roc_auc"], final["recall"], final["precision"], gate["status"].upper())
    return TrainedModel(result, dataset, record, held_out, gate)
