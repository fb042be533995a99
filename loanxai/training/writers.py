"""What training writes: the two artifact folders and their manifests.

- the classifier (:data:`~loanxai.artifacts.CLASSIFIER_DIR`): the fitted preprocessor and
  forest (dill), the same forest for treelite (the exact fast path), and a manifest with the
  schema, the data, the decision policy and its cutoff, the search's every candidate, the
  held-out check, the fairness gate, the monitoring references, reference rows, and the
  approved applicants the principal reasons are measured against;
- the explainer (:data:`~loanxai.artifacts.EXPLAINER_DIR`): the fitted AnchorTabular (dill,
  without its predictor) and a manifest with the schema, the features an anchor may name, the
  imputation medians, what recourse may change, and the classifier files it was fitted with.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dill
import numpy as np
import treelite.sklearn

from loanxai.artifacts import COMPILED_FILE, EXPLAINER_FILE, MODEL_FILE, PREPROCESSOR_FILE
from loanxai.core.elderly import served_rows
from loanxai.core.manifest import ClassifierManifest, ExplainerManifest, write_manifest
from loanxai.core.pipeline import CLASSIFIER_STEP, PREPROCESSOR_STEP, numeric_medians
from loanxai.core.schema import CLASS_NAMES
from loanxai.data.dataset import Dataset, group_column, recourse_rules
from loanxai.data.description import LABEL
from loanxai.explain.anchors import DISC_PERC, anchor_features, without_predictor
from loanxai.explain.reasons import approved_reference
from loanxai.monitoring.references import monitoring_record
from loanxai.training.model import TrainedModel

__all__ = ["CLASSIFIER_FILES", "CLASSIFIER_PACKAGES", "EXPLAINER_FILES", "EXPLAINER_PACKAGES", "N_REFERENCE",
           "compile_model", "dataset_record", "example_application", "save_classifier", "save_explainer"]

CLASSIFIER_FILES = (PREPROCESSOR_FILE, MODEL_FILE, COMPILED_FILE)
EXPLAINER_FILES = (EXPLAINER_FILE,)
#: Versions that must match at load time, for each artifact.
CLASSIFIER_PACKAGES = ("scikit-learn", "numpy", "dill", "treelite")
EXPLAINER_PACKAGES = ("alibi", "numpy", "dill")
#: held-out rows recorded with their probabilities: health checks use the first 8, the fast
#: path's start-up parity check all of them
N_REFERENCE = 256


def compile_model(model: Any, path: Path) -> None:
    """Convert a fitted RandomForestClassifier or HistGradientBoostingClassifier to treelite and
    write its checkpoint to ``path``."""
    treelite.sklearn.import_model(model).serialize(str(path))


def dataset_record(dataset: Dataset) -> dict[str, Any]:
    """What the manifests record of the data: the description with its defaults, the sha256 of
    each source file, the label's meaning, the protected attributes and the example application."""
    description = dataset.description
    return {
        "name": description.name,
        "description_path": str(description.path),
        "description": description.document,
        "sources": dataset.source_sha256,
        "label": {"column": description.label_column, "approved": list(description.approved),
                  "rejected": list(description.rejected)},
        # in the description's order; model_input: the description lets it be a model input
        "protected": [{"name": name, "bases": list(p.bases), "model_input": p.model_input, "bands": list(p.bands),
                       "elderly": p.elderly, "why": p.why} for name, p in description.protected.items()],
        "rows": {"train": len(dataset.train), "test": len(dataset.test)},
        "titles": {column.name: column.label for column in description.columns},
        "example": example_application(dataset),
    }


def example_application(dataset: Dataset) -> dict[str, Any]:
    """The description's example, or else the first held-out application (features and
    protected attributes): what the demo and the clients send."""
    if dataset.description.example is not None:
        return dict(dataset.description.example)
    first = dataset.test.iloc[:1]
    record = dataset.schema.decode(dataset.schema.encode_frame(first))[0]
    return record | {c.name: first[c.name].iloc[0] for c in dataset.description.protected_columns}


def _json_rows(X: np.ndarray) -> list[list[float | None]]:
    """Rows for JSON: a missing value (NaN) as null."""
    return [[None if np.isnan(v) else float(v) for v in row] for row in X]


def save_classifier(model: TrainedModel, directory: Path, training: dict[str, Any]) -> ClassifierManifest:
    """Write the preprocessor, the fitted classifier and their manifest; return the manifest."""
    classifier = model.pipeline.named_steps[CLASSIFIER_STEP]
    for name, obj in ((PREPROCESSOR_FILE, model.pipeline.named_steps[PREPROCESSOR_STEP]), (MODEL_FILE, classifier)):
        with open(directory / name, "wb") as handle:
            dill.dump(obj, handle)
    compile_model(classifier, directory / COMPILED_FILE)
    test, schema = model.dataset.test, model.schema
    served_train = served_rows(model.X_train, schema, model.pipeline.named_steps[PREPROCESSOR_STEP], classifier)
    return write_manifest(
        directory,
        CLASSIFIER_FILES,
        CLASSIFIER_PACKAGES,
        artifact="loanclassifier",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        schema=schema.to_dict(),
        dataset=dataset_record(model.dataset),
        class_names=list(CLASS_NAMES),
        training=training,
        decision={"policy": dict(model.dataset.description.decision), "cutoff": model.cutoff,
                  "rule": "approved when the probability of approval is at least the cutoff"},
        search=model.search_record,
        held_out=model.held_out,
        gate=model.gate,
        # bins, training shares and held-out outcomes the live metrics are read against
        monitoring=monitoring_record(schema, model.X_train, model.approval(model.X_test), model.cutoff,
                                     test[LABEL].to_numpy(),
                                     {name: group_column(test, schema, name).tolist() for name in schema.groups}),
        # held-out rows and the pipeline's probabilities: a loaded model must reproduce them exactly
        reference={
            "rows": _json_rows(model.X_test[:N_REFERENCE]),
            "probabilities": model.pipeline.predict_proba(model.X_test[:N_REFERENCE]).tolist(),
        },
        # approved training applicants (as the model was asked): what the principal reasons measure the gap to
        reasons={"reference": _json_rows(approved_reference(
            served_train, model.pipeline.predict_proba(served_train)[:, 1], model.cutoff, training["seed"]))},
    )


def save_explainer(explainer: Any, model: TrainedModel, directory: Path,
                   classifier_manifest: ClassifierManifest) -> ExplainerManifest:
    """Pickle the explainer without its predictor (the service sets one that calls the
    classifier over REST) and write its manifest; return the manifest."""
    with open(directory / EXPLAINER_FILE, "wb") as handle:
        dill.dump(without_predictor(explainer), handle)
    return write_manifest(
        directory,
        EXPLAINER_FILES,
        EXPLAINER_PACKAGES,
        artifact="explainer",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        schema=model.schema.to_dict(),
        numeric_medians=numeric_medians(model.pipeline.named_steps[PREPROCESSOR_STEP], model.schema),
        dataset={"name": classifier_manifest.dataset.name},
        # what a recourse may change, and how sentences name the features
        recourse=recourse_rules(model.dataset, model.schema),
        titles=dict(classifier_manifest.dataset.titles),
        class_names=list(CLASS_NAMES),
        disc_perc=list(DISC_PERC),
        # what an anchor may name: every input but the declared bases
        anchor_features=list(anchor_features(model.schema)),
        # the classifier whose training data the explainer was fitted on
        classifier_files=dict(classifier_manifest.files),
    )


