"""The dataset description: one YAML file that says where a lender's data is and what it means.

Every command (training, the report, the demo) starts from a description; the census one,
``datasets/census.yaml``, is the default. Training copies the parsed description into the
artifacts' manifest, so everything downstream reads it from there. The format, with every
key and its default, is documented in the README ("Use your own data") and checked here
with a JSON Schema; an unknown key is refused with the nearest valid one.
"""
from __future__ import annotations

import difflib
import importlib.util
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from loanxai.artifacts import DATASETS_DIR
from loanxai.errors import DescriptionError

__all__ = ["CATEGORICAL", "DEFAULT_DESCRIPTION", "LABEL", "NUMERIC", "SCHEMA", "Column", "Description", "canonical",
           "load_description", "parse_description"]

#: The default of every command.
DEFAULT_DESCRIPTION = DATASETS_DIR / "census.yaml"
#: The column the cleaned data holds the decision in (True = approved); no feature may use it.
LABEL = "approved"
NUMERIC, CATEGORICAL = "numeric", "categorical"

DEFAULT_MISSING_MARKERS = ["", "NA", "N/A", "NaN", "null"]
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_MAX_CATEGORIES = 100
DEFAULT_MIN_ROWS = 100

_SCALAR = {"type": ["string", "number", "boolean"]}
_SCALARS = {"type": "array", "items": _SCALAR}
_COLUMN = {
    "name": {"type": "string", "minLength": 1},
    "kind": {"enum": [NUMERIC, CATEGORICAL]},
    "title": {"type": "string", "minLength": 1},
    "labels": {"type": "object"},
    "missing_markers": _SCALARS,
}
#: what recourse may change, per feature (see :class:`Column`)
_RECOURSE = {
    "actionable": {"type": "boolean"},
    "direction": {"enum": ["increase", "decrease", "any"]},
    "order": {"type": "array", "items": {"type": "string"}, "minItems": 2},
    "derived_from": {"type": "string", "minLength": 1},
    "range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
}


