"""The reviewer console: people acting on what the machine decided, in their own process.

- :mod:`~loanxai.console.api`: the HTTP API for the lender's systems and reviewers: open a
  contest, correct its inputs, act on it, read it (JSON, errors in Seldon's shape);
- :mod:`~loanxai.console.pages`: the pages for people: the queue, search, an application's
  decisions with their timeline and notice (HTML, PDF), a review with its forms;
- :mod:`~loanxai.console.figures`: the monitoring's figures for a window, and each model's
  manifest, gate record and held-out rates, with plots drawn as SVG;
- :mod:`~loanxai.console.session`: a browser's session from a token, CSRF on every form, the
  record of who looked;
- :mod:`~loanxai.console.app`: the Flask app holding both, with one error handler;
- :mod:`~loanxai.console.server`: ``loanxai console``, the process: its settings read
  once, the record, the models whose decisions may be contested, gunicorn.

The reviews themselves (what each step does and records) are :mod:`loanxai.records.reviews`'s;
who may call what is the services' tokens and roles (:mod:`loanxai.core.roles`).
"""

__all__ = ["api", "app", "figures", "pages", "server", "session"]
