"""Training: from a dataset description to the two artifact folders the services load.

- :mod:`~loanxai.training.train`: the command (``loanxai train``, ``make train``);
- :mod:`~loanxai.training.model`: every candidate trained, one chosen, its gate evaluated;
- :mod:`~loanxai.training.writers`: the artifacts and manifests written;
- :mod:`~loanxai.training.staging`: written atomically (a failed training changes nothing).

Training never imports serving, Flask or prometheus_client (import-linter checks it).
"""

__all__ = ["model", "staging", "train", "writers"]
