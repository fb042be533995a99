"""Proxies: how well each protected attribute can be predicted from the model's inputs.

Removing a protected attribute from the model does not remove what it explains: other
inputs can carry it (the census's relationship, "Husband" or "Wife", carries gender). For
each protected attribute, a logistic regression (one-hot categorical inputs, scaled numeric
ones) is trained on the training rows to predict the attribute and scored on the held-out
rows: from all model inputs together, and from each declared feature alone (features the
description excludes from the model included, marked). The score is the held-out ROC AUC,
one group against the rest, averaged over the groups large enough to judge: 0.5 means the
inputs say nothing about the attribute, 1.0 that they reveal it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from loanxai.core.pipeline import CLASSIFIER_STEP, PREPROCESSOR_STEP, build_preprocessor
from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import Dataset, build_schema
from loanxai.fairness.metrics import large_groups
from loanxai.report.plots import plot_proxies

__all__ = ["proxy_section"]

#: how many of the strongest single-input proxies the report names per attribute
N_STRONGEST = 3


def proxy_section(dataset: Dataset, schema: FeatureSchema, protected: tuple[str, ...], min_group_rows: int,
                  out: Path) -> dict[str, Any]:
    """Held-out ROC AUC of predicting each protected attribute from all model inputs and from
    each declared feature alone; the strongest proxies."""
    description = dataset.description
    result = {}
    for attribute in protected:
        single = []
        for column in description.features:
            if column.name == attribute:
                continue
            inputs = build_schema(dataset.frame, description, [column.name])
            single.append({"feature": column.name, "model_input": column.name in schema.feature_names,
                           "roc_auc": _auc(dataset, inputs, attribute, min_group_rows)})
        single.sort(key=lambda s: -s["roc_auc"])
        result[attribute] = {
            "all_inputs": {"features": list(schema.feature_names), "roc_auc": _auc(dataset, schema, attribute, min_group_rows)},
            "single_inputs": single,
            "strongest": [s["feature"] for s in single[:N_STRONGEST]],
            "groups_judged": large_groups(dataset.test[attribute], min_group_rows),
        }
    plot_proxies(result, out / "proxies.png")
    return result


def _auc(dataset: Dataset, schema: FeatureSchema, attribute: str, min_group_rows: int) -> float:
    """Held-out one-vs-rest ROC AUC of a logistic regression predicting ``attribute`` from
    ``schema``'s inputs, averaged over the judged groups (a binary attribute: its one AUC)."""
    model = Pipeline([(PREPROCESSOR_STEP, build_preprocessor(schema)), (CLASSIFIER_STEP, LogisticRegression(max_iter=1000))])
    model.fit(schema.encode_frame(dataset.train), dataset.train[attribute].astype(str))
    proba = pd.DataFrame(model.predict_proba(schema.encode_frame(dataset.test)), columns=model.classes_)
    truth = dataset.test[attribute].astype(str).reset_index(drop=True)
    groups = [g for g in large_groups(truth, min_group_rows) if g in proba.columns and 0 < (truth == g).sum() < len(truth)]
    if len(groups) == 2 and len(model.classes_) == 2:
        groups = groups[:1]  # one group against the other: both AUCs are the same number
    return float(np.mean([roc_auc_score(truth == g, proba[g]) for g in groups])) if groups else float("nan")
