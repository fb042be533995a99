"""Decide a whole file of applications through the deployed classifier.

``loanxai score applications.csv --out decisions.csv`` (``make score``) reads a CSV
of applications (a header naming the features, optionally the protected attributes and an id
column; other columns are listed and ignored, or refused with ``--strict``), checks each row
against the schema the classifier serves (``GET /api/v1.0/metadata``) by the classifier's own
rule and in its words (:mod:`loanxai.core.values`), sends the valid rows in batches to
``POST /api/v1.0/predictions`` (local or cluster URL, the paths the README documents), and
writes each decision with its probability of approval, the model version and, for every
rejection, its principal reasons. Rows that fail validation go to the errors file with their
message; one bad row never stops the run.

Batches run with bounded concurrency and are retried on connection errors and 5xx answers.
Each finished batch is written at once, atomically, to a work folder beside the output
(``decisions.csv.parts/``): a run that is interrupted resumes where it stopped, writing every
row exactly once; at the end the parts are joined, in input order, into the output files.

Seldon's own ``seldon-batch-processor`` was evaluated first and not built on: it reads JSON
lines, not CSV; it writes answers in completion order with failures mixed into the output;
it cannot resume; and it goes through SeldonClient's protobuf conversion (the README gives
its measured rate beside this scorer's).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests
from tqdm import tqdm

from loanxai.clients.http import DEFAULT_CLASSIFIER_URL, METADATA_PATH, PREDICTIONS_PATH, answer, error_info, session
from loanxai.config import Settings
from loanxai.core.cli import command_parser
from loanxai.core.schema import FeatureSchema
from loanxai.errors import ScoreError

__all__ = ["RETRY_STATUSES", "ScoreOptions", "Scorer", "parser", "run"]

logger = logging.getLogger(__name__)

#: answers worth a retry: the service or the network, not the request
RETRY_STATUSES = {500, 502, 503, 504}


@dataclass(frozen=True)
class ScoreOptions:
    """The scorer's options (``loanxai score --help``)."""

    url: str = DEFAULT_CLASSIFIER_URL
    batch_size: int = 1000
    concurrency: int = 4
    retries: int = 3
    #: principal reasons per rejection (0: none, faster)
    reasons: int = 4
    timeout: float = 120.0
    #: the column copied to every output row (the lender's application id), when the file has it
    id_column: str = "id"
    #: refuse a file with columns the classifier does not know (default: list them once, ignore them)
    strict: bool = False
    #: the bearer token (role decide) a classifier with LOAN_AUTH=on takes
    token: str | None = None
    #: draw the progress bar even when the output is not a terminal (LOAN_SCORE_PROGRESS)
    progress: bool = False


