"""Serving: the two Seldon Core microservices and what they share.

- :mod:`~loanxai.serving.classifier`: ``LoanClassifier``, probabilities and principal reasons,
  outcomes from feedback;
- :mod:`~loanxai.serving.explainer`: ``LoanExplainer``, anchors and recourse, asking the
  classifier over REST (:mod:`~loanxai.serving.remote`);
- :mod:`~loanxai.serving.fastpath`: the exact treelite path the classifier serves when it
  agrees with the pipeline;
- :mod:`~loanxai.serving.common`: reading requests, answering errors the Seldon way;
- :mod:`~loanxai.serving.server`: ``loanxai-microservice``, the server that runs them.

Both classes have one lifecycle: constructing them reads nothing, ``load()`` loads the artifacts
and opens the record (checked at the newest migration, never migrated), once.
``models/loanclassifier/LoanClassifier.py`` and ``models/explainer/LoanExplainer.py`` are the
thin modules Seldon's wrapper imports. Serving never imports training, the data or the
fairness packages (import-linter checks it): the images hold what serving needs, nothing more.
"""

__all__ = ["classifier", "common", "explainer", "fastpath", "remote", "server"]
