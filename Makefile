# One obvious way to run each thing. `make run` sets up and runs the default pipeline;
# `make test` sets up and runs the tests.
SHELL := /bin/bash
VENV        ?= .venv
DELPHES_DIR ?= .deps/delphes
PYTHON      ?= python3
CORES       ?= all
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed

.PHONY: setup run test figures report lock clean-env help
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): envs/requirements.txt envs/constraints.txt pyproject.toml
	@echo "[setup] python environment in $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r envs/requirements.txt -c envs/constraints.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

setup: $(STAMP)  ## create the environment and build Delphes (idempotent)
	@JOBS=$${JOBS:-$$(nproc)} envs/install_delphes.sh $(VENV) $(DELPHES_DIR)
	@echo "[setup] done: $$(du -sh $(VENV) | cut -f1) python env, $$(du -sh $(DELPHES_DIR) | cut -f1) Delphes"

run: setup  ## set up, then run the default pipeline (config.yaml)
	DELPHES_DIR=$(abspath $(DELPHES_DIR)) $(VENV)/bin/snakemake --cores $(CORES) $(ARGS)

figures: setup  ## redraw figures and tables from cached samples/models
	DELPHES_DIR=$(abspath $(DELPHES_DIR)) $(VENV)/bin/snakemake --cores $(CORES) figures $(ARGS)

report: setup  ## HTML report of the last run (report.html)
	$(VENV)/bin/snakemake --report report.html $(ARGS)

test: setup  ## set up, then run the test suite
	DELPHES_DIR=$(abspath $(DELPHES_DIR)) $(VENV)/bin/python -m pytest $(ARGS)

lock:  ## re-pin envs/constraints.txt from the current environment
	$(PY) -m pip freeze --exclude-editable | sed 's/+cpu$$//' > envs/constraints.txt

clean-env:  ## remove the environment and the Delphes build
	rm -rf $(VENV) $(DELPHES_DIR)
