# Two commands matter: `make run` (the whole system) and `make test` (the whole suite).
# Both install what they need: a pinned uv in .tools/, then the locked environment in .venv/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.8
UV := .tools/bin/uv
# Debian testing's prometheus + promtool, 3.5 LTS (tests/monitoring, `promtool check rules`); see deploy/monitoring/README.md.
PROMETHEUS := .tools/prometheus/bin/prometheus
VENV := .venv
BIN := $(VENV)/bin
BENCH_LLM_MODE ?= responses_background
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test check lint typecheck format schemas openapi demo token dev-user-token url faults bench bench-budget benchmarks bench-sync prometheus alerts clean

run: $(VENV)/.synced ## Start NATS, Postgres, the LLM simulator and the four services; Ctrl-C stops all.
	$(BIN)/python -m devstack run

# Without Prometheus only tests/monitoring's Prometheus tests skip (saying why): a failed fetch is not fatal.
test: $(VENV)/.synced ## Unit, integration (real NATS + Postgres), end-to-end and monitoring tests.
	-@$(MAKE) -s --no-print-directory $(PROMETHEUS)
	$(BIN)/pytest

check: lint typecheck test ## Everything CI cares about.

lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.synced
	$(BIN)/mypy contracts service_runtime services llm_simulator devstack bench

format: $(VENV)/.synced
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: $(VENV)/.synced ## Regenerate the committed JSON Schemas of the contracts.
	$(BIN)/python -m contracts.schemas

openapi: $(VENV)/.synced ## Regenerate the committed OpenAPI document of the gateway.
	$(BIN)/python -m services.gateway openapi

demo: $(VENV)/.synced ## Send one request (a fresh user's) to a running `make run`, follow it, print the commands to look at it.
	$(BIN)/python -m devstack demo

token: $(VENV)/.synced ## Print an access token for a fresh random user of a running `make run` (valid 24 h).
	@$(BIN)/python -m devstack token

dev-user-token: $(VENV)/.synced ## Print an access token for the fixed development user (the same user every time).
	@$(BIN)/python -m devstack token --dev-user

url: $(VENV)/.synced ## Print the URL of the running `make run`'s gateway (http://127.0.0.1:8000 unless that port was taken).
	@$(BIN)/python -m devstack url

faults: $(VENV)/.synced ## The long fault run: 100 plans, 20 kills, NATS and Postgres restarts, 30 % LLM faults (FAULTS_ARGS="--llm-mode responses_background").
	$(BIN)/python -m tests.faults --plans 100 --kills 20 --fault-rate 0.3 --report .run/faults-report.json $(FAULTS_ARGS)

bench: $(VENV)/.synced ## One planner holding 1,000 concurrent 60-second LLM calls (BENCH_LLM_MODE=chat_stream to measure streaming).
	$(BIN)/python -m bench.long_calls --calls 1000 --seconds 60 --llm-mode $(BENCH_LLM_MODE) --report .run/bench-long-calls.json

bench-budget: $(VENV)/.synced ## 3 planners, 2 profilers sharing the provider's budget under twice its load, a planner and a profiler killed mid-run (~13 min).
	$(BIN)/python -m bench.provider_budget --provider-tpm 2000000 --kill --report .run/bench-provider-budget.json

prometheus: $(PROMETHEUS) ## Debian's prometheus and promtool into .tools/prometheus/bin (no root needed).

$(PROMETHEUS):
	sh deploy/monitoring/fetch-prometheus.sh .tools/prometheus

alerts: $(VENV)/.synced ## Regenerate the PrometheusRule in deploy/k8s/base from deploy/monitoring/alerts.yaml.
	$(BIN)/python deploy/monitoring/prometheus_rule.py

benchmarks: bench-sync ## Every benchmark (gateway, pipeline, long calls, Celery, persister, cost) -> docs/benchmarks.md; ~10 min, not part of `make test`.
	$(BIN)/python -m bench $(BENCHMARKS_ARGS)

# The bench group (Celery, Redis, matplotlib, py-spy) on top of the default environment, without
# touching the stamp `make test` relies on; --inexact keeps whatever else is installed.
bench-sync: $(VENV)/.synced
	$(UV) sync --locked --inexact --group bench

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	@touch $@

clean:
	rm -rf .tools $(VENV) .mypy_cache .ruff_cache .pytest_cache
