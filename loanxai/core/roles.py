"""The roles a caller's token may carry (``LOAN_AUTH=on``; :mod:`loanxai.serving.auth`), and what each may call.

The same roles are what the mesh's ``AuthorizationPolicy`` objects let through (``deploy/base/auth.yaml``).
"""
from __future__ import annotations

__all__ = ["DECIDE_ROLES", "EXPLAIN_ROLES", "ROLES"]

#: who may ask the classifier for decisions and send it outcomes: the lender's systems (and the explainer)
DECIDE_ROLES = frozenset({"decide"})
#: who may ask the explainer for anchors and recourse: credit officers (explain), auditors and examiners (audit)
EXPLAIN_ROLES = frozenset({"explain", "audit"})
#: every role, in the order the docs list them
ROLES = ("decide", "explain", "audit")
