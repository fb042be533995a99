"""Reading a Seldon request (a SeldonMessage as JSON) into encoded feature rows.

Accepted forms, all answered the same way:

- ``{"data": {"ndarray": [[...], ...]}}`` or ``{"data": {"tensor": {"shape": [n, n_features], "values": [...]}}}``:
  rows in schema order, categorical features as codes (what the explainer sends) or labels;
- the same with ``"names": [...]``: columns in any order, named;
- ``{"jsonData": [{"<feature>": value, ...}, ...]}`` (or a single object).

Explain parameters travel in ``meta.tags`` (SeldonClient's ``meta=`` argument), e.g.
``{"meta": {"tags": {"threshold": 0.9}}}``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Any

import numpy as np

from loanxai.schema import FeatureSchema, InputError

#: Explain parameters a request may set: type, low, high (integers from low to high, numbers
#: in (low, high]; a high of None: the number of features). alibi's other defaults
#: (batch_size 100, coverage_samples 10000) are kept.
EXPLAIN_PARAMETERS: dict[str, tuple[type, float, float | None]] = {
    "threshold": (float, 0.0, 1.0),
    "beam_size": (int, 1, 10),
    "max_anchor_size": (int, 1, None),
    "delta": (float, 0.0, 1.0),
    "tau": (float, 0.0, 1.0),
}


def features_from_message(message: Any, schema: FeatureSchema, max_rows: int) -> np.ndarray:
    """Encoded rows of a SeldonMessage.

    Returns an ndarray of float64, shape (n_rows, n_features). Raises :class:`InputError`
    naming the problem for anything that is not a non-empty batch of at most ``max_rows``
    valid applications.
    """
    if not isinstance(message, Mapping):
        raise InputError("the request must be a JSON object (a SeldonMessage)")
    if "data" in message:
        data = message["data"]
        if not isinstance(data, Mapping):
            raise InputError("'data' must be an object holding 'ndarray' or 'tensor'")
        names = data.get("names") or None
        if "ndarray" in data:
            rows = data["ndarray"]
            if not isinstance(rows, list):
                raise InputError("'data.ndarray' must be a list of rows")
        elif "tensor" in data:
            rows = _tensor_rows(data["tensor"])
        else:
            raise InputError("'data' must hold 'ndarray' or 'tensor'")
        _check_batch_size(len(rows), max_rows)
        return schema.encode_rows(rows, names)
    if "jsonData" in message:
        records = message["jsonData"]
        if isinstance(records, Mapping):
            records = [records]
        if not isinstance(records, list):
            raise InputError("'jsonData' must be an object or a list of objects")
        _check_batch_size(len(records), max_rows)
        return schema.encode_records(records)
    raise InputError("the request needs 'data' (with 'ndarray' or 'tensor') or 'jsonData'")


def explain_parameters(message: Mapping[str, Any], default_threshold: float, n_features: int) -> dict[str, Any]:
    """Keyword arguments for ``AnchorTabular.explain`` from the request's ``meta.tags``."""
    meta = message.get("meta") or {}
    tags = meta.get("tags") if isinstance(meta, Mapping) else None
    if not isinstance(tags, (Mapping, type(None))):
        raise InputError("'meta.tags' must be an object of explain parameters")
    unknown = [key for key in tags or {} if key not in EXPLAIN_PARAMETERS]
    if unknown:
        raise InputError(
            f"unknown explain parameter {unknown[0]!r}; known: " + ", ".join(EXPLAIN_PARAMETERS)
        )
    parameters: dict[str, Any] = {"threshold": default_threshold}
    for key, value in (tags or {}).items():
        kind, low, high = EXPLAIN_PARAMETERS[key]
        high = n_features if high is None else high
        number = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
        if kind is int:
            valid = number and float(value).is_integer() and low <= value <= high
            wanted = f"an integer from {low} to {high}"
        else:
            valid = number and low < value <= high
            wanted = f"a number in ({low}, {high}]"
        if not valid:
            raise InputError(f"explain parameter {key!r} must be {wanted}, got {value!r}")
        parameters[key] = kind(value)
    return parameters


def _tensor_rows(tensor: Any) -> list[list[Any]]:
    if not isinstance(tensor, Mapping) or "shape" not in tensor or "values" not in tensor:
        raise InputError("'data.tensor' must hold 'shape' and 'values'")
    shape, values = tensor["shape"], tensor["values"]
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(d, Real) and not isinstance(d, bool) and float(d).is_integer() and d >= 0 for d in shape)
    ):
        raise InputError("'data.tensor.shape' must be [rows, features]")
    n_rows, n_cols = int(shape[0]), int(shape[1])
    if not isinstance(values, list) or len(values) != n_rows * n_cols:
        raise InputError(
            f"'data.tensor.values' must hold rows x features = {n_rows * n_cols} numbers"
        )
    return [values[i * n_cols : (i + 1) * n_cols] for i in range(n_rows)]


def _check_batch_size(n_rows: int, max_rows: int) -> None:
    if n_rows == 0:
        raise InputError("empty batch: the request holds no application")
    if n_rows > max_rows:
        raise InputError(
            f"batch of {n_rows} rows is larger than the limit of {max_rows} (LOAN_MAX_BATCH_ROWS)"
        )
