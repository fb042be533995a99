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

__all__ = ["QUOTED", "Quoted", "disagreements"]

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


def _best(manifest: ClassifierManifest, family: str) -> str:
    """The eligible candidate of ``family`` with the best cross-validated ROC AUC, by name."""
    return max((c for c in manifest.search["candidates"] if c["eligible"] and c["family"] == family),
               key=lambda c: c["metrics"]["roc_auc"])["name"]


def _row(manifest: ClassifierManifest, name: str) -> tuple[float, ...]:
    """Candidate ``name``'s line of the fairness page's table: ROC AUC, recall, worst AIR of the
    screened attributes over the groups judged reliably and over every group."""
    candidate = _candidate(manifest, name)
    every_group = min(candidate["air"][a]["ratio"] for a in manifest.screened)
    return candidate["metrics"]["roc_auc"], candidate["metrics"]["recall"], candidate["worst_air"], every_group


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
