# The front door: `make demo` shows the system working, `make test` checks it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TOOLS ?= .venv-tools
# podman/buildah on machines without a Docker engine (see scripts/podman-sandbox.sh)
SANDBOX := . scripts/podman-sandbox.sh &&

.PHONY: help venv tools bench train run demo replay monitoring-files report records figures compare promote score test reliability lint docs reference lock clean images kind-up deploy smoke kind-down container-smoke container-smoke-s2i \
	cluster-tools cluster-up cluster-down

help:
	@echo "make demo   - set up, train if needed, start both services, call them, stop"
	@echo "make test   - lint, build the docs, run every test (unit, integration, reliability; needs ../shared)"
	@echo "make run    - serve both services on 127.0.0.1 until Ctrl-C, with Prometheus at :9090 (rules and alerts);"
	@echo "             CHALLENGER=<artifacts dir>: a retrained classifier shadows the live one (decisions mirrored, recorded)"
	@echo "make replay - serve, replay held-out traffic and the seed's trap, print the alerts Prometheus raises"
	@echo "make train  - (re)train: DATASET=datasets/x.yaml (your own data), CANDIDATE=..., ACCEPT_UNFAIR=\"reason\" ACCEPTED_BY=\"name\","
	@echo "             INCUMBENT=<the served classifier's artifacts> (compared with every candidate)"
	@echo "make report - bias and evaluation report in reports/ (REPORT_ARGS=--fail-on-gate to gate)"
	@echo "make score INPUT=applications.csv OUT=decisions.csv - decide a file through the classifier (URL=...)"
	@echo "make records ARGS=\"show 8812\" - the decision record: show, list, export, redecide, notice(s), purge"
	@echo "make figures ARGS=\"--since 2026-03-01\" - the monitoring's figures for a past window, from the record"
	@echo "make compare CHALLENGER=<artifacts dir> ARGS=\"--since 2026-03-01\" - the challenger's decisions beside the live one's, by group; reports/compare/"
	@echo "make promote CHALLENGER=<artifacts dir> - the promotion gate on the shadowed decisions, then the image tags swapped in deploy/"
	@echo "make images - build the images (classifier, explainer, reviewer console) with docker or podman (tag derived from the artifacts)"
	@echo "make kind-up deploy smoke - a kind cluster with Seldon Core, the services on it, a smoke test"
	@echo "make kind-down - delete the kind cluster"
	@echo "make cluster-tools - build kube-apiserver, kubectl, etcd and the Seldon operator from source (~10 min once; cached)"
	@echo "make cluster-up - a local control plane with the Seldon operator (root; CLUSTER_DIR=.run/cluster): prints its KUBECONFIG"
	@echo "make cluster-down - stop it and remove its network namespace"
	@echo "make container-smoke - build and run the images with podman here, smoke-test them (the console's pages and a notice too)"
	@echo "make container-smoke-s2i - the same with the images s2i builds (scripts/s2i-images.sh)"
	@echo "make bench  - benchmarks against MLServer (needs wrk: apt-get install wrk); bench/results/"
	@echo "make reliability - faults, load and hostile input against the real services; bench/results/reliability.json"
	@echo "make lint   - ruff and import-linter (the layers of the package)"
	@echo "make docs   - build the docs site strictly into build/site (a broken link fails)"
	@echo "make reference - regenerate the docs' reference tables from the code"
	@echo "make monitoring-files - regenerate deploy/monitoring/ from the code"
	@echo "make lock   - regenerate requirements/constraints.txt and each image's requirements.txt"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/dev.in requirements/nodeps.txt requirements/constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements/constraints.txt -r requirements/dev.in
	$(PY) -m pip install -q --no-deps -r requirements/nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

tools: $(TOOLS)/.installed

$(TOOLS)/.installed: requirements/tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --no-deps -r requirements/tools.txt
	touch $@

$(VENV)-mlserver/.installed: bench/mlserver.txt
	test -x $(VENV)-mlserver/bin/python || $(PYTHON) -m venv $(VENV)-mlserver
	$(VENV)-mlserver/bin/python -m pip install -q --no-deps -r bench/mlserver.txt
	touch $@

bench: venv $(VENV)-mlserver/.installed
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) -m loanxai reference --results performance

