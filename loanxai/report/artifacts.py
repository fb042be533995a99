"""What the report evaluates: its settings, and the trained artifacts loaded and verified."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline

from loanxai.gate import GateThresholds
from loanxai.manifest import load_pickle, load_verified_manifest
from loanxai.schema import FeatureSchema
from loanxai.train import CLASSIFIER_DIR, EXPLAINER_DIR, REPO_ROOT


@dataclass
class ReportConfig:
    """What to evaluate and where to write. ``sample``: held-out rows used (None: all);
    ``thresholds``: the gate to judge by (None: the one training recorded in the manifest)."""

    output_dir: Path = REPO_ROOT / "reports"
    classifier_dir: Path = CLASSIFIER_DIR
    explainer_dir: Path = EXPLAINER_DIR
    #: protected attributes to judge; empty: all those the dataset description declares
    protected: tuple[str, ...] = ()
    thresholds: GateThresholds | None = None
    sample: int | None = None
    explanations_per_group: int = 2
    permutation_repeats: int = 5
    seed: int = 0

    def record(self) -> dict[str, Any]:
        content = asdict(self)
        for key in ("output_dir", "classifier_dir", "explainer_dir"):
            content[key] = str(content[key])
        return content


@dataclass
class Model:
    """The evaluated artifacts: the pipeline rebuilt from its pickles, the explainer, manifests."""

    pipeline: Pipeline
    explainer: Any
    schema: FeatureSchema
    manifest: dict[str, Any]
    explainer_manifest: dict[str, Any]


def load_model(classifier_dir: Path, explainer_dir: Path) -> Model:
    """Verify and load both artifacts; the explainer predicts in process with the pipeline."""
    manifest = load_verified_manifest(classifier_dir)
    explainer_manifest = load_verified_manifest(explainer_dir)
    forest = load_pickle(classifier_dir, "model.dill")
    forest.n_jobs = 1  # thousands of small predictions (anchors, permutations): no thread pool each time
    pipeline = Pipeline([("preprocessor", load_pickle(classifier_dir, "preprocessor.dill")), ("classifier", forest)])
    explainer = load_pickle(explainer_dir, "explainer.dill")
    explainer.reset_predictor(pipeline.predict)
    return Model(pipeline, explainer, FeatureSchema.from_dict(manifest["schema"]), manifest, explainer_manifest)


def artifacts_summary(model: Model) -> dict[str, Any]:
    """Version, date, files, libraries, dataset and candidate of the evaluated artifacts."""
    return {
        "model_version": model.manifest["files"]["model.dill"][:12],
        "trained_at": model.manifest["created_at"],
        "dataset": model.manifest["dataset"]["name"],
        "candidate": model.manifest["training"]["candidate"],
        "classifier_files": model.manifest["files"],
        "explainer_files": model.explainer_manifest["files"],
        "versions": model.manifest["versions"],
    }
