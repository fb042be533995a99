"""How a value in a request or a file becomes a model input: the one rule, in every path.

A value is the data's own value, as in the source file: for a categorical column a label, or
a raw code the description's ``labels`` turn into one (``2``, ``"2"`` and ``"skilled"`` are the
same value when the description maps 2 to skilled); for a numeric column a number (or a
numeric string, as a CSV file holds it). The description's missing markers mean missing, as
they do at training. Only in positional rows (``data`` without ``names``: the encoded form the
explainer sends) is a number in a categorical column a category's *index* in the category map.
Strings are compared after stripping spaces; numbers compare by value (``1`` matches ``"1.0"``).

:class:`ColumnReader` applies the rule to one column; the classifier, the explainer, the file
scorer and the clients all read through it (via :class:`loanxai.core.schema.FeatureSchema`), so
they accept the same values and refuse the others in the same words.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

__all__ = ["ColumnReader", "Refused", "canonical", "shown"]


def canonical(value: Any) -> str:
    """The key a raw value is compared by: numbers by value (``"1"``, ``"1.0"`` and ``1`` agree),
    the rest as text."""
    text = str(value)
    try:
        number = float(text)
    except (ValueError, OverflowError):
        return text
    return repr(number) if math.isfinite(number) else text


class Refused(str):
    """Why a value is refused: a message with ``{where}`` (``in row 3``, ``on line 5``) to fill in."""


class ColumnReader:
    """Reads the values of one column into model inputs (see the module's rule).

    Parameters
    ----------
    name : the column's name.
    labels : a categorical column's labels (code = index); None for a numeric column.
    raw_labels : raw value (a :func:`canonical` key) -> label, from the description's ``labels``.
    markers : the missing markers (:func:`canonical` keys) of this column.
    missing : the code (categorical) or value (numeric: NaN, the pipeline imputes) a missing
        value becomes; None when a missing value is refused.
    bounds : a numeric column's plausible values (low, high).

    Raises ValueError when a value could mean two things: a raw code that is also another
    label's value, or a missing marker that is also a value.
    """

    def __init__(self, name: str, labels: Sequence[str] | None, raw_labels: Mapping[str, str], markers: Sequence[str],
                 missing: float | None, bounds: tuple[float, float] = (-math.inf, math.inf)) -> None:
        self.name = name
        self.labels = tuple(labels) if labels is not None else None
        self.markers = frozenset(markers)
        self.missing = missing
        self.bounds = bounds
        self.number_markers = {float(k) for k in self.markers if _is_number(k)}
        self._codes: dict[str, float] = {}
        self._keys: dict[str, float] = {}
        if self.labels is None:
            return
        self._codes = {label: float(code) for code, label in enumerate(self.labels)}
        keys = {canonical(label): float(code) for code, label in enumerate(self.labels)}
        for raw, label in raw_labels.items():
            if label not in self._codes:
                continue  # a label the data never holds
            if keys.get(raw, self._codes[label]) != self._codes[label]:
                raise ValueError(f"{name!r}: the raw value {_shown_key(raw)} means {label!r} (labels) and is also the label "
                                 f"{self.labels[int(keys[raw])]!r}: rename one")
            keys[raw] = self._codes[label]
        both = sorted(k for k in self.markers if k in keys and self.labels[int(keys[k])] != _missing_label(self))
        if both:
            raise ValueError(f"{name!r}: {both[0]!r} is both a missing marker and a value")
        self._keys = keys
        self._raw = sorted((k for k, label in raw_labels.items() if label in self._codes), key=_code_order)

    @property
    def categorical(self) -> bool:
        """Whether the column holds categories."""
        return self.labels is not None

    def read(self, value: Any, positional: bool = False) -> float | Refused:
        """The model input for one value, or why it is refused."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return self._missing()
        if isinstance(value, str):
            text = value.strip()
            if canonical(text) in self.markers:
                return self._missing()
            return self._category(text) if self.categorical else self._number_text(value, text)
        if isinstance(value, bool) or not isinstance(value, Real):
            if not self.categorical:
                return Refused(f"non-numeric value {shown(value)} for numeric feature {self.name!r} {{where}}")
            return Refused(f"wrong type for {self.name!r} {{where}}: expected a category label or code, "
                           f"got {type(value).__name__}")
        try:
            number = float(value)
        except OverflowError:
            return Refused(f"value {shown(value)} for {self.name!r} {{where}} is too large")
        if self.categorical and positional:
            return self._index(value, number)
        if number in self.number_markers:
            return self._missing()
        if self.categorical:
            return self._category(canonical(number), value)
        return self._number(value, number)

    def read_column(self, values: Sequence[Any], where: Callable[[int], str],
                    positional: bool = False) -> tuple[np.ndarray, dict[int, str]]:
        """Model inputs for a column of values, shape (n,), and the message of each refused one
        (NaN in the inputs), by position; ``where(i)`` words a position (``in row 3``)."""
        out = np.empty(len(values), dtype=np.float64)
        problems: dict[int, str] = {}
        seen: dict[tuple[type, Any], float | Refused] = {}
        for i, value in enumerate(values):
            try:
                key = (type(value), value)
                result = seen.get(key)
                if result is None:
                    result = seen[key] = self.read(value, positional)
            except TypeError:  # unhashable (a list): read it each time
                result = self.read(value, positional)
            if isinstance(result, Refused):
                problems[i] = result.replace("{where}", where(i))
                out[i] = math.nan
            else:
                out[i] = result
        return out, problems

    def _missing(self) -> float | Refused:
        if self.missing is None:
            return Refused(f"missing value for {self.name!r} {{where}}")
        return self.missing

    def _category(self, key: str, value: Any = None) -> float | Refused:
        code = self._codes.get(key) if value is None else None
        if code is None:
            code = self._keys.get(canonical(key))
        if code is not None:
            return code
        given = key if value is None else value
        codes = f" (or their raw values: {', '.join(map(_shown_key, self._raw))})" if self._raw else ""
        return Refused(f"unknown category {shown(given)} for {self.name!r} {{where}}; expected one of: "
                       + ", ".join(self.labels) + codes)

    def _index(self, value: Any, number: float) -> float | Refused:
        if number.is_integer() and 0 <= number < len(self.labels):
            return number
        return Refused(f"unknown category code {shown(value)} for {self.name!r} {{where}}; in rows without names a "
                       f"number is a category's index, 0 to {len(self.labels) - 1}")

    def _number_text(self, value: str, text: str) -> float | Refused:
        refused = Refused(f"non-numeric value {shown(value)} for numeric feature {self.name!r} {{where}}")
        if "_" in text:  # Python's float() reads 1_000; a data file's number never has one
            return refused
        try:
            number = float(text)
        except ValueError:
            return refused
        return self._number(value, number)

    def _number(self, value: Any, number: float) -> float | Refused:
        if not math.isfinite(number):
            return Refused(f"non-finite value {shown(value)} for {self.name!r} {{where}}")
        low, high = self.bounds
        if not low <= number <= high:
            return Refused(f"value {shown(value)} for {self.name!r} {{where}} is outside its plausible range "
                           f"[{low:g}, {high:g}]")
        return number


def _is_number(key: str) -> bool:
    try:
        return math.isfinite(float(key))
    except ValueError:
        return False


def _code_order(key: str) -> tuple[int, float, str]:
    """Raw values in order: numbers by value, then text."""
    return (0, float(key), "") if _is_number(key) else (1, 0.0, key)


def _shown_key(key: str) -> str:
    """A raw value as the file holds it: ``2`` rather than its key ``2.0``."""
    return str(int(float(key))) if _is_number(key) and float(key).is_integer() else key


def _missing_label(reader: ColumnReader) -> str | None:
    return reader.labels[int(reader.missing)] if reader.missing is not None and reader.labels else None


def shown(value: Any) -> str:
    """A client's value as an error message shows it: a bounded prefix (a huge integer by its
    size, not its 400 digits)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"
