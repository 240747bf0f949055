# Version matrix (specs/matrix.md): every CPython on the machine, each in .venv/matrix-*.
#   make matrix                   venv, build, tests and audit on each interpreter; one table
#   make test-all-interpreters    the suite on each interpreter but $(PYTHON) (which `make test`
#                                 runs itself); the lead can make `test` depend on it
#   make lint-workflow            actionlint on the GitHub workflow, and its installed copy
# MATRIX_ARGS passes options through, e.g. MATRIX_ARGS='--python 3.12 --shard 1/2 --jobs 2'.
MATRIX_ARGS ?=
# The driver is standard-library Python run from the checkout: no venv needed to start it.
MATRIX := PYTHONPATH=harness $(PYTHON) -m teardown_audit.matrix
WORKFLOW := ci/github/teardown-audit.yml
INSTALLED_WORKFLOW := .github/workflows/teardown-audit.yml

.PHONY: matrix matrix-interpreters test-all-interpreters lint-workflow

# Debian's debug build (python3.Xd) and the venv module for Debian's own python3.X; no-ops when
# present, skipped where there is no apt (the matrix then covers what the machine has).
matrix-interpreters:
	@if command -v apt-get >/dev/null && ! { command -v python3-dbg >/dev/null \
	    && /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; }; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq python3-dbg python3-venv >/dev/null; fi

matrix: matrix-interpreters tools
	$(MATRIX) run $(MATRIX_ARGS)

# The suite only (the audit is `make audit`'s job); JSON in reports/matrix/test-all.json.
# Two interpreters at a time: the suite mostly waits (on 3.11: 108 s wall, 46 s CPU), so two
# side by side took ~1.2x as long each and finished the set ~1.7x sooner (measured, 2 cores).
TEST_ALL_JOBS ?= 2
# Files whose subject does not depend on the interpreter running pytest (the matrix driver on fake
# interpreters, sanitizer builds of fixed interpreters, the benchmark peer) or that `make test`
# already runs on PYTHON (the kill-matrix subset): the CI budget goes to the extension and the
# harness on each interpreter. `make matrix` runs everything everywhere.
TEST_ALL_SKIP ?= --ignore=tests/test_matrix.py --ignore=tests/test_sanitizers.py \
	--ignore=tests/test_bench.py --ignore=tests/test_killmatrix.py
test-all-interpreters: matrix-interpreters tools
	$(MATRIX) run --steps tests --skip-python $(PYTHON) --jobs $(TEST_ALL_JOBS) \
	  --pytest-args "$(TEST_ALL_SKIP)" --json reports/matrix/test-all.json $(MATRIX_ARGS)

lint-workflow:
	cmp $(WORKFLOW) $(INSTALLED_WORKFLOW)
	PYTHONPATH=harness $(PYTHON) -m teardown_audit.matrix.actionlint $(WORKFLOW) $(INSTALLED_WORKFLOW)
