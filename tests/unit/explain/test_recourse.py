"""Recourse in process: what it says when nothing the applicant may change gets an approval."""
import numpy as np

from loanxai.explain.recourse import RecourseFinder


def test_no_recourse_is_said_plainly(loanapp_artifacts):
    manifest, explainer_manifest = loanapp_artifacts.classifier_manifest, loanapp_artifacts.explainer_manifest
    schema = manifest.schema
    # the classifier's own decision is what recourse reads: here one that approves no one
    finder = RecourseFinder(schema, explainer_manifest.recourse, explainer_manifest.titles,
                            lambda X: (np.full(len(X), 0.1), np.zeros(len(X), dtype=bool)))
    x = schema.encode_records([{k: v for k, v in manifest.dataset.example.items() if k in schema.feature_names}])[0]
    answer = finder.find(x, k=3, seed=0, model_sha256=manifest.model_sha256)
    assert answer.counterfactuals == () and answer.decision == "rejected"
    assert answer.message.startswith("no approved application was found changing only ")
    assert answer.to_dict() == {"prediction": "rejected", "approval_probability": 0.1, "actionable": list(answer.actionable),
                                "counterfactuals": [], "message": answer.message}


def test_an_approved_application_needs_none(loanapp_artifacts):
    manifest, explainer_manifest = loanapp_artifacts.classifier_manifest, loanapp_artifacts.explainer_manifest
    # approved at 0.3: the classifier's cutoff decides, not 0.5
    finder = RecourseFinder(manifest.schema, explainer_manifest.recourse, explainer_manifest.titles,
                            lambda X: (np.full(len(X), 0.3), np.ones(len(X), dtype=bool)))
    x = np.asarray(manifest.reference["rows"][0], dtype=float)
    answer = finder.find(np.where(np.isnan(x), 0.0, x), k=3, seed=0, model_sha256=manifest.model_sha256)
    assert answer.decision == "approved" and answer.message == "the application is approved: no recourse is needed"
