"""What the report evaluates: its settings, and the trained artifacts loaded and verified."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from loanxai.artifacts import CLASSIFIER_DIR, EXPLAINER_DIR, MODEL_FILE, PREPROCESSOR_FILE, REPORTS_DIR
from loanxai.core.elderly import served_rows
from loanxai.core.manifest import ClassifierManifest, ExplainerManifest, load_pickle, load_verified_manifest
from loanxai.core.pipeline import CLASSIFIER_STEP, PREPROCESSOR_STEP, one_job
from loanxai.core.schema import FeatureSchema
from loanxai.explain.anchors import AnchorModel, load_explainer, set_predictor
from loanxai.explain.reasons import ReasonExplainer, reason_explainer
from loanxai.fairness.gate import GateThresholds

__all__ = ["Model", "ReportOptions", "artifacts_summary", "load_model"]


@dataclass
class ReportOptions:
    """What to evaluate and where to write. ``sample``: held-out rows used (None: all);
    ``thresholds``: the gate to judge by (None: the one training recorded in the manifest)."""

    output_dir: Path = REPORTS_DIR
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
        """Its JSON form, for the report."""
        content = asdict(self)
        for key in ("output_dir", "classifier_dir", "explainer_dir"):
            content[key] = str(content[key])
        return content


@dataclass
class Model:
    """The evaluated artifacts: the pipeline rebuilt from its pickles, its cutoff, the explainer
    (asking the pipeline in process, as the service asks the classifier), the principal
    reasons' explainer, and the manifests."""

    pipeline: Pipeline
    explainer: Any
    reasons: ReasonExplainer
    schema: FeatureSchema
    manifest: ClassifierManifest
    explainer_manifest: ExplainerManifest
    anchor_model: AnchorModel = field(init=False)

    def __post_init__(self) -> None:
        """Give the explainer its predictor: the pipeline's decisions."""
        self.anchor_model = AnchorModel(self.schema, self.explainer_manifest.anchor_features, self.decide)
        set_predictor(self.explainer, self.anchor_model)

    @property
    def cutoff(self) -> float:
        """The probability of approval at or above which the model approves."""
        return self.manifest.cutoff

    def asked(self, X: np.ndarray) -> np.ndarray:
        """Encoded rows as the classifier asks the model (the elderly rule applied)."""
        return served_rows(X, self.schema, self.pipeline.named_steps[PREPROCESSOR_STEP],
                           self.pipeline.named_steps[CLASSIFIER_STEP])

    def approval(self, X: np.ndarray) -> np.ndarray:
        """The probabilities of approval the classifier serves for encoded rows, shape (n,)."""
        return self.pipeline.predict_proba(self.asked(X))[:, 1]

    def decide(self, X: np.ndarray) -> np.ndarray:
        """The classifier's decisions for encoded rows, as class codes (1: approved), shape (n,)."""
        return (self.approval(X) >= self.cutoff).astype(np.intp)


def load_model(classifier_dir: Path, explainer_dir: Path) -> Model:
    """Verify and load both artifacts; the explainer predicts in process with the pipeline."""
    manifest = load_verified_manifest(classifier_dir, ClassifierManifest)
    explainer_manifest = load_verified_manifest(explainer_dir, ExplainerManifest)
    # thousands of small predictions (anchors, permutations): no thread pool each time
    classifier = one_job(load_pickle(classifier_dir, MODEL_FILE))
    preprocessor = load_pickle(classifier_dir, PREPROCESSOR_FILE)
    pipeline = Pipeline([(PREPROCESSOR_STEP, preprocessor), (CLASSIFIER_STEP, classifier)])
    reasons = reason_explainer(preprocessor, classifier, manifest.schema,
                               np.asarray(manifest.reasons["reference"], dtype=np.float64), manifest.dataset.titles)
    return Model(pipeline, load_explainer(explainer_dir), reasons, manifest.schema, manifest, explainer_manifest)


def artifacts_summary(model: Model) -> dict[str, Any]:
    """Version, date, files, libraries, dataset and candidate of the evaluated artifacts."""
    return {
        "model_version": model.manifest.version,
        "trained_at": model.manifest.created_at,
        "dataset": model.manifest.dataset.name,
        "candidate": model.manifest.candidate,
        "classifier_files": dict(model.manifest.files),
        "explainer_files": dict(model.explainer_manifest.files),
        "versions": dict(model.manifest.versions),
    }
