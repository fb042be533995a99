"""deploy/challenger/: the base with a challenger shadowing the champion, checked as strictly as
deploy/ (the real CRD, Seldon's webhook rules, our own checks), and the tags it pins."""
import copy
import shutil

import pytest
import yaml

from loanxai.artifacts import DEPLOY_DIR
from loanxai.config import CHALLENGER, CHAMPION
from loanxai.errors import ArtifactError
from loanxai.ops import deploycheck
from loanxai.ops.images import PINS, pin_tag, pinned_tag
from tests.unit.ops.test_deploy import images_of, seldon_deployment

OVERLAY = DEPLOY_DIR / "challenger"


@pytest.fixture(scope="module")
def base():
    return deploycheck.render()


@pytest.fixture(scope="module")
def shadowed():
    return deploycheck.render(OVERLAY)


@pytest.fixture(scope="module")
def images():
    return {role: images_of(pinned_tag(role)) for role in (CHAMPION, CHALLENGER)}


def predictors(documents):
    return {p["name"]: p for p in seldon_deployment(documents, "loan-classifier")["spec"]["predictors"]}


def pod(predictor):
    [component] = predictor["componentSpecs"]
    return component


def classifier(predictor):
    [container] = pod(predictor)["spec"]["containers"]
    return container


def env(container):
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_overlay_adds_a_shadow_predictor_and_changes_nothing_else(base, shadowed):
    by_name = predictors(shadowed)
    assert list(by_name) == ["default", "challenger"]
    assert by_name["challenger"]["shadow"] is True and by_name["challenger"]["replicas"] == 1
    assert "shadow" not in by_name["default"] and "traffic" not in by_name["default"]
    assert by_name["challenger"]["graph"] == by_name["default"]["graph"]
    # everything else in the cluster is the base's: the explainer, its URL of the champion, the policies
    untouched = [d for d in shadowed if d["metadata"]["name"] != "loan-classifier"]
    assert untouched == [d for d in base if d["metadata"]["name"] != "loan-classifier"]
    assert predictors(base)["default"] == by_name["default"]


def test_the_challenger_runs_its_own_image_in_the_challengers_role(shadowed, images):
    by_name = predictors(shadowed)
    champion, challenger = classifier(by_name["default"]), classifier(by_name["challenger"])
    assert "docker.io/" + champion["image"] == images[CHAMPION]["classifier"]
    assert "docker.io/" + challenger["image"] == images[CHALLENGER]["classifier"]
    assert env(challenger)["LOAN_MODEL_ROLE"] == CHALLENGER and "LOAN_MODEL_ROLE" not in env(champion)
    labels = {name: pod(p)["metadata"]["labels"][deploycheck.MODEL_ROLE_POD_LABEL] for name, p in by_name.items()}
    assert labels == {"default": CHAMPION, "challenger": CHALLENGER}
    # the same pod otherwise: the record it writes to, its token checks, probes, limits, hardening
    same = copy.deepcopy(pod(by_name["challenger"]))
    same["metadata"]["labels"][deploycheck.MODEL_ROLE_POD_LABEL] = CHAMPION
    container = same["spec"]["containers"][0]
    container["image"] = champion["image"]
    container["env"] = [e for e in container["env"] if e["name"] != "LOAN_MODEL_ROLE"]
    assert same == pod(by_name["default"])


def test_the_overlay_validates_against_the_crd_and_our_checks(shadowed, images):
    assert deploycheck.schema_problems(shadowed, deploycheck.crd_schema()) == []
    assert deploycheck.project_problems(shadowed, images[CHAMPION], images[CHALLENGER]) == []


def shadow_of(documents):
    return predictors(documents)["challenger"]


@pytest.mark.parametrize("change, problem", [
    (lambda d: classifier(shadow_of(d))["env"].pop(), "must serve as the challenger (LOAN_MODEL_ROLE: not set)"),
    (lambda d: classifier(predictors(d)["default"])["env"].append({"name": "LOAN_MODEL_ROLE", "value": "challenger"}),
     "predictor 'default': container 'classifier' must serve as the champion"),
    (lambda d: pod(shadow_of(d))["metadata"]["labels"].update({deploycheck.MODEL_ROLE_POD_LABEL: "champion"}),
     "the pod label loanxai.io/model-role must be 'challenger', not 'champion'"),
    (lambda d: classifier(shadow_of(d)).update(image="loanxai/loanclassifier:0.1.0-000000000000"),
     "image 'loanxai/loanclassifier:0.1.0-000000000000' is not the built"),
    (lambda d: predictors(d)["default"].update(shadow=True), "2 shadow predictors; Seldon allows one"),
    (lambda d: predictors(d)["default"].update(shadow=True), "a shadow predictor cannot be the only one"),
    (lambda d: shadow_of(d).update(shadow=False, traffic=10), "predictors default, challenger must sum to 100"),
    (lambda d: shadow_of(d).update(name="default"), "duplicate predictor name 'default'"),
])
def test_each_shadow_check_can_fail(shadowed, images, change, problem):
    broken = copy.deepcopy(shadowed)
    change(broken)
    problems = deploycheck.project_problems(broken, images[CHAMPION], images[CHALLENGER])
    assert any(problem in p for p in problems), problems


def test_a_shadow_is_not_checked_without_the_challengers_images(shadowed, images):
    problems = deploycheck.project_problems(shadowed, images[CHAMPION])
    assert problems == ["SeldonDeployment loan-classifier: predictor 'challenger' is a shadow: give the challenger's "
                        "images to check its containers' images against"]


def test_pinning_a_tag_rewrites_only_the_tags_of_that_role(tmp_path):
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY_DIR, deploy)
    before = {role: (deploy / path).read_text() for role, path in PINS.items()}
    pin_tag(CHALLENGER, "0.1.0-aaaaaaaaaaaa", deploy)
    assert pinned_tag(CHALLENGER, deploy) == "0.1.0-aaaaaaaaaaaa"
    assert pinned_tag(CHAMPION, deploy) == pinned_tag(CHAMPION)
    assert (deploy / PINS[CHAMPION]).read_text() == before[CHAMPION]
    # the file keeps its comments: only the tag line changed
    changed = [(a, b) for a, b in zip(before[CHALLENGER].splitlines(), (deploy / PINS[CHALLENGER]).read_text().splitlines(),
                                      strict=True) if a != b]
    assert changed == [(f"    newTag: {pinned_tag(CHALLENGER)}", "    newTag: 0.1.0-aaaaaaaaaaaa")]
    rendered = predictors(deploycheck.render(deploy / "challenger"))
    assert classifier(rendered["challenger"])["image"] == "loanxai/loanclassifier:0.1.0-aaaaaaaaaaaa"
    assert classifier(rendered["default"])["image"] == f"loanxai/loanclassifier:{pinned_tag(CHAMPION)}"


def test_a_kustomization_pinning_two_tags_for_one_role_is_refused(tmp_path):
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY_DIR, deploy)
    path = deploy / PINS[CHAMPION]
    content = yaml.safe_load(path.read_text())
    content["images"][1]["newTag"] = "0.1.0-bbbbbbbbbbbb"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ArtifactError, match="expected one image tag"):
        pinned_tag(CHAMPION, deploy)


def test_a_folder_without_the_kustomization_is_refused_naming_it(tmp_path):
    with pytest.raises(ArtifactError, match=r"challenger/kustomization.yaml: cannot read the challenger's kustomization"):
        pin_tag(CHALLENGER, "0.1.0-aaaaaaaaaaaa", tmp_path)
