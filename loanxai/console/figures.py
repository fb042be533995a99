"""The console's pages of figures: the monitoring's figures for a window, and each model's card.

``/monitoring?model=&since=&until=``: what the monitoring computes live, recomputed from the
record for any window (:func:`loanxai.report.production.record_figures`): each group's approval
rate with its 95% interval and each protected attribute's adverse impact ratio, the score's and
every input's population stability index against training, the outcomes fed back. Only the
classifier's own decisions count (not those made in review). The window is the last 30 days
unless given; it is read whole, so a window of months takes seconds.

``/models``: each model whose decisions may be contested (``LOAN_REVIEW_ARTIFACTS``), from its
manifest: what it was trained on and how it decides, its held-out approval rates by group, and
the fairness gate's record (each check, the status, any recorded justification). The full model
card with its plots is the training report's (``make report``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, request

from loanxai.console.session import Pages, asked_moment
from loanxai.core.manifest import ClassifierManifest
from loanxai.errors import InputError, NotFound
from loanxai.monitoring.rules import PSI_MAJOR
from loanxai.report.production import record_figures

__all__ = ["DEFAULT_WINDOW_DAYS", "rate_bars", "register_figures"]

#: the monitoring page's window when none is given, in days up to now
DEFAULT_WINDOW_DAYS = 30


def register_figures(app: Flask, pages: Pages) -> None:
    """Add the monitoring and model pages to the console's ``app``."""
    app.add_template_global(rate_bars)

    @app.get("/monitoring")
    def monitoring_page() -> str:
        by = pages.viewer()
        manifests = _manifests(pages)
        asked = request.args.get("model") or next(iter(manifests))
        if asked not in manifests:
            raise NotFound(f"model {asked[:64]!r} is not among LOAN_REVIEW_ARTIFACTS (the console knows "
                           f"{', '.join(manifests)})")
        until = asked_moment("until", request.args) or datetime.now(UTC)
        since = asked_moment("since", request.args) or until - timedelta(days=DEFAULT_WINDOW_DAYS)
        if since >= until:
            raise InputError(f"since ({since:%Y-%m-%d %H:%M}) must be before until ({until:%Y-%m-%d %H:%M})")
        figures = record_figures(pages.desk.store, manifests[asked], since, until)
        return pages.page("monitoring.html", by, figures=figures, models=list(manifests), model=asked, since=since,
                          until=until, gate=manifests[asked].gate, screened=manifests[asked].screened,
                          psi_major=PSI_MAJOR)

    @app.get("/models")
    def models_page() -> str:
        by = pages.viewer()
        return pages.page("models.html", by, manifests=list(_manifests(pages).values()))


def rate_bars(groups: Mapping[str, Mapping[str, Any]], height: float = 150.0) -> dict[str, Any]:
    """A chart of each group's approval rate with its 95% interval (``groups``: group -> rate,
    low, high, rows, approved): the scale's ``top`` (the highest interval's end, rounded up to a
    tenth) and each bar's drawn heights in pixels (``bar``, ``low``, ``high``, of ``height``)."""
    top = max(0.1, math.ceil(max((g["high"] for g in groups.values()), default=0.1) * 10) / 10)
    return {"top": top, "height": height, "bars": [
        {"group": name, **g, "bar": height * g["rate"] / top, "from": height * g["low"] / top,
         "to": height * g["high"] / top} for name, g in sorted(groups.items())]}


def _manifests(pages: Pages) -> dict[str, ClassifierManifest]:
    """The manifests of the models the console knows, by model version."""
    return {r.manifest.version: r.manifest for r in pages.desk.redeciders.by_manifest.values()}

