"""A recorded application decided again by the model that decided it.

:class:`Redecider` loads an artifact folder (checked against its manifest, as the classifier
does) and refuses a decision its manifest did not make: the recorded manifest checksum proves
which model decided. The application is read from its inputs as entered, by the classifier's
rule (:mod:`loanxai.core.values`), the elderly rule applied, and asked of the dill pipeline
(the source of truth the classifier's fast path is checked against at start-up).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loanxai.artifacts import MODEL_FILE, PREPROCESSOR_FILE
from loanxai.core.elderly import elderly_rule
from loanxai.core.manifest import ClassifierManifest, load_pickle, load_verified_manifest
from loanxai.core.pipeline import one_job
from loanxai.core.schema import CLASS_NAMES
from loanxai.errors import RecordError
from loanxai.explain.reasons import reason_explainer
from loanxai.records.queries import recorded_features

__all__ = ["Redecider", "Redecision"]


@dataclass(frozen=True)
class Redecision:
    """A decision made again: the approval probability, the decision at the recorded cutoff,
    its principal reasons (in the JSON form the classifier answers and records) and how far the
    probability is from the recorded one."""

    probability: float
    decision: str
    reasons: dict[str, Any]
    difference: float


class Redecider:
    """The model of ``artifacts_dir`` (a classifier's artifact folder), for re-deciding its records."""

    def __init__(self, artifacts_dir: Path) -> None:
        self.manifest = load_verified_manifest(artifacts_dir, ClassifierManifest)
        self.directory = artifacts_dir
        self.schema = self.manifest.schema
        self.preprocessor = load_pickle(artifacts_dir, PREPROCESSOR_FILE)
        self.model = one_job(load_pickle(artifacts_dir, MODEL_FILE))
        self.elderly = elderly_rule(self.schema, self.preprocessor, self.model)
        self.reasons = reason_explainer(self.preprocessor, self.model, self.schema,
                                        np.asarray(self.manifest.reasons["reference"], dtype=np.float64),
                                        self.manifest.dataset.titles)

    def check(self, record: Mapping[str, Any]) -> None:
        """Refuse a record another model decided."""
        if record["manifest_sha256"] != self.manifest.sha256:
            raise RecordError(f"application {record['application_id']} was decided by model {record['model_version']} "
                              f"(manifest sha256 {record['manifest_sha256']}); {self.directory} holds model "
                              f"{self.manifest.version} (manifest sha256 {self.manifest.sha256}): give the artifacts "
                              "of the model that decided (keep every served model's for the retention period)")

    def decide(self, record: Mapping[str, Any], max_reasons: int = 4) -> Redecision:
        """Decide the recorded application again, with up to ``max_reasons`` principal reasons."""
        return self.decide_many([record], max_reasons)[0]

    def decide_many(self, records: Sequence[Mapping[str, Any]], max_reasons: int = 4) -> list[Redecision]:
        """:meth:`decide` for many records at once (the reasons of a batch cost less per row)."""
        for record in records:
            self.check(record)
        X = recorded_features(self.schema, records)
        asked, proba = (X, self._proba(X)) if self.elderly is None else self.elderly.served(X, self._proba)
        approval = proba[:, 1]
        cutoffs = {r["cutoff"] for r in records}
        if len(cutoffs) != 1:  # one model, one cutoff: a record saying otherwise was not written by it
            raise RecordError(f"records of model {self.manifest.version} give {len(cutoffs)} cutoffs")
        explained = self.reasons.explain(asked, approval, cutoffs.pop(), max_reasons, shown=X)
        return [Redecision(float(p), CLASS_NAMES[int(p >= r["cutoff"])], e.to_dict(), abs(float(p) - r["probability"]))
                for r, p, e in zip(records, approval, explained)]

    def _proba(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(self.preprocessor.transform(X))
