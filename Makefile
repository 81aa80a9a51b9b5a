# `make up` runs the studio with an embedded worker; `make test` runs lint + tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
AS_ROOT ?= $(shell test "$$(id -u)" = 0 && echo yes)

.PHONY: up test lint bench clean chromium

# What running needs (make up) ...
$(RUNTIME): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUNTIME)

# ... and what testing adds (make test): pytest, ruff, Playwright, hypothesis, the example plugin.
$(STAMP): $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[test]' -e examples/tether-posterize
	touch $(STAMP)

up: $(RUNTIME)
	$(BIN)/tether up $(ARGS)

# The browser tests drive Debian's Chromium: installed here when we are root, else say how.
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$(AS_ROOT)" = yes ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "The browser tests need Chromium at $(CHROMIUM). Install it with:"; \
	    echo "    sudo apt-get install -y chromium"; \
	    exit 1; \
	  fi; }

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

test: chromium lint
	tools/loopback-only $(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.relay
	$(BIN)/python -m bench.recovery

clean:
	rm -rf $(VENV) .pytest_cache test-results
