"""Figures the docs quote, each tied to the generated source it comes from.

A page that quotes a figure declares it here: the page, its words with each figure a format
field (``"ethnicity {:.2f}"``), and a function reading the figures from their source.
:func:`disagreements` formats each as the page rounds it and names every page whose words
differ, so prose cannot drift from what it describes. Two sources:

- :data:`QUOTED`: the census classifier's manifest. Training is deterministic, so the model CI
  trains is the one ``make train`` writes on a fresh clone and the docs describe (the docs test
  runs the check on it). What depends on the model served before (the fairness page's
  incumbent) is not declared: a fresh clone has none.
- :data:`~loanxai.ops.measured.MEASURED`: the results of the ``make bench`` run the
  performance page shows, kept beside it (``docs/results/performance.json``).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from loanxai.core.manifest import ClassifierManifest

__all__ = ["QUOTED", "REASONED", "Quoted", "disagreements"]

Source = TypeVar("Source")


@dataclass(frozen=True)
class Quoted(Generic[Source]):
    """``page`` (under ``docs/``, or ``README.md``) says ``words`` with the figures
    ``read(source)`` gives filled in (runs of white space, a line break too, match any)."""

    page: str
    words: str
    read: Callable[[Source], Sequence[Any]]


def _screen(manifest: ClassifierManifest, attribute: str) -> Mapping[str, Any]:
    """The screen's check of ``attribute``."""
    return next(c for c in manifest.gate.checks if c["step"] == "screen" and c["attribute"] == attribute)


def _candidate(manifest: ClassifierManifest, name: str) -> Mapping[str, Any]:
    return next(c for c in manifest.search["candidates"] if c["name"] == name)


def _searched(manifest: ClassifierManifest) -> int:
    """How many candidates the search cross-validated, the model served before (if any) aside."""
    return sum(c["name"] != "incumbent" for c in manifest.search["candidates"])


def _eligible(manifest: ClassifierManifest, family: str) -> list[Mapping[str, Any]]:
    """The search's eligible candidates of ``family``."""
    return [c for c in manifest.search["candidates"] if c["eligible"] and c["family"] == family]


def _every_group(candidate: Mapping[str, Any], manifest: ClassifierManifest) -> float:
    """``candidate``'s worst AIR of the screened attributes over every group of 100 rows."""
    return min(candidate["air"][a]["ratio"] for a in manifest.screened)


def _best(manifest: ClassifierManifest, family: str) -> str:
    """The eligible candidate of ``family`` with the best cross-validated ROC AUC, by name."""
    return max(_eligible(manifest, family), key=lambda c: c["metrics"]["roc_auc"])["name"]


def _row(manifest: ClassifierManifest, name: str) -> tuple[float, ...]:
    """Candidate ``name``'s line of the fairness page's table: ROC AUC, recall, worst AIR of the
    screened attributes over the groups judged reliably and over every group."""
    candidate = _candidate(manifest, name)
    return (candidate["metrics"]["roc_auc"], candidate["metrics"]["recall"], candidate["worst_air"],
            _every_group(candidate, manifest))


def _held_out(manifest: ClassifierManifest) -> tuple[Any, ...]:
    metrics, air = manifest.metrics, manifest.held_out["air"]
    return (metrics["n_rows"], manifest.cutoff, metrics["roc_auc"], metrics["recall"], metrics["precision"],
            air["gender"]["ratio"], air["gender"]["low"], air["gender"]["high"],
            air["ethnicity"]["ratio"], air["ethnicity"]["low"], air["ethnicity"]["high"])


def _chosen(manifest: ClassifierManifest) -> tuple[float, ...]:
    """The chosen model's line: its row, the interval of its worst AIR and its mean over the rule's splits."""
    roc_auc, recall, worst, every_group = _row(manifest, manifest.candidate)
    judged = _screen(manifest, "ethnicity")["reliably_judged"]
    mean = next(c["mean_worst_air"] for c in manifest.search["repeated"]["contenders"] if c["name"] == manifest.candidate)
    return roc_auc, recall, worst, judged["low"], judged["high"], mean, every_group


