"""Explanations in process and through the explainer service, seeded alike, and what one of the
explainer's classifier calls costs."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests

from bench.measure import median_ms
from loanxai.artifacts import CLASSIFIER_DIR, EXPLAINER_DIR, MODEL_FILE, PREPROCESSOR_FILE
from loanxai.clients.http import session
from loanxai.core.elderly import elderly_rule
from loanxai.core.manifest import load_pickle, load_verified_manifest
from loanxai.explain import anchors
from loanxai.serving.auth import SAMPLING_HEADER
from loanxai.serving.remote import RemoteClassifier


def served_decisions(fast_predict: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """The classifier's decisions in process: the elderly rule, the fast path, the cutoff."""
    manifest = load_verified_manifest(CLASSIFIER_DIR)
    rule = elderly_rule(manifest.schema, load_pickle(CLASSIFIER_DIR, PREPROCESSOR_FILE), load_pickle(CLASSIFIER_DIR, MODEL_FILE))

    def decide(X: np.ndarray) -> np.ndarray:
        proba = fast_predict(X) if rule is None else rule.served(X, fast_predict)[1]
        return (proba[:, 1] >= manifest.cutoff).astype(np.intp)

    return decide


def explanation_section(applications: np.ndarray, explainer_url: str, fast_predict: Callable,
                        classifier: Any, sampling_key: Path, call_rows: np.ndarray) -> dict[str, Any]:
    """Seconds per explanation in process (fast predictor) and through the explainer service,
    seeded alike: each application gets the same anchor from the same classifier calls both ways;
    then what one of the explainer's calls costs (:func:`call_costs`)."""
    explainer = anchors.load_explainer(EXPLAINER_DIR)
    explainer_manifest = load_verified_manifest(EXPLAINER_DIR)
    model_sha256 = explainer_manifest.model_sha256
    calls = {"n": 0, "rows": 0}
    decide = served_decisions(fast_predict)

    def counted(X: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        calls["rows"] += len(X)
        return decide(X)

    model = anchors.AnchorModel(explainer_manifest.schema, explainer_manifest.anchor_features, counted)
    anchors.set_predictor(explainer, model)
    local, remote = [], []
    client = requests.Session()
    same = 0
    for row in applications:
        calls.update(n=0, rows=0)
        started = time.perf_counter()
        anchor = anchors.explain(explainer, model, row, {"threshold": 0.95, "seed": 0}, model_sha256).conditions
        local.append({"seconds": time.perf_counter() - started, "model_calls": calls["n"], "rows": calls["rows"]})
        started = time.perf_counter()
        answer = client.post(explainer_url, json={"data": {"ndarray": [row.tolist()]}}, timeout=120).json()["jsonData"]
        same += answer["anchor"] == list(anchor)
        remote.append({"seconds": time.perf_counter() - started, "model_calls": answer["model_calls"],
                       "rows": answer["model_rows"]})

    def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
        return {
            "p50_s": statistics.median(r["seconds"] for r in runs),
            "mean_s": statistics.fmean(r["seconds"] for r in runs),
            "model_calls_median": statistics.median(r["model_calls"] for r in runs),
            "rows_median": statistics.median(r["rows"] for r in runs),
        }

    result = {"applications": len(applications), "same_anchor": same, "in_process": summary(local), "service": summary(remote)}
    result["service_over_in_process_p50"] = result["service"]["p50_s"] / result["in_process"]["p50_s"]
    rows = int(result["service"]["rows_median"] / max(result["service"]["model_calls_median"], 1))
    result["call"] = call_costs(classifier, sampling_key, decide, call_rows[:max(rows, 1)])
    # the explanation's p50 if each of its calls cost only the bare round trip more than in process
    result["floor_over_in_process_p50"] = 1 + (result["service"]["model_calls_median"] * result["call"]["ping_ms"]
                                               / 1000 / result["in_process"]["p50_s"])
    return result


def call_costs(classifier: Any, sampling_key: Path, decide: Callable, X: np.ndarray) -> dict[str, float]:
    """Median milliseconds of one classifier call of the explainer's (``X``, the median rows of
    one): in process, through the classifier service as the explainer makes it
    (:class:`~loanxai.serving.remote.RemoteClassifier`, urllib3), the same message through a
    requests session (as the explainer sent it until 2026-12-08), and the bare round trip to that
    service (``GET /health/ping``: urllib3, gunicorn, Flask and Seldon's wrapper, no message)."""
    remote = RemoteClassifier(classifier.predictions_url, 5, 30, 0, sampling_key)
    ping = f"{classifier.url}/health/ping"
    through_requests = session(url=classifier.predictions_url)
    message = {"data": {"ndarray": X.tolist()}, "meta": {"tags": {"purpose": "explanation"}}}
    headers = {SAMPLING_HEADER: sampling_key.read_text().strip()}
    return {"rows": len(X), "in_process_ms": median_ms(lambda: decide(X), budget_s=2, max_runs=500),
            "service_ms": median_ms(lambda: remote.classify(X), budget_s=4, max_runs=500),
            "requests_ms": median_ms(lambda: through_requests.post(classifier.predictions_url, json=message,
                                                                   headers=headers, timeout=30).json(),
                                     budget_s=4, max_runs=500),
            "ping_ms": median_ms(lambda: remote.http.request("GET", ping, timeout=5).data, budget_s=2, max_runs=500)}
