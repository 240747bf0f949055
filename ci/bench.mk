# bench.mk: `make bench` — the benchmarks (bench/, specs/bench.md). Does all of its own set-up:
# one venv per interpreter, .venv/bench-<tag> (never the default .venv/<tag>), with teardown_ref
# built from this checkout and bashkit from PyPI; prints the table, writes reports/bench.json.
#   make bench                                the full run (a few minutes on 2 cores)
#   make bench BENCH_ARGS=--quick             small samples, kill-matrix subset
#   make bench BENCH_AUDIT_PYTHONS="/path/to/python3.12 ..."   audit wall time on these too
BENCH_VENV = .venv/bench-$(PYTAG)
BENCH_VPY = $(BENCH_VENV)/bin/python
BENCH_PIP = $(BENCH_VPY) -m pip --disable-pip-version-check -q
BENCH_BASHKIT ?= bashkit==0.20.1
BENCH_ARGS ?=
# Interpreters whose `teardown-audit audit` is timed (recursively expanded: evaluated only by
# `make bench`); PYTHON itself is always one of them.
BENCH_AUDIT_PYTHONS ?= $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.11*/bin/python \
	$(shell pyenv root 2>/dev/null)/versions/3.13*/bin/python)
BENCH_TAG = $(shell $(1) -c 'import sys,sysconfig; print("py%d.%d%s" % (sys.version_info[:2] + (sysconfig.get_config_var("ABIFLAGS") or "",)))')
BENCH_AUDIT_VPYS = $(sort $(BENCH_VPY) $(foreach py,$(BENCH_AUDIT_PYTHONS),.venv/bench-$(call BENCH_TAG,$(py))/bin/python))

.PHONY: bench bench-venv

$(BENCH_VENV)/.tools:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PIP) install "setuptools>=64" wheel "$(BENCH_BASHKIT)"
	touch $@

$(BENCH_VENV)/.installed: $(BENCH_VENV)/.tools $(SOURCES)
	TEARDOWN_REF_WERROR=1 $(BENCH_PIP) install --no-build-isolation --force-reinstall --no-deps .
	touch $@

# One interpreter's bench venv (PYTHON=...); `make bench` calls it once per interpreter.
bench-venv: $(BENCH_VENV)/.installed

bench: tools
	@for py in $(PYTHON) $(BENCH_AUDIT_PYTHONS); do \
	  $(MAKE) --no-print-directory PYTHON=$$py bench-venv || exit 1; \
	done
	mkdir -p reports
	PYTHONPATH=$(CURDIR) $(BENCH_VPY) -m bench --json reports/bench.json \
	  $(foreach vpy,$(BENCH_AUDIT_VPYS),--audit-python $(vpy)) $(BENCH_ARGS)
