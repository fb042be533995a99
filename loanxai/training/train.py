"""Train the loan classifier and its anchor explainer, and write their artifacts.

``loanxai train [--dataset datasets/x.yaml]`` (or ``make train [DATASET=...]``)
reads the dataset description (the census by default), then writes, atomically (a failed or
interrupted training leaves the previous artifacts as they were):

- ``models/loanclassifier/artifacts/``: ``preprocessor.dill``, ``model.dill`` (the forest) and
  ``manifest.json`` (schema, cutoff, the search's every candidate, held-out metrics, the gate,
  library versions, sha256 of each file);
- ``models/explainer/artifacts/``: ``explainer.dill`` (alibi AnchorTabular, fitted, pickled
  without its predictor) and ``manifest.json``.
"""
from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from loanxai.artifacts import CLASSIFIER_DIR, EXPLAINER_DIR, SEARCH_CACHE_DIR
from loanxai.config import Settings
from loanxai.core.cli import command_parser
from loanxai.core.manifest import ClassifierManifest, ExplainerManifest, read_manifest
from loanxai.core.pipeline import PREPROCESSOR_STEP, impute, numeric_medians
from loanxai.data.dataset import load_dataset
from loanxai.data.description import DEFAULT_DESCRIPTION, Description, load_description
from loanxai.errors import ArtifactError, LoanError
from loanxai.explain.anchors import anchor_features, fit_anchors
from loanxai.training.model import train_model
from loanxai.training.staging import staged_directories
from loanxai.training.writers import save_classifier, save_explainer

__all__ = ["ensure_trained", "parser", "run", "train"]

logger = logging.getLogger(__name__)


def train(
    classifier_dir: Path = CLASSIFIER_DIR,
    explainer_dir: Path = EXPLAINER_DIR,
    description: Description | Path = DEFAULT_DESCRIPTION,
    seed: int | None = None,
    candidate: str = "auto",
    accept_unfair: str | None = None,
    accepted_by: str | None = None,
    n_estimators: int | None = None,
    only: Sequence[str] | None = None,
    quick: bool = False,
    cache: Path | None = SEARCH_CACHE_DIR,
    incumbent: Path | None = None,
) -> tuple[ClassifierManifest, ExplainerManifest]:
    """Train both artifacts from the described dataset and write them; return the two manifests.

    Every candidate of the search (:mod:`loanxai.fairness.search`; ``only``: these names) is
    cross-validated; ``candidate`` names the one to serve (``auto``: by the search's rule;
    ``none``: the seed's model, every protected attribute an input, which the gate fails). A
    model the gate's screen flags ships only with ``accept_unfair``, the business justification,
    recorded with ``accepted_by`` (default: the user), and only if the search found no materially
    less discriminatory alternative. Nothing is written unless everything succeeds; ``seed``
    (default: the description's ``split.seed``) seeds the folds, the forests and the explainer;
    ``n_estimators`` replaces every candidate's number of trees (or boosting iterations); ``quick``
    searches each family's first setting with 10 trees and 5 grid points (tests); ``cache`` keeps
    the search's fits so that an interrupted or repeated training resumes (None: kept nowhere);
    ``incumbent``: the served classifier's artifacts folder, whose recipe the search re-assesses
    beside the candidates (the report compares every candidate with it).
    """
    started = time.perf_counter()
    if not isinstance(description, Description):
        description = load_description(description)
    seed = description.seed if seed is None else seed
    logger.info("[1/4] loading %s (%s), searching the candidates (%d-fold cross-validation)", description.name,
                description.path, description.selection["folds"])
    served = None if incumbent is None else read_manifest(incumbent, ClassifierManifest)  # before the search's minutes
    model = train_model(load_dataset(description), seed, candidate, accept_unfair, accepted_by, n_estimators, only,
                        quick, cache, served)
    training = {
        "seed": seed,
        "n_train": len(model.dataset.train),
        "n_test": len(model.dataset.test),
        "candidate": model.search_record["chosen"],
        "settings": model.search_record["settings"],
    }
    with staged_directories(classifier_dir, explainer_dir) as (classifier_stage, explainer_stage):
        logger.info("[2/4] writing the classifier artifacts")
        classifier_manifest = save_classifier(model, classifier_stage, training)
        logger.info("[3/4] fitting the anchor explainer on %d rows", len(model.X_train))
        medians = numeric_medians(model.pipeline.named_steps[PREPROCESSOR_STEP], model.schema)
        rows = impute(model.X_train, model.schema, medians)
        explainer = fit_anchors(model.schema, rows, anchor_features(model.schema), seed=seed)
        logger.info("[4/4] writing the explainer artifacts")
        save_explainer(explainer, model, explainer_stage, classifier_manifest)
    logger.info("artifacts written to %s and %s in %.1f s", classifier_dir, explainer_dir, time.perf_counter() - started)
    gate = classifier_manifest.gate
    if gate.status == "flagged":
        logger.warning("THE FAIRNESS SCREEN FLAGGED THE MODEL (%s). The search found no materially less discriminatory "
                       "alternative within the tolerance; images, deployment and the container smoke test refuse it until "
                       'a business justification is recorded: make train ACCEPT_UNFAIR="<reason>" ACCEPTED_BY="<name>". '
                       "See the report (make report).", "; ".join(gate.failed_checks))
    elif gate.status == "failed":
        logger.warning("THE MODEL FAILED THE FAIRNESS GATE (%s; %s): nothing ships it; retrain with the search's choice "
                       "(make train)", "; ".join(gate.failed_checks), "; ".join(gate.failed_search))
    return read_manifest(classifier_dir, ClassifierManifest), read_manifest(explainer_dir, ExplainerManifest)