def _contenders(manifest: ClassifierManifest, n: int) -> tuple[float, ...]:
    """How far apart the ``n`` best contenders' mean worst AIRs over the rule's splits lie, then each, best first."""
    means = sorted((c["mean_worst_air"] for c in manifest.search["repeated"]["contenders"]), reverse=True)[:n]
    return means[0] - means[-1], *means


_FLAGGED = ("adverse impact ratios for ethnicity {:.2f} and gender {:.2f}, below 0.8; the census's own decisions "
            "have {:.2f} and {:.2f}), and the search ({:d} candidates")


def _flagged(manifest: ClassifierManifest) -> tuple[Any, ...]:
    data = manifest.search["data_air"]
    return (_screen(manifest, "ethnicity")["value"], _screen(manifest, "gender")["value"], data["ethnicity"],
            data["gender"], _searched(manifest))


def _randomized(manifest: ClassifierManifest, bound: float) -> tuple[Any, ...]:
    """The randomized reference at ``bound``: its row of the fairness page's table."""
    r = next(r for r in manifest.search["randomized"] if r["bound"] == bound)
    worst = min(r["rule_air"].values(), key=lambda air: air["ratio"])
    ethnicity = r["air"]["ethnicity"]
    return (bound, r["metrics"]["roc_auc"], r["metrics"]["recall"], worst["ratio"], worst["low"], worst["high"],
            worst["lowest"], r["air"]["gender"]["ratio"], ethnicity["ratio"], ethnicity["lowest"])


def _randomization_buys(manifest: ClassifierManifest) -> tuple[float, ...]:
    """What the loosest and the tightest randomized reference cost in recall and buy in worst AIR."""
    _, recall, worst, _ = _row(manifest, manifest.candidate)
    loose, tight = (_randomized(manifest, bound) for bound in (0.08, 0.01))
    return recall - loose[2], loose[3] - worst, recall - tight[2], tight[3]


def _frontier(manifest: ClassifierManifest, roc_auc: float) -> tuple[str, ...]:
    """The frontier table's row at ``roc_auc``: each family's best worst AIR over the groups
    judged reliably and over every group, among its eligible candidates at that ROC AUC or
    above (blank where none)."""
    cells = []
    for family in ("forest", "boosting"):
        reaching = [c for c in _eligible(manifest, family) if c["metrics"]["roc_auc"] >= roc_auc]
        cells += [f"{max(c['worst_air'] for c in reaching):.3f}", f"{max(_every_group(c, manifest) for c in reaching):.3f}"] \
            if reaching else ["", ""]
    return (f"{roc_auc:.2f}", *cells)


def _first_reaching(manifest: ClassifierManifest, family: str, ratio: Callable[[Mapping[str, Any]], float]) -> float:
    """The best ROC AUC of ``family``'s eligible candidates whose ``ratio`` is at least 0.5."""
    return max(c["metrics"]["roc_auc"] for c in _eligible(manifest, family) if ratio(c) >= 0.5)


def _price_of_half(manifest: ClassifierManifest) -> tuple[float, ...]:
    """What a worst AIR of 0.5 over the groups judged reliably costs each family in ROC AUC,
    then the ROC AUC at which each first reaches it over every group."""
    figures: list[float] = []
    for family in ("forest", "boosting"):
        best = manifest.search["coverage"]["families"][family]["best_roc_auc"]
        reaching = _first_reaching(manifest, family, lambda c: c["worst_air"])
        figures += [best - reaching, reaching, best]
    return (*figures, *(_first_reaching(manifest, family, lambda c: _every_group(c, manifest))
                        for family in ("forest", "boosting")))


def _within_tolerance(manifest: ClassifierManifest) -> tuple[Any, ...]:
    """Boosting's best worst AIR within the tolerance of its best ROC AUC: the fairness page's row."""
    best = manifest.search["coverage"]["families"]["boosting"]["best_worst_air"]
    reduction, point = best["name"].split(",")[0].split(" #")
    return manifest.search["tolerance"], reduction, int(point), best["roc_auc"], best["ratio"], best["low"], best["high"]


