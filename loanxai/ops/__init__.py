"""Operations: running everything on one machine, building images, checking what is deployed.

- :mod:`~loanxai.ops.local`: the local runner (``make run``, ``make demo``, ``make replay``);
- :mod:`~loanxai.ops.services`: the two microservices as local processes (the runner, the tests);
- :mod:`~loanxai.ops.prometheus`: a real Prometheus on loopback, scraping them with the rules;
- :mod:`~loanxai.ops.replay`: held-out traffic and the seed's trap replayed, and the alerts read (``make replay``);
- :mod:`~loanxai.ops.images`: the image tag derived from the artifacts, and the images' labels;
- :mod:`~loanxai.ops.mirror`: a challenger's mirror on the classifier's port (``make run CHALLENGER=...``);
- :mod:`~loanxai.ops.promote`: the promotion gate and the tags swapped in ``deploy/`` (``make promote``);
- :mod:`~loanxai.ops.deploycheck`: the Kubernetes manifests checked without a cluster, with
  :mod:`~loanxai.ops.accesscheck` (who may reach and call what) and :mod:`~loanxai.ops.kubedocs`
  (what both read);
- :mod:`~loanxai.ops.cluster`: a real Kubernetes API server and Seldon's operator, built from source, on
  this machine (``make cluster-up``, the Kubernetes tests);
- :mod:`~loanxai.ops.reference`: the docs' reference pages generated from the code;
- :mod:`~loanxai.ops.quoted`: the model's figures the docs quote, each tied to its manifest, and
  :mod:`~loanxai.ops.measured`: the bench's, tied to the results kept beside the performance page.

The top layer: it may use every other package.
"""

__all__ = ["accesscheck", "cluster", "deploycheck", "images", "kubedocs", "local", "measured", "mirror", "prometheus",
           "promote", "quoted", "reference", "replay", "services"]
