"""Explainable, fair and auditable loan decisions on Seldon Core.

The package is split by stage; each sub-package's docstring says what it owns:

========================== ===================================================================
:mod:`loanxai.core`        the feature schema, manifests, the pipeline's layout, Seldon messages
:mod:`loanxai.data`        dataset descriptions and the data they describe
:mod:`loanxai.fairness`    metrics at the cutoff, the search for a less discriminatory alternative, the gate
:mod:`loanxai.explain`     anchors, principal reasons, recourse
:mod:`loanxai.training`    the train command and the artifacts it writes
:mod:`loanxai.serving`     the two serving classes and the server that runs them
:mod:`loanxai.monitoring`  what the services count, Prometheus rules, the dashboard
:mod:`loanxai.clients`     calling the services: the Python client, the file scorer
:mod:`loanxai.records`     the decision record, an examiner's queries, adverse action notices
:mod:`loanxai.report`      the bias and evaluation report, the model card, figures from the record
:mod:`loanxai.console`     the reviewer console: contests, corrections and reviewers' actions, its API
:mod:`loanxai.ops`         local services and Prometheus, images, deploy checks, a local cluster, docs
========================== ===================================================================

beside three modules every stage reads: :mod:`loanxai.errors` (one root error carrying its
HTTP status), :mod:`loanxai.config` (every setting, declared once) and :mod:`loanxai.artifacts`
(file, folder and step names). Every command is a subcommand of one command line, ``loanxai``
(``python -m loanxai``), declared in :mod:`loanxai.core.cli`. Dependencies run one way, checked by
import-linter (``.importlinter``); importing the package does nothing else.
"""