# DATASET: a dataset description (default: datasets/census.yaml); see README, "Use your own data"
# CANDIDATE: auto (default: the search's rule), none (the seed's model), or a candidate's name (see the report)
# ACCEPT_UNFAIR: the business justification for a model the fairness screen flags, ACCEPTED_BY: who gives it (default: the user)
# INCUMBENT: the served classifier's artifacts folder, compared with every candidate (e.g. models/loanclassifier/artifacts)
train: venv
	$(PY) -m loanxai train $(if $(DATASET),--dataset $(DATASET)) $(if $(CANDIDATE),--candidate "$(CANDIDATE)") \
	  $(if $(ACCEPT_UNFAIR),--accept-unfair "$(ACCEPT_UNFAIR)") $(if $(ACCEPTED_BY),--accepted-by "$(ACCEPTED_BY)") \
	  $(if $(INCUMBENT),--incumbent "$(INCUMBENT)")

# CHALLENGER: a retrained classifier's artifacts folder, served as a challenger shadowing the classifier
run: venv
	$(PY) -m loanxai run $(if $(CHALLENGER),--challenger "$(CHALLENGER)")

demo: venv
	$(PY) -m loanxai run --demo

replay: venv
	$(PY) -m loanxai run --replay $(if $(CHALLENGER),--challenger "$(CHALLENGER)")
	$(PY) -m loanxai reference --results replay

# regenerate deploy/monitoring/ (rules, PrometheusRule, dashboard) after changing loanxai/monitoring/rules.py or dashboard.py
monitoring-files: venv
	$(PY) -m loanxai rules
	$(PY) -m loanxai dashboard

report: venv
	$(PY) -m loanxai train --if-missing
	$(PY) -m loanxai report $(REPORT_ARGS)

# INPUT: a CSV of applications; OUT: the decisions (errors beside it); URL: the classifier (default: make run's)
# the reliability suite alone (make test runs it too); its figures go to bench/results/reliability.json
reliability: venv
	LOAN_RELIABILITY_REPORT=bench/results/reliability.json $(PY) -m pytest -m reliability $(PYTEST_ARGS)
	$(PY) -m loanxai reference --results reliability

# ARGS: a records command and its options, e.g. "show 8812", "notices --since 2026-03-01 --out-dir reports/notices"
records: venv
	$(PY) -m loanxai records $(ARGS)

# ARGS: the window and options, e.g. "--since 2026-03-01 --until 2026-04-01 --json reports/figures.json"
figures: venv
	$(PY) -m loanxai figures $(ARGS)

# CHALLENGER: the challenger's classifier artifacts (as make run was given them)
compare: venv
	@test -n "$(CHALLENGER)" || { echo "make compare needs CHALLENGER=<the challenger's classifier artifacts>" >&2; exit 2; }
	$(PY) -m loanxai compare --challenger "$(CHALLENGER)" $(ARGS)

# the promotion gate, then the tags swapped in deploy/base/ and deploy/challenger/ (docs/how-to/challenger.md)
promote: venv
	@test -n "$(CHALLENGER)" || { echo "make promote needs CHALLENGER=<the challenger's classifier artifacts>" >&2; exit 2; }
	$(PY) -m loanxai promote --challenger "$(CHALLENGER)" $(if $(ACCEPT_UNFAIR),--accept-unfair "$(ACCEPT_UNFAIR)") \
	  $(if $(ACCEPTED_BY),--accepted-by "$(ACCEPTED_BY)") $(ARGS)

score: venv
	$(PY) -m loanxai score $(INPUT) --out $(OUT) $(if $(URL),--classifier-url $(URL)) $(SCORE_ARGS)

test: venv tools $(VENV)-mlserver/.installed cluster-tools lint docs
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# NO_MKDOCS_2_WARNING: mkdocs-material's banner about its successor, printed on every build
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

reference: venv
	$(PY) -m loanxai reference

images: venv
	scripts/build-images.sh

kind-up:
	scripts/kind-up.sh

deploy: venv
	scripts/deploy.sh

smoke: venv
	scripts/smoke.sh

kind-down:
	scripts/kind-down.sh

# etcd, kube-apiserver and the Seldon Core operator built from source, in a network namespace of their own
# (loanxai/ops/cluster/); CLUSTER_DIR: the run folder (default: .run/cluster)
cluster-tools:
	scripts/cluster-tools.sh

cluster-up: cluster-tools venv
	$(PY) -m loanxai cluster up $(if $(CLUSTER_DIR),--dir "$(CLUSTER_DIR)")

cluster-down: venv
	$(PY) -m loanxai cluster down $(if $(CLUSTER_DIR),--dir "$(CLUSTER_DIR)")

container-smoke: venv
	$(SANDBOX) scripts/container-smoke.sh

container-smoke-s2i: venv
	$(SANDBOX) IMAGE_BUILDER=s2i scripts/container-smoke.sh

lock: venv
	$(PY) scripts/lock.py

clean:
	rm -rf models/*/artifacts models/*/wheels models/*/build-ca.crt reports .run .pytest_cache
