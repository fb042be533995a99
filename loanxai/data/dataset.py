"""A described dataset: its source file read, cleaned, checked and split (no network needed).

:func:`load_dataset` turns a :class:`~loanxai.data.description.Description` into training and
held-out tables with one column per feature and protected attribute (categorical values as
their labels, missing numeric values as NaN) and a boolean :data:`LABEL` column. Bad data
stops it with a :class:`DataError` naming the file, the column and the first rows.
"""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import logging
import lzma
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loanxai.core.manifest import ClassifierManifest, sha256_file
from loanxai.core.schema import FeatureSchema, plain_value
from loanxai.data.description import CATEGORICAL, LABEL, Column, Description, canonical, parse_description
from loanxai.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["Dataset", "build_schema", "group_column", "load_dataset", "load_trained_dataset", "plausible_range",
           "read_table", "recourse_rules", "split"]

#: how many example rows or values an error message names
N_EXAMPLES = 5


@dataclass
class Dataset:
    """Training and held-out rows of a described dataset, and the schema built from them."""

    description: Description
    train: pd.DataFrame
    test: pd.DataFrame
    schema: FeatureSchema
    #: sha256 of each source file, by path
    source_sha256: dict[str, str]

    @property
    def frame(self) -> pd.DataFrame:
        """All rows, training first."""
        return pd.concat([self.train, self.test], ignore_index=True)


def load_dataset(description: Description) -> Dataset:
    """Read, clean, check and split the data ``description`` names."""
    table = read_table(description.source, description)
    if description.test_source is not None:
        train, test = table, read_table(description.test_source, description)
    else:
        train, test = split(table, description)
    _check_rows(train, test, description)
    schema = build_schema(pd.concat([train, test], ignore_index=True), description)
    sources = {str(path): sha256_file(path) for path in description.sources()}
    logger.info("dataset %s: %d training and %d held-out rows, %d features, %.1f%% approved",
                description.name, len(train), len(test), schema.n_features, 100 * train[LABEL].mean())
    return Dataset(description, train, test, schema, sources)


def load_trained_dataset(manifest: ClassifierManifest) -> Dataset:
    """The dataset a classifier was trained on, from its manifest: the recorded description, the
    same source files (checked by sha256), the same split, and the schema of the model's inputs
    (the search's choice), rebuilt and checked against the artifacts'."""
    record = manifest.dataset
    description = parse_description(record.description, record.description_path)
    for path, expected in record.sources.items():
        actual = sha256_file(Path(path)) if Path(path).is_file() else "missing"
        if actual != expected:
            raise DataError(f"{path} changed since training (sha256 {expected} then, {actual} now): retrain, "
                            f"or restore the file the model was trained on")
    dataset = load_dataset(description)
    schema = build_schema(dataset.frame, description, inputs=manifest.schema.feature_names)
    if schema != manifest.schema:
        raise DataError(f"the schema rebuilt from {description.path} differs from the artifacts' schema: retrain")
    return replace(dataset, schema=schema)


def read_table(path: Path, description: Description) -> pd.DataFrame:
    """The cleaned table of ``path``: one column per feature and protected attribute, and :data:`LABEL`."""
    raw = _read_csv(path, description)
    columns = {column.name: column for column in description.columns}
    needed = [*columns, description.label_column]
    missing = [name for name in needed if name not in raw.columns]
    if missing:
        roles = {**{c: "feature" for c in description.feature_names},
                 **{p: "protected attribute" for p in description.protected if p not in description.feature_names},
                 description.label_column: "label"}
        named = ", ".join(f"{name!r} ({roles[name]})" for name in missing)
        raise DataError(f"{path}: column(s) {named} not found; columns found: {', '.join(map(str, raw.columns))}")
    text = {name: (raw[name].str.strip() if description.strip else raw[name]) for name in needed}
    frame = pd.DataFrame({name: _clean(text[name], column, description, path) for name, column in columns.items()})
    frame[LABEL] = _decisions(text[description.label_column], description, path)
    return _drop_missing(frame, description, path)


