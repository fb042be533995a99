"""Train the loan classifier and its anchor explainer, and write their artifacts.

``python -m loanxai.train`` (or ``make train``) writes:

- ``models/loanclassifier/artifacts/``: ``preprocessor.dill``, ``model.dill`` (the forest) and
  ``manifest.json`` (schema, held-out metrics, library versions, sha256 of each file);
- ``models/explainer/artifacts/``: ``explainer.dill`` (alibi AnchorTabular, fitted, pickled
  without its predictor) and ``manifest.json``.
"""
from __future__ import annotations

import argparse
import logging
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

from loanxai import data
from loanxai.fastpath import COMPILED_FILE, compile_forest
from loanxai.manifest import MANIFEST_NAME, write_manifest
from loanxai.schema import CLASS_NAMES, FEATURE_NAMES, FeatureSchema

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
    schema: FeatureSchema
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


def train_classifier(n_estimators: int = 50, seed: int = 0) -> TrainedModel:
    """Load the census data, split it deterministically, fit and evaluate the pipeline."""
    frame = data.load_applications()
    schema = data.build_schema(frame)
    train, test = data.train_test_split(frame, seed=seed)
    X_train, X_test = data.encode_frame(train, schema), data.encode_frame(test, schema)
    y_train, y_test = train[data.LABEL].to_numpy(), test[data.LABEL].to_numpy()
    logger.info("fitting the pipeline: %d trees on %d rows", n_estimators, len(X_train))
    pipeline = build_pipeline(schema, n_estimators=n_estimators, seed=seed).fit(X_train, y_train)
    metrics = evaluate(pipeline, X_test, y_test)
    logger.info(
        "held-out accuracy %.3f, precision %.3f, recall %.3f, ROC AUC %.3f on %d rows",
        metrics["accuracy"], metrics["precision"], metrics["recall"], metrics["roc_auc"], len(y_test),
    )
    return TrainedModel(pipeline, schema, X_train, y_train, X_test, y_test, metrics)


def build_explainer(pipeline: Pipeline, schema: FeatureSchema, X_train: np.ndarray, seed: int = 0) -> AnchorTabular:
    """An AnchorTabular explainer fitted on ``X_train`` (disc_perc 25/50/75)."""
    explainer = AnchorTabular(
        pipeline.predict,
        feature_names=list(FEATURE_NAMES),
        categorical_names=schema.alibi_category_map(),
        dtype=np.float64,  # the services encode rows as float64: no rounding on the way
        seed=seed,
    )
    explainer.fit(X_train, disc_perc=DISC_PERC)
    return explainer


def save_classifier(model: TrainedModel, directory: Path, training: dict[str, Any]) -> dict[str, Any]:
    """Write the preprocessor, the forest and their manifest; return the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
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
        schema=model.schema.to_dict(),
        class_names=list(CLASS_NAMES),
        metrics=model.metrics,
        training=training,
        # held-out rows and their probabilities: a loaded model must reproduce them exactly
        reference={
            "rows": model.X_test[:N_REFERENCE].tolist(),
            "probabilities": model.pipeline.predict_proba(model.X_test[:N_REFERENCE]).tolist(),
        },
    )


def save_explainer(
    explainer: AnchorTabular, schema: FeatureSchema, directory: Path, classifier_manifest: dict[str, Any]
) -> dict[str, Any]:
    """Pickle the explainer without its predictor (the service sets one that calls the
    classifier over REST) and write its manifest; return the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
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
        schema=schema.to_dict(),
        class_names=list(CLASS_NAMES),
        disc_perc=list(DISC_PERC),
        # the classifier whose training data the explainer was fitted on
        classifier_files=classifier_manifest["files"],
    )


def train(
    classifier_dir: Path = CLASSIFIER_DIR,
    explainer_dir: Path = EXPLAINER_DIR,
    n_estimators: int = 50,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train both artifacts and write them; return the two manifests."""
    started = time.perf_counter()
    logger.info("[1/4] loading the census data and training the classifier")
    model = train_classifier(n_estimators=n_estimators, seed=seed)
    logger.info("[2/4] writing the classifier artifacts to %s", classifier_dir)
    training = {
        "seed": seed,
        "n_estimators": n_estimators,
        "n_train": int(len(model.y_train)),
        "n_test": int(len(model.y_test)),
    }
    classifier_manifest = save_classifier(model, classifier_dir, training)
    logger.info("[3/4] fitting the anchor explainer on %d rows", len(model.X_train))
    explainer = build_explainer(model.pipeline, model.schema, model.X_train, seed=seed)
    logger.info("[4/4] writing the explainer artifacts to %s", explainer_dir)
    explainer_manifest = save_explainer(explainer, model.schema, explainer_dir, classifier_manifest)
    logger.info("done in %.1f s", time.perf_counter() - started)
    return classifier_manifest, explainer_manifest


def ensure_trained() -> None:
    """Train with the defaults unless both artifact folders already hold a manifest."""
    if not ((CLASSIFIER_DIR / MANIFEST_NAME).exists() and (EXPLAINER_DIR / MANIFEST_NAME).exists()):
        logger.info("no artifacts yet: training first")
        train()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier-dir", type=Path, default=CLASSIFIER_DIR)
    parser.add_argument("--explainer-dir", type=Path, default=EXPLAINER_DIR)
    parser.add_argument("--n-estimators", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--if-missing", action="store_true", help="train only if there are no artifacts yet")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.if_missing:
        ensure_trained()
    else:
        train(args.classifier_dir, args.explainer_dir, args.n_estimators, args.seed)


if __name__ == "__main__":
    main()