def _strict(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


#: The description's JSON Schema (checked after YAML parsing).
SCHEMA: dict[str, Any] = _strict(
    {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
        "about": {"type": "string"},
        "source": _strict(
            {
                "path": {"type": "string", "minLength": 1},
                "package": {"type": "string", "minLength": 1},
                "separator": {"type": "string", "minLength": 1},
                "encoding": {"type": "string", "minLength": 1},
            },
            ("path",),
        ),
        "label": _strict(
            {"column": {"type": "string", "minLength": 1},
             "approved": {**_SCALARS, "minItems": 1}, "rejected": {**_SCALARS, "minItems": 1}},
            ("column", "approved", "rejected"),
        ),
        "features": {"type": "array", "minItems": 1, "items": _strict({**_COLUMN, **_RECOURSE}, ("name", "kind"))},
        "exclude_from_model": {"type": "array", "items": {"type": "string"}},
        "protected": {
            "type": "array",
            "items": _strict({**_COLUMN, "model_input": {"type": "boolean"}}, ("name",)),
        },
        "missing": _strict(
            {
                "markers": _SCALARS,
                "categorical": {"enum": ["category", "drop"]},
                "category": {"type": "string", "minLength": 1},
                "numeric": {"enum": ["median", "drop"]},
            }
        ),
        "strip": {"type": "boolean"},
        "split": _strict(
            {
                "test_fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "test_rows": {"type": "integer", "minimum": 1},
                "test_path": {"type": "string", "minLength": 1},
                "seed": {"type": "integer", "minimum": 0},
            }
        ),
        "example": {"type": "object"},
        "gate": _strict(
            {
                "min_disparate_impact": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "max_demographic_parity_difference": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "max_equalized_odds_difference": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "max_equal_opportunity_difference": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "min_group_rows": {"type": "integer", "minimum": 1},
                "min_accuracy": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            }
        ),
        "limits": _strict(
            {"max_categories": {"type": "integer", "minimum": 2}, "min_rows": {"type": "integer", "minimum": 2}}
        ),
    },
    ("name", "source", "label", "features"),
)


@dataclass(frozen=True)
class Column:
    """One column of the data: a model input, a protected attribute, or both.

    ``labels`` maps raw values (as :func:`canonical` keys) to readable labels;
    ``missing_markers`` are extra raw values meaning "missing" in this column only; ``title``
    names the feature in sentences (reasons, recourse). For recourse: ``actionable`` features
    may be changed, in ``direction`` (``order`` ranks a categorical's labels, lowest first);
    a feature ``derived_from`` another follows it (its value is a function of the other's in
    the training data). ``range``: the plausible values of a numeric feature (default: those
    seen in training, widened; see :func:`loanxai.data.dataset.plausible_range`).
    """

    name: str
    kind: str
    labels: dict[str, str] = field(default_factory=dict)
    missing_markers: tuple[str, ...] = ()
    title: str = ""
    actionable: bool = False
    direction: str = "any"
    order: tuple[str, ...] = ()
    derived_from: str | None = None
    range: tuple[float, float] | None = None

    @property
    def label(self) -> str:
        """How sentences name it: its title, else its name."""
        return self.title or self.name


@dataclass(frozen=True)
class Description:
    """A parsed, checked dataset description. ``document`` is the YAML content with every
    default filled in: what the manifest records."""

    path: Path
    name: str
    #: what the data is and its limits, in words: the model card quotes it
    about: str
    source: Path
    separator: str
    encoding: str
    label_column: str
    approved: tuple[str, ...]
    rejected: tuple[str, ...]
    #: every declared feature column, model inputs and excluded proxies alike
    features: tuple[Column, ...]
    #: features read (for the report's proxy analysis) but kept out of the model
    excluded: tuple[str, ...]
    #: protected attribute name -> may it be a model input?
    protected: dict[str, bool]
    #: protected attributes that are not model inputs, as columns
    protected_columns: tuple[Column, ...]
    missing_markers: tuple[str, ...]
    missing_categorical: str
    missing_category: str
    missing_numeric: str
    strip: bool
    test_fraction: float | None
    test_rows: int | None
    test_source: Path | None
    seed: int
    example: dict[str, Any] | None
    max_categories: int
    min_rows: int
    #: the fairness gate's settings (see :class:`loanxai.fairness.gate.GateThresholds`)
    gate: dict[str, Any]
    document: dict[str, Any]

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model's inputs, in order: the features not excluded from the model."""
        return tuple(column.name for column in self.features if column.name not in self.excluded)

    @property
    def columns(self) -> tuple[Column, ...]:
        """Every column read from the data besides the label: features, then protected-only ones."""
        return self.features + self.protected_columns

    def sources(self) -> list[Path]:
        return [self.source] + ([self.test_source] if self.test_source else [])


def canonical(value: Any) -> str:
    """The key a raw value is compared by: numbers by value ("1", "1.0" and 1 agree), the rest as text."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return repr(number) if math.isfinite(number) else text


def load_description(path: str | Path = DEFAULT_DESCRIPTION) -> Description:
    """Read and check the description at ``path``; raise :class:`DescriptionError` naming the problem."""
    path = Path(path).resolve()
    if not path.is_file():
        raise DescriptionError(f"dataset description not found: {path}")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise DescriptionError(f"{path}: not valid YAML: {error}") from None
    return parse_description(document, path)


def parse_description(document: Any, path: Path) -> Description:
    """Check ``document`` (parsed YAML) against :data:`SCHEMA` and the rules between keys."""
    if not isinstance(document, Mapping):
        raise DescriptionError(f"{path}: a description is a mapping of keys (name, source, label, features, ...)")
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(document), key=lambda e: list(e.path))
    if errors:
        raise DescriptionError(f"{path}: {_explain(errors[0])}")
    document = _with_defaults(dict(document))
    where = f"{path}"
    source, missing, split, limits = (document[k] for k in ("source", "missing", "split", "limits"))

    features = tuple(_column(f) for f in document["features"])
    names = [f.name for f in features]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise DescriptionError(f"{where}: features: {name!r} is listed twice (features[{names.index(name)}] and features[{i}])")
        if name == LABEL:
            raise DescriptionError(f"{where}: features[{i}]: the name {LABEL!r} is reserved for the decision; rename the column")
        if name == document["label"]["column"]:
            raise DescriptionError(f"{where}: features[{i}]: {name!r} is the label column; it cannot be a model input")

    for i, column in enumerate(features):
        key = f"{where}: features[{i}] ({column.name!r})"
        if column.order and column.kind != CATEGORICAL:
            raise DescriptionError(f"{key}: order ranks the labels of a categorical feature")
        if column.range and (column.kind != NUMERIC or column.range[0] >= column.range[1]):
            raise DescriptionError(f"{key}: range is [low, high] of a numeric feature, low < high")
        if column.derived_from is not None:
            if column.derived_from not in names or column.derived_from == column.name:
                raise DescriptionError(f"{key}: derived_from names no other feature ({column.derived_from!r})")
            if column.actionable:
                raise DescriptionError(f"{key}: a derived feature follows {column.derived_from!r}; it is not actionable itself")
        if column.kind == CATEGORICAL and column.direction != "any" and not column.order:
            raise DescriptionError(f"{key}: direction {column.direction!r} needs order (the labels, lowest first)")
    excluded = tuple(document["exclude_from_model"])
    for name in excluded:
        if name not in names:
            raise DescriptionError(f"{where}: exclude_from_model: {name!r} is not one of the features ({', '.join(names)})")
    if len(excluded) == len(names):
        raise DescriptionError(f"{where}: exclude_from_model: every feature is excluded; the model needs at least one input")

    protected: dict[str, bool] = {}
    protected_columns = []
    for i, entry in enumerate(document["protected"]):
        name, model_input = entry["name"], entry.get("model_input", False)
        key = f"{where}: protected[{i}] ({name!r})"
        if name in protected:
            raise DescriptionError(f"{key}: listed twice")
        if name == document["label"]["column"]:
            raise DescriptionError(f"{key}: is the label column")
        if model_input and (name not in names or name in excluded):
            raise DescriptionError(f"{key}: model_input is true, so it must also be listed in features")
        if not model_input and name in names:
            raise DescriptionError(
                f"{key}: is listed in features, but protected attributes are not model inputs unless "
                "model_input: true is set (and the report then flags it)")
        if model_input and set(entry) - {"name", "model_input"}:
            raise DescriptionError(f"{key}: kind, labels and missing_markers belong to its entry in features")
        column = features[names.index(name)] if model_input else _column({"kind": CATEGORICAL, **entry})
        if column.kind != CATEGORICAL:
            raise DescriptionError(f"{key}: a protected attribute must be categorical (its values are the groups)")
        protected[name] = model_input
        if not model_input:
            protected_columns.append(column)

    approved = tuple(canonical(v) for v in document["label"]["approved"])
    rejected = tuple(canonical(v) for v in document["label"]["rejected"])
    both = set(approved) & set(rejected)
    if both:
        raise DescriptionError(f"{where}: label: {sorted(both)} listed as both approved and rejected")
    if sum(k in split for k in ("test_fraction", "test_rows", "test_path")) != 1:
        raise DescriptionError(f"{where}: split: give exactly one of test_fraction, test_rows, test_path")
    base = _source_base(source, path)
    example = document.get("example")
    inputs = [n for n in names if n not in excluded]
    if example is not None:
        unknown = [k for k in example if k not in names and k not in protected]
        if unknown or any(n not in example for n in inputs):
            raise DescriptionError(
                f"{where}: example: must give every model input ({', '.join(inputs)}); "
                + (f"unknown: {unknown[0]!r}" if unknown else f"missing: {next(n for n in inputs if n not in example)!r}"))
    return Description(
        path=path,
        name=document["name"],
        about=document["about"],
        source=(base / source["path"]).resolve(),
        separator=source["separator"],
        encoding=source["encoding"],
        label_column=document["label"]["column"],
        approved=approved,
        rejected=rejected,
        features=features,
        excluded=excluded,
        protected=protected,
        protected_columns=tuple(protected_columns),
        missing_markers=tuple(canonical(m) for m in missing["markers"]),
        missing_categorical=missing["categorical"],
        missing_category=missing["category"],
        missing_numeric=missing["numeric"],
        strip=document["strip"],
        test_fraction=split.get("test_fraction"),
        test_rows=split.get("test_rows"),
        test_source=(base / split["test_path"]).resolve() if "test_path" in split else None,
        seed=split["seed"],
        example=example,
        max_categories=limits["max_categories"],
        min_rows=limits["min_rows"],
        gate=document["gate"],
        document=document,
    )


def _with_defaults(document: dict[str, Any]) -> dict[str, Any]:
    document["source"] = {"separator": ",", "encoding": "utf-8", **document["source"]}
    document["about"] = document.get("about", "")
    document["protected"] = document.get("protected", [])
    document["exclude_from_model"] = document.get("exclude_from_model", [])
    document["gate"] = {"min_disparate_impact": 0.8, "max_demographic_parity_difference": None,
                        "max_equalized_odds_difference": None, "max_equal_opportunity_difference": None,
                        "min_group_rows": 30, "min_accuracy": None, **document.get("gate", {})}
    document["missing"] = {"markers": DEFAULT_MISSING_MARKERS, "categorical": "category", "category": "Unknown",
                           "numeric": "median", **document.get("missing", {})}
    document["strip"] = document.get("strip", True)
    split = {"seed": 0, **document.get("split", {})}
    if not {"test_fraction", "test_rows", "test_path"} & set(split):
        split["test_fraction"] = DEFAULT_TEST_FRACTION
    document["split"] = split
    document["limits"] = {"max_categories": DEFAULT_MAX_CATEGORIES, "min_rows": DEFAULT_MIN_ROWS,
                          **document.get("limits", {})}
    return document


def _column(entry: Mapping[str, Any]) -> Column:
    return Column(
        name=entry["name"],
        kind=entry["kind"],
        labels={canonical(k): str(v) for k, v in entry.get("labels", {}).items()},
        missing_markers=tuple(canonical(m) for m in entry.get("missing_markers", [])),
        title=entry.get("title", ""),
        actionable=entry.get("actionable", False),
        direction=entry.get("direction", "any"),
        order=tuple(entry.get("order", ())),
        derived_from=entry.get("derived_from"),
        range=tuple(entry["range"]) if "range" in entry else None,
    )


def _source_base(source: Mapping[str, Any], path: Path) -> Path:
    """Where ``source.path`` is relative to: the installed package named by ``source.package``,
    or else the description's own folder."""
    if "package" not in source:
        return path.parent
    spec = importlib.util.find_spec(source["package"])
    if spec is None or not spec.submodule_search_locations:
        raise DescriptionError(f"{path}: source.package: no installed package {source['package']!r}")
    return Path(list(spec.submodule_search_locations)[0])


def _explain(error: jsonschema.ValidationError) -> str:
    """One schema violation in words, at its key path; unknown keys with the nearest valid key."""
    where = _key_path(error.path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in allowed]
        prefix = f"{where}." if error.path else ""
        close = difflib.get_close_matches(str(unknown[0]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(allowed)}"
        return f"{prefix}{unknown[0]}: unknown key{hint}"
    if error.validator == "required":
        return f"{where}: {error.message.replace(' is a required property', '')} is required"
    return f"{where}: {error.message}"


def _key_path(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
