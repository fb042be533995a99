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
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dill
import numpy as np
from sklearn.pipeline import Pipeline

from loanxai.anchors import DISC_PERC, fit_anchors, without_predictor
from loanxai.data import LABEL, DataError, Dataset, load_dataset, recourse_rules
from loanxai.description import DEFAULT_DESCRIPTION, Description, DescriptionError, load_description
from loanxai.fastpath import COMPILED_FILE, compile_forest
from loanxai.gate import GateThresholds, failed_checks, gate_record
from loanxai.manifest import MANIFEST_FORMAT, MANIFEST_NAME, staged_directories, write_manifest
from loanxai.mitigation import CANDIDATES, CHOICES, REDUCTIONS, Candidate, accuracy_floor, choose, train_candidates
from loanxai.monitoring import monitoring_record
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
#: held-out rows recorded with their probabilities: health checks use the first 8, the fast
#: path's start-up parity check all of them
N_REFERENCE = 256


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
        return self.chosen.pipeline

    @property
    def schema(self) -> FeatureSchema:
        return self.chosen.schema

    @property
    def X_train(self) -> np.ndarray:
        return self.schema.encode_frame(self.dataset.train)

    @property
    def X_test(self) -> np.ndarray:
        return self.schema.encode_frame(self.dataset.test)

    def mitigation_record(self) -> dict[str, Any]:
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
    gate = gate_record(chosen.checks, GateThresholds.from_dict(dataset.description.gate), accept_unfair, accepted_by)
    metrics = chosen.metrics
    logger.info("chose %s: held-out accuracy %.3f, precision %.3f, recall %.3f, ROC AUC %.3f on %d rows; gate %s",
                chosen.name, metrics["accuracy"], metrics["precision"], metrics["recall"], metrics["roc_auc"],
                metrics["n_rows"], gate["status"].upper())
    return TrainedModel(chosen, dataset, candidates, mitigation, floor, gate)


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
        "protected": [{"name": name, "model_input": flag} for name, flag in description.protected.items()],
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
        schema=model.schema.to_dict(),
        dataset=dataset_record(model.dataset),
        class_names=list(CLASS_NAMES),
        metrics=model.chosen.metrics,
        training=training,
        mitigation=model.mitigation_record(),
        gate=model.gate,
        # bins, training shares and held-out outcomes the live metrics are read against
        monitoring=monitoring_record(model.schema, model.X_train, model.pipeline.predict_proba(model.X_test)[:, 1],
                                     model.dataset.test[LABEL].to_numpy(),
                                     {name: model.dataset.test[name].astype(str).to_numpy()
                                      for name in model.dataset.description.protected}),
        # held-out rows and their probabilities: a loaded model must reproduce them exactly
        reference={
            "rows": _json_rows(model.X_test[:N_REFERENCE]),
            "probabilities": model.pipeline.predict_proba(model.X_test[:N_REFERENCE]).tolist(),
        },
    )


def save_explainer(
    explainer: Any, model: TrainedModel, directory: Path, classifier_manifest: dict[str, Any]
) -> dict[str, Any]:
    """Pickle the explainer without its predictor (the service sets one that calls the
    classifier over REST) and write its manifest; return the manifest."""
    with open(directory / EXPLAINER_FILES[0], "wb") as handle:
        dill.dump(without_predictor(explainer), handle)
    return write_manifest(
        directory,
        EXPLAINER_FILES,
        EXPLAINER_PACKAGES,
        artifact="explainer",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        schema=model.schema.to_dict(),
        numeric_medians=numeric_medians(model.pipeline, model.schema),
        dataset={"name": classifier_manifest["dataset"]["name"]},
        # what a recourse may change, and how sentences name the features
        recourse=recourse_rules(model.dataset, model.schema),
        titles=classifier_manifest["dataset"]["titles"],
        class_names=list(CLASS_NAMES),
        disc_perc=list(DISC_PERC),
        # the classifier whose training data the explainer was fitted on
        classifier_files=classifier_manifest["files"],
    )


