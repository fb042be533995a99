"""Reading Seldon messages (SeldonMessage and Feedback, as JSON): encoded rows, groups, outcomes, parameters.

Accepted forms, all answered the same way:

- ``{"data": {"ndarray": [[...], ...]}}`` or ``{"data": {"tensor": {"shape": [n, n_features], "values": [...]}}}``:
  rows in schema order, a number in a categorical column its category's index (what the
  explainer sends), a string a value;
- the same with ``"names": [...]``: columns in any order, named, values as the data holds them
  (labels or raw codes, :mod:`loanxai.core.values`);
- ``{"jsonData": [{"<feature>": value, ...}, ...]}`` (or a single object).

Explain parameters travel in ``meta.tags`` (SeldonClient's ``meta=`` argument), e.g.
``{"meta": {"tags": {"threshold": 0.9}}}``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from loanxai.core.schema import CLASS_NAMES, FeatureSchema
from loanxai.core.text import check_entered, check_text
from loanxai.core.values import shown
from loanxai.errors import InputError

__all__ = ["EXPLAIN_KINDS", "EXPLAIN_PARAMETERS", "MAX_PUID_CHARACTERS", "PURPOSES", "DecisionRequest", "Outcomes",
           "application_ids", "explain_parameters", "features_from_message", "read_decision_request", "read_feedback",
           "read_message", "request_meta"]

#: the longest request id (``meta.puid``) accepted: it is echoed and recorded
MAX_PUID_CHARACTERS = 128
#: What the explainer explains (``meta.tags.kind``): an anchor (default) or a recourse.
EXPLAIN_KINDS = ("anchor", "recourse")
# why the classifier is asked: an applicant's decision, or an explainer's made-up samples
PURPOSES = ("decision", "explanation")
#: Explain parameters a request may set: type, low, high (integers from low to high, numbers
#: in (low, high]; a high of None: the number of features), and the kind they apply to
#: (None: both). alibi's other defaults (batch_size 100, coverage_samples 10000) are kept.
EXPLAIN_PARAMETERS: dict[str, tuple[type, float, float | None, str | None]] = {
    "threshold": (float, 0.0, 1.0, "anchor"),
    "beam_size": (int, 1, 10, "anchor"),
    "max_anchor_size": (int, 1, None, "anchor"),
    "delta": (float, 0.0, 1.0, "anchor"),
    "tau": (float, 0.0, 1.0, "anchor"),
    "k": (int, 1, 5, "recourse"),
    # another sample on purpose: the same application, model and seed give the same answer
    "seed": (int, 0, 2**31 - 1, None),
}


def features_from_message(message: Any, schema: FeatureSchema, max_rows: int) -> np.ndarray:
    """Encoded rows of a SeldonMessage: :func:`read_message` without the groups."""
    return read_message(message, schema, max_rows)[0]


def read_message(message: Any, schema: FeatureSchema, max_rows: int) -> tuple[np.ndarray, dict[str, list[str | None]]]:
    """Encoded rows of a SeldonMessage and the protected groups they carry.

    Returns X, an ndarray of float64, shape (n_rows, n_features), and a dict of protected
    attribute -> list of n_rows group labels (None: not given; rows without names never give
    one). Raises :class:`InputError` naming the problem for anything that is not a non-empty
    batch of at most ``max_rows`` valid applications.
    """
    if not isinstance(message, Mapping):
        raise InputError("the request must be a JSON object (a SeldonMessage)")
    return _Rows.of(message, max_rows).read(schema)


@dataclass(frozen=True)
class _Rows:
    """A message's applications as sent, walked once: lists of values (``data``, with its column
    ``names`` or in schema order) or objects (``jsonData``)."""

    rows: list[Any]
    names: list[str] | None
    objects: bool

    @classmethod
    def of(cls, message: Mapping[str, Any], max_rows: int) -> _Rows:
        forms = [key for key in ("data", "jsonData", "strData", "binData") if key in message]
        if len(forms) > 1:
            raise InputError(f"the request holds both {forms[0]!r} and {forms[1]!r}: send one of them")
        if "data" in message:
            data = message["data"]
            if not isinstance(data, Mapping):
                raise InputError("'data' must be an object holding 'ndarray' or 'tensor'")
            rows = _data_rows(data, "data", max_rows)
            _check_batch_size(len(rows), max_rows)
            return cls(rows, data.get("names") or None, objects=False)
        if "jsonData" in message:
            records = message["jsonData"]
            if isinstance(records, Mapping):
                records = [records]
            if not isinstance(records, list):
                raise InputError("'jsonData' must be an object or a list of objects")
            _check_batch_size(len(records), max_rows)
            return cls(records, None, objects=True)
        raise InputError("the request needs 'data' (with 'ndarray' or 'tensor') or 'jsonData'")

    def read(self, schema: FeatureSchema) -> tuple[np.ndarray, dict[str, list[str | None]]]:
        """The encoded rows and their groups (see :func:`read_message`)."""
        return schema.read_records(self.rows) if self.objects else schema.read_rows(self.rows, self.names)

    def entered(self, left_out: Sequence[str]) -> list[Any]:
        """Each application exactly as entered: an object of name -> value where the request names
        its columns (``names``, ``jsonData``), else the row's list of values; the ``left_out``
        fields (protected attributes) removed. Each is checked first
        (:func:`~loanxai.core.text.check_entered`: values of bounded size, text that is text): a
        400 names the row and column of one that is not."""
        if self.objects:
            check_entered(self.rows)
            return [{k: v for k, v in r.items() if k not in left_out} for r in self.rows]
        check_entered(self.rows, self.names)
        if not self.names:
            return [list(row) for row in self.rows]
        return [{k: v for k, v in zip(self.names, row) if k not in left_out} for row in self.rows]


@dataclass(frozen=True)
class DecisionRequest:
    """A prediction request read once, at the boundary, into what prediction, the principal
    reasons, the record and monitoring receive; every check is made here (a 400 naming the
    problem) before anything is decided or batched."""

    #: the applications encoded, float64, shape (n, n_features)
    X: np.ndarray
    #: protected attribute -> n group labels (None: not given)
    groups: dict[str, list[str | None]]
    #: each application as entered, its protected attributes left out (None for an explainer's
    #: made-up rows: they are never recorded)
    entered: list[Any] | None
    #: the lender's application ids (None each when the request gives none)
    application_ids: list[str | None]
    #: principal reasons asked per application (0: none)
    reasons: int
    #: ``decision`` (an applicant's) or ``explanation`` (an explainer's made-up rows)
    purpose: str
    #: the request id as sent (``meta.puid``; None: the classifier makes one up)
    puid: str | None
    #: ``meta.tags`` as sent (Seldon's own tools keep theirs there)
    tags: Mapping[str, Any]

    @property
    def sampling(self) -> bool:
        """Whether the rows are an explainer's samples, answered but never recorded."""
        return self.purpose == "explanation"


