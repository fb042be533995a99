"""The dataset description's format: its JSON Schema, each key with its meaning and default.

:data:`SCHEMA` is checked against every description after YAML parsing
(:func:`loanxai.data.description.parse_description`); its ``description`` and ``default``
annotations are the format's documentation (the docs' dataset description reference is
generated from them) and the defaults parsing fills in.
"""
from __future__ import annotations

from typing import Any

__all__ = ["BASES", "CATEGORICAL", "ELDERLY_AGE", "HELD_OUT_KEYS", "LABEL", "NUMERIC", "SCHEMA"]

#: The column the cleaned data holds the decision in (True = approved); no feature may use it.
LABEL = "approved"
NUMERIC, CATEGORICAL = "numeric", "categorical"
#: the prohibited bases of Regulation B (12 CFR 1002.2(z)), as a description names them
BASES = ("race", "color", "religion", "national origin", "sex", "marital status", "age", "public assistance income",
         "consumer credit protection act rights")
#: an elderly applicant's age (12 CFR 1002.2(o)): from it on, age may never count against an application
ELDERLY_AGE = 62
#: split's keys, of which exactly one is given
HELD_OUT_KEYS = ("test_fraction", "test_rows", "test_path")

_SCALAR = {"type": ["string", "number", "boolean"]}


def _key(schema: dict[str, Any], meaning: str, **default: Any) -> dict[str, Any]:
    """A key of the format: its JSON Schema, what it means, and its default (``default=...``) if it has one."""
    return {**schema, "description": meaning, **default}


