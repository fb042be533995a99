"""The search for a less discriminatory alternative as training recorded it (from the manifest):
every candidate's cross-validated point, the frontier plot, the rule and the choice."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from loanxai.artifacts import MANIFEST_FILE
from loanxai.core.manifest import Manifest
from loanxai.errors import ArtifactError
from loanxai.report.plots import plot_frontier

__all__ = ["search_section", "worst_difference", "worst_ratio"]


def worst_ratio(point: dict[str, Any], screened: list[str]) -> dict[str, Any] | None:
    """The screened attribute with the lowest adverse impact ratio of a candidate, with its
    ratio and 95% interval (None: no attribute had two groups to judge)."""
    return _lowest(point["air"], screened, "ratio")


def worst_difference(point: dict[str, Any], screened: list[str]) -> dict[str, Any] | None:
    """The screened attribute with the lowest standardized mean difference of a candidate's
    scores, with its value and 95% interval (None: no attribute had two groups to judge)."""
    return _lowest(point["smd"], screened, "smd")


def _lowest(by_attribute: dict[str, dict[str, Any]], screened: list[str], key: str) -> dict[str, Any] | None:
    judged = [(by_attribute[a][key], a) for a in screened if by_attribute[a][key] is not None]
    if not judged:
        return None
    _, attribute = min(judged)
    figure = by_attribute[attribute]
    return {"attribute": attribute, key: figure[key], "low": figure["low"], "high": figure["high"]}


def search_section(manifest: Manifest, out: Path) -> dict[str, Any]:
    """The search's record with each candidate's worst ratio and worst standardized mean
    difference with their intervals, most accurate first, and the frontier plot (``frontier.png``)."""
    search, thresholds = manifest.search, manifest.gate.thresholds
    if any("smd" not in c for c in search["candidates"]):
        raise ArtifactError(f"{manifest.directory / MANIFEST_FILE}: its search records no standardized mean "
                            "differences: retrain with this version")
    screened = thresholds["screen"] if thresholds["screen"] is not None else list(manifest.dataset.protected)
    candidates = sorted(({**c, "worst": worst_ratio(c, screened), "worst_smd": worst_difference(c, screened)}
                         for c in search["candidates"]), key=lambda c: -c["metrics"]["roc_auc"])
    section = {key: search[key] for key in ("rule", "requested", "chosen", "best_roc_auc", "tolerance", "folds", "seconds",
                                            "data_air")}
    section |= {"screened": screened, "candidates": candidates}
    plot_frontier(section, thresholds.get("min_adverse_impact_ratio"), out / "frontier.png")
    return section