def read_decision_request(message: Any, schema: FeatureSchema, max_rows: int, default_reasons: int) -> DecisionRequest:
    """A SeldonMessage asking the classifier for decisions, read and checked once.

    ``meta.tags`` may hold ``reasons`` (true: ``default_reasons`` principal reasons per
    application; a number: up to that many, at most the number of features; false or 0: none),
    ``purpose`` (``decision``, the default, or ``explanation``) and ``application_ids`` (a list
    of strings, one per application, each one line of at most :data:`MAX_PUID_CHARACTERS`
    characters). Other tags are left alone: Seldon's own tools put theirs there
    (``seldon-batch-processor``: ``batch_id``, ...).
    """
    if not isinstance(message, Mapping):
        raise InputError("the request must be a JSON object (a SeldonMessage)")
    meta = request_meta(message)
    tags = _tags(meta)
    purpose = tags.get("purpose", PURPOSES[0])
    if purpose not in PURPOSES:
        raise InputError(f"prediction parameter 'purpose' must be one of: {', '.join(PURPOSES)}, got {purpose!r}")
    reasons = _reasons(tags.get("reasons", False), default_reasons, schema.n_features)
    rows = _Rows.of(message, max_rows)
    X, groups = rows.read(schema)
    entered = None if purpose == "explanation" else rows.entered(schema.protected)
    return DecisionRequest(X, groups, entered, _application_ids(tags, len(X)), reasons, purpose,
                           meta.get("puid") or None, tags)


@dataclass(frozen=True)
class Outcomes:
    """What a feedback tells: for each application, the classifier's decision, the decision it
    turned out to deserve (both bool arrays, shape (n,), True: approved) and its protected
    groups (attribute -> n labels, None: not given)."""

    predicted: np.ndarray
    truth: np.ndarray
    groups: dict[str, list[str | None]]


