"""Train the loan classifier and its anchor explainer, and write their artifacts.

``python -m loanxai.train [--dataset datasets/x.yaml]`` (or ``make train [DATASET=...]``)
reads the dataset description (the census by default), then writes, atomically (a failed or
interrupted training leaves the previous artifacts as they were):

- ``models/loanclassifier/artifacts/``: ``preprocessor.dill``, ``model.dill`` (the forest) and
  ``manifest.json`` (schema, held-out metrics, library versions, sha256 of each file);
- ``models/explainer/artifacts/``: ``explainer.dill`` (alibi AnchorTabular, fitted, pickled
  without its predictor) and ``manifest.json``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dill
import numpy as np
from alibi.explainers import AnchorTabular
from sklearn import metrics as skmetrics
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loanxai.data import LABEL, DataError, Dataset, load_dataset
from loanxai.description import DEFAULT_DESCRIPTION, Description, DescriptionError, load_description
from loanxai.fastpath import COMPILED_FILE, compile_forest
from loanxai.manifest import MANIFEST_NAME, staged_directories, write_manifest
from loanxai.schema import CLASS_NAMES, FeatureSchema

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
CLASSIFIER_DIR = REPO_ROOT / "models" / "loanclassifier" / "artifacts"
EXPLAINER_DIR = REPO_ROOT / "models" / "explainer" / "artifacts"
CLASSIFIER_FILES = ("preprocessor.dill", "model.dill", COMPILED_FILE)
EXPLAINER_FILES = ("explainer.dill",)
#: Versions that must match at load time, for each artifact.
CLASSIFIER_PACKAGES = ("scikit-learn", "numpy", "dill", "treelite")
EXPLAINER_PACKAGES = ("alibi", "numpy", "dill")
DISC_PERC = (25, 50, 75)
#: held-out rows recorded with their probabilities: health checks use the first 8, the fast
#: path's start-up parity check all of them
N_REFERENCE = 256


@dataclass
class TrainedModel:
    """A fitted pipeline and what it was fitted and evaluated on (encoded rows)."""

    pipeline: Pipeline
    dataset: Dataset
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    metrics: dict[str, Any]


def build_pipeline(schema: FeatureSchema, n_estimators: int = 50, seed: int = 0) -> Pipeline:
    """Preprocessing and forest for encoded rows, shape (n, n_features).

    Numeric columns: median imputation and standard scaling; categorical codes: one-hot,
    ignoring codes not seen in training.
    """
    preprocessor = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                schema.numeric_indices,
            ),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), schema.categorical_indices),
        ]
    )
    forest = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=-1)
    return Pipeline([("preprocessor", preprocessor), ("classifier", forest)])


def evaluate(pipeline: Pipeline, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Accuracy, precision, recall, ROC AUC (approved = positive) and the confusion matrix."""
    proba = pipeline.predict_proba(X)[:, 1]
    predicted = proba >= 0.5
    return {
        "n_rows": int(len(y)),
        "approved_rate": float(np.mean(y)),
        "accuracy": float(skmetrics.accuracy_score(y, predicted)),
        "precision": float(skmetrics.precision_score(y, predicted, zero_division=0)),
        "recall": float(skmetrics.recall_score(y, predicted)),
        "roc_auc": float(skmetrics.roc_auc_score(y, proba)),
        # accuracy of always answering "rejected": the number the accuracy must be read against
        "majority_class_accuracy": float(max(np.mean(y), 1 - np.mean(y))),
        "confusion_matrix": skmetrics.confusion_matrix(y, predicted).tolist(),
    }


def train_classifier(dataset: Dataset, n_estimators: int = 50, seed: int = 0) -> TrainedModel:
    """Fit the pipeline on the dataset's training rows and evaluate it on the held-out rows."""
    schema = dataset.schema
    X_train, X_test = schema.encode_frame(dataset.train), schema.encode_frame(dataset.test)
    y_train, y_test = dataset.train[LABEL].to_numpy(), dataset.test[LABEL].to_numpy()
    logger.info("fitting the pipeline: %d trees on %d rows", n_estimators, len(X_train))
    pipeline = build_pipeline(schema, n_estimators=n_estimators, seed=seed).fit(X_train, y_train)
    metrics = evaluate(pipeline, X_test, y_test)
    logger.info(
        "held-out accuracy %.3f, precision %.3f, recall %.3f, ROC AUC %.3f on %d rows",
        metrics["accuracy"], metrics["precision"], metrics["recall"], metrics["roc_auc"], len(y_test),
    )
    return TrainedModel(pipeline, dataset, X_train, y_train, X_test, y_test, metrics)


def numeric_medians(pipeline: Pipeline, schema: FeatureSchema) -> dict[str, float]:
    """The training median the pipeline imputes for each numeric feature."""
    preprocessor = pipeline.named_steps["preprocessor"]
    medians = preprocessor.named_transformers_["numeric"].named_steps["impute"].statistics_
    return {name: float(m) for name, m in zip(schema.numeric_features, medians)}


def impute_numeric(X: np.ndarray, schema: FeatureSchema, medians: dict[str, float]) -> np.ndarray:
    """``X``, shape (n, n_features), with each missing numeric value replaced by its training
    median: the rows the explainer samples from and explains (alibi's discretiser takes no NaN)."""
    fill = np.array([medians.get(name, np.nan) for name in schema.feature_names])
    return np.where(np.isnan(X), fill, X)


