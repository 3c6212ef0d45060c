# MLOps Hub: `make run` starts everything on one machine; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check bench install init demo clean-data

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

# The real MLflow client for tests/api/test_mlflow_client.py, in its own virtualenv (its pins clash with ours).
MLFLOW_VENV := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed

$(MLFLOW_STAMP): requirements-mlflow.txt
	test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install --quiet -r requirements-mlflow.txt
	touch $(MLFLOW_STAMP)

# Migrates, seeds the demo workspace when the database is empty, starts UI + worker + scoring service.
run: install
	$(PY) -m mlops_core up

test: install $(MLFLOW_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The edit loop: lint (ruff.toml) and the unit tier, in about a minute.
check: install
	$(VENV)/bin/ruff check mlops_core hub_ui pages app.py tests benchmarks
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

# Benchmarks are not part of `make test`; they print one table of figures vs targets.
bench: install
	$(PY) benchmarks/run_all.py

init: install
	$(PY) -m mlops_core init

demo: install
	$(PY) -m mlops_core demo
