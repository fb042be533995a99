"""The bias and model evaluation report: the data and the model as an auditor sees them.

``loanxai report`` (``make report``; :mod:`~loanxai.report.build`) evaluates the
trained artifacts and writes the report and the model card. One module per part:

- :mod:`~loanxai.report.artifacts`: what is evaluated, and the report's settings;
- :mod:`~loanxai.report.sections`: the data, the skewed-sample trap, balanced evaluation, the
  groups at the cutoff with intervals, the explanations and principal reasons;
- :mod:`~loanxai.report.proxies`: how well each protected attribute is predicted from the inputs;
- :mod:`~loanxai.report.search`: the search for a less discriminatory alternative, as training recorded it;
- :mod:`~loanxai.report.modelcard`, :mod:`~loanxai.report.plots`, :mod:`~loanxai.report.render`;
- :mod:`~loanxai.report.production`: the monitoring's figures for any past window, from the
  decision record (``loanxai figures``);
- :mod:`~loanxai.report.compare`: a challenger's decisions beside the champion's on the same
  applications, by group (``loanxai compare``).
"""

__all__ = ["artifacts", "build", "compare", "modelcard", "plots", "production", "proxies", "render", "search", "sections"]