def build_explainer(pipeline: Pipeline, schema: FeatureSchema, X_train: np.ndarray, seed: int = 0) -> AnchorTabular:
    """An AnchorTabular explainer fitted on ``X_train`` (disc_perc 25/50/75)."""
    explainer = AnchorTabular(
        pipeline.predict,
        feature_names=list(schema.feature_names),
        categorical_names=schema.alibi_category_map(),
        dtype=np.float64,  # the services encode rows as float64: no rounding on the way
        seed=seed,
    )
    explainer.fit(impute_numeric(X_train, schema, numeric_medians(pipeline, schema)), disc_perc=DISC_PERC)
    return explainer


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
        "protected": dict(description.protected),
        "rows": {"train": len(dataset.train), "test": len(dataset.test)},
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


def save_classifier(model: TrainedModel, directory: Path, training: dict[str, Any]) -> dict[str, Any]:
    """Write the preprocessor, the forest and their manifest; return the manifest."""
    preprocessor, forest = model.pipeline.named_steps.values()
    for name, obj in (("preprocessor.dill", preprocessor), ("model.dill", forest)):
        with open(directory / name, "wb") as handle:
            dill.dump(obj, handle)
    compile_forest(forest, directory / COMPILED_FILE)
    return write_manifest(
        directory,
        CLASSIFIER_FILES,
        CLASSIFIER_PACKAGES,
        artifact="loanclassifier",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        schema=model.dataset.schema.to_dict(),
        dataset=dataset_record(model.dataset),
        class_names=list(CLASS_NAMES),
        metrics=model.metrics,
        training=training,
        # held-out rows and their probabilities: a loaded model must reproduce them exactly
        reference={
            "rows": _json_rows(model.X_test[:N_REFERENCE]),
            "probabilities": model.pipeline.predict_proba(model.X_test[:N_REFERENCE]).tolist(),
        },
    )


def save_explainer(
    explainer: AnchorTabular, model: TrainedModel, directory: Path, classifier_manifest: dict[str, Any]
) -> dict[str, Any]:
    """Pickle the explainer without its predictor (the service sets one that calls the
    classifier over REST) and write its manifest; return the manifest."""
    explainer.predictor = None
    explainer.samplers[0].predictor = None
    with open(directory / EXPLAINER_FILES[0], "wb") as handle:
        dill.dump(explainer, handle)
    return write_manifest(
        directory,
        EXPLAINER_FILES,
        EXPLAINER_PACKAGES,
        artifact="explainer",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        schema=model.dataset.schema.to_dict(),
        numeric_medians=numeric_medians(model.pipeline, model.dataset.schema),
        dataset={"name": classifier_manifest["dataset"]["name"]},
        class_names=list(CLASS_NAMES),
        disc_perc=list(DISC_PERC),
        # the classifier whose training data the explainer was fitted on
        classifier_files=classifier_manifest["files"],
    )


def train(
    classifier_dir: Path = CLASSIFIER_DIR,
    explainer_dir: Path = EXPLAINER_DIR,
    description: Description | Path = DEFAULT_DESCRIPTION,
    n_estimators: int = 50,
    seed: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train both artifacts from the described dataset and write them; return the two manifests.

    Nothing is written unless everything succeeds; ``seed`` (default: the description's
    ``split.seed``) seeds the forest and the explainer.
    """
    started = time.perf_counter()
    if not isinstance(description, Description):
        description = load_description(description)
    seed = description.seed if seed is None else seed
    logger.info("[1/4] loading %s (%s) and training the classifier", description.name, description.path)
    model = train_classifier(load_dataset(description), n_estimators=n_estimators, seed=seed)
    training = {
        "seed": seed,
        "n_estimators": n_estimators,
        "n_train": int(len(model.y_train)),
        "n_test": int(len(model.y_test)),
    }
    with staged_directories(classifier_dir, explainer_dir) as (classifier_stage, explainer_stage):
        logger.info("[2/4] writing the classifier artifacts")
        classifier_manifest = save_classifier(model, classifier_stage, training)
        logger.info("[3/4] fitting the anchor explainer on %d rows", len(model.X_train))
        explainer = build_explainer(model.pipeline, model.dataset.schema, model.X_train, seed=seed)
        logger.info("[4/4] writing the explainer artifacts")
        explainer_manifest = save_explainer(explainer, model, explainer_stage, classifier_manifest)
    logger.info("artifacts written to %s and %s in %.1f s", classifier_dir, explainer_dir, time.perf_counter() - started)
    return classifier_manifest, explainer_manifest


def ensure_trained() -> None:
    """Train the default dataset unless both artifact folders already hold a manifest."""
    if not ((CLASSIFIER_DIR / MANIFEST_NAME).exists() and (EXPLAINER_DIR / MANIFEST_NAME).exists()):
        logger.info("no artifacts yet: training first")
        train()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DESCRIPTION,
                        help="dataset description (YAML); default: the census")
    parser.add_argument("--classifier-dir", type=Path, default=CLASSIFIER_DIR)
    parser.add_argument("--explainer-dir", type=Path, default=EXPLAINER_DIR)
    parser.add_argument("--n-estimators", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None, help="default: the description's split.seed")
    parser.add_argument("--if-missing", action="store_true", help="train only if there are no artifacts yet")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        if args.if_missing:
            ensure_trained()
        else:
            train(args.classifier_dir, args.explainer_dir, args.dataset, args.n_estimators, args.seed)
    except (DescriptionError, DataError) as error:
        logger.error("training stopped, the previous artifacts are unchanged: %s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
