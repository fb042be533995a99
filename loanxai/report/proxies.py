"""Proxies: how well each protected attribute can be predicted from the model's inputs.

Removing a protected attribute from the model does not remove what it explains: other
inputs can carry it (the census's relationship, "Husband" or "Wife", carries gender). For
each declared protected attribute, a logistic regression
(:func:`loanxai.fairness.proxies.proxy_auc`) is trained on the training rows to predict the
attribute's group and scored on the held-out rows: from all model inputs together, and from
each declared column alone (those kept out of the model included, marked: excluded features
and the other protected attributes, as the census's relationship for gender). The score is the held-out ROC AUC,
one group against the rest, averaged over the groups large enough to judge: 0.5 means the
inputs say nothing about the attribute, 1.0 that they reveal it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import Dataset, build_schema, group_column
from loanxai.fairness.metrics import large_groups
from loanxai.fairness.proxies import proxy_auc
from loanxai.report.plots import plot_proxies

__all__ = ["proxy_section"]

#: how many of the strongest single-input proxies the report names per attribute
N_STRONGEST = 3


def proxy_section(dataset: Dataset, schema: FeatureSchema, protected: tuple[str, ...], min_group_rows: int,
                  out: Path) -> dict[str, Any]:
    """Held-out ROC AUC of predicting each protected attribute from all model inputs and from
    each declared column alone; the strongest proxies."""
    description = dataset.description
    result = {}
    for attribute in protected:
        single = []
        for column in description.columns:
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
            "groups_judged": large_groups(group_column(dataset.test, dataset.schema, attribute), min_group_rows),
        }
    plot_proxies(result, out / "proxies.png")
    return result


def _auc(dataset: Dataset, schema: FeatureSchema, attribute: str, min_group_rows: int) -> float:
    """Held-out one-vs-rest ROC AUC of predicting ``attribute`` from ``schema``'s inputs."""
    train, test = dataset.train, dataset.test
    return proxy_auc(train, group_column(train, dataset.schema, attribute), test,
                     group_column(test, dataset.schema, attribute), schema, min_group_rows)
