"""What every stage shares: the feature schema, the artifacts' manifests, the pipeline's layout,
and reading Seldon's messages.

- :mod:`~loanxai.core.schema`: the model's inputs, their kinds and category maps; encoding an
  application into a row of numbers and back;
- :mod:`~loanxai.core.values`: the one rule a value in a request or a file is read by (labels,
  raw codes, missing markers; indexes only in positional rows);
- :mod:`~loanxai.core.manifest`: what an artifact folder holds, checked and read whole at load into declared types;
- :mod:`~loanxai.core.pipeline`: the scikit-learn pipeline every model is, its step names;
- :mod:`~loanxai.core.codecs`: a SeldonMessage or Feedback read into rows, groups, outcomes
  and parameters (every 400 a request can get for its content starts here);
- :mod:`~loanxai.core.process`: what a process does to follow its parent.

It imports no other sub-package (import-linter checks it).
"""

__all__ = ["codecs", "manifest", "pipeline", "process", "schema", "values"]
