"""The search for a less discriminatory alternative as training recorded it (from the manifest):
every candidate's cross-validated point, the frontier plot, the rule and the choice."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from loanxai.artifacts import MANIFEST_FILE
from loanxai.core.manifest import ClassifierManifest
from loanxai.errors import ArtifactError
from loanxai.fairness.candidates import INCUMBENT
from loanxai.report.plots import plot_frontier

__all__ = ["coverage_lines", "search_section", "versus_incumbent", "worst_difference", "worst_ratio"]


def worst_ratio(point: dict[str, Any], screened: list[str]) -> dict[str, Any] | None:
    """The screened attribute with the lowest adverse impact ratio of a candidate over the groups
    judged reliably (what the rule ranks by), with its ratio and 95% interval (None: no attribute
    had two such groups)."""
    return _lowest(point["rule_air"], screened, "ratio")


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


def search_section(manifest: ClassifierManifest, out: Path) -> dict[str, Any]:
    """The search's record with each candidate's worst ratio and worst standardized mean
    difference with their intervals, most accurate first, and the frontier plot (``frontier.png``)."""
    search, thresholds = manifest.search, manifest.gate.thresholds
    if "coverage" not in search:
        raise ArtifactError(f"{manifest.directory / MANIFEST_FILE}: its search records no coverage, families or "
                            "groups judged reliably: retrain with this version")
    screened = list(manifest.screened)
    candidates = sorted(({**c, "worst": worst_ratio(c, screened), "worst_smd": worst_difference(c, screened)}
                         for c in search["candidates"]), key=lambda c: -c["metrics"]["roc_auc"])
    section = {key: search[key] for key in ("rule", "requested", "chosen", "best_roc_auc", "tolerance", "folds", "seconds",
                                            "data_air", "families", "choose_from", "reliable_approvals", "unreliable",
                                            "coverage", "repeated")}
    section |= {"screened": screened, "candidates": candidates, "incumbent": search["incumbent"],
                "randomized": search.get("randomized"),
                "incumbent_point": next((c for c in candidates if c["name"] == INCUMBENT), None)}
    plot_frontier(section, thresholds.get("min_adverse_impact_ratio"), out / "frontier.png")
    return section


def coverage_lines(search: dict[str, Any]) -> list[str]:
    """What the search covered and found, in sentences (``search``: the manifest's search record):
    each family's best worst ratio within the tolerance of its best ROC AUC, with its interval;
    whether any candidate reaches the screen; the groups too small to judge reliably, with their
    counts; the rule's choice on each fold split; and the randomized reference."""
    coverage, tolerance = search["coverage"], search["tolerance"]
    lines = []
    for family, found in coverage["families"].items():
        top = found["best_worst_air"]
        lines.append(f"- {family}: {found['candidates']} candidates, best ROC AUC {found['best_roc_auc']:.3f}; within "
                     f"{tolerance} of it, the best worst adverse impact ratio is "
                     + (f"{top['ratio']:.3f} [{top['low']:.3f}, {top['high']:.3f}] ({top['attribute']}; {top['name']}, "
                        f"ROC AUC {top['roc_auc']:.3f})" if top else "not measurable") + ".")
    threshold, first = coverage["threshold"], coverage["best_reaching_threshold"]
    if threshold is not None:
        lines.append(f"- No candidate reaches a worst ratio of {threshold}." if first is None else
                     f"- The most accurate candidate reaching a worst ratio of {threshold}: {first['name']}, ROC AUC "
                     f"{first['roc_auc']:.3f} (worst ratio {first['worst_air']:.3f}).")
    small = {a: groups for a, groups in search["unreliable"].items() if groups}
    if small:
        lines.append(f"- Too small to judge reliably (the policy's rate would approve fewer than "
                     f"{search['reliable_approvals']} of their training rows; shown, never driving the choice): "
                     + "; ".join(f"{a}: " + ", ".join(f"{g} ({c['rows']} rows, {c['expected_approvals']:g} approvals "
                                                      f"expected)" for g, c in groups.items())
                                 for a, groups in small.items()) + ".")
    incumbent = next((c for c in search["candidates"] if c["name"] == INCUMBENT), None)
    if incumbent is not None:
        chosen = next(c for c in search["candidates"] if c["name"] == search["chosen"])
        served = search["incumbent"]
        auc, ratio = versus_incumbent(chosen, incumbent)
        lines.append(f"- The incumbent ({served['candidate']}, trained {served['trained_at']}), its recipe refitted on "
                     f"the same folds: ROC AUC {incumbent['metrics']['roc_auc']:.3f}, worst ratio {_ratio(incumbent)}; "
                     f"the chosen against it: ROC AUC {auc}, worst ratio {ratio}.")
    repeated = search["repeated"]
    if repeated is not None:
        chosen = next(c for c in repeated["contenders"] if c["name"] == search["chosen"])
        seeds = repeated["fold_seeds"]
        lines.append(f"- The rule's {len(repeated['contenders'])} contenders on {len(seeds)} fold splits (seeds "
                     f"{', '.join(map(str, seeds))}): the choice's worst ratio "
                     + ", ".join(f"{r:.3f}" for r in chosen["worst_air"]) + f" (mean {chosen['mean_worst_air']:.3f}); "
                     f"each split's best contender above it by " + ", ".join(f"{g:.3f}" for g in repeated["gaps"])
                     + "; each split alone would choose " + "; ".join(repeated["split_choices"]) + ". "
                     + ("On no split is a contender materially (more than "
                        f"{repeated['material_difference']}) less discriminatory." if repeated["stable"] else
                        f"On some split a contender is more than {repeated['material_difference']} above it: the "
                        "contenders are within the folds' noise of each other."))
    randomized = search.get("randomized")
    if randomized:
        chosen = next(c for c in search["candidates"] if c["name"] == search["chosen"])
        lines.append(f"- Randomized reference, never chosen (a draw would decide each application): fairlearn's "
                     f"ExponentiatedGradient under demographic parity over the screened attributes' groups, mixing "
                     f"{randomized[0]['family']} models that decide at the policy's rate, at most "
                     f"{randomized[0]['iterations']} iterations: "
                     + "; ".join(f"bound {p['bound']:g}: ROC AUC {p['metrics']['roc_auc']:.3f}, recall "
                                 f"{p['metrics']['recall']:.3f}, worst ratio {_ratio(p)}" for p in randomized)
                     + f" (the chosen: recall {chosen['metrics']['recall']:.3f}, worst ratio {_ratio(chosen)}).")
    return lines


def versus_incumbent(candidate: dict[str, Any], incumbent: dict[str, Any]) -> tuple[str, str]:
    """A candidate's ROC AUC and worst ratio against the incumbent's, signed."""
    return _signed(candidate["metrics"]["roc_auc"] - incumbent["metrics"]["roc_auc"]), _change(candidate, incumbent)


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def _ratio(point: dict[str, Any]) -> str:
    return "n/a" if point["worst_air"] is None else f"{point['worst_air']:.3f}"


def _change(point: dict[str, Any], incumbent: dict[str, Any]) -> str:
    if point["worst_air"] is None or incumbent["worst_air"] is None:
        return "n/a"
    return _signed(point["worst_air"] - incumbent["worst_air"])
