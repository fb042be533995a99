"""The promotion gate: a challenger replaces the champion only when it serves every group as well.

``loanxai promote --challenger DIR`` (``make promote CHALLENGER=DIR``) judges the
challenger on the applications it decided shadowing the champion, paired in the decision record
(:func:`loanxai.report.compare.compare`: a time window, ``--since``/``--until``), by three
checks (:func:`promotion_checks`), each named when it fails:

1. ``training gate``: the challenger passes its own fairness gate
   (:func:`loanxai.fairness.gate.require_shippable`: passed, or justified when it was trained).
   No override here ships a model its own gate refuses.
2. ``adverse impact``: for every protected attribute, its adverse impact ratio on the shadowed
   applications is at least the champion's less ``LOAN_PROMOTE_AIR_TOLERANCE``; so its worst
   ratio is too, and a group the champion served is not failed under another attribute's
   shadow. An attribute neither model is judged on (fewer than two groups of the champion's
   ``min_group_rows`` pairs) passes, said so.
3. ``recall``: its recall on the outcomes of those applications is at least the champion's less
   ``LOAN_PROMOTE_RECALL_TOLERANCE``, judged once ``LOAN_PROMOTE_MIN_OUTCOMES`` approved outcomes
   (true positives and false negatives) have arrived: fewer fail the check.

A failed adverse impact or recall check refuses the promotion unless an override is recorded
(``--accept-unfair "reason"``, ``--accepted-by``, as for the training gate). Before anything is
changed, the tags ``deploy/`` pins must be those of the two models given
(:func:`loanxai.ops.images.pinned_tag`): what was shadowed is what is promoted. Promotion swaps
them (``deploy/base/`` takes the challenger's tag, ``deploy/challenger/`` the champion's, which
then shadows its successor) and appends the promotion to ``deploy/promotions.jsonl``: who, when,
both models, the window, every check and any override. The comparison it judged is written to
``reports/promote/``.
"""
from __future__ import annotations

import argparse
import getpass
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loanxai.artifacts import CLASSIFIER_DIR, DEPLOY_DIR, EXPLAINER_DIR, REPORTS_DIR
from loanxai.config import CHALLENGER, CHAMPION, Settings, ToolSettings
from loanxai.core.cli import command_parser
from loanxai.errors import GateError, PromotionRefused
from loanxai.fairness.gate import require_shippable
from loanxai.ops.images import PINS, image_tag, pin_tag, pinned_tag
from loanxai.records.cli import moment
from loanxai.report.compare import compared, describe, render_comparison

__all__ = ["PROMOTIONS_FILE", "parser", "promote", "promotion_checks", "record_promotion", "run"]

logger = logging.getLogger(__name__)

#: the promotions log, one JSON object per line, beside the kustomizations it changes
PROMOTIONS_FILE = "promotions.jsonl"


def promotion_checks(comparison: dict[str, Any], settings: ToolSettings) -> list[dict[str, Any]]:
    """The adverse impact check of each protected attribute and the recall check of the
    ``comparison`` (:func:`loanxai.report.compare.compare`), each with the champion's value beside
    the challenger's, the rule and whether it passed."""
    decided = comparison["decisions"]
    checks = []
    for attribute, ours in decided[CHAMPION]["adverse_impact"].items():
        champion, challenger = ours["ratio"], decided[CHALLENGER]["adverse_impact"][attribute]["ratio"]
        judged = champion is not None
        checks.append({
            "step": "adverse impact", "attribute": attribute, "metric": "adverse_impact_ratio", "value": challenger,
            "champion": champion, "rule": f">= champion's - {settings.promote_air_tolerance:g}" if judged else "not judged",
            "passed": not judged or (challenger is not None and challenger >= champion - settings.promote_air_tolerance)})
    figures = {role: decided[role]["outcomes"]["all"]["all"] for role in (CHAMPION, CHALLENGER)}
    approved_outcomes = figures[CHAMPION]["true_positive"] + figures[CHAMPION]["false_negative"]
    champion, challenger = figures[CHAMPION]["recall"], figures[CHALLENGER]["recall"]
    enough = approved_outcomes >= settings.promote_min_outcomes
    checks.append({
        "step": "recall", "attribute": "all", "metric": "recall", "value": challenger, "champion": champion,
        "approved_outcomes": approved_outcomes,
        "rule": f">= champion's - {settings.promote_recall_tolerance:g}, on at least "
                f"{settings.promote_min_outcomes} approved outcomes",
        "passed": enough and challenger >= champion - settings.promote_recall_tolerance})
    return checks


def _failed(checks: list[dict[str, Any]]) -> list[str]:
    """Each failed check in words."""
    def figure(value: float | None) -> str:
        return "not judged" if value is None else f"{value:.3f}"

    words = []
    for check in (c for c in checks if not c["passed"]):
        outcomes = f" on {check['approved_outcomes']} approved outcomes" if "approved_outcomes" in check else ""
        words.append(f"{check['step']} of {check['attribute']}: {figure(check['value'])} against the champion's "
                     f"{figure(check['champion'])}{outcomes} (rule: {check['rule']})")
    return words