def split(frame: pd.DataFrame, description: Description) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic shuffle with the description's seed; the last rows are held out."""
    n_test = description.test_rows or int(round(description.test_fraction * len(frame)))
    if not 0 < n_test < len(frame):
        raise DataError(f"{description.path}: split: holding out {n_test} of {len(frame)} rows leaves "
                        + ("no training rows" if n_test else "no held-out rows"))
    shuffled = frame.sample(frac=1.0, random_state=description.seed).reset_index(drop=True)
    n_train = len(frame) - n_test
    return shuffled.iloc[:n_train].reset_index(drop=True), shuffled.iloc[n_train:].reset_index(drop=True)


def build_schema(frame: pd.DataFrame, description: Description, inputs: Sequence[str] | None = None) -> FeatureSchema:
    """The feature schema of a model with ``inputs`` (default: the description's model inputs),
    built from ``frame``: each categorical input's labels and each protected attribute's groups
    (sorted labels, or a numeric attribute's bands); inputs with missing values are nullable; the
    declared features that are not among ``inputs`` are ignored in requests."""
    columns = {c.name: c for c in description.columns}
    inputs = list(description.feature_names if inputs is None else inputs)
    declared = description.protected

    def groups(name: str) -> tuple[str, ...]:
        return declared[name].groups or tuple(sorted(frame[name].dropna().unique()))

    served = [*inputs, *(n for n in declared if n not in inputs)]
    try:
        return FeatureSchema(
            feature_names=inputs,
            category_map={n: tuple(sorted(frame[n].unique())) for n in inputs if columns[n].kind == CATEGORICAL},
            nullable=frozenset(n for n in inputs if _had_missing(frame[n], columns[n], description)),
            missing_category=description.missing_category,
            protected={n: groups(n) for n in declared if n not in inputs},
            ranges={n: plausible_range(frame[n], columns[n]) for n in inputs if columns[n].kind != CATEGORICAL},
            bands={n: p.bands for n, p in declared.items() if p.bands},
            basis_inputs={n: groups(n) for n in declared if n in inputs},
            elderly={n: declared[n].elderly for n in inputs if n in declared and declared[n].elderly is not None},
            ignored=tuple(c.name for c in description.features if c.name not in inputs and c.name not in declared),
            raw_labels={n: columns[n].labels for n in served if columns[n].labels},
            missing_markers={n: tuple(sorted({*description.missing_markers, *columns[n].missing_markers}))
                             for n in served},
        )
    except ValueError as error:  # a value that could mean two things
        raise DataError(f"{description.path}: {error}") from None


def group_column(frame: pd.DataFrame, schema: FeatureSchema, attribute: str) -> pd.Series:
    """Each row's group of the declared ``attribute`` (a numeric one's band), as labels."""
    return pd.Series(schema.group_labels(attribute, frame[attribute].tolist()), index=frame.index, name=attribute)


def plausible_range(values: pd.Series, column: Column) -> tuple[float, float]:
    """The values a numeric feature may take in an application: the description's ``range``,
    or else the training data's range widened by half its width on each side (never below
    zero for a feature that never was)."""
    if column.range is not None:
        return (float(column.range[0]), float(column.range[1]))
    low, high = float(values.min()), float(values.max())
    margin = (high - low) / 2
    return (max(low - margin, 0.0) if low >= 0 else low - margin, high + margin)


def recourse_rules(dataset: Dataset, schema: FeatureSchema) -> dict[str, Any]:
    """What a counterfactual may change, for the explainer's manifest: actionable features
    with their direction and order, derived features with their value for each label of the
    feature they follow, and the range of each numeric feature in the training rows (only
    values seen in training are proposed)."""
    columns = {c.name: c for c in dataset.description.features if c.name in schema.feature_names}
    train = dataset.train
    rules: dict[str, Any] = {"actionable": {}, "derived": {}, "ranges": {}}
    for name, column in columns.items():
        if column.kind != CATEGORICAL:
            rules["ranges"][name] = [float(train[name].min()), float(train[name].max())]
        if column.actionable:
            rules["actionable"][name] = {"direction": column.direction, "order": list(column.order)}
        if column.derived_from is not None:
            pairs = train[[column.derived_from, name]].dropna().drop_duplicates()
            clashes = pairs[pairs[column.derived_from].duplicated(keep=False)]
            if len(clashes):
                raise DataError(f"{dataset.description.path}: {name!r} is not derived from {column.derived_from!r}: "
                                f"{clashes[column.derived_from].iloc[0]!r} goes with several values "
                                f"({', '.join(map(str, clashes[name].head(N_EXAMPLES)))})")
            rules["derived"][name] = {"source": column.derived_from,
                                      "values": {str(k): plain_value(v) for k, v in pairs.itertuples(index=False)}}
    return rules


