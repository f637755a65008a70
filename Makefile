# Two entry points for people (README quick start): `make run` and `make test`.
# `make run` installs what the service needs at run time only; `make test` adds the browser,
# the test runner, the linters and the type checker (README: "What set-up installs").
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q --disable-pip-version-check --no-deps
# Stamps: a lock newer than its stamp reinstalls that lock (the test stamp follows the run one).
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# Debian packages, installed only when missing. Run time: EGL/GL from Mesa (llvmpipe offscreen
# rendering on CPU-only machines, the NVIDIA driver's own libraries where there is a GPU).
APT_RUN := libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libgles2
# Tests only: Chromium + ChromeDriver for the browser tests (Playwright drives Debian's
# Chromium; nothing downloads a browser) and a font for the pages it renders.
APT_TEST := chromium chromium-driver fonts-dejavu-core
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup setup-test run test lint bench lock os-packages os-packages-test services

# $(call apt_missing,PACKAGES): apt-get install those of PACKAGES that are not installed.
define apt_missing
@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
if [ -n "$$missing" ]; then echo "installing OS packages:$$missing"; \
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
endef

os-packages:
	$(call apt_missing,$(APT_RUN))

os-packages-test:
	$(call apt_missing,$(APT_TEST))

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(RUN_STAMP): requirements.lock | $(BIN)/python
	$(PIP) -r requirements.lock
	$(PIP) -e .
	touch $@

$(TEST_STAMP): requirements-test.lock $(RUN_STAMP)
	$(PIP) -r requirements-test.lock
	touch $@

# Run time only: OS libraries + requirements.lock + the project (editable).
setup: os-packages $(RUN_STAMP)

# Node.js SDK test dependencies (tests/node, @segment/analytics-node): `npm ci` when the lock is
# newer than the stamp; left out where node/npm are missing (test_segment_node.py then skips).
NODE_STAMP := tests/node/node_modules/.installed
NODE_TEST := $(if $(shell command -v node >/dev/null && command -v npm),$(NODE_STAMP))

$(NODE_STAMP): tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund
	touch $@

# Everything the tests, linters and benchmarks need on top: + Chromium + requirements-test.lock
# + the Node.js SDK for its tests.
setup-test: setup os-packages-test $(TEST_STAMP) $(NODE_TEST)

run: setup
	$(BIN)/python -m service --host $(HOST) --port $(PORT)

# The tests use the real PostgreSQL (127.0.0.1:5432, database test) and Redis (127.0.0.1:6379).
# This kind of machine starts both before a session; start them here only if they are down.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; }
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || { echo "starting Redis"; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; }

# Static checks, in this order: ruff, mypy (pyproject [tool.mypy]), import-linter
# (pyproject [tool.importlinter]).
lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# CI runs exactly this (.ci/run): ruff, mypy, lint-imports, then pytest.
test: lint services
	$(BIN)/python -m pytest

BENCHMARKS := vision_core landmark_backends frame_latency render_glasses aa_quality codec iris_refinement lipstick stream_roundtrip ingest offers_quality analytics_load analytics_lake

# Every benchmark prints a table and writes benchmarks/results/NAME.{md,json}.
# (The benchmarks' HTTP clients come with the test lock.)
bench: setup-test
	@for b in $(BENCHMARKS); do echo "== $$b"; $(BIN)/python -m benchmarks.$$b || exit 1; done
	$(BIN)/python -m benchmarks.report

# Re-resolve both pin sets: requirements.in + requirements-test.in are resolved together (so the
# two locks fit each other), then requirements.in alone under those pins -> requirements.lock,
# and the rest -> requirements-test.lock. mediapipe is installed without its declared
# jax/jaxlib/sentencepiece/sounddevice/opencv-contrib, which it never imports.
LOCK_VENV := /tmp/tryon-lock
LOCK_PIP := pip install -q --disable-pip-version-check
FREEZE = $(1)/bin/pip freeze | grep -v -E '^(pip|setuptools|wheel)=='
lock:
	rm -rf $(LOCK_VENV) && mkdir -p $(LOCK_VENV)
	$(PY) -m venv $(LOCK_VENV)/all && $(PY) -m venv $(LOCK_VENV)/run
	$(LOCK_VENV)/all/bin/$(LOCK_PIP) --no-deps mediapipe==0.10.21
	$(LOCK_VENV)/all/bin/$(LOCK_PIP) -r requirements.in -r requirements-test.in
	$(call FREEZE,$(LOCK_VENV)/all) > $(LOCK_VENV)/all.txt
	$(LOCK_VENV)/run/bin/$(LOCK_PIP) --no-deps mediapipe==0.10.21
	$(LOCK_VENV)/run/bin/$(LOCK_PIP) -r requirements.in -c $(LOCK_VENV)/all.txt
	$(call FREEZE,$(LOCK_VENV)/run) > $(LOCK_VENV)/run.txt
	{ echo "# Full run-time pin set, installed with --no-deps (see README: lean mediapipe). Regenerate: make lock"; \
	  cat $(LOCK_VENV)/run.txt; } > requirements.lock
	{ echo "# Test-only pins on top of requirements.lock, installed with --no-deps. Regenerate: make lock"; \
	  grep -v -x -F -f $(LOCK_VENV)/run.txt $(LOCK_VENV)/all.txt; } > requirements-test.lock
