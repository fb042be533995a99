"""The fairness gate, in the two steps of a fair-lending review, on every path to production.

1. **The screen**: each screened attribute's adverse impact ratio (its lowest judged group's
   approval rate over its highest, at the cutoff) at least ``gate.min_adverse_impact_ratio``,
   judged between groups of at least ``gate.min_group_rows`` rows, on the cross-validated
   decisions over every training row (the largest sample the model never saw), with 95%
   intervals and the held-out rows' figures beside, and the ratio over the groups large enough
   to judge reliably (what the search's rule judges) beside too: the screen itself stays on
   every group of ``gate.min_group_rows``, the more cautious of the two. As fair-lending
   reviews weigh practical with statistical significance, a ratio below the threshold is
   flagged when the disparity is statistically significant too: its 95% interval (Katz's)
   excludes parity, 1 (``gate.require_significance``; false: on the ratio alone). A ratio
   below the threshold whose interval reaches parity passes, marked not significant. A
   declared basis used as a model input (but age under the elderly rule) is disparate
   treatment: a failing check of its own.
2. **If the screen flags**, the model may ship only when the search's record shows that no
   candidate within the tolerance has a worst ratio materially higher than the model's
   (``gate.material_difference``) *and* a business justification is recorded (``--accept-unfair
   "reason"``: the reason, who accepted it, when).

The status: ``passed`` (the screen passed), ``justified`` (flagged, the model is the less
discriminatory alternative, a justification is recorded), ``flagged`` (no justification yet),
``failed`` (a materially less discriminatory alternative was passed over: no justification
ships it). Every path to production runs ``loanxai gate <classifier artifacts>``:
the image build, ``make deploy`` and ``make container-smoke`` refuse anything but passed or
justified, naming the failed step.

The default screen, a ratio of at least 0.8, is the four-fifths rule of the EEOC's employment
guidelines (29 CFR 1607.4(D)); no lending rule fixes a ratio (and federal Regulation B has had no
effects test since 2026-07-21: the screen is a state-law and policy control), so every threshold
is a setting of the dataset description (``gate:``).
"""
from __future__ import annotations

import argparse
import getpass
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loanxai.artifacts import CLASSIFIER_DIR
from loanxai.config import Settings
from loanxai.core.cli import command_parser
from loanxai.core.manifest import ClassifierManifest, GateRecord, failed_checks, read_manifest
from loanxai.data.description import Protected
from loanxai.data.format import SCHEMA
from loanxai.errors import ArtifactError, GateError

__all__ = ["DIFFERENCES", "GateThresholds", "gate_record", "labels", "parser", "read_gate", "require_shippable", "run",
           "screen_checks", "search_check"]

logger = logging.getLogger(__name__)

#: the description's ``gate`` keys: their meanings and defaults are declared there
_DECLARED = SCHEMA["properties"]["gate"]["properties"]
#: (gap, setting) of the optional limits on other gaps, each at most the setting
DIFFERENCES = (
    ("demographic_parity_difference", "max_demographic_parity_difference"),
    ("equalized_odds_difference", "max_equalized_odds_difference"),
    ("equal_opportunity_difference", "max_equal_opportunity_difference"),
)


