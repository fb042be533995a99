"""The results the explainers return, one type per kind, each turned into the JSON the services
answer with :meth:`to_dict` (as alibi's ``api`` gives one explanation type to every explainer).

The report and the services share them: an anchor, principal reasons and a recourse read the
same wherever they are shown.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Anchor", "Change", "Counterfactual", "Reason", "Reasons", "Recourse"]


@dataclass(frozen=True)
class Anchor:
    """Conditions on an application under which the model gives ``decision`` with at least
    ``precision`` on samples of similar applications, ``coverage`` the share of them it covers."""

    decision: str
    conditions: tuple[str, ...]
    precision: float
    coverage: float
    threshold: float

    @property
    def text(self) -> str:
        """The conditions joined by AND (empty: the model decides so for nearly everyone)."""
        return " AND ".join(self.conditions)

    @property
    def threshold_met(self) -> bool:
        """Whether the precision reached the threshold asked for."""
        return self.precision >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form."""
        return {"prediction": self.decision, "anchor": list(self.conditions), "anchor_text": self.text,
                "precision": self.precision, "coverage": self.coverage, "threshold": self.threshold,
                "threshold_met": self.threshold_met}


@dataclass(frozen=True)
class Reason:
    """One principal reason: a feature, its value, how much it moved the probability of approval
    against approved applicants, and its stable ``code`` (feature and direction)."""

    feature: str
    value: Any
    contribution: float
    code: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form."""
        return {"feature": self.feature, "value": self.value, "contribution": self.contribution, "code": self.code,
                "text": self.text}


@dataclass(frozen=True)
class Reasons:
    """The principal reasons of one decision: ``base_value`` (approved applicants' probability
    of approval, at or above the ``cutoff``) plus every feature's contribution is the served
    ``approval_probability``; ``reasons`` are the ranked few that explain it."""

    decision: str
    approval_probability: float
    base_value: float
    cutoff: float
    contributions: Mapping[str, float]
    reasons: tuple[Reason, ...]

    @property
    def gap_share(self) -> float | None:
        """For a rejection, the share of the gap to approved applicants (base value minus
        probability) the stated reasons carry; None for an approval."""
        gap = self.base_value - self.approval_probability
        if self.decision == "approved" or gap <= 0:
            return None
        return -sum(reason.contribution for reason in self.reasons) / gap

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form."""
        return {"decision": self.decision, "approval_probability": self.approval_probability,
                "base_value": self.base_value, "cutoff": self.cutoff, "gap_share": self.gap_share,
                "contributions": dict(self.contributions), "reasons": [reason.to_dict() for reason in self.reasons]}


@dataclass(frozen=True)
class Change:
    """One feature changed by a counterfactual."""

    feature: str
    before: Any
    after: Any
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form."""
        return {"feature": self.feature, "from": self.before, "to": self.after, "text": self.text}


@dataclass(frozen=True)
class Counterfactual:
    """An application like the applicant's, with ``changes``, that the classifier approves."""

    changes: tuple[Change, ...]
    approval_probability: float
    application: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form."""
        return {"changes": [change.to_dict() for change in self.changes],
                "approval_probability": self.approval_probability, "application": dict(self.application)}


@dataclass(frozen=True)
class Recourse:
    """What would change a rejection: up to k verified counterfactuals, or a ``message`` saying
    why there are none."""

    decision: str
    approval_probability: float
    actionable: Sequence[str]
    counterfactuals: tuple[Counterfactual, ...] = ()
    message: str | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form."""
        answer = {"prediction": self.decision, "approval_probability": self.approval_probability,
                  "actionable": list(self.actionable),
                  "counterfactuals": [cf.to_dict() for cf in self.counterfactuals]}
        return answer | ({"message": self.message} if self.message else {})
