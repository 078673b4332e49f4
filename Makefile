# Two commands matter: `make run` (the whole system) and `make test` (the whole suite).
# Both install what they need: a pinned uv in .tools/, then the locked environment in .venv/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test check lint typecheck format schemas demo token clean

run: $(VENV)/.synced ## Start NATS, Postgres, the LLM simulator and the four services; Ctrl-C stops all.
	$(BIN)/python -m devstack run

test: $(VENV)/.synced ## Unit, integration (real NATS + Postgres) and end-to-end tests.
	$(BIN)/pytest

check: lint typecheck test ## Everything CI cares about.

lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.synced
	$(BIN)/mypy contracts service_runtime services llm_simulator devstack

format: $(VENV)/.synced
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: $(VENV)/.synced ## Regenerate the committed JSON Schemas of the contracts.
	$(BIN)/python -m contracts.schemas

demo: $(VENV)/.synced ## Send one request to a running `make run` and follow it to the end.
	$(BIN)/python -m devstack demo

token: $(VENV)/.synced ## Print a development access token for a running `make run`.
	@$(BIN)/python -m devstack token

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	@touch $@

clean:
	rm -rf .tools $(VENV) .mypy_cache .ruff_cache .pytest_cache