def read_feedback(feedback: Any, schema: FeatureSchema, max_rows: int, cutoff: float) -> Outcomes:
    """The outcomes in a Seldon feedback (``/api/v1.0/feedback``): ``response``, the classifier's
    answer (probabilities, shape (n, 2): approved when the second is at least ``cutoff``, as the
    classifier decided), ``truth``, one decision per application (``1`` or ``"approved"``, ``0``
    or ``"rejected"``, alone or in a one-element row), and optionally ``request``, the
    applications (with protected attributes: outcomes by group).

    Raises :class:`InputError` naming what is missing or malformed.
    """
    if not isinstance(feedback, Mapping):
        raise InputError("the feedback must be a JSON object with 'response' and 'truth'")
    for part, meaning in (("response", "the classifier's answer being judged"),
                          ("truth", "the decision each application deserved, 1/'approved' or 0/'rejected'")):
        if not isinstance(feedback.get(part), Mapping) or not isinstance(feedback[part].get("data"), Mapping):
            raise InputError(f"the feedback needs '{part}' with 'data' ({meaning})")
    answered = _data_rows(feedback["response"]["data"], "response.data", max_rows)
    _check_batch_size(len(answered), max_rows)
    names = feedback["response"]["data"].get("names") or list(CLASS_NAMES)
    if list(names) != list(CLASS_NAMES):
        raise InputError(f"'response.data.names' must be {list(CLASS_NAMES)}, as the classifier answers, got {names!r}")
    for i, row in enumerate(answered):
        if not (isinstance(row, list) and len(row) == 2
                and all(isinstance(p, Real) and not isinstance(p, bool) and 0 <= p <= 1 for p in row)):
            raise InputError(f"'response' row {i} must be the classifier's two probabilities, got {row!r}")
    truth = [_decision(value, i) for i, value in enumerate(_data_rows(feedback["truth"]["data"], "truth.data", max_rows))]
    if len(truth) != len(answered):
        raise InputError(f"'truth' holds {len(truth)} decisions for {len(answered)} answered applications")
    if feedback.get("request"):
        X, groups = read_message(feedback["request"], schema, max_rows)
        if len(X) != len(truth):
            raise InputError(f"'request' holds {len(X)} applications for {len(truth)} decisions in 'truth'")
    else:
        groups = {name: [None] * len(truth) for name in schema.groups}
    predicted = np.array([row[1] >= cutoff for row in answered], dtype=bool)
    return Outcomes(predicted, np.array(truth, dtype=bool), groups)


def _decision(value: Any, row: int) -> bool:
    """One truth value: 1 or "approved" is True, 0 or "rejected" False (also as [value])."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str) and value in CLASS_NAMES:
        return value == CLASS_NAMES[1]
    if isinstance(value, Real) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    raise InputError(f"'truth' row {row} must be 1 or 'approved', 0 or 'rejected', got {value!r}")


def explain_parameters(message: Mapping[str, Any], default_threshold: float, n_features: int) -> dict[str, Any]:
    """The explanation a request asks for (``meta.tags``): ``kind``, ``seed`` (default 0) and the
    kind's parameters (an anchor's ``threshold`` defaults to ``default_threshold``, a recourse's
    ``k`` to 3)."""
    tags = dict(_tags(request_meta(message)))
    tags.pop("application_ids", None)  # which recorded decision is explained: read by application_ids()
    kind = tags.pop("kind", "anchor")
    if kind not in EXPLAIN_KINDS:
        raise InputError(f"explain parameter 'kind' must be one of {', '.join(EXPLAIN_KINDS)}, got {kind!r}")
    unknown = [key for key in tags if key not in EXPLAIN_PARAMETERS]
    if unknown:
        raise InputError(f"unknown explain parameter {unknown[0]!r}; known: kind, " + ", ".join(EXPLAIN_PARAMETERS))
    parameters: dict[str, Any] = {"kind": kind, "seed": 0}
    parameters |= {"threshold": default_threshold} if kind == "anchor" else {"k": 3}
    for key, value in tags.items():
        number_type, low, high, applies_to = EXPLAIN_PARAMETERS[key]
        if applies_to not in (None, kind):
            raise InputError(f"explain parameter {key!r} applies to kind {applies_to!r}, not {kind!r}")
        high = n_features if high is None else high
        number = _finite(value)
        if number_type is int:
            valid = number and float(value).is_integer() and low <= value <= high
            wanted = f"an integer from {low} to {high}"
        else:
            valid = number and low < value <= high
            wanted = f"a number in ({low}, {high}]"
        if not valid:
            raise InputError(f"explain parameter {key!r} must be {wanted}, got {shown(value)}")
        parameters[key] = number_type(value)
    return parameters


def _reasons(value: Any, default_reasons: int, n_features: int) -> int:
    """The principal reasons ``meta.tags.reasons`` asks for per application."""
    if isinstance(value, bool):
        return default_reasons if value else 0
    if not (_finite(value) and float(value).is_integer() and 0 <= value <= n_features):
        raise InputError(f"prediction parameter 'reasons' must be true, false or an integer from 0 to {n_features}, "
                         f"got {shown(value)}")
    return int(value)


def _tags(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    """A message's ``meta.tags`` (empty when absent), given its ``meta``."""
    tags = meta.get("tags")
    if not isinstance(tags, (Mapping, type(None))):
        raise InputError("'meta.tags' must be an object of parameters")
    return tags or {}


