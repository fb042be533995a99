"""The server that runs a serving class: ``loanxai-microservice`` in place of ``seldon-core-microservice``.

- :mod:`~loanxai.serving.server.supervisor`: the command; REST, metrics and gRPC servers as
  children of one process, drained and stopped together;
- :mod:`~loanxai.serving.server.workers`: gunicorn's threaded workers with request deadlines, and gRPC;
- :mod:`~loanxai.serving.server.guards`: methods, paths, body size, strict JSON, CORS, readiness
  while draining, every answer counted;
- :mod:`~loanxai.serving.server.metrics`: Seldon custom metrics counted in each process.

The seldon-core wrapper's own app and servicer answer every request: requests, answers,
metadata and errors are Seldon's.
"""

__all__ = ["guards", "metrics", "supervisor", "workers"]
