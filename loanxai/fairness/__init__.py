"""Fairness at training: per-group metrics, the mitigation candidates, and the gate.

- :mod:`~loanxai.fairness.metrics`: metrics per group (fairlearn's MetricFrame) and the gaps between groups;
- :mod:`~loanxai.fairness.mitigation`: the candidate models, trained on the same split and compared on held-out rows;
- :mod:`~loanxai.fairness.gate`: the checks a model must pass before it may ship (``python -m loanxai.gate``).
"""

__all__ = ["gate", "metrics", "mitigation"]