def promote(champion_dirs: tuple[Path, Path], challenger_dirs: tuple[Path, Path], comparison: dict[str, Any],
            settings: ToolSettings, deploy_dir: Path = DEPLOY_DIR, accept_unfair: str | None = None,
            accepted_by: str | None = None) -> dict[str, Any]:
    """Judge the challenger (classifier and explainer artifacts) against the champion on the
    ``comparison``, swap the pinned tags and append the promotion to the log; the promotion.

    Raises :class:`~loanxai.errors.PromotionRefused` naming what failed (the challenger's own
    gate, a pinned tag that is not the model given, or a check without an override); nothing is
    changed then.
    """
    try:
        gate = require_shippable(challenger_dirs[0])
    except GateError as error:
        raise PromotionRefused(f"training gate: {error}") from None
    tags = {CHAMPION: image_tag(*champion_dirs), CHALLENGER: image_tag(*challenger_dirs)}
    for role, tag in tags.items():
        pinned = pinned_tag(role, deploy_dir)
        if pinned != tag:
            raise PromotionRefused(
                f"{deploy_dir / PINS[role]} deploys the {role} as {pinned}, but the {role}'s artifacts given are {tag}: "
                + ("give the deployed champion's artifacts" if role == CHAMPION else
                   "shadow this challenger first (python -m loanxai images --pin challenger ...)"))
    checks = [{"step": "training gate", "attribute": "all", "metric": "status", "value": gate.status,
               "rule": "passed or justified", "passed": True}] + promotion_checks(comparison, settings)
    failed = _failed(checks)
    if failed and not accept_unfair:
        raise PromotionRefused(
            "the challenger may not replace the champion: " + "; ".join(failed) + ". Retrain, shadow longer, or "
            'record why it ships anyway: make promote CHALLENGER=... ACCEPT_UNFAIR="<reason>" ACCEPTED_BY="<name>"')
    promoted_at, promoted_by = datetime.now(UTC).isoformat(timespec="seconds"), accepted_by or getpass.getuser()
    promotion = {
        "promoted_at": promoted_at, "promoted_by": promoted_by,
        "models": {role: {**comparison["models"][role], "image_tag": tags[role]} for role in (CHAMPION, CHALLENGER)},
        "since": comparison["since"], "until": comparison["until"], "pairs": comparison["pairs"],
        "settings": {"air_tolerance": settings.promote_air_tolerance, "recall_tolerance": settings.promote_recall_tolerance,
                     "min_outcomes": settings.promote_min_outcomes},
        "checks": checks,
        "override": None if not failed else {"reason": accept_unfair, "accepted_by": promoted_by,
                                             "accepted_at": promoted_at, "failed_checks": failed},
    }
    pin_tag(CHAMPION, tags[CHALLENGER], deploy_dir)
    pin_tag(CHALLENGER, tags[CHAMPION], deploy_dir)
    record_promotion(promotion, deploy_dir)
    return promotion


def record_promotion(promotion: dict[str, Any], deploy_dir: Path = DEPLOY_DIR) -> Path:
    """Append ``promotion`` to the promotions log in ``deploy_dir``; its path."""
    path = deploy_dir / PROMOTIONS_FILE
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(promotion, sort_keys=True, allow_nan=False) + "\n")
    return path


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    root = command_parser(__doc__.splitlines()[0])
    root.add_argument("--challenger", type=Path, required=True, help="the challenger's classifier artifacts")
    root.add_argument("--challenger-explainer", type=Path,
                      help="the challenger's explainer artifacts (default: explainer/ beside --challenger)")
    root.add_argument("--champion", type=Path, default=CLASSIFIER_DIR, help="the champion's classifier artifacts")
    root.add_argument("--champion-explainer", type=Path, default=EXPLAINER_DIR, help="the champion's explainer artifacts")
    root.add_argument("--record-url", help="the record's SQLAlchemy URL (default: LOAN_RECORDS_URL)")
    root.add_argument("--since", type=moment, help="shadowed decisions made at or after (UTC, ISO 8601)")
    root.add_argument("--until", type=moment, help="shadowed decisions made before (UTC, ISO 8601)")
    root.add_argument("--deploy-dir", type=Path, default=DEPLOY_DIR, help="the manifests whose tags are swapped")
    root.add_argument("--out", type=Path, default=REPORTS_DIR / "promote", help="where the comparison judged is written")
    root.add_argument("--accept-unfair", metavar="REASON", help="promote although a check failed, for this reason")
    root.add_argument("--accepted-by", metavar="NAME", help="who promotes (default: the user)")
    return root


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Compare, then promote if the comparison allows it (``loanxai promote``)."""
    challenger_explainer = args.challenger_explainer or args.challenger.parent / "explainer"
    comparison = compared(args, settings)
    print(describe(comparison))
    logger.info("the comparison judged is in %s", render_comparison(comparison, args.out))
    promotion = promote((args.champion, args.champion_explainer), (args.challenger, challenger_explainer),
                        comparison, settings.tool, args.deploy_dir, args.accept_unfair, args.accepted_by)
    if promotion["override"]:
        logger.warning("promoted although %s, accepted by %s: %s", "; ".join(promotion["override"]["failed_checks"]),
                       promotion["override"]["accepted_by"], promotion["override"]["reason"])
    logger.info("promoted %s (%s) to champion; %s shadows it; recorded in %s",
                promotion["models"][CHALLENGER]["model_version"], promotion["models"][CHALLENGER]["image_tag"],
                promotion["models"][CHAMPION]["model_version"], args.deploy_dir / PROMOTIONS_FILE)

