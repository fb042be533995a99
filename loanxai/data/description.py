"""The dataset description: one YAML file that says where a lender's data is and what it means.

Every command (training, the report, the demo) starts from a description; the census one,
``datasets/census.yaml``, is the default. Training copies the parsed description into the
artifacts' manifest, so everything downstream reads it from there. The format, every key
with its meaning and default, is :data:`loanxai.data.format.SCHEMA`: checked here, an unknown
key refused with the nearest valid one, and every rule between keys with a message naming
the file and the key.
"""
from __future__ import annotations

import copy
import difflib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from loanxai.artifacts import DATASETS_DIR
from loanxai.core.values import canonical
from loanxai.data.format import CATEGORICAL, COLUMN, LABEL, NUMERIC, PROTECTED, RECOURSE, SCHEMA
from loanxai.errors import DescriptionError

__all__ = ["CATEGORICAL", "DEFAULT_DESCRIPTION", "LABEL", "NUMERIC", "SCHEMA", "Column", "Description", "Protected",
           "band_labels", "canonical", "load_description", "parse_description"]

#: The default of every command.
DEFAULT_DESCRIPTION = DATASETS_DIR / "census.yaml"


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


def band_labels(edges: tuple[float, ...]) -> tuple[str, ...]:
    """The groups a numeric attribute's band edges make: ``(25, 62)`` gives ``under 25``,
    ``25 to under 62``, ``62 and over``."""
    shown = [f"{edge:g}" for edge in edges]
    return (f"under {shown[0]}", *(f"{low} to under {high}" for low, high in zip(shown, shown[1:])),
            f"{shown[-1]} and over")


@dataclass(frozen=True)
class Protected:
    """A declared protected attribute: a prohibited basis the data holds, or a column that
    directly encodes one (``bases``).

    ``column`` is how it is read (categorical: its values are the groups; numeric: its
    ``bands`` make them). It is a model input only when ``model_input`` (then ``column`` is its
    entry in ``features``); age may be one under the elderly rule (``elderly``, the age from
    which it never counts against an application), any other basis only as disparate treatment,
    which the gate fails.
    """

    column: Column
    bases: tuple[str, ...]
    model_input: bool = False
    bands: tuple[float, ...] = ()
    elderly: float | None = None
    why: str = ""

    @property
    def name(self) -> str:
        """The column's name."""
        return self.column.name

    @property
    def groups(self) -> tuple[str, ...] | None:
        """A numeric attribute's groups, from its bands (a categorical one's come from the data)."""
        return band_labels(self.bands) if self.bands else None


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
    #: the column names of a file without a header (None: the file's first line names them)
    source_columns: tuple[str, ...] | None
    #: the prefix of comment lines (None: no comments)
    comment: str | None
    label_column: str
    approved: tuple[str, ...]
    rejected: tuple[str, ...]
    #: every declared feature column, model inputs and excluded proxies alike
    features: tuple[Column, ...]
    #: features read (for the report's proxy analysis) but kept out of the model
    excluded: tuple[str, ...]
    #: every declared protected attribute, by name, in the description's order
    protected: dict[str, Protected]
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
    #: the decision policy: ``approval_rate`` (a share, or ``base``) or ``cutoff``
    decision: dict[str, Any]
    #: the search's settings: ``folds``, ``tolerance``
    selection: dict[str, Any]
    #: the fairness gate's settings (see :class:`loanxai.fairness.gate.GateThresholds`)
    gate: dict[str, Any]
    document: dict[str, Any]

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model's inputs, in order: the features not excluded from the model."""
        return tuple(column.name for column in self.features if column.name not in self.excluded)

    @property
    def protected_columns(self) -> tuple[Column, ...]:
        """The protected attributes that are not model inputs, as columns."""
        return tuple(p.column for p in self.protected.values() if not p.model_input)

    @property
    def columns(self) -> tuple[Column, ...]:
        """Every column read from the data besides the label: features, then protected-only ones."""
        return self.features + self.protected_columns

    @property
    def screened(self) -> tuple[str, ...]:
        """The protected attributes the gate's screen judges."""
        return tuple(self.gate["screen"]) if self.gate["screen"] is not None else tuple(self.protected)

    def sources(self) -> list[Path]:
        """The source files: the data, and the held-out file if any."""
        return [self.source] + ([self.test_source] if self.test_source else [])


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
    features, excluded = _features(document, where)
    names = [f.name for f in features]
    protected = _protected(document, features, excluded, where)

    approved = tuple(canonical(v) for v in document["label"]["approved"])
    rejected = tuple(canonical(v) for v in document["label"]["rejected"])
    both = set(approved) & set(rejected)
    if both:
        raise DescriptionError(f"{where}: label: {sorted(both)} listed as both approved and rejected")
    for section, node in SCHEMA["properties"].items():
        exclusive = node.get("exclusive")
        if exclusive and sum(k in document[section] for k in exclusive) != 1:
            raise DescriptionError(f"{where}: {section}: give exactly one of {', '.join(exclusive)}")
    unknown = [a for a in document["gate"]["screen"] or () if a not in protected]
    if unknown:
        raise DescriptionError(f"{where}: gate.screen: {unknown[0]!r} is not a protected attribute "
                               f"({', '.join(protected) or 'none declared'})")
    unsearched = [f for f in document["selection"]["choose_from"] if f not in document["selection"]["families"]]
    if unsearched:
        raise DescriptionError(f"{where}: selection.choose_from: {unsearched[0]!r} is not among selection.families "
                               f"({', '.join(document['selection']['families'])})")
    twice = [c for i, c in enumerate(source["columns"] or ()) if c in source["columns"][:i]]
    if twice:
        raise DescriptionError(f"{where}: source.columns: {twice[0]!r} is listed twice")
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
        source_columns=tuple(source["columns"]) if source["columns"] is not None else None,
        comment=source["comment"],
        label_column=document["label"]["column"],
        approved=approved,
        rejected=rejected,
        features=features,
        excluded=excluded,
        protected=protected,
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
        decision=document["decision"],
        selection=document["selection"],
        gate=document["gate"],
        document=document,
    )


