"""The reviewer console: people acting on what the machine decided, in their own process.

- :mod:`~loanxai.console.api`: the HTTP API for the lender's systems and reviewers: open a
  contest, correct its inputs, act on it, read it (JSON, errors in Seldon's shape);
- :mod:`~loanxai.console.pages`: the pages for people: the queue, an application's decisions, a
  review with its forms and timeline; sessions from tokens, CSRF on every form;
- :mod:`~loanxai.console.app`: the Flask app holding both, with one error handler;
- :mod:`~loanxai.console.server`: ``python -m loanxai.console``, the process: its settings read
  once, the record, the models whose decisions may be contested, gunicorn.

The reviews themselves (what each step does and records) are :mod:`loanxai.records.reviews`'s;
who may call what is the services' tokens and roles (:mod:`loanxai.core.roles`).
"""

__all__ = ["api", "app", "pages", "server"]