def ensure_trained(classifier_dir: Path = CLASSIFIER_DIR, explainer_dir: Path = EXPLAINER_DIR) -> None:
    """Train the default dataset unless both artifact folders already hold a manifest of this version."""
    try:
        for directory in (classifier_dir, explainer_dir):
            read_manifest(directory)
        return
    except ArtifactError as error:
        logger.info("training first: %s", error)
    train(classifier_dir, explainer_dir)


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser(__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DESCRIPTION,
                        help="the dataset description (YAML)")
    parser.add_argument("--artifacts", type=Path, default=CLASSIFIER_DIR, help="where the classifier's artifacts go")
    parser.add_argument("--explainer-artifacts", type=Path, default=EXPLAINER_DIR, help="where the explainer's artifacts go")
    parser.add_argument("--n-estimators", type=int, default=None,
                        help="trees (or boosting iterations) of every candidate (default: each setting's own)")
    parser.add_argument("--quick", action="store_true",
                        help="a quick search: each family's first setting, 10 trees, 5 grid points (tests, trials)")
    parser.add_argument("--search-cache", type=Path, default=SEARCH_CACHE_DIR,
                        help="where the search keeps its fits, to resume an interrupted or repeated training")
    parser.add_argument("--no-search-cache", dest="search_cache", action="store_const", const=None,
                        help="keep no fits")
    parser.add_argument("--incumbent", type=Path, metavar="DIR",
                        help="the served classifier's artifacts: its recipe is re-assessed beside the candidates and "
                             "the report compares each candidate with it")
    parser.add_argument("--seed", type=int, default=None, help="default: the description's split.seed")
    parser.add_argument("--candidate", default="auto",
                        help="the candidate to serve: auto (the search's rule), none (the seed's model, every protected "
                             "attribute an input), or a candidate's name (see the report)")
    parser.add_argument("--accept-unfair", metavar="REASON",
                        help="the business justification for a model the screen flags (recorded, shown everywhere); "
                             "it ships only if no materially less discriminatory alternative was passed over")
    parser.add_argument("--accepted-by", metavar="NAME", help="who gives the justification (default: the user)")
    parser.add_argument("--if-missing", action="store_true", help="train only if there are no artifacts yet")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Train as ``args`` say (``loanxai train``); a refusal leaves the previous artifacts as they were."""
    try:
        if args.if_missing:
            ensure_trained(args.artifacts, args.explainer_artifacts)
        else:
            train(args.artifacts, args.explainer_artifacts, args.dataset, args.seed, args.candidate,
                  args.accept_unfair, args.accepted_by, args.n_estimators, quick=args.quick, cache=args.search_cache,
                  incumbent=args.incumbent)
    except LoanError as error:
        error.message = f"training stopped, the previous artifacts are unchanged: {error.message}"
        raise
