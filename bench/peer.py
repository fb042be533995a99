"""The peer the classifier is measured against: MLServer with mlserver-sklearn serving the same
fitted pipeline over the V2 protocol, and the request bodies of both protocols."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import requests
from sklearn.pipeline import Pipeline

from loanxai.ops.services import free_port, stop_process_group, wait_until_ready

MLSERVER = Path(__file__).resolve().parent.parent / ".venv-mlserver" / "bin" / "mlserver"


def seldon_body(rows: np.ndarray) -> str:
    """A SeldonMessage of encoded rows, as JSON."""
    return json.dumps({"data": {"ndarray": rows.tolist()}})


def v2_body(rows: np.ndarray) -> str:
    """An Open Inference (V2) request of encoded rows, as JSON (MLServer's protocol)."""
    return json.dumps({
        "inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}],
        "outputs": [{"name": "predict_proba"}],
    })


class MLServerPeer:
    """MLServer + mlserver-sklearn serving ``pipeline`` (joblib) with ``workers`` parallel workers."""

    name = "mlserver"

    def __init__(self, pipeline: Pipeline, workers: int, folder: Path) -> None:
        self.http_port = free_port()
        model_dir = folder / "loan"
        model_dir.mkdir(parents=True)
        joblib.dump(pipeline, model_dir / "model.joblib")
        (model_dir / "model-settings.json").write_text(json.dumps({
            "name": "loan", "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"},
        }))
        (folder / "settings.json").write_text(json.dumps({
            "host": "127.0.0.1", "http_port": self.http_port, "grpc_port": free_port(),
            "metrics_port": free_port(), "parallel_workers": workers, "debug": False,
        }))
        self.folder = folder
        self.process: subprocess.Popen | None = None

    @property
    def predictions_url(self) -> str:
        """The predictions endpoint."""
        return f"http://127.0.0.1:{self.http_port}/v2/models/loan/infer"

    def start(self, log_path: Path) -> None:
        """Start the server, its output going to ``log_path``."""
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([str(MLSERVER), "start", str(self.folder)], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.log_path = log_path

    def wait_ready(self, timeout: float = 120) -> float:
        """Block until the server is ready; return the seconds waited."""
        return wait_until_ready(f"http://127.0.0.1:{self.http_port}/v2/models/loan/ready", self.process, "mlserver",
                                lambda: self.log_path.read_text(errors="replace")[-3000:], timeout)

    def stop(self) -> None:
        """Stop the process and everything it started."""
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None


def under_elderly_age(rows: np.ndarray, schema: Any) -> np.ndarray:
    """The encoded rows of applicants younger than the elderly age (all of them if age is no input)."""
    for name, age in schema.elderly.items():
        rows = rows[rows[:, schema.feature_names.index(name)] < age]
    return rows


def check_same_answers(rows: np.ndarray, ours: str, peer: str) -> float:
    """Largest probability difference between our service and the peer on ``rows``."""
    answer = requests.post(ours, data=seldon_body(rows), headers={"Content-Type": "application/json"}, timeout=30)
    a = np.asarray(answer.json()["data"]["ndarray"])
    outputs = requests.post(peer, data=v2_body(rows), headers={"Content-Type": "application/json"}, timeout=30).json()["outputs"]
    b = np.asarray(outputs[0]["data"]).reshape(len(rows), -1)
    return float(np.max(np.abs(a - b)))
