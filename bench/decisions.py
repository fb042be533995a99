"""Benchmarks of what a lender gives applicants: principal reasons, recourse, whole files.

Called by ``bench/run.py`` against the services it started: p50 latency of principal reasons
for one application and for 1,000 in one call, recourse through both services, and the file
scorer's rate with reasons off and on, beside Seldon's own ``seldon-batch-processor`` on the
same rows.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

BATCH_PROCESSOR = Path(sys.executable).parent / "seldon-batch-processor"


def timed(call: Any, runs: int) -> list[float]:
    """Seconds of each of ``runs`` calls of ``call``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def reasons_section(predictions_url: str, records: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    """p50 seconds of a prediction with principal reasons: one application, and 1,000 in one call."""
    session = requests.Session()
    one = {"jsonData": records[:1], "meta": {"tags": {"reasons": True}}}
    thousand = {"jsonData": (records * (1000 // len(records) + 1))[:1000], "meta": {"tags": {"reasons": True}}}
    plain = {"jsonData": records[:1]}
    for body in (one, thousand):
        assert session.post(predictions_url, json=body, timeout=60).status_code == 200
    return {
        "one_p50_s": statistics.median(timed(lambda: session.post(predictions_url, json=one, timeout=60), runs * 10)),
        "one_without_reasons_p50_s": statistics.median(
            timed(lambda: session.post(predictions_url, json=plain, timeout=60), runs * 10)),
        "thousand_p50_s": statistics.median(timed(lambda: session.post(predictions_url, json=thousand, timeout=120), runs)),
    }


def recourse_section(explainer_url: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """p50 seconds of a recourse (k = 3) through the explainer and the classifier."""
    session = requests.Session()
    seconds, found, calls = [], 0, []
    for record in records:
        started = time.perf_counter()
        answer = session.post(explainer_url, json={"jsonData": record, "meta": {"tags": {"kind": "recourse"}}}, timeout=120)
        seconds.append(time.perf_counter() - started)
        body = answer.json()["jsonData"]
        found += bool(body["counterfactuals"])
        calls.append(body["model_calls"])
    return {"applications": len(records), "p50_s": statistics.median(seconds), "max_s": max(seconds),
            "with_recourse": found, "model_calls_median": statistics.median(calls)}


def scorer_section(classifier_url: str, frame: pd.DataFrame, rows: int, rows_with_reasons: int, folder: Path) -> dict[str, Any]:
    """Rows per second of ``python -m loanxai score`` end to end (process start to files written)."""
    result = {}
    for label, n, reasons in (("reasons_off", rows, "0"), ("reasons_on", rows_with_reasons, "4")):
        source = folder / f"applications-{n}.csv"
        if not source.exists():
            frame.sample(n=n, replace=True, random_state=0).to_csv(source, index=False)
        out = folder / f"decisions-{label}.csv"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "loanxai", "score", str(source), "--out", str(out),
                        "--classifier-url", classifier_url, "--reasons", reasons], check=True, capture_output=True)
        seconds = time.perf_counter() - started
        result[label] = {"rows": n, "seconds": seconds, "rows_per_s": n / seconds}
    return result


def batch_processor_section(host: str, X: np.ndarray, rows: int, folder: Path) -> dict[str, Any]:
    """Seldon's seldon-batch-processor on encoded rows (JSON lines), 4 workers, batches of 1,000."""
    source, out = folder / "batch-input.txt", folder / "batch-output.txt"
    picked = X[np.random.default_rng(0).integers(0, len(X), rows)]
    source.write_text("".join(json.dumps([row]) + "\n" for row in picked.tolist()))  # one instance per line
    started = time.perf_counter()
    subprocess.run([str(BATCH_PROCESSOR), "--deployment-name", "loan", "--gateway-type", "seldon", "--host", host,
                    "--data-type", "data", "--payload-type", "ndarray", "--workers", "4", "--retries", "3",
                    "--batch-size", "1000", "--input-data-path", str(source), "--output-data-path", str(out),
                    "--log-level", "warning"], check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - started
    lines = out.read_text().splitlines()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "output_lines": len(lines)}


def run_decisions(classifier_url: str, explainer_url: str, frame: pd.DataFrame, X: np.ndarray, rejected: list[dict[str, Any]],
                  quick: bool) -> dict[str, Any]:
    """Principal reasons, recourse and the file scorer through the real services, beside Seldon's batch processor."""
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in frame.head(200).to_dict("records")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        return {
            "reasons": reasons_section(classifier_url + "/api/v1.0/predictions", records, runs=3 if quick else 10),
            "recourse": recourse_section(explainer_url + "/api/v1.0/predictions", rejected[: 2 if quick else 20]),
            "scorer": scorer_section(classifier_url, frame, 5_000 if quick else 100_000, 1_000 if quick else 10_000, folder),
            "batch_processor": batch_processor_section(
                classifier_url.removeprefix("http://"), X, 2_000 if quick else 20_000, folder
            ),
        }
