"""Where things are, and what the files are called: every file, folder and step name, once.

The artifact folders are what ``make train`` writes and each service loads; the paths under
:data:`REPO_ROOT` exist in a checkout of this repository (the development tools, the tests and
the benchmark use them), not in the images, where each service is given its own folder.
"""
from __future__ import annotations

from pathlib import Path

__all__ = [
    "CLASSIFIER_DIR", "COMPILED_FILE", "DATASETS_DIR", "DEPLOY_DIR", "DOCS_DIR", "EXPLAINER_DIR", "EXPLAINER_FILE",
    "MANIFEST_FILE", "MODELS_DIR", "MODEL_FILE", "MONITORING_DIR", "PREPROCESSOR_FILE", "REPORTS_DIR", "REPO_ROOT",
    "RESULTS_DIR", "RUN_DIR", "SEARCH_CACHE_DIR", "SHARED_DIR", "version",
]

#: the checkout this package lives in
REPO_ROOT = Path(__file__).resolve().parent.parent
#: the two services' container build contexts
MODELS_DIR = REPO_ROOT / "models"
CLASSIFIER_DIR = MODELS_DIR / "loanclassifier" / "artifacts"
EXPLAINER_DIR = MODELS_DIR / "explainer" / "artifacts"
DATASETS_DIR = REPO_ROOT / "datasets"
DEPLOY_DIR = REPO_ROOT / "deploy"
MONITORING_DIR = DEPLOY_DIR / "monitoring"
DOCS_DIR = REPO_ROOT / "docs"
REPORTS_DIR = REPO_ROOT / "reports"
#: logs and data of the local runner (make run, make demo, make replay)
RUN_DIR = REPO_ROOT / ".run"
#: the search's fits, kept so that an interrupted or repeated training resumes (fairness.search)
SEARCH_CACHE_DIR = REPO_ROOT / "build" / "search-cache"
#: what make bench and make reliability measure
RESULTS_DIR = REPO_ROOT / "bench" / "results"
#: the real CRDs the deploy checks read (beside the checkout, never copied in)
SHARED_DIR = REPO_ROOT.parent / "shared"

#: every artifact folder's record of what it holds (core.manifest)
MANIFEST_FILE = "manifest.json"
#: the classifier's fitted preprocessor (ColumnTransformer) and forest, pickled with dill
PREPROCESSOR_FILE = "preprocessor.dill"
MODEL_FILE = "model.dill"
#: the same forest for treelite, the exact fast path (serving.fastpath)
COMPILED_FILE = "model.treelite"
#: the fitted AnchorTabular, pickled with dill without its predictor
EXPLAINER_FILE = "explainer.dill"


def version(sha256: str) -> str:
    """The version of an artifact: the first 12 hex digits of its file's sha256."""
    return sha256[:12]
