"""deploy/ validated without a cluster: the real CRD schema, kubernetes-validate, our own checks."""
import copy
import re
import subprocess
import sys
from importlib import metadata

import pytest
import yaml

from loanxai.artifacts import REPO_ROOT
from loanxai.ops import deploycheck
from loanxai.ops.images import image_references, image_tag

ROOT = REPO_ROOT
KUBERNETES_VALIDATE = ROOT / ".venv-tools" / "bin" / "kubernetes-validate"


@pytest.fixture(scope="module")
def documents():
    return deploycheck.render()


@pytest.fixture(scope="module")
def schema():
    assert deploycheck.CRD_PATH.is_file(), f"the CRD is expected at {deploycheck.CRD_PATH}"
    return deploycheck.crd_schema()


def images_of(tag):
    """container name -> image reference, as scripts/build-images.sh tags it (python -m loanxai images)."""
    references = image_references(tag)
    return {"classifier": "docker.io/" + references["loanclassifier"], "explainer": "docker.io/" + references["explainer"],
            "console": "docker.io/" + references["console"]}


@pytest.fixture(scope="module")
def pinned_tag():
    """The tag deploy/base/kustomization.yaml pins: that of the artifacts `make train` gave where the
    release was trained (scripts/deploy.sh refuses to deploy any other build)."""
    [tag] = {image["newTag"] for image in yaml.safe_load((ROOT / "deploy" / "base" / "kustomization.yaml").read_text())["images"]}
    return tag


@pytest.fixture(scope="module")
def built_images(pinned_tag):
    return images_of(pinned_tag)


def seldon_deployment(documents, name):
    return next(d for d in documents if d["kind"] == "SeldonDeployment" and d["metadata"]["name"] == name)


def test_kustomization_renders_every_resource(documents):
    assert sorted((d["kind"], d["metadata"]["name"]) for d in documents) == [
        ("AuthorizationPolicy", "loan-classifier-callers"), ("AuthorizationPolicy", "loan-console-callers"),
        ("AuthorizationPolicy", "loan-explainer-callers"),
        ("ConfigMap", "loan-auth"), ("Deployment", "loan-console"), ("Namespace", "loan"),
        ("NetworkPolicy", "loan-classifier-callers"), ("NetworkPolicy", "loan-console-callers"),
        ("NetworkPolicy", "loan-explainer-callers"), ("NetworkPolicy", "loan-records-callers"),
        ("RequestAuthentication", "loan-callers"), ("RequestAuthentication", "loan-console-sessions"),
        ("Secret", "loan-explainer-token"), ("Secret", "loan-records"), ("Secret", "loan-sampling-key"),
        ("SeldonDeployment", "loan-classifier"), ("SeldonDeployment", "loan-explainer"), ("Service", "loan-console"),
        ("Service", "loan-records"), ("StatefulSet", "loan-records")]
    assert all(d["metadata"].get("namespace") == "loan" for d in documents if d["kind"] != "Namespace")
    assert all(d["apiVersion"] == "machinelearning.seldon.io/v1" for d in documents if d["kind"] == "SeldonDeployment")


def test_seldon_deployments_validate_against_the_crd(documents, schema):
    assert deploycheck.schema_problems(documents, schema) == []


@pytest.mark.parametrize("path, key, value", [
    (["spec", "predictors", 0], "replicass", 2),                                         # misspelled
    (["spec", "predictors", 0, "graph"], "endpiont", {"type": "REST"}),                  # misspelled
    (["spec", "predictors", 0, "componentSpecs", 0, "spec", "containers", 0], "imagePullPolicyy", "Never"),
    (["spec", "predictors", 0], "replicas", "two"),                                      # wrong type
])
def test_a_broken_seldon_deployment_is_rejected_by_the_schema(documents, schema, path, key, value):
    broken = copy.deepcopy(documents)
    node = seldon_deployment(broken, "loan-classifier")
    for step in path:
        node = node[step]
    node[key] = value
    problems = deploycheck.schema_problems(broken, schema)
    assert len(problems) == 1 and "loan-classifier" in problems[0]