def train(
    classifier_dir: Path = CLASSIFIER_DIR,
    explainer_dir: Path = EXPLAINER_DIR,
    description: Description | Path = DEFAULT_DESCRIPTION,
    seed: int | None = None,
    mitigation: str = "auto",
    accept_unfair: str | None = None,
    accepted_by: str | None = None,
    n_estimators: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train both artifacts from the described dataset and write them; return the two manifests.

    Every mitigation candidate is trained and compared; ``mitigation`` names the one to
    serve (``auto``: by the documented rule, see :mod:`loanxai.mitigation`). A model that
    fails the fairness gate ships only with ``accept_unfair``, the reason recorded with
    ``accepted_by`` (default: the user). Nothing is written unless everything succeeds;
    ``seed`` (default: the description's ``split.seed``) seeds the forests and the explainer;
    ``n_estimators`` replaces every candidate's number of trees (quick runs).
    """
    started = time.perf_counter()
    if not isinstance(description, Description):
        description = load_description(description)
    seed = description.seed if seed is None else seed
    if mitigation not in CHOICES:
        raise ValueError(f"unknown mitigation {mitigation!r}; choose one of: {', '.join(CHOICES)}")
    logger.info("[1/4] loading %s (%s), training the candidates %s", description.name, description.path, ", ".join(CANDIDATES))
    model = train_model(load_dataset(description), seed, mitigation, accept_unfair, accepted_by, n_estimators)
    training = {
        "seed": seed,
        "n_train": len(model.dataset.train),
        "n_test": len(model.dataset.test),
        "candidate": model.chosen.name,
        "settings": model.chosen.settings,
    }
    with staged_directories(classifier_dir, explainer_dir) as (classifier_stage, explainer_stage):
        logger.info("[2/4] writing the classifier artifacts")
        classifier_manifest = save_classifier(model, classifier_stage, training)
        logger.info("[3/4] fitting the anchor explainer on %d rows", len(model.X_train))
        rows = impute_numeric(model.X_train, model.schema, numeric_medians(model.pipeline, model.schema))
        explainer = fit_anchors(model.pipeline.predict, model.schema, rows, seed=seed)
        logger.info("[4/4] writing the explainer artifacts")
        explainer_manifest = save_explainer(explainer, model, explainer_stage, classifier_manifest)
    logger.info("artifacts written to %s and %s in %.1f s", classifier_dir, explainer_dir, time.perf_counter() - started)
    if model.gate["status"] == "failed":
        logger.warning("THE MODEL FAILED THE FAIRNESS GATE (%s): images, deployment and the container smoke test "
                       "refuse it; see the report (make report)", "; ".join(failed_checks(model.gate["checks"])))
    return classifier_manifest, explainer_manifest


def ensure_trained(classifier_dir: Path = CLASSIFIER_DIR, explainer_dir: Path = EXPLAINER_DIR) -> None:
    """Train the default dataset unless both artifact folders already hold a manifest of this version."""
    paths = [directory / MANIFEST_NAME for directory in (classifier_dir, explainer_dir)]
    if not all(path.exists() for path in paths):
        logger.info("no artifacts yet: training first")
    elif any(json.loads(path.read_text()).get("format") != MANIFEST_FORMAT for path in paths):
        logger.info("the artifacts were written by another version of loanxai: training the default dataset")
    else:
        return
    train(classifier_dir, explainer_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DESCRIPTION,
                        help="dataset description (YAML); default: the census")
    parser.add_argument("--classifier-dir", type=Path, default=CLASSIFIER_DIR)
    parser.add_argument("--explainer-dir", type=Path, default=EXPLAINER_DIR)
    parser.add_argument("--n-estimators", type=int, default=None,
                        help="trees of every candidate (default: 50 for the seed's model, 25 for the others)")
    parser.add_argument("--seed", type=int, default=None, help="default: the description's split.seed")
    parser.add_argument("--mitigation", choices=CHOICES, default="auto",
                        help="the candidate to serve: auto (the documented rule), none (the seed's model), or a name")
    parser.add_argument("--accept-unfair", metavar="REASON",
                        help="ship a model that fails the fairness gate; the reason is recorded, shown everywhere")
    parser.add_argument("--accepted-by", metavar="NAME", help="who accepts the override (default: the user)")
    parser.add_argument("--if-missing", action="store_true", help="train only if there are no artifacts yet")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        if args.if_missing:
            ensure_trained(args.classifier_dir, args.explainer_dir)
        else:
            train(args.classifier_dir, args.explainer_dir, args.dataset, args.seed, args.mitigation,
                  args.accept_unfair, args.accepted_by, args.n_estimators)
    except (DescriptionError, DataError) as error:
        logger.error("training stopped, the previous artifacts are unchanged: %s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