def _had_missing(values: pd.Series, column: Column, description: Description) -> bool:
    if column.kind == CATEGORICAL:
        return bool((values == description.missing_category).any())
    return bool(values.isna().any())


def _read_csv(path: Path, description: Description) -> pd.DataFrame:
    """The file's table as text, indexed by file line number (1 is the first line): the header
    (or ``source.columns``) names the columns; blank and comment lines are skipped; every row
    must hold as many values as there are columns."""
    where = f"{path} (source of {description.path.name})"
    if not path.is_file():
        raise DataError(f"data file not found: {where}")
    numbers: list[int] = []
    try:
        with _OPENERS.get(path.suffix.lower(), open)(path, "rt", encoding=description.encoding, newline="") as handle:
            reader = csv.reader(_kept(handle, description.comment, numbers), delimiter=description.separator, strict=True)
            rows, starts = [], []
            while True:
                consumed = len(numbers)
                row = next(reader, None)
                if row is None:
                    break
                rows.append(row)
                starts.append(numbers[consumed])  # a quoted value may span lines: the row's first
    except UnicodeDecodeError as error:
        raise DataError(f"{where}: cannot be read as {description.encoding} (source.encoding): {error}") from None
    except csv.Error as error:
        raise DataError(f"{where}: not a CSV table with separator {description.separator!r}: {error}") from None
    return _table(rows, starts, description, where)


def _kept(handle: Iterable[str], comment: str | None, numbers: list[int]) -> Iterator[str]:
    """The lines that are neither blank nor comments; ``numbers`` gets each one's line number."""
    for number, line in enumerate(handle, 1):
        if line.strip() and not (comment and line.lstrip().startswith(comment)):
            numbers.append(number)
            yield line


def _table(rows: list[list[str]], lines: list[int], description: Description, where: str) -> pd.DataFrame:
    """The rows as a text table indexed by line number, named by the header or ``source.columns``."""
    names = list(description.source_columns) if description.source_columns else (rows[0] if rows else None)
    if names is None:
        raise DataError(f"{where}: the file holds no rows")
    if not description.source_columns:
        rows, lines = rows[1:], lines[1:]
    wrong = [i for i, row in enumerate(rows) if len(row) != len(names)]
    if wrong:
        first = rows[wrong[0]]
        named = "source.columns names" if description.source_columns else "the header names"
        also = f" (all at lines {_lines(lines[i] for i in wrong)}, ...)" if len(wrong) > 1 else ""
        raise DataError(f"{where}: {len(wrong)} row(s) hold another number of values than the {len(names)} columns "
                        f"{named}: line {lines[wrong[0]]} holds {len(first)}{also}")
    if description.strip:
        names = [name.strip() for name in names]
    return pd.DataFrame(rows, columns=names, index=pd.Index(lines), dtype=str)


def _open_zip(path: Path, mode: str, encoding: str, newline: str) -> io.TextIOWrapper:
    """The one file inside a zip archive, as pandas reads it."""
    archive = zipfile.ZipFile(path)
    names = archive.namelist()
    if len(names) != 1:
        raise DataError(f"{path}: a zip archive must hold exactly one file, it holds {len(names)}")
    return io.TextIOWrapper(archive.open(names[0]), encoding=encoding, newline=newline)


#: compressed files by suffix, read as pandas reads them
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zip": _open_zip}


def _lines(index: Iterable[int]) -> str:
    """File line numbers (the frame's index)."""
    return ", ".join(str(i) for i in list(index)[:N_EXAMPLES])


def _missing_mask(text: pd.Series, column: Column, description: Description) -> pd.Series:
    markers = set(description.missing_markers) | set(column.missing_markers)
    keys = {value: canonical(value) for value in text.unique()}
    return text.map(keys).isin(markers)


