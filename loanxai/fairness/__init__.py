"""Fairness at training, as fair-lending review works: metrics at the cutoff, the search for a
less discriminatory alternative, and the gate.

- :mod:`~loanxai.fairness.metrics`: the policy's cutoff, metrics at it, approval rates by group
  with their intervals, adverse impact ratios, the gaps between groups;
- :mod:`~loanxai.fairness.proxies`: how well a protected attribute is predicted from the inputs;
- :mod:`~loanxai.fairness.candidates`: what each candidate of the search is (families,
  settings, feature sets, reweighing, fairlearn reductions);
- :mod:`~loanxai.fairness.fits`: the search's fits, on every core, kept on disk to resume;
- :mod:`~loanxai.fairness.search`: the candidates cross-validated on the training rows, the
  rule that chooses (its contenders on three fold splits), and the held-out check;
- :mod:`~loanxai.fairness.results`: what the search found, and what the manifest records of it;
- :mod:`~loanxai.fairness.gate`: the screen and the search step a model must pass before it may
  ship (``loanxai gate``).
"""

__all__ = ["candidates", "fits", "gate", "metrics", "proxies", "results", "search"]
