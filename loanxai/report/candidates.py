"""The mitigation candidates as training compared them on held-out rows (from the manifest)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from loanxai.core.manifest import Manifest
from loanxai.report.plots import plot_tradeoff

__all__ = ["candidates_section"]


def candidates_section(manifest: Manifest, protected: tuple[str, ...], out: Path) -> dict[str, Any]:
    """Every candidate's held-out accuracy, ROC AUC and gaps per attribute, the rule and the
    choice, and the trade-off plot with the measured frontier."""
    mitigation = manifest.mitigation
    plot_tradeoff(mitigation, list(protected), manifest.gate.thresholds, out / "mitigation_tradeoff.png")
    return {
        "chosen": mitigation["chosen"],
        "requested": mitigation["requested"],
        "rule": mitigation["rule"],
        "accuracy_floor": mitigation["accuracy_floor"],
        "candidates": [{key: c[key] for key in ("name", "summary", "features", "settings", "metrics", "gaps", "checks", "passed")}
                       for c in mitigation["candidates"]],
        "frontier_points": sum(len(c["frontier"]) for c in mitigation["candidates"]),
    }
