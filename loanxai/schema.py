"""The feature schema: names, order, numeric features and the category map.

Every part of the system (training, the explainer, both services, the clients) encodes an
application the same way: a float row in :data:`FEATURE_NAMES` order, numeric features as
numbers and categorical features as integer codes, where a code is the index of its label
in the category map. The category map is built from the training data and stored in the
artifacts' manifests, so a service always decodes with the map its model was trained with.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "age",
    "workclass",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "ethnicity",
    "gender",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
)
NUMERIC_FEATURES: tuple[str, ...] = (
    "age",
    "education-num",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(
    name for name in FEATURE_NAMES if name not in NUMERIC_FEATURES
)
#: Output columns of the classifier: code 0 is "rejected", code 1 is "approved".
CLASS_NAMES: tuple[str, ...] = ("rejected", "approved")
#: The census marks unknown values with "?"; we keep them as a category of their own.
UNKNOWN_CATEGORY = "Unknown"


class InputError(ValueError):
    """An application does not fit the feature schema; the message names the problem."""


@dataclass(frozen=True)
class FeatureSchema:
    """Feature names in order and, for each categorical feature, its labels (code = index).

    Parameters
    ----------
    category_map : mapping of str to sequence of str
        For each name in :data:`CATEGORICAL_FEATURES`, its labels; a label's code is its index.
    """

    category_map: Mapping[str, tuple[str, ...]]
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def __post_init__(self) -> None:
        missing = [name for name in CATEGORICAL_FEATURES if name not in self.category_map]
        if missing or set(self.category_map) - set(CATEGORICAL_FEATURES):
            raise ValueError(f"category map must cover exactly {CATEGORICAL_FEATURES}")
        object.__setattr__(
            self, "category_map", {k: tuple(v) for k, v in self.category_map.items()}
        )
        object.__setattr__(
            self,
            "_codes",
            {k: {label: code for code, label in enumerate(v)} for k, v in self.category_map.items()},
        )

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, name in enumerate(self.feature_names) if name in self.category_map]

    @property
    def numeric_indices(self) -> list[int]:
        return [i for i, name in enumerate(self.feature_names) if name not in self.category_map]

    def alibi_category_map(self) -> dict[int, list[str]]:
        """The category map keyed by column index, as alibi's ``categorical_names`` wants."""
        return {
            i: list(self.category_map[name])
            for i, name in enumerate(self.feature_names)
            if name in self.category_map
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "numeric_features": [n for n in self.feature_names if n not in self.category_map],
            "category_map": {k: list(v) for k, v in self.category_map.items()},
        }

    @classmethod
    def from_dict(cls, content: Mapping[str, Any]) -> "FeatureSchema":
        names = tuple(content["feature_names"])
        if names != FEATURE_NAMES:
            raise ValueError(f"artifact feature names {names} differ from {FEATURE_NAMES}")
        return cls(category_map=content["category_map"], feature_names=names)

    # --- encoding -------------------------------------------------------------------------

    def encode_rows(
        self, rows: Sequence[Sequence[Any]], names: Sequence[str] | None = None
    ) -> np.ndarray:
        """Encode rows given as lists of values.

        Parameters
        ----------
        rows : sequence of sequences, shape (n_rows, n_features)
            Values in the order of ``names``; categorical values as labels or integer codes.
        names : sequence of str, optional
            Column names, any order; default :attr:`feature_names` order.

        Returns
        -------
        ndarray of float64, shape (n_rows, n_features), in :attr:`feature_names` order.
        """
        order = self._column_order(names)
        for i, row in enumerate(rows):
            if not isinstance(row, (list, tuple)):
                raise InputError(f"row {i} is not a list of feature values")
            if len(row) != len(order):
                raise InputError(
                    f"wrong number of features in row {i}: got {len(row)}, expected {len(order)}"
                )
        matrix = self._fast_encode(rows, order)
        if matrix is not None:
            return matrix
        return np.array(
            [[self._encode_value(name, row[j], i) for name, j in order] for i, row in enumerate(rows)],
            dtype=np.float64,
        )

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode applications given as ``{feature name: value}`` objects.

        Returns an ndarray of float64, shape (n_records, n_features).
        """
        encoded = []
        for i, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InputError(f"row {i} is not an object of feature names to values")
            unknown = [key for key in record if key not in self.feature_names]
            if unknown:
                raise InputError(
                    f"unknown feature {unknown[0]!r} in row {i}; known features: "
                    + ", ".join(self.feature_names)
                )
            missing = [name for name in self.feature_names if name not in record]
            if missing:
                raise InputError(f"missing feature {missing[0]!r} in row {i}")
            encoded.append([self._encode_value(name, record[name], i) for name in self.feature_names])
        return np.array(encoded, dtype=np.float64).reshape(len(encoded), len(self.feature_names))

    def decode(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        """Turn encoded rows, shape (n_rows, n_features), back into ``{feature: value}`` objects."""
        records = []
        for row in np.atleast_2d(matrix):
            record: dict[str, Any] = {}
            for name, value in zip(self.feature_names, row):
                if name in self.category_map:
                    record[name] = self.category_map[name][int(value)]
                else:
                    record[name] = int(value) if float(value).is_integer() else float(value)
            records.append(record)
        return records

    def _column_order(self, names: Sequence[str] | None) -> list[tuple[str, int]]:
        """(feature name, position in the incoming row) for each feature in schema order."""
        if names is None:
            return [(name, j) for j, name in enumerate(self.feature_names)]
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise InputError("names must be a list of feature names")
        unknown = [n for n in names if n not in self.feature_names]
        if unknown:
            raise InputError(
                f"unknown feature {unknown[0]!r}; known features: " + ", ".join(self.feature_names)
            )
        if len(set(names)) != len(names):
            raise InputError("names lists a feature twice")
        missing = [n for n in self.feature_names if n not in names]
        if missing:
            raise InputError(f"missing feature {missing[0]!r} in names")
        position = {name: j for j, name in enumerate(names)}
        return [(name, position[name]) for name in self.feature_names]

    def _fast_encode(self, rows: Sequence[Sequence[Any]], order: list[tuple[str, int]]) -> np.ndarray | None:
        """Vectorised path for all-numeric rows (the explainer's batches); None if any value
        needs the per-value path (a label, a bad value), which also words the error."""
        # numpy would also parse numeric strings and booleans: take plain numbers only
        if not all(type(v) is float or type(v) is int for row in rows for v in row):
            return None
        raw = np.array(rows, dtype=np.float64).reshape(len(rows), len(order))
        matrix = raw[:, [j for _, j in order]]
        if not np.isfinite(matrix).all():
            return None
        for index in self.categorical_indices:
            codes = matrix[:, index]
            n_labels = len(self.category_map[self.feature_names[index]])
            if not (np.all(codes == np.floor(codes)) and codes.min(initial=0) >= 0 and codes.max(initial=0) < n_labels):
                return None
        return matrix

    def _encode_value(self, name: str, value: Any, row: int) -> float:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise InputError(f"missing value for {name!r} in row {row}")
        if name in self.category_map:
            return self._encode_category(name, value, row)
        if isinstance(value, bool) or not isinstance(value, Real):
            raise InputError(
                f"non-numeric value {value!r} for numeric feature {name!r} in row {row}"
            )
        if not math.isfinite(value):
            raise InputError(f"non-finite value {value!r} for {name!r} in row {row}")
        return float(value)

    def _encode_category(self, name: str, value: Any, row: int) -> float:
        labels = self.category_map[name]
        if isinstance(value, str):
            code = self._codes[name].get(value.strip())  # type: ignore[attr-defined]
            if code is None:
                raise InputError(
                    f"unknown category {value!r} for {name!r} in row {row}; expected one of: "
                    + ", ".join(labels)
                )
            return float(code)
        if isinstance(value, bool) or not isinstance(value, Real):
            raise InputError(
                f"wrong type for {name!r} in row {row}: expected a category label or code, "
                f"got {type(value).__name__}"
            )
        if not float(value).is_integer() or not 0 <= value < len(labels):
            raise InputError(
                f"unknown category code {value!r} for {name!r} in row {row}; "
                f"valid codes are 0 to {len(labels) - 1}"
            )
        return float(value)
