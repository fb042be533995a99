"""Calling the services: what a lender's systems, a credit officer's scripts and the tools here use.

- :mod:`~loanxai.clients.http`: the one HTTP client underneath (keep-alive, connection
  retries, Seldon's error body read into :class:`~loanxai.errors.ServiceError`);
- :mod:`~loanxai.clients.api`: :class:`~loanxai.clients.api.LoanClient` (requests) and
  Seldon's own ``SeldonClient``, for one application at a time (``loanxai client``);
- :mod:`~loanxai.clients.score`: a whole CSV file of applications decided through the
  classifier, resumable (``loanxai score``).

It depends on :mod:`loanxai.core` only: a client needs the schema the service publishes, not the model.
"""

__all__ = ["api", "http", "score"]
