# Two entry points for people (README quick start): `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages: EGL/GL from Mesa (llvmpipe offscreen rendering on CPU-only machines),
# and Chromium + ChromeDriver for the browser tests. Installed only when missing.
APT_PACKAGES := libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libgles2 chromium chromium-driver fonts-dejavu-core
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run test lint bench lock os-packages services

os-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing OS packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

$(STAMP): requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: os-packages $(STAMP)

run: setup
	$(BIN)/python -m service --host $(HOST) --port $(PORT)

# The tests use the real PostgreSQL (127.0.0.1:5432, database test) and Redis (127.0.0.1:6379).
# This kind of machine starts both before a session; start them here only if they are down.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; }
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || { echo "starting Redis"; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; }

test: setup services
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

BENCHMARKS := vision_core render_glasses lipstick stream_roundtrip ingest offers_quality analytics_load

# Every benchmark prints a table and writes benchmarks/results/NAME.{md,json}.
bench: setup
	@for b in $(BENCHMARKS); do echo "== $$b"; $(BIN)/python -m benchmarks.$$b || exit 1; done
	$(BIN)/python -m benchmarks.report

# Re-resolve the pin set from requirements.in (mediapipe is installed without its declared
# jax/jaxlib/sentencepiece/sounddevice/opencv-contrib, which it never imports).
lock:
	rm -rf /tmp/tryon-lock && $(PY) -m venv /tmp/tryon-lock
	/tmp/tryon-lock/bin/pip install -q --no-deps mediapipe==0.10.21
	/tmp/tryon-lock/bin/pip install -q -r requirements.in
	{ echo "# Full pin set, installed with --no-deps (see README: lean mediapipe). Regenerate: make lock"; \
	  /tmp/tryon-lock/bin/pip freeze | grep -v -E '^(pip|setuptools|wheel)=='; } > requirements.lock