def _features(document: Mapping[str, Any], where: str) -> tuple[tuple[Column, ...], tuple[str, ...]]:
    """The features, checked, and those excluded from the model."""
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
    return features, excluded


def _protected(document: Mapping[str, Any], features: tuple[Column, ...], excluded: tuple[str, ...],
               where: str) -> dict[str, Protected]:
    """The declared protected attributes, checked: each a column of its own or, as a model
    input, its entry in features."""
    by_name = {column.name: column for column in features}
    protected: dict[str, Protected] = {}
    for i, entry in enumerate(document["protected"]):
        name = entry["name"]
        key = f"{where}: protected[{i}] ({name!r})"
        value = {k: node.get("default") for k, node in PROTECTED.items()} | dict(entry)
        if name in protected:
            raise DescriptionError(f"{key}: listed twice")
        if name == document["label"]["column"]:
            raise DescriptionError(f"{key}: is the label column")
        model_input = value["model_input"]
        if model_input and (name not in by_name or name in excluded):
            raise DescriptionError(f"{key}: model_input is true, so it must also be listed in features")
        if not model_input and name in by_name:
            raise DescriptionError(
                f"{key}: is listed in features, but a protected attribute is never a model input unless "
                "model_input: true is set (age under the elderly rule; any other basis fails the gate)")
        if model_input and set(entry) & set(COLUMN) - {"name"}:
            raise DescriptionError(f"{key}: kind, labels and missing_markers belong to its entry in features")
        column = by_name[name] if model_input else _column({"kind": CATEGORICAL, **{k: v for k, v in entry.items()
                                                                                    if k in COLUMN}})
        bands = tuple(value["bands"])
        if column.kind == NUMERIC and not bands:
            raise DescriptionError(f"{key}: a numeric protected attribute needs bands (its groups' edges, e.g. [25, 62])")
        if bands and (column.kind != NUMERIC or list(bands) != sorted(set(bands))):
            raise DescriptionError(f"{key}: bands are the increasing edges of a numeric attribute's groups")
        if model_input and column.actionable:
            raise DescriptionError(f"{key}: a protected attribute is never a recourse change (actionable: false)")
        ageing = "age" in value["basis"] and model_input
        if ageing and column.kind != NUMERIC:
            raise DescriptionError(f"{key}: age as a model input is numeric (the elderly rule compares it with "
                                   f"elderly: {value['elderly']:g})")
        protected[name] = Protected(column=column, bases=tuple(value["basis"]), model_input=model_input, bands=bands,
                                    elderly=float(value["elderly"]) if ageing else None, why=value["why"])
    return protected


def _with_defaults(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every default :data:`SCHEMA` declares filled in, at the top level and in
    each section (a feature's or protected attribute's own defaults are read where they are
    used); of a section's exclusive keys, a default is filled only when none is given."""
    return _fill(document, SCHEMA)


def _fill(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    filled = dict(document)
    exclusive = set(schema.get("exclusive", ()))
    for key, node in schema["properties"].items():
        if key in exclusive and exclusive & set(document):
            continue
        if key not in filled and "default" in node:
            filled[key] = copy.deepcopy(node["default"])
        elif node.get("type") == "object" and "properties" in node:  # a section: its own defaults
            filled[key] = _fill(filled.get(key, {}), node)
    return filled


def _column(entry: Mapping[str, Any]) -> Column:
    defaults = {key: node.get("default") for key, node in {**COLUMN, **RECOURSE}.items()}
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
