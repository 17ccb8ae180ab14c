# opsjobs — every entry point an engineer or CI needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help setup run test lint fmt bench screenshots

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The browser tests drive Debian's Chromium (a browser download is not possible here).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

setup: $(STAMP) $(CHROMIUM) ## create .venv, install opsjobs with its dev tools, and Chromium

run: setup ## migrate and start API + workers (Ctrl-C stops all)
	$(BIN)/opsjobs up

test: setup ## run the test suite against real PostgreSQL and Redis
	$(BIN)/pytest

lint: setup ## ruff, mypy --strict and the layering contract (import-linter)
	$(BIN)/ruff check service executors lab tests bench
	$(BIN)/ruff format --check service executors lab tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: setup ## format and autofix
	$(BIN)/ruff format service executors lab tests bench
	$(BIN)/ruff check --fix service executors lab tests bench

bench: setup ## throughput and latency benchmarks with in-run baselines
	$(BIN)/python -m bench

screenshots: setup ## refresh docs/screenshots (light and dark) from the console's browser tests
	OPSJOBS_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest tests/console/test_browser.py