class Scorer:
    """Decides the rows of one CSV file; see the module's documentation."""

    def __init__(self, options: ScoreOptions) -> None:
        self.options = options
        self.session = session(pool=max(4, options.concurrency), url=options.url)
        if options.token:
            self.session.headers["Authorization"] = f"Bearer {options.token}"
        metadata = answer(self.session.get(options.url.rstrip("/") + METADATA_PATH, timeout=options.timeout))
        json_input = next(i for i in metadata["inputs"] if i["messagetype"] == "jsonData")
        self.schema = FeatureSchema.from_dict(json_input["schema"])
        self.model_version = metadata["versions"][0]
        self.batch_size = min(options.batch_size, int(metadata["custom"].get("max_batch_rows", options.batch_size)))
        self.url = options.url.rstrip("/") + PREDICTIONS_PATH
        self.decided = ["decision", "approval_probability", "model_version", "reason_codes"] + [
            f"reason_{i + 1}" for i in range(options.reasons)]
        self.keys = ["line"]  # and the id column, when the file has one

    def run(self, source: Path, out: Path, errors: Path) -> dict[str, int]:
        """Decide every row of ``source``; return counts of decided, rejected-with-reasons and bad rows."""
        parts = out.with_name(out.name + ".parts")
        self._check_columns(source)
        self._prepare(parts, source)
        total = _count_rows(source)
        batches = math.ceil(total / self.batch_size)
        done = {int(p.name[6:12]) for p in parts.glob("batch-*.csv") if not p.name.endswith(".errors.csv")}
        logger.info("%s: %d rows in %d batches of %d; %d batches done before", source, total, batches, self.batch_size, len(done))
        progress = tqdm(total=total, unit="rows", initial=sum(min(self.batch_size, total - b * self.batch_size) for b in done),
                        disable=not sys.stderr.isatty() and not self.options.progress)
        pending: set[Future] = set()
        with ThreadPoolExecutor(self.options.concurrency) as pool:
            for index, frame in self._batches(source):
                if index in done:
                    continue
                while len(pending) >= 2 * self.options.concurrency:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        progress.update(future.result())
                pending.add(pool.submit(self._batch, index, frame, parts))
            for future in pending:
                progress.update(future.result())
        progress.close()
        counts = _join(parts, out, errors, batches, self.keys + self.decided, self.keys + ["error"])
        shutil.rmtree(parts)
        return counts

    # --- one batch ---------------------------------------------------------------------------------

    def _batch(self, index: int, frame: pd.DataFrame, parts: Path) -> int:
        """Validate, decide and write one batch; return its number of rows."""
        lines = [int(i) + 2 for i in frame.index]  # the header is line 1
        X, groups, problems = self._encode(frame, lines)
        valid = [i for i in range(len(frame)) if i not in problems]
        decisions = self._decide(X[valid], {k: [v[i] for i in valid] for k, v in groups.items()}, problems, valid)
        rows, bad = [], []
        for i in range(len(frame)):
            keys = {"line": lines[i]}
            if len(self.keys) > 1:
                keys[self.options.id_column] = frame[self.options.id_column].iloc[i]
            if i in problems:
                bad.append(keys | {"error": problems[i]})
            else:
                rows.append(keys | decisions[i])
        _write_atomically(parts / f"batch-{index:06d}.csv", rows, self.keys + self.decided)
        _write_atomically(parts / f"batch-{index:06d}.errors.csv", bad, self.keys + ["error"])
        return len(frame)

    def _encode(self, frame: pd.DataFrame, lines: list[int]) -> tuple[np.ndarray, dict[str, list[Any]], dict[int, str]]:
        """Encoded rows (n, n_features), protected group labels (or a banded attribute's numbers),
        and a message per bad row (by position), in the classifier's words (the same rule reads both)."""
        problems: dict[int, str] = {}

        def read(name: str) -> np.ndarray:
            values, refused = self.schema.read_column(name, frame[name].tolist(), lambda i: f"on line {lines[i]}")
            for i, message in refused.items():
                problems.setdefault(i, message)
            return values

        X = np.column_stack([read(name) for name in self.schema.feature_names])
        groups: dict[str, list[Any]] = {}
        for name, labels in self.schema.protected.items():
            if name in frame.columns:
                codes = read(name)
                groups[name] = [None if np.isnan(c) else (c if name in self.schema.bands else labels[int(c)])
                                for c in codes]
        return X, groups, problems

    def _decide(self, X: np.ndarray, groups: dict[str, list[Any]], problems: dict[int, str],
                positions: list[int]) -> dict[int, dict[str, Any]]:
        """Decisions of the valid rows, by position in the batch; a row the service refuses
        joins ``problems`` with the service's message (found by halving the batch)."""
        if not len(X):
            return {}
        status, body = self._post(X, groups)
        if status == 400:
            if len(X) == 1:
                problems[positions[0]] = body["status"]["info"]
                return {}
            half = len(X) // 2
            first = self._decide(X[:half], {k: v[:half] for k, v in groups.items()}, problems, positions[:half])
            return first | self._decide(X[half:], {k: v[half:] for k, v in groups.items()}, problems, positions[half:])
        if status != 200:  # not the rows' fault (a token refused, a conflict): no batch would fare better
            raise ScoreError(f"the classifier at {self.url} answered {status}: {body.get('status', {}).get('info', body)}; "
                             "the batches written so far are kept: run the same command again to resume")
        approval = np.asarray(body["data"]["ndarray"])[:, 1]
        tags = body["meta"]["tags"]
        reasons = tags.get("reasons") or [None] * len(X)
        return {position: self._decision(d, p, r) for position, d, p, r in zip(positions, tags["decisions"], approval, reasons)}

    def _decision(self, decision: str, approval: float, reasons: dict[str, Any] | None) -> dict[str, Any]:
        """One output row: the classifier's decision (at its cutoff), and a rejection's reasons with their codes."""
        stated = reasons["reasons"] if reasons and decision == "rejected" else []
        return ({"decision": decision, "approval_probability": f"{approval:.6f}", "model_version": self.model_version,
                 "reason_codes": ";".join(r["code"] for r in stated)}
                | {f"reason_{i + 1}": r["text"] for i, r in enumerate(stated)})

    def _post(self, X: np.ndarray, groups: dict[str, list[Any]]) -> tuple[int, dict[str, Any]]:
        # named rows of the data's values (labels), as any client sends them
        records = self.schema.decode(X)
        names = list(self.schema.feature_names) + list(groups)
        rows = [[record[n] for n in self.schema.feature_names] + [groups[n][i] for n in groups]
                for i, record in enumerate(records)]
        message: dict[str, Any] = {"data": {"names": names, "ndarray": rows}}
        if self.options.reasons:
            message["meta"] = {"tags": {"reasons": self.options.reasons}}
        body = json.dumps(message)
        for attempt in range(self.options.retries + 1):
            try:
                response = self.session.post(self.url, data=body, headers={"Content-Type": "application/json"},
                                             timeout=self.options.timeout)
                if response.status_code not in RETRY_STATUSES:
                    return response.status_code, response.json()
                problem = f"{response.status_code}: {error_info(response)}"
            except requests.RequestException as error:
                problem = f"{type(error).__name__}: {error}"
            logger.warning("batch failed (%s), attempt %d of %d", problem, attempt + 1, self.options.retries + 1)
            time.sleep(min(8.0, 0.5 * 2**attempt))
        raise ScoreError(f"the classifier at {self.url} kept failing ({problem}); the batches written so far are kept: "
                         "run the same command again to resume")

    # --- files -------------------------------------------------------------------------------------

    def _batches(self, source: Path) -> Iterator[tuple[int, pd.DataFrame]]:
        reader = pd.read_csv(source, dtype=str, keep_default_na=False, chunksize=self.batch_size)
        for index, frame in enumerate(reader):
            yield index, frame.replace({"": None})  # an empty cell is a missing value

    def _check_columns(self, source: Path) -> None:
        """Read the header: the features must be there; the id column is kept; any other column
        the classifier does not know is listed once and ignored (refused with ``strict``)."""
        header = list(pd.read_csv(source, dtype=str, nrows=0).columns)
        missing = [name for name in self.schema.feature_names if name not in header]
        if missing:
            raise ScoreError(f"{source}: column(s) {', '.join(missing)} missing; the classifier needs "
                             f"{', '.join(self.schema.feature_names)}")
        self.keys = ["line"] + ([self.options.id_column] if self.options.id_column in header else [])
        extra = [name for name in header if name not in self.schema.field_names and name not in self.keys]
        if extra and self.options.strict:
            raise ScoreError(f"{source}: column(s) the classifier does not know: {', '.join(extra)} (--strict); "
                             f"known: {', '.join(self.schema.field_names)}, and the id column {self.options.id_column!r}")
        if extra:
            logger.warning("%s: column(s) the classifier does not know, ignored: %s", source, ", ".join(extra))

    def _prepare(self, parts: Path, source: Path) -> None:
        """Create the work folder, or check that the one there belongs to this same run."""
        stat = source.stat()
        run = {"source": str(source.resolve()), "size": stat.st_size, "mtime": stat.st_mtime,
               "batch_size": self.batch_size, "model_version": self.model_version, "reasons": self.options.reasons}
        record = parts / "run.json"
        if record.exists():
            previous = json.loads(record.read_text())
            if previous != run:
                changed = [key for key in run if previous.get(key) != run[key]]
                raise ScoreError(f"{parts} holds an unfinished run with another {', '.join(changed)}; "
                                 "remove it (or finish that run) first")
            logger.info("resuming the unfinished run in %s", parts)
        else:
            parts.mkdir(parents=True)
            record.write_text(json.dumps(run))