@dataclass(frozen=True)
class GateThresholds:
    """The gate's settings: the description's ``gate`` section, whose defaults they are."""

    min_adverse_impact_ratio: float | None = _DECLARED["min_adverse_impact_ratio"]["default"]
    screen: tuple[str, ...] | None = _DECLARED["screen"]["default"]
    min_group_rows: int = _DECLARED["min_group_rows"]["default"]
    require_significance: bool = _DECLARED["require_significance"]["default"]
    material_difference: float = _DECLARED["material_difference"]["default"]
    max_demographic_parity_difference: float | None = _DECLARED["max_demographic_parity_difference"]["default"]
    max_equalized_odds_difference: float | None = _DECLARED["max_equalized_odds_difference"]["default"]
    max_equal_opportunity_difference: float | None = _DECLARED["max_equal_opportunity_difference"]["default"]

    @classmethod
    def from_dict(cls, content: Mapping[str, Any]) -> GateThresholds:
        """Read it from the description's (or a manifest's) ``gate`` section."""
        values = {key: content[key] for key in cls.__dataclass_fields__ if key in content}
        if values.get("screen") is not None:
            values["screen"] = tuple(values["screen"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form."""
        content = asdict(self)
        content["screen"] = list(self.screen) if self.screen is not None else None
        return content


def screen_checks(chosen: Mapping[str, Any], held_out: Mapping[str, Any], settings: GateThresholds, screened: tuple[str, ...],
                  protected: Mapping[str, Protected]) -> list[dict[str, Any]]:
    """Step 1: one check per screened attribute (its cross-validated ratio with its interval,
    the held-out one beside), one per optional gap limit, and a failing check per declared
    basis among the model's inputs (age under the elderly rule excepted) as disparate treatment.
    ``chosen``: the search's point of the model; ``held_out``: :func:`loanxai.fairness.search.held_out_check`."""
    checks = []
    for attribute in screened:
        air, final = chosen["air"][attribute], held_out["air"][attribute]
        threshold = settings.min_adverse_impact_ratio
        if threshold is not None:
            value = air["ratio"]
            below = value is not None and value < threshold
            # a disparity beyond the sampling noise: the 95% interval excludes parity
            significant = value is not None and air["high"] < 1.0
            checks.append({
                "step": "screen", "attribute": attribute, "metric": "adverse_impact_ratio",
                "value": value, "low": air["low"], "high": air["high"], "rule": f">= {threshold}",
                "below": below, "significant": significant,
                # too few groups large enough to judge: nothing to flag, said so
                "passed": not below or (settings.require_significance and not significant),
                "judged": sorted(g for g in air["groups"] if g not in air["not_judged"]), "not_judged": air["not_judged"],
                "held_out": {k: final[k] for k in ("ratio", "low", "high", "not_judged")},
                # beside it, the ratio the search's rule judges: the groups large enough to judge reliably
                "reliably_judged": chosen.get("rule_air", {}).get(attribute),
            })
        for gap, setting in DIFFERENCES:
            limit = getattr(settings, setting)
            if limit is not None and gap in chosen.get("gaps", {}).get(attribute, {}):
                value = chosen["gaps"][attribute][gap]
                checks.append({"step": "screen", "attribute": attribute, "metric": gap, "value": value,
                               "rule": f"<= {limit}", "passed": value <= limit})
    for name, declared in protected.items():
        if name in chosen["features"] and declared.elderly is None:
            checks.append({"step": "screen", "attribute": name, "metric": "model_input", "value": 1.0,
                           "rule": "a prohibited basis is not a model input", "passed": False})
    return checks


def search_check(search: Mapping[str, Any], settings: GateThresholds) -> dict[str, Any]:
    """Step 2: no candidate the rule could choose (within the tolerance, of a family it chooses
    from) has a worst ratio more than the material difference above the chosen model's, each
    judged by the rule's figure: the mean over the fold splits for its contenders, the search's
    split for the others (``search``: the manifest's search record)."""
    # the rule's own figure: a contender's mean worst ratio over the fold splits it was estimated on
    means = {c["name"]: c["mean_worst_air"] for c in (search["repeated"] or {}).get("contenders", [])}
    points = {p["name"]: p | {"worst_air": means.get(p["name"], p["worst_air"])} for p in search["candidates"]}
    chosen = points[search["chosen"]]
    within = [p for p in points.values()
              if p["eligible"] and p["family"] in search["choose_from"]
              and p["metrics"]["roc_auc"] >= search["best_roc_auc"] - search["tolerance"]
              and p["worst_air"] is not None]
    best = max(within, key=lambda p: p["worst_air"], default=chosen)
    gain = (best["worst_air"] or 0.0) - (chosen["worst_air"] or 0.0) if best is not chosen else 0.0
    return {"step": "search", "attribute": "all screened", "metric": "less_discriminatory_alternative", "value": gain,
            "rule": f"<= {settings.material_difference}", "passed": gain <= settings.material_difference,
            "alternative": best["name"], "chosen": chosen["name"],
            "eligible": chosen["eligible"]}


def gate_record(checks: list[dict[str, Any]], settings: GateThresholds, accept_unfair: str | None = None,
                accepted_by: str | None = None) -> dict[str, Any]:
    """What the manifest records: the settings, both steps' checks, the status, and the
    justification if one was given (only for a flagged model: a passing one needs none)."""
    screen = [c for c in checks if c["step"] == "screen"]
    search = [c for c in checks if c["step"] == "search"]
    screened_ok = all(c["passed"] for c in screen)
    search_ok = all(c["passed"] and c.get("eligible", True) for c in search)
    override = None
    if accept_unfair and not screened_ok:
        override = {
            "reason": accept_unfair,
            "accepted_by": accepted_by or getpass.getuser(),
            "accepted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "failed_checks": failed_checks(screen),
        }
    if screened_ok:
        status = "passed"
    elif not search_ok:
        status = "failed"
    else:
        status = "justified" if override else "flagged"
    return {"passed": screened_ok, "status": status, "thresholds": settings.to_dict(), "checks": checks,
            "override": override}


def read_gate(classifier_dir: Path) -> GateRecord:
    """The gate record of the classifier artifacts in ``classifier_dir``."""
    try:
        return read_manifest(classifier_dir, ClassifierManifest).gate
    except ArtifactError as error:
        raise GateError(str(error)) from None


def require_shippable(classifier_dir: Path) -> GateRecord:
    """The gate record if the model passed or is justified; else :class:`~loanxai.errors.GateError`
    naming the failed step, its checks, and what would let it ship."""
    gate = read_gate(classifier_dir)
    if gate.status == "flagged":
        raise GateError(
            f"the model in {classifier_dir} may not ship: step 1, the screen, flagged it ("
            + "; ".join(gate.failed_checks) + "), and no business justification is recorded. The search shows no less "
            'discriminatory alternative within the tolerance: record the justification with make train '
            'ACCEPT_UNFAIR="<reason>" ACCEPTED_BY="<name>" (it goes into the manifest, the metadata, the image labels '
            "and the report)")
    if gate.status == "failed":
        raise GateError(
            f"the model in {classifier_dir} may not ship: step 1, the screen, flagged it ("
            + "; ".join(gate.failed_checks) + "), and step 2, the search, failed: " + "; ".join(gate.failed_search)
            + ". No justification ships a model when a less discriminatory alternative was passed over: retrain with "
            "make train MITIGATION=auto")
    return gate


def labels(gate: GateRecord) -> dict[str, str]:
    """OCI image labels that carry the gate's result and any justification."""
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
    parser.add_argument("--artifacts", type=Path, default=CLASSIFIER_DIR, help="the classifier's artifacts")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Check the gate of ``args.artifacts`` (``loanxai gate``); a refusal raises :class:`GateError`."""
    gate = require_shippable(args.artifacts)
    if gate.status == "justified":
        override = gate.override
        logger.warning("the screen flagged the model (%s); it is the less discriminatory alternative the search found, "
                       "and ships under the justification accepted by %s at %s: %s", "; ".join(override["failed_checks"]),
                       override["accepted_by"], override["accepted_at"], override["reason"])
    else:
        logger.info("fairness gate passed (%d checks)", len(gate.checks))
