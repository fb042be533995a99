"""The dataset description: one YAML file that says where a lender's data is and what it means.

Every command (training, the report, the demo) starts from a description; the census one,
``datasets/census.yaml``, is the default. Training copies the parsed description into the
artifacts' manifest, so everything downstream reads it from there. The format, with every
key and its default, is documented in the README ("Use your own data") and checked here
with a JSON Schema; an unknown key is refused with the nearest valid one.
"""
from __future__ import annotations

import copy
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

DEFAULT_TEST_FRACTION = 0.2

_SCALAR = {"type": ["string", "number", "boolean"]}


def _key(schema: dict[str, Any], meaning: str, **default: Any) -> dict[str, Any]:
    """A key of the format: its JSON Schema, what it means, and its default (``default=...``) if it has one."""
    return {**schema, "description": meaning, **default}


def _strict(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _scalars(meaning: str, **default: Any) -> dict[str, Any]:
    return _key({"type": "array", "items": _SCALAR}, meaning, **default)


def _share(meaning: str, **default: Any) -> dict[str, Any]:
    return _key({"type": ["number", "null"], "minimum": 0, "maximum": 1}, meaning, **default)


_COLUMN = {
    "name": _key({"type": "string", "minLength": 1}, "the column's name in the file"),
    "kind": _key({"enum": [NUMERIC, CATEGORICAL]}, "`numeric` or `categorical`"),
    "title": _key({"type": "string", "minLength": 1}, "how sentences (reasons, recourse) name it", default=""),
    "labels": _key({"type": "object"}, "raw value -> readable label, e.g. `{0: \"no\", 1: \"yes\"}`; numbers match "
                   "by value", default={}),
    "missing_markers": _scalars("extra raw values meaning missing, in this column only", default=[]),
}
#: what recourse may change, per feature (see :class:`Column`)
_RECOURSE = {
    "actionable": _key({"type": "boolean"}, "recourse may change it", default=False),
    "direction": _key({"enum": ["increase", "decrease", "any"]}, "the way recourse may change it (a categorical "
                      "feature's needs `order`)", default="any"),
    "order": _key({"type": "array", "items": {"type": "string"}, "minItems": 2},
                  "a categorical feature's labels, lowest first (every label seen must be listed)", default=[]),
    "derived_from": _key({"type": "string", "minLength": 1}, "another feature this one follows (its value is a "
                         "function of the other's in the training data): recourse sets it from that one", default=None),
    "range": _key({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                  "`[low, high]`: the plausible values of a numeric feature; a request outside is a 400 (default: the "
                  "training range widened by half its width on each side)", default=None),
}

#: The description's JSON Schema (checked after YAML parsing); each key's ``description`` and
#: ``default`` are the format's documentation (docs: the dataset description reference).
SCHEMA: dict[str, Any] = _strict(
    {
        "name": _key({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
                     "the dataset's name (letters, digits, `_.-`), recorded in the manifests and shown by the services"),
        "about": _key({"type": "string"}, "what the data is and its limits, in words: the model card quotes it",
                      default=""),
        "source": _key(_strict(
            {
                "path": _key({"type": "string", "minLength": 1},
                             "the data file (CSV), relative to the description's folder or to `source.package`; "
                             "compressed files (`.gz`, `.bz2`, `.zip`, `.xz`) are read as they are"),
                "package": _key({"type": "string", "minLength": 1},
                                "an installed Python package holding the file (the census is inside the `xai` wheel)"),
                "separator": _key({"type": "string", "minLength": 1}, "the CSV separator", default=","),
                "encoding": _key({"type": "string", "minLength": 1}, "the file's text encoding", default="utf-8"),
            },
            ("path",),
        ), "where the data is"),
        "label": _key(_strict(
            {"column": _key({"type": "string", "minLength": 1}, "the column holding the past decision"),
             "approved": _scalars("the values meaning approved (strings or numbers: `[\">50K\"]`, `[1, 2]`); numbers "
                                  "compare by value, so `1` matches `1.0`") | {"minItems": 1},
             "rejected": _scalars("the values meaning rejected; any other value stops training") | {"minItems": 1}},
            ("column", "approved", "rejected"),
        ), "the decision the model learns"),
        "features": _key({"type": "array", "minItems": 1, "items": _strict({**_COLUMN, **_RECOURSE}, ("name", "kind"))},
                         "the model's inputs, in order"),
        "exclude_from_model": _key({"type": "array", "items": {"type": "string"}},
                                   "features read (for the report's proxy analysis) but kept out of the model", default=[]),
        "protected": _key({
            "type": "array",
            "items": _strict({**_COLUMN, "model_input": _key({"type": "boolean"}, "the description lets it be a model "
                                                             "input (then it must be listed in `features` too, and the "
                                                             "gate fails)", default=False)}, ("name",)),
        }, "protected attributes: judged and monitored, never model inputs", default=[]),
        "missing": _key(_strict(
            {
                "markers": _scalars("values meaning missing in every column (after stripping)",
                                    default=["", "NA", "N/A", "NaN", "null"]),
                "categorical": _key({"enum": ["category", "drop"]}, "`category`: a missing categorical value becomes a "
                                    "category of its own; `drop`: the row is dropped", default="category"),
                "category": _key({"type": "string", "minLength": 1}, "that category's label", default="Unknown"),
                "numeric": _key({"enum": ["median", "drop"]}, "`median`: the pipeline imputes the training median; "
                                "`drop`: the row is dropped", default="median"),
            }
        ), "what missing values are and become"),
        "strip": _key({"type": "boolean"}, "strip spaces around every value and column name", default=True),
        "split": _key(_strict(
            {
                "test_fraction": _key({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                                      "the share of the shuffled rows held out (the last ones); the default when "
                                      "neither `test_rows` nor `test_path` is given", default=DEFAULT_TEST_FRACTION),
                "test_rows": _key({"type": "integer", "minimum": 1}, "or: how many shuffled rows are held out"),
                "test_path": _key({"type": "string", "minLength": 1}, "or: a separate file of the same layout, held out"),
                "seed": _key({"type": "integer", "minimum": 0}, "the shuffle's seed; also seeds the forests and the "
                             "explainer", default=0),
            }
        ), "the held-out rows: exactly one of `test_fraction`, `test_rows`, `test_path`"),
        "example": _key({"type": "object"}, "the application the demo, the clients and the smoke test send (every "
                        "model input, optionally protected attributes); default: the first held-out application"),
        "gate": _key(_strict(
            {
                "min_disparate_impact": _share("lowest group approval rate over the highest (null: not checked)",
                                               default=0.8),
                "max_demographic_parity_difference": _share("largest minus smallest approval rate", default=None),
                "max_equalized_odds_difference": _share("the larger of the TPR and FPR gaps", default=None),
                "max_equal_opportunity_difference": _share("the TPR (recall) gap", default=None),
                "min_group_rows": _key({"type": "integer", "minimum": 1}, "held-out rows a group needs to be judged "
                                       "(smaller groups are shown, not judged)", default=30),
                "min_accuracy": _share("the held-out accuracy a candidate must reach to be chosen (null: that of "
                                       "always giving the more frequent decision)", default=None),
            }
        ), "the fairness gate's thresholds"),
        "limits": _key(_strict(
            {"max_categories": _key({"type": "integer", "minimum": 2}, "most distinct labels a categorical column may "
                                    "have", default=100),
             "min_rows": _key({"type": "integer", "minimum": 2}, "fewest usable rows (after dropping)", default=100)}
        ), "sanity limits on the data"),
    },
    ("name", "source", "label", "features"),
)
#: split's keys, of which exactly one is given
_HELD_OUT = ("test_fraction", "test_rows", "test_path")


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
        """The source files: the data, and the held-out file if any."""
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
            raise DescriptionError(f"{where}: features: {name!r} is listed twice "
                                   f"(features[{names.index(name)}] and features[{i}])")
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
                "model_input: true is set (and the report then flags it)"
            )
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
                + (f"unknown: {unknown[0]!r}" if unknown else f"missing: {next(n for n in inputs if n not in example)!r}")
            )
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
    """``document`` with every default :data:`SCHEMA` declares filled in, at the top level and in
    each section (a feature's or protected attribute's own defaults are read by :func:`_column`);
    ``split`` gets ``test_fraction`` only when none of its three is given."""
    return _fill(document, SCHEMA)


def _fill(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    filled = dict(document)
    for key, node in schema["properties"].items():
        if key in _HELD_OUT and set(_HELD_OUT) & set(document):
            continue
        if key not in filled and "default" in node:
            filled[key] = copy.deepcopy(node["default"])
        elif node.get("type") == "object" and "properties" in node:  # a section: its own defaults
            filled[key] = _fill(filled.get(key, {}), node)
    return filled


def _column(entry: Mapping[str, Any]) -> Column:
    defaults = {key: node.get("default") for key, node in {**_COLUMN, **_RECOURSE}.items()}
    value = {**defaults, **entry}
    return Column(
        name=value["name"],
        kind=value["kind"],
        labels={canonical(k): str(v) for k, v in value["labels"].items()},
        missing_markers=tuple(canonical(m) for m in value["missing_markers"]),
        title=value["title"],
        actionable=value["actionable"],
        direction=value["direction"],
        order=tuple(value["order"]),
        derived_from=value["derived_from"],
        range=tuple(value["range"]) if value["range"] is not None else None,
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
