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


def _rule_finder(order):
    """A finder over two numeric features and one categorical, with a decision rule whose minimal
    changes depend on each other: approved when gain >= 5000, or gain >= 3000 and hours >= 50,
    or the plan is "b"."""
    from loanxai.core.schema import FeatureSchema

    schema = FeatureSchema(order + ("plan",), {"plan": ("a", "b", "c")},
                           ranges={"gain": (0, 100000), "hours": (1, 99)})
    gain, hours, plan = (schema.feature_names.index(n) for n in ("gain", "hours", "plan"))

    def classify(X):
        approved = (X[:, gain] >= 5000) | ((X[:, gain] >= 3000) & (X[:, hours] >= 50)) | (X[:, plan] == 1)
        return approved.astype(float), approved

    rules = {"actionable": {}, "derived": {}, "ranges": {"gain": [0, 99999], "hours": [1, 99]}}
    return RecourseFinder(schema, rules, {}, classify), classify, (gain, hours, plan)


def test_pulled_back_changes_are_minimal_in_either_feature_order():
    for order in (("gain", "hours"), ("hours", "gain")):
        finder, classify, (gain, hours, plan) = _rule_finder(order)
        x = np.zeros(3)
        x[hours], x[plan] = 40, 0  # gain 0, plan "a"
        proposals = np.repeat(x[None, :], 3, axis=0)
        proposals[0, [gain, hours]] = 7000, 60       # both raised
        proposals[1, [gain, plan]] = 9000, 2         # a useless categorical change beside a large amount
        proposals[2, [gain, plan]] = 20, 1           # plan "b" alone suffices
        X = finder._pull_back(proposals, x)
        assert classify(X)[1].all()
        step = 100  # a thousandth of the gain's training range
        for row in X:
            for j in (gain, hours):
                if row[j] != x[j]:  # one step lower, the others as they are: rejected
                    lower = row.copy()
                    lower[j] = max(x[j], row[j] - (step if j == gain else 1))
                    assert not classify(lower[None, :])[1][0], (order, row)
            if row[plan] != x[plan]:
                undone = row.copy()
                undone[plan] = x[plan]
                assert not classify(undone[None, :])[1][0]
        assert X[1, plan] == x[plan] and X[1, gain] == 5000   # the useless change undone, the amount the smallest
        assert X[2, gain] == 0 and X[2, plan] == 1            # the amount was not needed
