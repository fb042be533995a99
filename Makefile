# The front door: `make demo` shows the system working, `make test` checks it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: help venv train run demo report test lock clean

help:
	@echo "make demo   - set up, train if needed, start both services, call them, stop"
	@echo "make test   - run the test suite (unit and integration, real services)"
	@echo "make run    - serve both services on 127.0.0.1 until Ctrl-C"
	@echo "make train  - (re)train the classifier and the explainer"
	@echo "make report - bias and evaluation report in reports/ (REPORT_ARGS=--fail-on-gate to gate)"
	@echo "make lock   - regenerate requirements/constraints.txt from the environment"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/dev.in requirements/constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements/constraints.txt -r requirements/dev.in
	$(PY) -m pip install -q --no-deps -e .
	touch $@

train: venv
	$(PY) -m loanxai.train

run: venv
	$(PY) scripts/run_local.py

demo: venv
	$(PY) scripts/run_local.py --demo

report: venv
	test -f models/loanclassifier/artifacts/manifest.json || $(PY) -m loanxai.train
	$(PY) -m loanxai.report $(REPORT_ARGS)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

lock: venv
	{ echo "# Locked versions of the development environment (make lock regenerates this file)."; \
	  $(PY) -m pip freeze --all --exclude-editable | grep -vE '^(loanxai|pip)=='; } > requirements/constraints.txt

clean:
	rm -rf models/*/artifacts reports .run .pytest_cache
