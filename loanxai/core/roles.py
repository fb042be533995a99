"""The roles a caller's token may carry (``LOAN_AUTH=on``; :mod:`loanxai.serving.auth`), and what each may call.

The same roles are what the mesh's ``AuthorizationPolicy`` objects let through (``deploy/base/auth.yaml``).
"""
from __future__ import annotations

__all__ = ["CONTEST_ROLES", "DECIDE_ROLES", "EXPLAIN_ROLES", "READ_REVIEW_ROLES", "REVIEW_ROLES", "ROLES"]

#: who may ask the classifier for decisions and send it outcomes: the lender's systems (and the explainer)
DECIDE_ROLES = frozenset({"decide"})
#: who may ask the explainer for anchors and recourse: credit officers (explain), reviewers of contests (review),
#: auditors and examiners (audit)
EXPLAIN_ROLES = frozenset({"explain", "review", "audit"})
#: who may act on contests (correct, uphold, reverse, refer): the lender's reviewers
REVIEW_ROLES = frozenset({"review"})
#: who may open a contest and correct its inputs: the lender's systems (for the applicant) and reviewers
CONTEST_ROLES = frozenset({"decide", "review"})
#: who may read reviews and the record in the console: reviewers, auditors and examiners (``audit``
#: reads everything and acts on nothing), and the lender's systems (a contest's status)
READ_REVIEW_ROLES = frozenset({"decide", "review", "audit"})
#: every role, in the order the docs list them
ROLES = ("decide", "explain", "audit", "review")