#: every figure of the census model the docs quote and the check reads from its manifest
QUOTED: tuple[Quoted[ClassifierManifest], ...] = (
    Quoted("README.md", _FLAGGED, _flagged),
    Quoted("index.md", "impact ratios {:.3f} and {:.3f}, cross-validated over the training rows",
           lambda m: (_screen(m, "ethnicity")["value"], _screen(m, "gender")["value"])),
    Quoted("index.md", "for ethnicity {:.3f} over the groups large enough to judge reliably). The census's own "
           "decisions have {:.2f} and {:.2f}.",
           lambda m: (_screen(m, "ethnicity")["reliably_judged"]["ratio"], *_flagged(m)[2:4])),
    Quoted("quickstart.md", "the search cross-validates {:d} candidates",
           lambda m: (_searched(m),)),
    Quoted("how-to/train-and-evaluate.md", "the search: {:d} candidates", lambda m: (_searched(m),)),
    Quoted("quickstart.md", "is at least the cutoff training set, {:.4f}", lambda m: (m.cutoff,)),
    Quoted("concepts/fairness.md", "The census's is {:.4f};", lambda m: (m.cutoff,)),
    Quoted("concepts/fairness.md",
           "Held out ({:,} rows, at the cutoff {:.4f}): ROC AUC {:.3f}, recall {:.3f}, precision {:.3f}; gender AIR "
           "{:.3f} [{:.2f}, {:.2f}], ethnicity {:.3f} [{:.2f}, {:.2f}]", _held_out),
    Quoted("concepts/fairness.md", "| best forest: every input but `education`, 50 trees, leaves of 10 | {:.3f} | {:.3f} | "
           "{:.3f} | {:.3f} |", lambda m: _row(m, _best(m, "forest"))),
    Quoted("concepts/fairness.md", "leaves of 5, Kamiran-Calders reweighing** | **{:.3f}** | {:.3f} | **{:.3f}** [{:.2f}, "
           "{:.2f}] (Black); mean of 3 splits {:.3f} | {:.3f} (Other) |",
           _chosen),
    Quoted("concepts/fairness.md", "| best boosting: every input but `education`, 15 leaves | {:.3f} | {:.3f} | {:.3f} | "
           "{:.3f} |", lambda m: _row(m, _best(m, "boosting"))),
    Quoted("concepts/fairness.md", "| reference: prohibited bases as inputs | {:.3f} | {:.3f} | {:.3f} | {:.3f} |",
           lambda m: _row(m, "seed")),
    Quoted("concepts/fairness.md", "| the census's own decisions | | | | {:.3f} (gender) |",
           lambda m: (m.search["data_air"]["gender"],)),
    Quoted("concepts/fairness.md", "mean worst AIRs lie within {:.3f} of each other ({:.3f}, {:.3f}, {:.3f}, {:.3f})",
           lambda m: _contenders(m, 4)),
    Quoted("concepts/fairness.md", "the choice's worst AIR is {:.3f}, {:.3f} and {:.3f} on the three splits",
           lambda m: tuple(next(c for c in m.search["repeated"]["contenders"] if c["name"] == m.candidate)["worst_air"])),
    Quoted("concepts/fairness.md", "| boosting within {:.2f} of its best: {}, grid point {:d} | {:.3f} | | {:.3f} "
           "[{:.2f}, {:.2f}] | |", _within_tolerance),
    Quoted("concepts/fairness.md", "The randomized reference (one draw approves {:.1f}-{:.1f}% of the rows",
           lambda m: (100 * min(r["metrics"]["predicted_approval_rate"] for r in m.search["randomized"]),
                      100 * max(r["metrics"]["predicted_approval_rate"] for r in m.search["randomized"]))),
    *(Quoted("concepts/fairness.md", "| {:.2f} | {:.3f} | {:.3f} | {:.3f} [{:.2f}, {:.2f}] ({}) | {:.3f} | {:.3f} ({}) |",
             lambda m, bound=bound: _randomized(m, bound)) for bound in (0.08, 0.03, 0.01)),
    Quoted("concepts/fairness.md", "| *chosen (deterministic)* | *{:.3f}* | *{:.3f}* | *{:.3f} [{:.2f}, {:.2f}]* | *{:.3f}* "
           "| *{:.3f}* |", lambda m: (*_chosen(m)[:5], _screen(m, "gender")["value"],
                                     _candidate(m, m.candidate)["air"]["ethnicity"]["ratio"])),
    Quoted("concepts/fairness.md", "at {:.3f} less recall, a worst AIR over the groups judged reliably {:.3f} higher; "
           "at {:.3f} less, {:.3f}, and", _randomization_buys),
    *(Quoted("concepts/fairness.md", "| {} | {} | {} | {} | {} |", lambda m, auc=auc: _frontier(m, auc))
      for auc in (0.85, 0.86, 0.87, 0.88)),
    Quoted("concepts/fairness.md", "a worst AIR of 0.5 costs the forest {:.4f} of ROC AUC ({:.3f} against {:.3f}) and "
           "boosting {:.3f} ({:.3f} against {:.3f}). Judged over every group of 100 rows, as before, the first candidate "
           "reaching 0.5 has an ROC AUC of {:.3f} (forest) or {:.3f} (boosting)", _price_of_half),
    Quoted("concepts/fairness.md", "The census's Other ({:d} training rows, {:.0f} approvals expected) and "
           "Amer-Indian-Eskimo ({:d}, {:.0f}) fall below it",
           lambda m: tuple(v for group in ("Other", "Amer-Indian-Eskimo")
                           for v in (m.search["unreliable"]["ethnicity"][group]["rows"],
                                     m.search["unreliable"]["ethnicity"][group]["expected_approvals"]))),
    Quoted("concepts/fairness.md", "(`base`, the training data's own, {:.1%} for the census; or a number)",
           lambda m: (_candidate(m, m.candidate)["metrics"]["approved_rate"],)),
    Quoted("concepts/fairness.md", "the held-out rows are then approved at {:.1%} (the data approves {:.1%} of them)",
           lambda m: (m.held_out["metrics"]["predicted_approval_rate"], m.held_out["metrics"]["approved_rate"])),
)


