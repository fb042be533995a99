"""The feature schema: the model's inputs in order, their kinds, and the category map.

Every part of the system (training, the explainer, both services, the clients) encodes an
application the same way: a float row in :attr:`FeatureSchema.feature_names` order, numeric
features as numbers and categorical features as integer codes, where a code is the index of
its label in the category map. Values arrive as the data holds them and are read by the one
rule of :mod:`loanxai.core.values`. Training builds the schema from the dataset description and
the data and stores it in the artifacts' manifests, so a service always decodes with the
schema its model was trained with; no feature name is written in code.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loanxai.core.values import ColumnReader
from loanxai.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CLASS_NAMES", "FeatureSchema", "plain_value"]

#: Output columns of the classifier: code 0 is "rejected", code 1 is "approved".
CLASS_NAMES: tuple[str, ...] = ("rejected", "approved")


def plain_value(value: Any) -> Any:
    """A JSON value: numpy numbers as Python ones, integral floats as ints."""
    if isinstance(value, (np.floating, float)) and float(value).is_integer():
        return int(value)
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class FeatureSchema:
    """Model inputs in order and, for each categorical one, its labels (code = index).

    Parameters
    ----------
    feature_names : sequence of str
        The model's inputs, in the order of an encoded row.
    category_map : mapping of str to sequence of str
        For each categorical feature (the others are numeric), its labels; a label's code is its index.
    nullable : collection of str
        Features that had missing values in the training data: a missing (null) value is
        accepted, as the missing-value category for a categorical feature or the training
        median (the pipeline's imputer) for a numeric one.
    missing_category : str
        The label a missing categorical value becomes.
    protected : mapping of str to sequence of str
        Protected attributes that are not model inputs, with their groups (labels). A request
        may carry them: they are validated and kept for monitoring and audit, never encoded.
    ranges : mapping of str to (low, high)
        The plausible values of each numeric feature; a value outside is refused.
    bands : mapping of str to sequence of float
        A numeric protected attribute's group edges (increasing): its groups are the bands.
    basis_inputs : mapping of str to sequence of str
        Protected attributes that are model inputs (age under the elderly rule, or a basis the
        description lets in as disparate treatment), with their groups.
    elderly : mapping of str to float
        Age as a model input: from this age on it never counts against an application
        (:mod:`loanxai.core.elderly`).
    ignored : collection of str
        Columns the dataset declares that this model does not use (the search dropped them, or
        the description excludes them): a request may carry them, as the description's example
        does; they are neither checked nor kept.
    raw_labels : mapping of str to mapping of str to str
        For a categorical column (feature or protected attribute), the description's ``labels``:
        raw value (a :func:`~loanxai.core.values.canonical` key) -> label. A request may give
        either.
    missing_markers : mapping of str to sequence of str
        Each column's missing markers (canonical keys): the description's, everywhere.
    """

    feature_names: tuple[str, ...]
    category_map: Mapping[str, tuple[str, ...]]
    nullable: frozenset[str] = field(default_factory=frozenset)
    missing_category: str = "Unknown"
    protected: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    bands: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    basis_inputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    elderly: Mapping[str, float] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    raw_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    missing_markers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check every value against its declaration."""
        object.__setattr__(self, "feature_names", tuple(self.feature_names))
        object.__setattr__(self, "nullable", frozenset(self.nullable))
        unknown = [name for name in [*self.category_map, *self.nullable] if name not in self.feature_names]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a feature of the schema ({', '.join(self.feature_names)})")
        both = [name for name in self.protected if name in self.feature_names]
        if both:
            raise ValueError(f"{both[0]!r} is a model input: only protected attributes that are not inputs are listed")
        object.__setattr__(self, "category_map", {k: tuple(v) for k, v in self.category_map.items()})
        if any(name not in self.feature_names for name in [*self.basis_inputs, *self.elderly]):
            raise ValueError("basis_inputs and elderly name model inputs")
        object.__setattr__(self, "protected", {k: tuple(v) for k, v in self.protected.items()})
        object.__setattr__(self, "ranges", {k: (float(v[0]), float(v[1])) for k, v in self.ranges.items()})
        object.__setattr__(self, "bands", {k: tuple(float(e) for e in v) for k, v in self.bands.items()})
        object.__setattr__(self, "basis_inputs", {k: tuple(v) for k, v in self.basis_inputs.items()})
        object.__setattr__(self, "elderly", {k: float(v) for k, v in self.elderly.items()})
        object.__setattr__(self, "ignored", tuple(self.ignored))
        if set(self.ignored) & set(self.feature_names) | set(self.ignored) & set(self.protected):
            raise ValueError("ignored columns are neither model inputs nor protected attributes")
        bounds = [self.ranges.get(n, (-np.inf, np.inf)) for n in self.feature_names]
        object.__setattr__(self, "_low", np.array([b[0] for b in bounds]))
        object.__setattr__(self, "_high", np.array([b[1] for b in bounds]))
        object.__setattr__(self, "raw_labels", {k: dict(v) for k, v in self.raw_labels.items()})
        object.__setattr__(self, "missing_markers", {k: tuple(v) for k, v in self.missing_markers.items()})
        object.__setattr__(self, "_readers", {name: self._reader(name) for name in (*self.feature_names, *self.protected)})

    def _reader(self, name: str) -> ColumnReader:
        """The reader of a feature's or protected attribute's values; a protected attribute's
        missing value is NaN (not given)."""
        labels = self.category_map.get(name) or (self.protected.get(name) if name not in self.bands else None)
        if name in self.protected:
            missing: float | None = math.nan
        elif name not in self.nullable:
            missing = None
        else:
            missing = float(labels.index(self.missing_category)) if labels else math.nan
        return ColumnReader(name, labels, self.raw_labels.get(name, {}), self.missing_markers.get(name, ()), missing,
                            self.ranges.get(name, (-math.inf, math.inf)))

    @property
    def n_features(self) -> int:
        """How many model inputs."""
        return len(self.feature_names)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Everything a request may name: the features, the protected attributes that are not
        inputs, then the ignored columns."""
        return self.feature_names + tuple(self.protected) + self.ignored

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Every declared protected attribute, model input or not, and its groups: what decisions
        are counted and judged by."""
        return {**self.protected, **self.basis_inputs}

    def group_labels(self, name: str, values: Sequence[Any]) -> list[str | None]:
        """Each value's group of the declared attribute ``name`` (a numeric one's band; None:
        missing). Values as in the data: labels, or numbers for a banded attribute."""
        if name not in self.bands:
            return [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]
        labels = self.groups[name]
        numbers = np.asarray(values, dtype=np.float64)
        index = np.searchsorted(self.bands[name], numbers, side="right")
        return [None if math.isnan(x) else labels[i] for x, i in zip(numbers, index)]

    def input_groups(self, X: np.ndarray) -> dict[str, list[str | None]]:
        """The groups of the declared attributes that are model inputs, from encoded rows ``X``,
        shape (n, n_features)."""
        groups = {}
        for name in self.basis_inputs:
            column = X[:, self.feature_names.index(name)]
            if name in self.category_map:
                groups[name] = [self.category_map[name][int(code)] for code in column]
            else:
                groups[name] = self.group_labels(name, column)
        return groups

    @property
    def numeric_features(self) -> tuple[str, ...]:
        """The numeric inputs, in order."""
        return tuple(name for name in self.feature_names if name not in self.category_map)

    @property
    def categorical_indices(self) -> list[int]:
        """Positions of the categorical inputs in an encoded row."""
        return [i for i, name in enumerate(self.feature_names) if name in self.category_map]

    @property
    def numeric_indices(self) -> list[int]:
        """Positions of the numeric inputs in an encoded row."""
        return [i for i, name in enumerate(self.feature_names) if name not in self.category_map]

    def alibi_category_map(self) -> dict[int, list[str]]:
        """The category map keyed by column index, as alibi's ``categorical_names`` wants."""
        return {i: list(self.category_map[name]) for i, name in enumerate(self.feature_names) if name in self.category_map}

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form."""
        return {
            "feature_names": list(self.feature_names),
            "numeric_features": list(self.numeric_features),
            "category_map": {k: list(v) for k, v in self.category_map.items()},
            "nullable": sorted(self.nullable),
            "missing_category": self.missing_category,
            "protected": {k: list(v) for k, v in self.protected.items()},
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            "bands": {k: list(v) for k, v in self.bands.items()},
            "basis_inputs": {k: list(v) for k, v in self.basis_inputs.items()},
            "elderly": dict(self.elderly),
            "ignored": list(self.ignored),
            "raw_labels": {k: dict(v) for k, v in self.raw_labels.items()},
            "missing_markers": {k: list(v) for k, v in self.missing_markers.items()},
        }

    @classmethod
    def from_dict(cls, content: Mapping[str, Any]) -> FeatureSchema:
        """Read it from its JSON form."""
        return cls(
            feature_names=tuple(content["feature_names"]),
            category_map=content["category_map"],
            nullable=frozenset(content.get("nullable", ())),
            missing_category=content.get("missing_category", "Unknown"),
            protected=content.get("protected", {}),
            ranges=content.get("ranges", {}),
            bands=content.get("bands", {}),
            basis_inputs=content.get("basis_inputs", {}),
            elderly=content.get("elderly", {}),
            ignored=tuple(content.get("ignored", ())),
            raw_labels=content.get("raw_labels", {}),
            missing_markers=content.get("missing_markers", {}),
        )

    # --- encoding -------------------------------------------------------------------------

    def read_rows(
        self, rows: Sequence[Sequence[Any]], names: Sequence[str] | None = None
    ) -> tuple[np.ndarray, dict[str, list[str | None]]]:
        """Encode rows given as lists of values, and read the protected groups they carry.

        Parameters
        ----------
        rows : sequence of sequences, shape (n_rows, n_columns)
            Values in the order of ``names``, as the data holds them (:mod:`loanxai.core.values`).
        names : sequence of str, optional
            Column names, any order: every feature, and any protected attribute that is not
            a model input or ignored column. Default: the features in :attr:`feature_names` order,
            and then (positional rows) a number in a categorical column is its category's index.

        Returns
        -------
        X : ndarray of float64, shape (n_rows, n_features), in :attr:`feature_names` order.
        groups : dict of declared attribute (:attr:`groups`) -> list of n_rows labels (None: not given).
        """
        order, extra = self._column_order(names)
        width = len(order) if names is None else len(names)
        for i, row in enumerate(rows):
            if not isinstance(row, (list, tuple)):
                raise InputError(f"row {i} is not a list of feature values")
            if len(row) != width:
                raise InputError(f"wrong number of features in row {i}: got {len(row)}, expected {width}")
        positional = names is None
        matrix = self._fast_encode(rows, order, width) if positional else None
        if matrix is None:
            matrix = self._encode_columns([[row[j] for row in rows] for _, j in order], len(rows), positional)
        groups = self._no_groups(len(rows))
        for name, j in extra:
            groups[name] = self._groups(name, [row[j] for row in rows])
        return matrix, groups | self.input_groups(matrix)

    def encode_rows(self, rows: Sequence[Sequence[Any]], names: Sequence[str] | None = None) -> np.ndarray:
        """:meth:`read_rows` without the groups: ndarray of float64, shape (n_rows, n_features)."""
        return self.read_rows(rows, names)[0]

    def read_records(self, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, dict[str, list[str | None]]]:
        """Encode applications given as ``{name: value}`` objects (every feature, optionally
        protected attributes; values as the data holds them), and read their protected groups.

        Returns X, an ndarray of float64, shape (n_records, n_features), and a dict of declared
        attribute (:attr:`groups`) -> list of n_records labels (None: not given).
        """
        for i, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InputError(f"row {i} is not an object of feature names to values")
            unknown = [key for key in record if key not in self.field_names]
            if unknown:
                raise InputError(f"unknown feature {unknown[0]!r} in row {i}; known features: " + ", ".join(self.field_names))
            missing = [name for name in self.feature_names if name not in record]
            if missing:
                raise InputError(f"missing feature {missing[0]!r} in row {i}")
        X = self._encode_columns([[r[name] for r in records] for name in self.feature_names], len(records), False)
        groups = {name: self._groups(name, [r.get(name) for r in records]) for name in self.protected}
        return X, groups | self.input_groups(X)

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """:meth:`read_records` without the groups: ndarray of float64, shape (n_records, n_features)."""
        return self.read_records(records)[0]

    def read_column(self, name: str, values: Sequence[Any], where: Callable[[int], str]) -> tuple[np.ndarray, dict[int, str]]:
        """A named column of values (a feature's, or a protected attribute's codes), read by the one
        rule: the inputs, shape (n,), NaN where refused, and each refused value's message by
        position, ``where(i)`` wording the position (the file scorer: ``on line 5``)."""
        return self._readers[name].read_column(values, where)  # type: ignore[attr-defined]

    def encode_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode a cleaned data table (labels, NaN for missing): ndarray of float64, shape (n_rows, n_features)."""
        import pandas as pd  # training, the report and the tools: the services never encode frames

        columns = []
        for name in self.feature_names:
            if name in self.category_map:
                codes = pd.Categorical(frame[name], categories=self.category_map[name]).codes
                if (codes < 0).any():
                    raise InputError(f"{name!r} holds a value outside its category map: {frame[name][codes < 0].iloc[0]!r}")
                columns.append(codes.astype(np.float64))
            else:
                columns.append(frame[name].to_numpy(dtype=np.float64))
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))

    def decode(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        """Turn encoded rows, shape (n_rows, n_features), back into ``{feature: value}`` objects
        (a missing numeric value becomes None)."""
        records = []
        for row in np.atleast_2d(matrix):
            record: dict[str, Any] = {}
            for name, value in zip(self.feature_names, row):
                if name in self.category_map:
                    record[name] = self.category_map[name][int(value)]
                elif math.isnan(value):
                    record[name] = None
                else:
                    record[name] = plain_value(float(value))
            records.append(record)
        return records

    def _column_order(self, names: Sequence[str] | None) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """(feature name, position in the incoming row) for each feature in schema order, and
        (protected attribute, position) for each protected attribute the row carries."""
        if names is None:
            return [(name, j) for j, name in enumerate(self.feature_names)], []
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise InputError("names must be a list of feature names")
        unknown = [n for n in names if n not in self.field_names]
        if unknown:
            raise InputError(f"unknown feature {unknown[0]!r}; known features: " + ", ".join(self.field_names))
        if len(set(names)) != len(names):
            raise InputError("names lists a feature twice")
        missing = [n for n in self.feature_names if n not in names]
        if missing:
            raise InputError(f"missing feature {missing[0]!r} in names")
        position = {name: j for j, name in enumerate(names)}
        features = [(name, position[name]) for name in self.feature_names]
        return features, [(n, position[n]) for n in self.protected if n in position]

    def _no_groups(self, n_rows: int) -> dict[str, list[str | None]]:
        return {name: [None] * n_rows for name in self.protected}

    def _encode_columns(self, columns: list[list[Any]], n_rows: int, positional: bool) -> np.ndarray:
        """The features' columns of values, in :attr:`feature_names` order, read into an encoded
        matrix, shape (n_rows, n_features); the first refused value (by row, then feature) raises."""
        matrix = np.empty((n_rows, self.n_features), dtype=np.float64)
        first: tuple[int, int, str] | None = None
        for j, (name, values) in enumerate(zip(self.feature_names, columns)):
            matrix[:, j], problems = self._readers[name].read_column(values, _in_row, positional)  # type: ignore[attr-defined]
            if problems:
                i = min(problems)
                first = min(first or (i, j, problems[i]), (i, j, problems[i]))
        if first is not None:
            raise InputError(first[2])
        return matrix

    def _groups(self, name: str, values: list[Any]) -> list[str | None]:
        """The group labels of a protected attribute's values (None: not given): a label or raw
        value, or for a banded attribute a number."""
        codes, problems = self._readers[name].read_column(values, _in_row)  # type: ignore[attr-defined]
        if problems:
            i = min(problems)
            message = problems[i]
            if name in self.bands:
                message = (f"{name!r} in row {i} must be a number (its groups are bands: "
                           f"{', '.join(self.protected[name])}), got {values[i]!r}")
            raise InputError(message)
        if name in self.bands:
            return self.group_labels(name, codes)
        return [None if math.isnan(code) else self.protected[name][int(code)] for code in codes]

    def _fast_encode(self, rows: Sequence[Sequence[Any]], order: list[tuple[str, int]], width: int) -> np.ndarray | None:
        """Vectorised path for all-numeric positional rows (the explainer's batches); None if any
        value needs the per-value path (a label, a bad value), which also words the error."""
        # numpy would also parse numeric strings and booleans: take plain numbers only
        if not all(type(v) is float or type(v) is int for row in rows for v in row):
            return None
        try:
            raw = np.array(rows, dtype=np.float64).reshape(len(rows), width)
        except OverflowError:  # an integer too large for a float: the per-value path says so
            return None
        matrix = raw[:, [j for _, j in order]]
        if not (np.isfinite(matrix).all() and (matrix >= self._low).all() and (matrix <= self._high).all()):  # type: ignore[attr-defined]
            return None
        for index in self.categorical_indices:
            codes = matrix[:, index]
            n_labels = len(self.category_map[self.feature_names[index]])
            if not (np.all(codes == np.floor(codes)) and codes.min(initial=0) >= 0 and codes.max(initial=0) < n_labels):
                return None
        for j, name in enumerate(self.feature_names):
            markers = self._readers[name].number_markers  # type: ignore[attr-defined]
            if markers and np.isin(matrix[:, j], list(markers)).any():
                return None  # a missing marker: the per-value path reads it as missing
        return matrix


def _in_row(i: int) -> str:
    return f"in row {i}"
