# teardown-audit: every target sets itself up (virtual environment, build, dependencies).
#   make audit                 audit the reference extension (the main job)
#   make test                  the test suite
#   make test PYTHON=$(pyenv root)/versions/3.12.1/bin/python   the same on another interpreter
SHELL := /bin/bash
PYTHON ?= python3
# One virtual environment per interpreter (version + ABI flags, so a debug build gets its own).
PYTAG := $(shell $(PYTHON) -c 'import sys,sysconfig; print("py%d.%d%s" % (sys.version_info[:2] + (sysconfig.get_config_var("ABIFLAGS") or "",)))')
VENV := .venv/$(PYTAG)
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip --disable-pip-version-check -q
SOURCES := pyproject.toml setup.py $(wildcard impl/*.c impl/*.h) $(shell find harness -name '*.py' -o -name '*.c' -o -name '*.h' 2>/dev/null)
PYTEST_ARGS ?=

.PHONY: all install tools test test-one lint audit killmatrix scenarios clean

# Each concern's targets live in its own fragment (sanitizers, matrix, bench, ...).
include $(sort $(wildcard ci/*.mk))

all: install

$(VENV)/.tools:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install "setuptools>=64" wheel "pytest>=8.3,<9" "ruff==0.17.6"
	touch $@

# Non-editable install: the tests exercise exactly what `pip install .` gives a user.
$(VENV)/.installed: $(VENV)/.tools $(SOURCES)
	TEARDOWN_REF_WERROR=1 $(PIP) install --no-build-isolation --force-reinstall --no-deps .
	touch $@

install: $(VENV)/.installed

# Native stacks for hang reports: eu-stack (elfutils) first, gdb as the fallback.
tools:
	@command -v eu-stack >/dev/null || (apt-get update -qq && apt-get install -y -qq elfutils gdb >/dev/null)

lint: $(VENV)/.tools
	$(VPY) -m ruff check harness tests scenarios bench setup.py
	$(VPY) -m ruff format --check harness tests scenarios bench setup.py

# The suite on PYTHON, then (CI=the same): ThreadSanitizer on one interpreter, the suite on
# every other installed interpreter (Debian's debug build included), the workflow lint.
# `make test-one` is the suite on PYTHON alone.
test: test-one test-tsan-ci test-all-interpreters lint-workflow

test-one: install lint tools
	$(VPY) -X dev -W error::ResourceWarning -m pytest $(PYTEST_ARGS)

audit: install tools
	$(VENV)/bin/teardown-audit audit

# Every historical teardown bug injected into teardown_ref, each caught: the table goes into
# specs/scenarios.md (under 10 minutes on 2 cores).
killmatrix: install tools
	mkdir -p reports
	$(VENV)/bin/teardown-audit killmatrix --write-spec specs/scenarios.md --json reports/killmatrix.json

scenarios: install tools
	$(VENV)/bin/teardown-audit scenarios

clean:
	rm -rf .venv build *.egg-info reports