def request_meta(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """A message's ``meta`` (empty when absent); a 400 when it, or its ``puid``, has the wrong type."""
    meta = message.get("meta")
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise InputError(f"'meta' must be an object (tags, puid), got {type(meta).__name__}")
    if meta.get("puid") not in (None, ""):  # none, or empty: the classifier makes one up
        check_text(meta["puid"], "'meta.puid'", MAX_PUID_CHARACTERS)
    return meta


def application_ids(message: Mapping[str, Any], n_rows: int) -> list[str | None]:
    """The lender's application ids of a message's ``n_rows`` applications, from
    ``meta.tags.application_ids`` (a list of strings, one per application, each one line of
    text at most :data:`MAX_PUID_CHARACTERS` long: :func:`~loanxai.core.text.check_text`); None
    for each when the message gives none."""
    return _application_ids(_tags(request_meta(message)), n_rows)


def _application_ids(tags: Mapping[str, Any], n_rows: int) -> list[str | None]:
    ids = tags.get("application_ids")
    if ids is None:
        return [None] * n_rows
    if not (isinstance(ids, list) and len(ids) == n_rows):
        count = "one string" if n_rows == 1 else f"{n_rows} strings (one per application)"
        raise InputError(f"'meta.tags.application_ids' must be a list of {count}, each of 1 to {MAX_PUID_CHARACTERS} "
                         "characters")
    for i, application_id in enumerate(ids):
        check_text(application_id, f"'meta.tags.application_ids' item {i}", MAX_PUID_CHARACTERS)
    if len(set(ids)) != n_rows:
        raise InputError("'meta.tags.application_ids' holds the same id twice")
    return list(ids)


def _finite(value: Any) -> bool:
    """A JSON number that is a finite float (an integer too large for one is not)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _data_rows(data: Mapping[str, Any], where: str, max_rows: int) -> list[Any]:
    """The rows of a SeldonMessage's ``data`` (``ndarray`` or ``tensor``), at most ``max_rows``."""
    if "ndarray" in data:
        rows = data["ndarray"]
        if not isinstance(rows, list):
            raise InputError(f"'{where}.ndarray' must be a list of rows")
        return rows
    if "tensor" in data:
        return _tensor_rows(data["tensor"], where, max_rows)
    raise InputError(f"'{where}' must hold 'ndarray' or 'tensor'")


def _tensor_rows(tensor: Any, where: str, max_rows: int) -> list[list[Any]]:
    if not isinstance(tensor, Mapping) or "shape" not in tensor or "values" not in tensor:
        raise InputError(f"'{where}.tensor' must hold 'shape' and 'values'")
    shape, values = tensor["shape"], tensor["values"]
    if not isinstance(shape, list) or len(shape) != 2 or not all(_finite(d) and float(d).is_integer() and d >= 0
                                                                  for d in shape):
        raise InputError(f"'{where}.tensor.shape' must be [rows, columns]")
    n_rows, n_cols = int(shape[0]), int(shape[1])
    _check_batch_size(n_rows, max_rows)  # before a row is built: [30000000, 0] holds no values
    if not isinstance(values, list) or len(values) != n_rows * n_cols:
        raise InputError(f"'{where}.tensor.values' must hold rows x columns = {n_rows * n_cols} numbers")
    return [values[i * n_cols : (i + 1) * n_cols] for i in range(n_rows)]


def _check_batch_size(n_rows: int, max_rows: int) -> None:
    if n_rows == 0:
        raise InputError("empty batch: the request holds no application")
    if n_rows > max_rows:
        raise InputError(f"batch of {n_rows} rows is larger than the limit of {max_rows} (LOAN_MAX_BATCH_ROWS)")