def _count_rows(source: Path) -> int:
    with open(source, "rb") as handle:
        return max(0, sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")) - 1)


def _write_atomically(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writerows(rows)
    os.replace(tmp, path)


def _join(parts: Path, out: Path, errors: Path, batches: int, columns: list[str], error_columns: list[str]) -> dict[str, int]:
    """The parts, in input order, into the output and errors files (each written atomically)."""
    counts = {"decided": 0, "rejected": 0, "errors": 0}
    outputs = ((out, ".csv", columns, "decided"), (errors, ".errors.csv", error_columns, "errors"))
    decision = columns.index("decision")
    for target, suffix, header, count in outputs:
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "w", newline="") as handle:
            handle.write(",".join(header) + "\n")
            for index in range(batches):
                text = (parts / f"batch-{index:06d}{suffix}").read_text()
                handle.write(text)
                counts[count] += sum(1 for _ in csv.reader(text.splitlines()))
                if suffix == ".csv":
                    counts["rejected"] += sum(1 for row in csv.reader(text.splitlines()) if row[decision] == "rejected")
        os.replace(tmp, target)
    return counts


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser(__doc__.splitlines()[0])
    parser.add_argument("applications", type=Path, help="CSV file with a header naming the features")
    parser.add_argument("--out", type=Path, required=True, help="decisions CSV (the errors go beside it: *.errors.csv)")
    parser.add_argument("--errors", type=Path, help="rows that failed validation (default: <out>.errors.csv)")
    parser.add_argument("--classifier-url", default=DEFAULT_CLASSIFIER_URL, help="the classifier's base URL, e.g. "
                        "http://localhost:8080/seldon/loan/loan-classifier through the cluster's ingress")
    parser.add_argument("--batch-size", type=int, default=ScoreOptions.batch_size,
                        help="rows per request (at most the classifier's max_batch_rows)")
    parser.add_argument("--concurrency", type=int, default=ScoreOptions.concurrency, help="batches in flight at once")
    parser.add_argument("--retries", type=int, default=ScoreOptions.retries, help="retries of a failed batch")
    parser.add_argument("--reasons", type=int, default=ScoreOptions.reasons,
                        help="principal reasons per rejection (0: decisions only, faster)")
    parser.add_argument("--id-column", default=ScoreOptions.id_column,
                        help="the applications' id column, copied to every output and error row when the file has it")
    parser.add_argument("--strict", action="store_true",
                        help="refuse a file with columns the classifier does not know (default: list them, ignore them)")
    parser.add_argument("--classifier-token-file", type=Path,
                        help="a file holding the bearer token (role decide) of a classifier with LOAN_AUTH=on")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Decide ``args.applications`` into ``args.out`` (``loanxai score``)."""
    errors = args.errors or args.out.with_name(args.out.stem + ".errors.csv")
    started = time.perf_counter()
    token = args.classifier_token_file.read_text().strip() if args.classifier_token_file else None
    scorer = Scorer(ScoreOptions(url=args.classifier_url, batch_size=args.batch_size, concurrency=args.concurrency,
                                  retries=args.retries, reasons=args.reasons, id_column=args.id_column,
                                  strict=args.strict, token=token, progress=settings.tool.score_progress))
    counts = scorer.run(args.applications, args.out, errors)
    seconds = time.perf_counter() - started
    logger.info("%d applications decided (%d rejected), %d rows with errors in %s; %.1f s, %.0f rows/s",
                counts["decided"], counts["rejected"], counts["errors"], errors, seconds,
                (counts["decided"] + counts["errors"]) / max(seconds, 1e-9))
