"""The fairness gate: the checks a model must pass on held-out rows before it may ship.

Training evaluates the gate for every mitigation candidate and records the chosen model's
checks, thresholds and result in its manifest, with any explicit override
(``--accept-unfair "reason"``: the reason, who accepted it and when). Every path to
production runs ``python -m loanxai.gate <classifier artifacts>``: the image build,
``make deploy`` and ``make container-smoke`` stop on a model that failed the gate unless the
override is recorded.

The default threshold, disparate impact of at least 0.8, is the four-fifths rule of the
EEOC's employment guidelines (29 CFR 1607.4(D)); lending law uses an effects test with no
fixed ratio, so every threshold is a setting of the dataset description (``gate:``).
"""
from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loanxai.core.cli import command_parser
from loanxai.core.manifest import GateRecord, failed_checks, read_manifest
from loanxai.data.description import SCHEMA
from loanxai.errors import ArtifactError, GateError

__all__ = ["LIMITS", "GateSettings", "evaluate_gate", "gate_record", "labels", "main", "parser", "read_gate", "require_shippable"]

#: (gap, comparison) for each threshold of :class:`GateSettings`
LIMITS = (
    ("disparate_impact", ">=", "min_disparate_impact"),
    ("demographic_parity_difference", "<=", "max_demographic_parity_difference"),
    ("equalized_odds_difference", "<=", "max_equalized_odds_difference"),
    ("equal_opportunity_difference", "<=", "max_equal_opportunity_difference"),
)


#: the description's ``gate`` keys: their meanings and defaults are declared there
_DECLARED = SCHEMA["properties"]["gate"]["properties"]


@dataclass(frozen=True)
class GateSettings:
    """Limits a model must meet for every protected attribute (None: not checked), judged
    between groups with at least ``min_group_rows`` held-out rows (smaller gaps are noise).
    The defaults are the dataset description's (:data:`~loanxai.data.description.SCHEMA`)."""

    min_disparate_impact: float | None = _DECLARED["min_disparate_impact"]["default"]
    max_demographic_parity_difference: float | None = _DECLARED["max_demographic_parity_difference"]["default"]
    max_equalized_odds_difference: float | None = _DECLARED["max_equalized_odds_difference"]["default"]
    max_equal_opportunity_difference: float | None = _DECLARED["max_equal_opportunity_difference"]["default"]
    min_group_rows: int = _DECLARED["min_group_rows"]["default"]

    @classmethod
    def from_dict(cls, content: dict[str, Any]) -> GateSettings:
        """Read it from its JSON form."""
        return cls(**{key: content[key] for key in cls.__dataclass_fields__ if key in content})

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form."""
        return asdict(self)


def evaluate_gate(
    gaps_by_attribute: dict[str, dict[str, float]], thresholds: GateSettings, protected_inputs: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """One check per attribute and configured limit: ``{attribute, metric, value, rule, passed}``,
    and a failing check for each protected attribute that is a model input."""
    checks = []
    for attribute, gaps in gaps_by_attribute.items():
        for metric, op, field in LIMITS:
            limit = getattr(thresholds, field)
            if limit is None:
                continue
            value = gaps[metric]
            passed = bool(value >= limit) if op == ">=" else bool(value <= limit)
            checks.append({"attribute": attribute, "metric": metric, "value": value, "rule": f"{op} {limit}", "passed": passed})
    for attribute in protected_inputs:
        checks.append({"attribute": attribute, "metric": "model_input", "value": 1.0,
                       "rule": "protected attributes are not model inputs", "passed": False})
    return checks


def gate_record(
    checks: list[dict[str, Any]], thresholds: GateSettings, accept_unfair: str | None = None,
    accepted_by: str | None = None,
) -> dict[str, Any]:
    """What the manifest records: thresholds, checks, result, and the override if one was given.

    ``status`` is ``passed``, ``failed``, or ``overridden`` (failed, shipped anyway by the
    named person for the stated reason). An override of a model that passed is not recorded.
    """
    passed = all(check["passed"] for check in checks)
    override = None
    if accept_unfair and not passed:
        override = {
            "reason": accept_unfair,
            "accepted_by": accepted_by or getpass.getuser(),
            "accepted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "failed_checks": failed_checks(checks),
        }
    return {
        "passed": passed,
        "status": "passed" if passed else ("overridden" if override else "failed"),
        "thresholds": thresholds.to_dict(),
        "checks": checks,
        "override": override,
    }


def read_gate(classifier_dir: Path) -> GateRecord:
    """The gate record of the classifier artifacts in ``classifier_dir``."""
    try:
        return read_manifest(classifier_dir).gate
    except ArtifactError as error:
        raise GateError(str(error)) from None


def require_shippable(classifier_dir: Path) -> GateRecord:
    """The gate record if the model passed or carries an override; else :class:`~loanxai.errors.GateError`
    naming the failed checks and how to override."""
    gate = read_gate(classifier_dir)
    if not gate.shippable:
        raise GateError(
            f"the model in {classifier_dir} FAILED the fairness gate: " + "; ".join(gate.failed_checks)
            + '. It may not ship. Retrain with another mitigation (make train MITIGATION=...), or record an explicit '
            'override: make train ACCEPT_UNFAIR="<reason>" (the reason and who accepted it go into the manifest, '
            "the metadata, the image labels and the report)")
    return gate


def labels(gate: GateRecord) -> dict[str, str]:
    """OCI image labels that carry the gate's result and any override."""
    result = {"io.loanxai.fairness-gate": gate.status}
    override = gate.override
    if override:
        result |= {
            "io.loanxai.fairness-gate.override-reason": override["reason"],
            "io.loanxai.fairness-gate.override-accepted-by": override["accepted_by"],
            "io.loanxai.fairness-gate.override-accepted-at": override["accepted_at"],
            "io.loanxai.fairness-gate.failed-checks": "; ".join(override["failed_checks"]),
        }
    return result


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser("Check the fairness gate of trained artifacts (every path to production).")
    parser.add_argument("classifier_dir", type=Path, help="the classifier's artifact folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status."""
    args = parser().parse_args(argv)
    try:
        gate = require_shippable(args.classifier_dir)
    except GateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if gate.status == "overridden":
        override = gate.override
        print(f"WARNING: the model FAILED the fairness gate ({'; '.join(override['failed_checks'])}); it ships under the "
              f"override accepted by {override['accepted_by']} at {override['accepted_at']}: {override['reason']}",
              file=sys.stderr)
    else:
        print(f"fairness gate passed ({len(gate.checks)} checks)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
