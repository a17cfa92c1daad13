# make run   : set up .venv, then materialize every asset of $(PROFILE) into the local instance
# make test  : set up .venv, then lint, type-check and run the test suite (what CI runs)
# make dev   : the Dagster UI on the same instance      make mlflow : the MLflow UI on the same store
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PROFILE ?= conf/default.yaml
SELECT ?= *
PYTEST_ARGS ?=
BIN := $(VENV)/bin

export DAGSTER_HOME := $(CURDIR)
export LLM_ASSETS_PROFILE := $(abspath $(PROFILE))
export PYTHONUNBUFFERED := 1

.PHONY: setup run refresh test lint dev mlflow clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Torch first, pinned: an unpinned torch pulled in by another package brings GBs of CUDA wheels.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/llm-assets materialize --select '$(SELECT)'

# Only what changed: sources are re-read, then stale or missing assets are materialized.
refresh: setup
	$(BIN)/llm-assets materialize --select '$(SELECT)' --stale-only

lint: setup
	$(BIN)/ruff check llm_assets llm_assets_tests benchmarks
	$(BIN)/ruff format --check llm_assets llm_assets_tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

dev: setup
	$(BIN)/dagster dev -w workspace.yaml

mlflow: setup
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/var/mlflow/mlflow.db}" \
		--default-artifact-root "$(CURDIR)/var/mlflow/artifacts" --host 127.0.0.1 --port 5000

clean:
	rm -rf var
