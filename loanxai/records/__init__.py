"""The decision record: every decision the classifier serves, kept for the retention period.

- :mod:`~loanxai.records.tables`: the tables (SQLAlchemy Core), one row per decided application,
  the events that attach to it later (outcomes);
- :mod:`~loanxai.records.migrations`: Alembic's migrations: every change of the tables is one;
- :mod:`~loanxai.records.store`: :class:`~loanxai.records.store.DecisionStore`, writing a
  request's decisions durably before the classifier answers, idempotent by request id, and
  reading them back (SQLite by default, PostgreSQL in production: the same code);
- :mod:`~loanxai.records.queries`: an examiner's selections and exports (CSV, Parquet), the
  purge past the retention period;
- :mod:`~loanxai.records.redecide`: a recorded application decided again by the model that
  decided it (its manifest's checksum proves which);
- :mod:`~loanxai.records.notices`: adverse action notices (HTML, PDF) rendered from a record;
- ``loanxai records``: the command (:mod:`~loanxai.records.cli`).

It imports core and explain, never serving (the classifier imports it).
"""

__all__ = ["cli", "migrations", "notices", "queries", "redecide", "store", "tables"]