def _strict(properties: dict[str, Any], required: tuple[str, ...] = (), exclusive: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object of exactly these keys; ``exclusive``: keys of which exactly one is given (an
    annotation of this format's own: defaults fill the others only when none is)."""
    node = {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}
    return node | ({"exclusive": list(exclusive)} if exclusive else {})


def _scalars(meaning: str, **default: Any) -> dict[str, Any]:
    return _key({"type": "array", "items": _SCALAR}, meaning, **default)


def _share(meaning: str, **default: Any) -> dict[str, Any]:
    return _key({"type": ["number", "null"], "minimum": 0, "maximum": 1}, meaning, **default)


COLUMN = {
    "name": _key({"type": "string", "minLength": 1}, "the column's name in the file"),
    "kind": _key({"enum": [NUMERIC, CATEGORICAL]}, "`numeric` or `categorical`"),
    "title": _key({"type": "string", "minLength": 1}, "how sentences (reasons, recourse) name it", default=""),
    "labels": _key({"type": "object"}, "raw value -> readable label, e.g. `{0: \"no\", 1: \"yes\"}`; numbers match "
                   "by value", default={}),
    "missing_markers": _scalars("extra raw values meaning missing, in this column only", default=[]),
}
#: what recourse may change, per feature (see :class:`loanxai.data.description.Column`)
RECOURSE = {
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
#: a protected attribute's own keys, beside a column's
PROTECTED = {
    "basis": _key({"type": "array", "items": {"enum": list(BASES)}, "minItems": 1},
                  "the prohibited bases it is, or directly encodes (12 CFR 1002.2(z)): "
                  + ", ".join(f"`{b}`" for b in BASES)),
    "why": _key({"type": "string"}, "why it is declared, in words (the model card quotes it)", default=""),
    "bands": _key({"type": "array", "items": {"type": "number"}, "minItems": 1},
                  "a numeric attribute's group edges, increasing: `[25, 62]` makes the groups `under 25`, `25 to under "
                  "62` and `62 and over`", default=[]),
    "model_input": _key({"type": "boolean"}, "it may be a model input (then it is also listed in `features`): only age "
                        "may, under the elderly rule; any other basis fails the gate as disparate treatment",
                        default=False),
    "elderly": _key({"type": "number", "minimum": 0}, "age as a model input: from this age on it may never count "
                    "against an application (12 CFR 1002.6(b)(2)(ii))", default=ELDERLY_AGE),
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
                "separator": _key({"type": "string", "minLength": 1, "maxLength": 1}, "the CSV separator (one character)",
                                  default=","),
                "encoding": _key({"type": "string", "minLength": 1}, "the file's text encoding", default="utf-8"),
                "columns": _key({"type": ["array", "null"], "items": {"type": "string", "minLength": 1}, "minItems": 2},
                                "the file has no header: its columns' names, in order; every row must hold exactly "
                                "this many values", default=None),
                "comment": _key({"type": ["string", "null"], "minLength": 1},
                                "lines starting with this (after any spaces) are comments, skipped; blank lines are "
                                "always skipped", default=None),
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
        "features": _key({"type": "array", "minItems": 1, "items": _strict({**COLUMN, **RECOURSE}, ("name", "kind"))},
                         "the model's inputs, in order"),
        "exclude_from_model": _key({"type": "array", "items": {"type": "string"}},
                                   "features read (for the report's proxy analysis) but kept out of the model", default=[]),
        "protected": _key({"type": "array", "items": _strict({**COLUMN, **PROTECTED}, ("name", "basis"))},
                          "every prohibited basis the data holds, and every column that directly encodes one: judged, "
                          "reported and monitored, never a model input (age excepted, under the elderly rule), never a "
                          "reason, an anchor or a recourse change", default=[]),
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
                                      "the share of the shuffled rows held out (the last ones) for the final check; the "
                                      "default when neither `test_rows` nor `test_path` is given", default=0.2),
                "test_rows": _key({"type": "integer", "minimum": 1}, "or: how many shuffled rows are held out"),
                "test_path": _key({"type": "string", "minLength": 1}, "or: a separate file of the same layout, held out"),
                "seed": _key({"type": "integer", "minimum": 0}, "the shuffle's seed; also seeds the folds, the forests "
                             "and the explainer", default=0),
            },
            exclusive=HELD_OUT_KEYS,
        ), "the held-out rows: exactly one of `test_fraction`, `test_rows`, `test_path`"),
        "decision": _key(_strict(
            {
                "approval_rate": _key({"oneOf": [{"const": "base"}, {"type": "number", "exclusiveMinimum": 0,
                                                                      "exclusiveMaximum": 1}]},
                                      "the share of applications to approve: `base` (the training data's approval rate) "
                                      "or a number; the cutoff is the training rows' probability quantile that gives it",
                                      default="base"),
                "cutoff": _key({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                               "or: a fixed probability of approval at or above which an application is approved"),
            },
            exclusive=("approval_rate", "cutoff"),
        ), "the lender's decision policy: exactly one of `approval_rate` and `cutoff`"),
        "selection": _key(_strict(
            {
                "folds": _key({"type": "integer", "minimum": 2, "maximum": 20}, "the cross-validation folds every "
                              "candidate is estimated with, on the training rows", default=5),
                "tolerance": _key({"type": "number", "minimum": 0, "maximum": 0.5}, "how much ROC AUC below the best "
                                  "candidate's a less discriminatory alternative may give up", default=0.01),
                "families": _key({"type": "array", "items": {"enum": ["forest", "boosting"]}, "minItems": 1,
                                  "uniqueItems": True}, "the model families searched: random forests, and "
                                 "scikit-learn's gradient-boosted trees", default=["forest", "boosting"]),
                "choose_from": _key({"type": "array", "items": {"enum": ["forest", "boosting"]}, "minItems": 1,
                                     "uniqueItems": True}, "the families the rule may choose the served model from "
                                    "(each must be searched); the others are shown beside", default=["forest"]),
                "reliable_approvals": _key({"type": "integer", "minimum": 1}, "approvals at the policy's rate a group's "
                                           "training rows must expect for the group to drive the rule's choice "
                                           "(smaller groups are reported as too small to judge reliably)", default=100),
            }
        ), "how the search for a less discriminatory alternative chooses"),
        "example": _key({"type": "object"}, "the application the demo, the clients and the smoke test send (every "
                        "model input, optionally protected attributes); default: the first held-out application"),
        "gate": _key(_strict(
            {
                "min_adverse_impact_ratio": _share("the screen: each screened attribute's lowest group approval rate "
                                                   "over its highest, at the cutoff (null: no screen)", default=0.8),
                "screen": _key({"type": ["array", "null"], "items": {"type": "string"}},
                               "the protected attributes the screen judges (null: every one declared)", default=None),
                "min_group_rows": _key({"type": "integer", "minimum": 1}, "rows a group needs to be judged (smaller "
                                       "groups are shown with their intervals, not judged)", default=100),
                "require_significance": _key({"type": "boolean"}, "the screen flags a ratio below its threshold only "
                                             "when the disparity is statistically significant too (the ratio's 95% "
                                             "interval excludes parity, 1); false: on the ratio alone", default=True),
                "material_difference": _key({"type": "number", "minimum": 0, "maximum": 1}, "how much higher another "
                                            "candidate's worst ratio within the tolerance must be to count as a less "
                                            "discriminatory alternative the model failed to choose", default=0.02),
                "max_demographic_parity_difference": _share("largest minus smallest approval rate", default=None),
                "max_equalized_odds_difference": _share("the larger of the TPR and FPR gaps", default=None),
                "max_equal_opportunity_difference": _share("the TPR (recall) gap", default=None),
            }
        ), "the fairness gate: the screen, and what a flagged model needs to ship"),
        "limits": _key(_strict(
            {"max_categories": _key({"type": "integer", "minimum": 2}, "most distinct labels a categorical column may "
                                    "have", default=100),
             "min_rows": _key({"type": "integer", "minimum": 2}, "fewest usable rows (after dropping)", default=100)}
        ), "sanity limits on the data"),
    },
    ("name", "source", "label", "features"),
)
