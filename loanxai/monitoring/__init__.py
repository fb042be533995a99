"""Watching production: what the services count, and what Prometheus and Grafana make of it.

- :mod:`~loanxai.monitoring.references`: the training references (bins, shares, held-out
  outcomes) written into the manifest;
- :mod:`~loanxai.monitoring.series`: every series the services export, declared once;
- :mod:`~loanxai.monitoring.counters`: decisions by group, score and input bins, outcomes,
  explanations and requests, counted in each process for Prometheus;
- :mod:`~loanxai.monitoring.rules`: the recording rules and alerts (``loanxai rules``);
- :mod:`~loanxai.monitoring.dashboard`: the Grafana dashboard (``loanxai dashboard``).
"""

__all__ = ["counters", "dashboard", "references", "rules", "series"]
