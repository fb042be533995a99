"""The model training serves: every mitigation candidate trained and compared, one chosen, its
fairness gate evaluated on held-out rows."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import Dataset
from loanxai.fairness.gate import GateSettings, gate_record
from loanxai.fairness.mitigation import REDUCTIONS, Candidate, accuracy_floor, choose, train_candidates

__all__ = ["TrainedModel", "train_model"]

logger = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """The chosen candidate, the dataset, every candidate compared, and the gate's record."""

    chosen: Candidate
    dataset: Dataset
    candidates: list[Candidate]
    requested: str
    floor: float
    gate: dict[str, Any]

    @property
    def pipeline(self) -> Pipeline:
        """The chosen candidate's pipeline."""
        return self.chosen.pipeline

    @property
    def schema(self) -> FeatureSchema:
        """The feature schema."""
        return self.chosen.schema

    @property
    def X_train(self) -> np.ndarray:
        """The training rows, encoded."""
        return self.schema.encode_frame(self.dataset.train)

    @property
    def X_test(self) -> np.ndarray:
        """The held-out rows, encoded."""
        return self.schema.encode_frame(self.dataset.test)

    def mitigation_record(self) -> dict[str, Any]:
        """What the manifest records of the comparison."""
        return {
            "requested": self.requested,
            "chosen": self.chosen.name,
            "rule": "the most accurate candidate (the seed's model excepted) that passes the gate with held-out "
                    f"accuracy at least {self.floor:.3f}; if none does, among those reaching that accuracy the one "
                    "with the fewest failed checks, then the highest worst-case disparate impact; if none reaches "
                    "it, the most accurate",
            "accuracy_floor": self.floor,
            "reductions": REDUCTIONS,
            "candidates": [candidate.record() for candidate in self.candidates],
        }


def train_model(dataset: Dataset, seed: int = 0, mitigation: str = "auto", accept_unfair: str | None = None,
                accepted_by: str | None = None, n_estimators: int | None = None) -> TrainedModel:
    """Train every mitigation candidate, choose one, and evaluate the gate on held-out rows."""
    candidates = train_candidates(dataset, seed=seed, n_estimators=n_estimators)
    floor = accuracy_floor(dataset.description.gate, dataset.test)
    chosen = choose(candidates, mitigation, floor)
    gate = gate_record(chosen.checks, GateSettings.from_dict(dataset.description.gate), accept_unfair, accepted_by)
    metrics = chosen.metrics
    logger.info("chose %s: held-out accuracy %.3f, precision %.3f, recall %.3f, ROC AUC %.3f on %d rows; gate %s",
                chosen.name, metrics["accuracy"], metrics["precision"], metrics["recall"], metrics["roc_auc"],
                metrics["n_rows"], gate["status"].upper())
    return TrainedModel(chosen, dataset, candidates, mitigation, floor, gate)