def kubernetes_validate(path):
    return subprocess.run([str(KUBERNETES_VALIDATE), "--strict", "-k", "1.29.0", str(path)], capture_output=True, text=True)


def test_core_kinds_validate_strictly(documents, tmp_path):
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    result = kubernetes_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed for resource namespace/loan" in result.stdout
    assert "passed for resource networkpolicy/loan-classifier-callers" in result.stdout
    assert "passed for resource statefulset/loan-records" in result.stdout
    assert "passed for resource deployment/loan-console" in result.stdout
    assert "passed for resource service/loan-console" in result.stdout


def test_the_classifier_records_to_the_database_the_deployment_holds(documents):
    from urllib.parse import urlsplit

    from loanxai.config import ServiceSettings

    [secret] = [d for d in documents if d["kind"] == "Secret" and d["metadata"]["name"] == "loan-records"]
    [postgres] = [d for d in documents if d["kind"] == "StatefulSet"]
    container = seldon_deployment(documents, "loan-classifier")["spec"]["predictors"][0]["componentSpecs"][0]["spec"][
        "containers"][0]
    [records] = [e for e in container["env"] if e["name"] == "LOAN_RECORDS_URL"]
    assert records["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": "url"}
    url = urlsplit(secret["stringData"]["url"])
    assert ServiceSettings(records_url=secret["stringData"]["url"]).records_url.startswith("postgresql+psycopg://")
    assert url.hostname == "loan-records.loan.svc.cluster.local" and url.port == 5432
    env = {e["name"]: e for e in postgres["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert url.username == env["POSTGRES_USER"]["value"] and url.path == "/" + env["POSTGRES_DB"]["value"]
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "loan-records", "key": "password"}
    assert url.password == secret["stringData"]["password"]


def test_the_console_reads_the_classifiers_record_and_its_images_artifacts(documents):
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    env = {v["name"]: v for v in console(deployment)["env"]}
    classifier = {v["name"]: v for v in container(seldon_deployment(documents, "loan-classifier"))["env"]}
    assert env["LOAN_RECORDS_URL"] == classifier["LOAN_RECORDS_URL"]
    dockerfile = (ROOT / "models" / "console" / "Dockerfile").read_text()
    assert f"LOAN_REVIEW_ARTIFACTS={deploycheck.IMAGE_ARTIFACTS} " in dockerfile
    assert env["LOAN_REVIEW_ARTIFACTS"]["value"] == deploycheck.IMAGE_ARTIFACTS


#: what the console's process imports before it serves: its command, then gunicorn's server
CONSOLE_IMPORTS = """
import importlib.abc, importlib.metadata, importlib.util, pathlib, re, runpy, sys
locked = set(sys.argv[1].split(","))
installed = importlib.metadata.packages_distributions()
# what setuptools vendors (pkg_resources, which gunicorn imports, falls back on it)
vendored = {p.name for p in (pathlib.Path(importlib.util.find_spec("setuptools").origin).parent / "_vendor").iterdir()}
class LockedOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.partition(".")[0]
        found = {re.sub(r"[-_.]+", "-", d).lower() for d in installed.get(top, ())}
        if found and not found & locked and not (top in vendored and "setuptools" in locked):
            raise ModuleNotFoundError(f"{name} ({', '.join(sorted(found))}) is not in the image")
sys.meta_path.insert(0, LockedOnly())
import loanxai.serving.server.workers
sys.argv = ["loanxai", "console", "--help"]
runpy.run_module("loanxai", run_name="__main__")
"""


def test_the_consoles_image_holds_every_package_the_console_imports():
    context = {"classifier": "loanclassifier", "explainer": "explainer", "console": "console"}[deploycheck.CONSOLE_IMAGE]
    lines = (ROOT / "models" / context / "requirements.txt").read_text().splitlines()
    locked = {re.sub(r"[-_.]+", "-", line.partition("==")[0]).lower() for line in lines if "==" in line} | {"loanxai"}
    run = subprocess.run([sys.executable, "-c", CONSOLE_IMPORTS, ",".join(sorted(locked))], capture_output=True, text=True)
    assert run.returncode == 0 and "usage:" in run.stdout, run.stderr[-2000:]


def test_a_broken_network_policy_is_rejected_by_kubernetes_validate(documents, tmp_path):
    broken = copy.deepcopy(next(d for d in documents if d["kind"] == "NetworkPolicy"))
    broken["spec"]["ingress"][0]["from"][0]["podSelectr"] = broken["spec"]["ingress"][0]["from"][0].pop("podSelector")
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = kubernetes_validate(path)
    assert result.returncode != 0 and "podSelectr" in result.stdout


def test_project_checks_pass(documents, built_images):
    assert deploycheck.project_problems(documents, built_images) == []


def test_images_are_those_the_build_script_tags(documents, built_images, pinned_tag, artifacts):
    images = {c["name"]: c["image"] for d in documents if d["kind"] == "SeldonDeployment"
              for p in d["spec"]["predictors"] for s in p["componentSpecs"] for c in s["spec"]["containers"]}
    images |= {c["name"]: c["image"] for d in documents if d["kind"] == "Deployment"
               for c in d["spec"]["template"]["spec"]["containers"]}
    assert {name: "docker.io/" + image for name, image in images.items()} == built_images
    assert "python\" -m loanxai images" in (ROOT / "scripts" / "build-images.sh").read_text()
    # the tag the build script gives these artifacts has the pinned one's form: the package's
    # version and 12 hex digits of the artifacts' checksums (training's bytes differ from
    # machine to machine, so deploy.sh, not this test, compares the two at deployment)
    built = image_tag(artifacts.classifier_dir, artifacts.explainer_dir)
    for tag in (pinned_tag, built):
        version, digest = tag.rsplit("-", 1)
        assert version == metadata.version("loanxai") and re.fullmatch(r"[0-9a-f]{12}", digest), tag
    assert 'does not use $reference (retrained? set its newTag' in (ROOT / "scripts" / "deploy.sh").read_text()


def test_explainer_timeout_is_the_annotation_seldon_reads(documents):
    assert deploycheck.explainer_timeout_ms(documents, "loan-explainer") >= 30_000


def mutate(documents, name, change):
    broken = copy.deepcopy(documents)
    kind, _, named = (name or "").partition("/")
    if named:  # kind/name: any document
        target = next(d for d in broken if d["kind"] == kind and d["metadata"]["name"] == named)
    else:
        target = seldon_deployment(broken, name) if name else next(d for d in broken if d["kind"] == "NetworkPolicy")
    change(target)
    return broken


def set_env(name, value):
    def change(deployment):
        [variable] = [v for v in container(deployment)["env"] if v["name"] == name]
        variable["value"] = value
    return change


def policy_rule(index):
    return lambda policy: policy["spec"]["rules"][index]


def container(deployment):
    return deployment["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]


def console(deployment):
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def init(deployment):
    """The records-upgrade init container of a SeldonDeployment's first pod, or of the console's."""
    pod = deployment["spec"]["template"] if deployment["kind"] == "Deployment" else \
        deployment["spec"]["predictors"][0]["componentSpecs"][0]
    [container] = pod["spec"]["initContainers"]
    return container


def console_env(name, value=None, renamed=None):
    """Change the console's variable ``name``: its value, or its name."""
    def change(deployment):
        [variable] = [v for v in console(deployment)["env"] if v["name"] == name]
        variable.update({"value": value} if renamed is None else {"name": renamed})
    return change


def add_env(name, value):
    return lambda deployment: container(deployment)["env"].append({"name": name, "value": value})


def set_classifier_url(url):
    def change(deployment):
        [variable] = [v for v in container(deployment)["env"] if v["name"] == "LOAN_CLASSIFIER_URL"]
        variable["value"] = url
    return change


@pytest.mark.parametrize("name, change, problem", [
    ("loan-classifier", lambda d: d["spec"]["predictors"][0]["graph"].update(type="MODLE"), "unknown type 'MODLE'"),
    ("loan-classifier", lambda d: d["spec"]["predictors"][0]["graph"].update(name="model"), "names no container"),
    ("loan-classifier", lambda d: container(d).update(image="loanxai/loanclassifier:0.0.1"), "is not the built"),
    ("loan-explainer", lambda d: container(d).update(name="explain"), "no image is built for it"),
    ("loan-explainer", set_classifier_url("http://loan-classifier.loan:8000/api/v1.0/predictions"), "no executor Service"),
    ("loan-explainer", set_classifier_url("http://loan-classifier-default.other:8000/api/v1.0/predictions"),
     "no executor Service"),
    ("loan-explainer", set_classifier_url("http://loan-classifier-default.loan:9000/api/v1.0/predictions"),
     "not the executor's REST port"),
    ("loan-explainer", set_classifier_url("http://loan-classifier-default.loan:8000/predict"), "is not /api/v1.0/predictions"),
    ("loan-explainer", lambda d: d["spec"]["annotations"].update({"seldon.io/rest-read-timeout": "60000"}), "is ignored"),
    ("loan-explainer", lambda d: d["spec"]["annotations"].update({"seldon.io/rest-timeout": "60s"}), "must be milliseconds"),
    ("loan-classifier", lambda d: container(d).pop("readinessProbe"), "readinessProbe must GET /health/status"),
    ("loan-classifier", lambda d: container(d).pop("resources"), "requests and limits are required"),
    ("loan-classifier", lambda d: d["spec"].update(protocol="http"), "unknown protocol"),
    (None, lambda p: p["spec"]["podSelector"]["matchLabels"].update({"seldon-deployment-id": "classifier"}),
     "selects no SeldonDeployment"),
    (None, lambda p: p["spec"]["ingress"][1]["from"].append({"podSelector": {}}), "metrics ports are open to more than"),
    (None, lambda p: p["spec"]["ingress"].append({"ports": [{"port": 6000}]}), "metrics ports are open to more than"),
    (None, lambda p: p["spec"]["ingress"].append({"ports": [{"port": "metrics"}]}), "metrics ports are open to more than"),
    # by number, the challenger's 6001 (the operator numbers them per container) would be left out
    (None, lambda p: p["spec"]["ingress"][1].update(ports=[{"port": 6000}, {"port": 8000}]),
     "admit the metrics ports by their name 'metrics'"),
    ("loan-classifier", lambda d: container(d)["securityContext"].pop("readOnlyRootFilesystem"),
     "readOnlyRootFilesystem must be true"),
    ("loan-classifier", lambda d: container(d)["securityContext"].pop("runAsNonRoot"),
     "securityContext.runAsNonRoot must be true (the operator may replace the pod's)"),
    ("loan-explainer", lambda d: container(d)["securityContext"].pop("seccompProfile"),
     "seccompProfile must be RuntimeDefault or Localhost (the operator may replace the pod's)"),
    ("loan-classifier", lambda d: container(d)["securityContext"].update(allowPrivilegeEscalation=True),
     "allowPrivilegeEscalation must be false"),
    ("loan-explainer", lambda d: container(d)["securityContext"]["capabilities"].update(drop=["NET_RAW"]), "must drop ALL"),
    ("loan-explainer", lambda d: container(d).pop("volumeMounts"), "mounted at /tmp"),
    ("loan-explainer", lambda d: d["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["securityContext"].pop(
        "seccompProfile"), "seccompProfile"),
    ("loan-classifier", lambda d: container(d)["livenessProbe"].pop("timeoutSeconds"),
     "livenessProbe timeoutSeconds must be at least 2"),
    ("loan-explainer", lambda d: d["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["annotations"].update(
        {"prometheus.io/path": "/metrics"}), "prometheus.io/path must be '/prometheus'"),
    ("loan-classifier", set_env("LOAN_AUTH", "off"), "must set LOAN_AUTH=on"),
    ("AuthorizationPolicy/loan-explainer-callers",
     lambda p: p["spec"]["rules"][0]["when"][0].update(values=["explain", "review", "audit", "decide"]),
     "lets roles ['audit', 'decide', 'explain', 'review'] through; the service takes ['audit', 'explain', 'review']"),
    ("AuthorizationPolicy/loan-classifier-callers", lambda p: p["spec"]["rules"][0].pop("when"),
     "a rule without the role claim"),
    ("AuthorizationPolicy/loan-classifier-callers", lambda p: p["spec"]["rules"][1]["to"][0]["operation"].pop("paths"),
     "a rule without the role claim (request.auth.claims[roles]) opens ['*']"),
    ("AuthorizationPolicy/loan-explainer-callers", lambda p: p["spec"].update(action="DENY"), "must be ALLOW"),
    ("AuthorizationPolicy/loan-explainer-callers", lambda p: p["spec"]["selector"]["matchLabels"].update(
        {"seldon-deployment-id": "loan-explainr"}), "SeldonDeployment loan-explainer: no AuthorizationPolicy selects"),
    ("Namespace/loan", lambda n: n["metadata"].pop("labels"), "label istio-injection must be enabled"),
    ("RequestAuthentication/loan-callers", lambda r: r["spec"]["jwtRules"][0].pop("forwardOriginalToken"),
     "forwardOriginalToken must be true"),
    # every variable a container gets is a setting its process reads
    ("loan-explainer", add_env("LOAN_EXPLAIN_BUDGT", "15"), "LOAN_EXPLAIN_BUDGT is not a setting its process reads"),
    ("loan-classifier", add_env("LOAN_REVIEW_DAYS", "14"), "LOAN_REVIEW_DAYS is not a setting its process reads"),
    # every pod writing the record migrates it first, with its own image's code
    ("loan-explainer", lambda d: container(d).update(env=[v for v in container(d)["env"] if v["name"] != "LOAN_RECORDS_URL"]),
     "container 'explainer' gives no LOAN_RECORDS_URL"),
    ("loan-classifier", lambda d: d["spec"]["predictors"][0]["componentSpecs"][0]["spec"].pop("initContainers"),
     "container 'classifier' writes the record (LOAN_RECORDS_URL) and no init container migrates it first"),
    ("Deployment/loan-console", lambda d: init(d).update(command=["python", "-m", "loanxai", "records", "list"]),
     "container 'console' writes the record (LOAN_RECORDS_URL) and no init container migrates it first"),
    ("loan-explainer", lambda d: init(d).update(image="loanxai/loanclassifier"),
     "init container 'records-upgrade': image 'loanxai/loanclassifier' is not that of container 'explainer'"),
    ("loan-classifier", lambda d: init(d)["env"][0]["valueFrom"]["secretKeyRef"].update(name="other-records"),
     "migrates another record than 'classifier' writes"),
    ("loan-explainer", lambda d: init(d)["securityContext"].pop("readOnlyRootFilesystem"),
     "init container 'records-upgrade': securityContext.readOnlyRootFilesystem must be true"),
    ("Deployment/loan-console", lambda d: init(d).pop("resources"),
     "init container 'records-upgrade': resource requests and limits are required"),
    # the reviewer console
    ("Deployment/loan-console", lambda d: console(d).update(image="loanxai/loanclassifier:0.1.0-64494253d9e0"),
     "is not the built"),
    ("Deployment/loan-console", lambda d: console(d).update(command=["loanxai-microservice", "LoanClassifier"]),
     "runs loanxai-microservice LoanClassifier, not the console"),
    ("Deployment/loan-console", lambda d: d["spec"].update(replicas=2), "replicas must be 1"),
    ("Deployment/loan-console", lambda d: console(d)["securityContext"].pop("readOnlyRootFilesystem"),
     "readOnlyRootFilesystem must be true"),
    ("Deployment/loan-console", lambda d: console(d)["securityContext"]["capabilities"].update(drop=[]), "must drop ALL"),
    ("Deployment/loan-console", lambda d: d["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
     "the pod's securityContext.runAsNonRoot must be true"),
    ("Deployment/loan-console", lambda d: console(d)["livenessProbe"]["httpGet"].update(path="/"),
     "livenessProbe must GET /health/ping"),
    ("Deployment/loan-console", lambda d: console(d)["readinessProbe"]["httpGet"].update(port=9000),
     "readinessProbe must reach the port it listens on (8000)"),
    ("Deployment/loan-console", lambda d: console(d)["command"].__setitem__(5, "8080"),
     "listens on 8080 (--port), a port it does not declare"),
    ("Deployment/loan-console", lambda d: console(d).pop("resources"), "requests and limits are required"),
    ("Deployment/loan-console", console_env("LOAN_AUTH", "off"), "must set LOAN_AUTH=on"),
    ("Deployment/loan-console", console_env("LOAN_REVIEW_ARTIFACTS", renamed="LOAN_REVIEW_ARTIFACT"),
     "LOAN_REVIEW_ARTIFACT is not a setting its process reads"),
    ("Deployment/loan-console", console_env("LOAN_REVIEW_ARTIFACTS", "models/loanclassifier/artifacts"),
     "LOAN_REVIEW_ARTIFACTS must list /console/artifacts"),
    ("Deployment/loan-console", console_env("LOAN_REVIEW_EXPLAINER_URL", "http://loan-classifier-default.loan:8000"),
     "LOAN_REVIEW_EXPLAINER_URL 'http://loan-classifier-default.loan:8000' is not the base URL of an explainer's"),
    ("Deployment/loan-console", console_env("LOAN_REVIEW_EXPLAINER_URL", "http://loan-explainer-default.loan:9000"),
     "is not the base URL of an explainer's executor Service (loan-explainer-default.loan:8000)"),
    ("Service/loan-console", lambda s: s["spec"]["ports"][0].update(targetPort=9000),
     "targets 9000, which no container of Deployment loan-console declares"),
    ("Service/loan-console", lambda s: s["spec"]["selector"].update({"app.kubernetes.io/name": "loan-consol"}),
     "Service loan-console: selects the pods of no workload"),
    ("NetworkPolicy/loan-console-callers", lambda p: p["spec"]["podSelector"]["matchLabels"].update(
        {"app.kubernetes.io/name": "loan-consol"}), "Deployment loan-console: no NetworkPolicy selects its pods"),
    ("NetworkPolicy/loan-records-callers", lambda p: p["spec"]["ingress"][0]["from"][2]["podSelector"]["matchLabels"].update(
        {"app.kubernetes.io/name": "loan-consol"}), "admits unknown caller 'loan-consol'"),
    ("RequestAuthentication/loan-console-sessions", lambda r: r["spec"]["jwtRules"][0].pop("fromCookies"),
     "no RequestAuthentication reads the session cookie loanxai_session"),
    ("RequestAuthentication/loan-callers", lambda r: r["spec"]["jwtRules"][0].update(fromCookies=["loanxai_session"]),
     "no RequestAuthentication reads the Authorization header"),
    ("AuthorizationPolicy/loan-console-callers", lambda p: p["spec"]["rules"][2]["when"][0]["values"].append("audit"),
     "the mesh lets through POST /api/v1/reviews from role audit, which the console refuses"),
    ("AuthorizationPolicy/loan-console-callers", lambda p: p["spec"]["rules"][2]["to"].pop(1),
     "the mesh refuses GET /api/v1/reviews/7 from role decide, which the console takes"),
    ("AuthorizationPolicy/loan-console-callers", lambda p: p["spec"]["rules"][0]["to"][0]["operation"]["methods"].append(
        "DELETE"), "the mesh lets through DELETE /api/v1/reviews/7 from role review, which the console refuses"),
    ("AuthorizationPolicy/loan-console-callers", lambda p: p["spec"]["rules"][3]["to"][0]["operation"].pop("paths"),
     "the mesh lets through POST /reviews from a caller without a token, which the console refuses"),
    ("AuthorizationPolicy/loan-console-callers", lambda p: p["spec"]["rules"][3]["to"].pop(0),
     "the mesh refuses POST /login from a caller without a token, which the console takes"),
    ("AuthorizationPolicy/loan-console-callers", lambda p: p["spec"]["rules"][0]["to"][1]["operation"]["paths"].remove(
        "/decisions/explanations"), "the mesh refuses POST /decisions/explanations from role audit, which the console takes"),
    ("AuthorizationPolicy/loan-console-callers", lambda p: p["spec"].update(action="DENY"), "must be ALLOW"),
    ("AuthorizationPolicy/loan-console-callers", lambda p: p["spec"]["selector"]["matchLabels"].update(
        {"app.kubernetes.io/name": "console"}), "Deployment loan-console: no AuthorizationPolicy selects its pods"),
])

def test_each_project_check_can_fail(documents, built_images, name, change, problem):
    problems = deploycheck.project_problems(mutate(documents, name, change), built_images)
    assert any(problem in p for p in problems), problems


def test_every_seldon_deployment_needs_a_network_policy(documents, built_images):
    without = [d for d in documents if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "loan-explainer-callers")]
    problems = deploycheck.project_problems(without, built_images)
    assert "SeldonDeployment loan-explainer: no NetworkPolicy selects its pods" in problems


@pytest.mark.parametrize("kind", ["RequestAuthentication", "AuthorizationPolicy"])
def test_istio_objects_validate_strictly_against_istios_crds(documents, kind):
    path = deploycheck.CRD_FILES[kind]
    assert path.is_file(), f"Istio's CRDs are expected at {path}"
    schema = deploycheck.crd_schema(path, kind)
    assert sum(d["kind"] == kind for d in documents) >= 1
    assert deploycheck.schema_problems(documents, schema, kind) == []


@pytest.mark.parametrize("kind, change, words", [
    ("AuthorizationPolicy", lambda p: p["spec"]["rules"][0]["to"][0]["operation"].update(pathz=["/x"]), "'pathz'"),
    ("AuthorizationPolicy", lambda p: p["spec"].update(action="PERMIT"), "'PERMIT' is not one of"),
    ("RequestAuthentication", lambda r: r["spec"]["jwtRules"][0].update(forwardOriginalToken="yes"), "'yes' is not of type"),
    ("RequestAuthentication", lambda r: r["spec"].update(jwtRule=[]), "'jwtRule'"),
])
def test_a_broken_istio_object_is_rejected_by_its_crd(documents, kind, change, words):
    broken = copy.deepcopy(documents)
    change(next(d for d in broken if d["kind"] == kind))
    problems = deploycheck.schema_problems(broken, deploycheck.crd_schema(deploycheck.CRD_FILES[kind], kind), kind)
    assert len(problems) == 1 and words in problems[0], problems


def test_the_mesh_and_the_services_read_one_issuer_audience_and_key_set(documents):
    [config] = [d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "loan-auth"]
    authentications = [d for d in documents if d["kind"] == "RequestAuthentication"]
    assert {a["metadata"]["name"] for a in authentications} == {"loan-callers", "loan-console-sessions"}
    for authentication in authentications:
        [rule] = authentication["spec"]["jwtRules"]
        assert (rule["issuer"], rule["audiences"], rule["jwks"]) == (
            config["data"]["issuer"], [config["data"]["audience"]], config["data"]["jwks.json"])
    pods = [(container(d), d["spec"]["predictors"][0]["componentSpecs"][0]["spec"])
            for d in documents if d["kind"] == "SeldonDeployment"]
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    for served, pod in [*pods, (console(deployment), deployment["spec"]["template"]["spec"])]:
        env = {v["name"]: v for v in served["env"]}
        assert env["LOAN_AUTH_ISSUER"]["valueFrom"]["configMapKeyRef"] == {"name": "loan-auth", "key": "issuer"}
        assert env["LOAN_AUTH_AUDIENCE"]["valueFrom"]["configMapKeyRef"] == {"name": "loan-auth", "key": "audience"}
        mounts = {m["mountPath"]: m["name"] for m in served["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        folder, _, file = env["LOAN_AUTH_KEYS"]["value"].rpartition("/")
        assert volumes[mounts[folder]]["configMap"]["name"] == "loan-auth" and file == "jwks.json"
    explainer = container(seldon_deployment(documents, "loan-explainer"))
    token = {v["name"]: v for v in explainer["env"]}["LOAN_CLASSIFIER_TOKEN_FILE"]["value"]
    mounts = {m["mountPath"]: m["name"] for m in explainer["volumeMounts"]}
    volumes = {v["name"]: v for v in seldon_deployment(documents, "loan-explainer")["spec"]["predictors"][0][
        "componentSpecs"][0]["spec"]["volumes"]}
    assert volumes[mounts[token.rpartition("/")[0]]]["secret"]["secretName"] == "loan-explainer-token"