#: every figure the docs quote from the report's principal reasons of 500 held-out rejections
#: (``loanxai.report.sections.reasons_section`` with the report's seed, 0), computed afresh by a test
REASONED: tuple[Quoted[Mapping[str, Any]], ...] = (
    Quoted("concepts/explanations.md", "For the census: base value {:.3f} against the cutoff {:.3f}.",
           lambda r: (r["base_value"], r["cutoff"])),
    Quoted("concepts/explanations.md", "(measured over {:d} held-out rejections: {}; tested within 1e-6)",
           lambda r: (r["rejections"], f"{r['additivity_max_error']:.1e}".replace("e-0", "e-"))),
    Quoted("concepts/explanations.md", "over {:d} of the census's held-out rejections, four reasons carry a median {:.0%} "
           "of it, quartiles {:.0%} and {:.0%}",
           lambda r: (r["rejections"], r["gap_share"]["median"], r["gap_share"]["q25"], r["gap_share"]["q75"])),
)


def _spaced(text: str) -> str:
    """The words of ``text``, a quote's ``>`` at a line's start dropped, one space between each."""
    return " ".join(re.sub(r"(?m)^\s*>\s?", "", text).split())


def disagreements(declared: Sequence[Quoted[Source]], source: Source, origin: str, docs: Path,
                  readme: Path) -> list[str]:
    """Each of the ``declared`` figures whose page does not say what ``source`` gives, in words:
    the page, what it should say, and ``origin`` (what the source is); empty when every page agrees."""
    wrong = []
    for quoted in declared:
        path = readme if quoted.page == "README.md" else docs / quoted.page
        expected = quoted.words.format(*quoted.read(source))
        if _spaced(expected) not in _spaced(path.read_text()):
            wrong.append(f"{quoted.page} should say {_spaced(expected)!r} ({origin})")
    return wrong