def _clean(text: pd.Series, column: Column, description: Description, path: Path) -> pd.Series:
    """Labels for a categorical column (missing: the missing category or NaN), floats for a
    numeric one (missing: NaN)."""
    missing = _missing_mask(text, column, description)
    if column.kind == CATEGORICAL:
        keys = {value: canonical(value) for value in text.unique()}
        labels = text.map(lambda v: column.labels.get(keys[v], v)).astype(object)
        labels[missing] = np.nan
        return labels
    numbers = pd.to_numeric(text.where(~missing), errors="coerce")
    bad = numbers.isna() & ~missing | ~np.isfinite(numbers.fillna(0))
    if bad.any():
        shown = ", ".join(f"{text[i]!r} (line {i})" for i in bad[bad].index[:N_EXAMPLES])
        raise DataError(f"{path}: numeric feature {column.name!r} has {int(bad.sum())} non-numeric value(s): {shown}; "
                        "declare them as missing markers or make the feature categorical")
    return numbers.astype(np.float64)


def _decisions(text: pd.Series, description: Description, path: Path) -> pd.Series:
    keys = text.map({value: canonical(value) for value in text.unique()})
    approved, rejected = keys.isin(description.approved), keys.isin(description.rejected)
    other = ~(approved | rejected)
    if other.any():
        counts = text[other].value_counts()
        values = ", ".join(f"{v!r} ({n} rows)" for v, n in counts.head(N_EXAMPLES).items())
        raise DataError(
            f"{path}: label column {description.label_column!r}: {int(other.sum())} row(s) hold a value that is neither "
            f"approved ({', '.join(description.approved)}) nor rejected ({', '.join(description.rejected)}): {values}; "
            f"first at lines {_lines(other[other].index)}")
    return approved


def _drop_missing(frame: pd.DataFrame, description: Description, path: Path) -> pd.DataFrame:
    """Rows with a missing value dropped where the description says so; the rest get the
    missing category (categoricals) or stay NaN (numerics, imputed with the median by the pipeline)."""
    drop = pd.Series(False, index=frame.index)
    for column in description.columns:
        missing = frame[column.name].isna()
        categorical = column.kind == CATEGORICAL
        if (description.missing_categorical if categorical else description.missing_numeric) == "drop":
            drop |= missing
        elif categorical:
            frame.loc[missing, column.name] = description.missing_category
    if drop.any():
        logger.info("%s: %d row(s) with missing values dropped (missing: drop)", path.name, int(drop.sum()))
    return frame[~drop].reset_index(drop=True)


def _check_rows(train: pd.DataFrame, test: pd.DataFrame, description: Description) -> None:
    where = f"{description.source}"
    total = len(train) + len(test)
    if total < description.min_rows:
        raise DataError(f"{where}: only {total} usable rows; at least {description.min_rows} are needed (limits.min_rows)")
    for name, part in (("training", train), ("held-out", test)):
        classes = part[LABEL].unique()
        if len(classes) < 2:
            only = "approved" if classes.size and classes[0] else "rejected"
            raise DataError(f"{where}: the {name} set ({len(part)} rows) holds only {only} applications; "
                            "both decisions are needed to train and to evaluate (change split)")
    frame = pd.concat([train, test], ignore_index=True)
    for column in description.columns:
        values = frame[column.name]
        if column.kind == CATEGORICAL and values.nunique() > description.max_categories:
            raise DataError(f"{where}: categorical column {column.name!r} has {values.nunique()} distinct labels, more than "
                            f"the limit of {description.max_categories} (limits.max_categories); group rare labels "
                            "or make it numeric")
    for column in description.features:
        unranked = sorted(set(frame[column.name].dropna()) - set(column.order) - {description.missing_category}) \
            if column.order else []
        if unranked:
            raise DataError(f"{where}: feature {column.name!r}: labels missing from its order: {', '.join(map(str, unranked))}")
    for column in description.features:
        values = train[column.name]
        if values.nunique(dropna=False) < 2:
            raise DataError(f"{where}: feature {column.name!r} holds one value only ({values.iloc[0]!r}) in the training "
                            "rows: it cannot inform the model; remove it from features")
