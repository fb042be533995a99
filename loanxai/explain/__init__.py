"""Explanations of a decision, in the forms a lender can use.

- :mod:`~loanxai.explain.anchors`: the conditions enough for the decision (alibi AnchorTabular);
- :mod:`~loanxai.explain.reasons`: the principal reasons, exact Shapley values of the forest;
- :mod:`~loanxai.explain.recourse`: applications like the applicant's that would be approved (DiCE);
- :mod:`~loanxai.explain.result`: the result types all three return, and the report shows;
- :mod:`~loanxai.explain.seeding`: the same application, model and seed give the same explanation.

Fitted at training, served by the services, shown by the report: nothing here imports those stages.
"""

__all__ = ["anchors", "reasons", "recourse", "result", "seeding"]
