# probe.mk: the C harness (harness/c/): the LD_PRELOAD attribution probe, its unit tests, the
# embedding driver. Everything is built into build/c/; nothing here touches a virtual env.
#   make probe      build/c/libteardown_probe.so
#   make test-c     the probe's C unit tests, plain and under ThreadSanitizer
#   make embed      50 Py_InitializeEx/Py_FinalizeEx cycles with teardown_ref per interpreter
PROBE_DIR := harness/c
PROBE_OUT := build/c
# -std=c11 plus _GNU_SOURCE defined in each file (dlsym/RTLD_NEXT, dladdr, dlvsym, tgkill are
# GNU extensions; -std=gnu11 is not needed for that).
PROBE_CFLAGS := -std=c11 -Wall -Wextra -Werror -O2 -g -fPIC
PROBE_UNITS := tables libmap chaos watchdog interpose_threads interpose_fds interpose_sync interpose_python init
PROBE_SRCS := $(PROBE_UNITS:%=$(PROBE_DIR)/%.c)
PROBE_HDRS := $(wildcard $(PROBE_DIR)/*.h)
PROBE_SO := $(PROBE_OUT)/libteardown_probe.so
TSAN_RT := $(shell gcc -print-file-name=libtsan.so.2)
EMBED_CYCLES ?= 50
# Interpreters tried by `make embed`: every pyenv version plus Debian's python3.
EMBED_PYTHONS ?= $(wildcard $(HOME)/.pyenv/versions/*/bin/python) /usr/bin/python3

.PHONY: probe test-c embed probe-bench

probe: $(PROBE_SO)

$(PROBE_SO): $(PROBE_SRCS) $(PROBE_HDRS)
	@mkdir -p $(PROBE_OUT)
	gcc $(PROBE_CFLAGS) -shared -o $@ $(PROBE_SRCS) -ldl -lpthread

$(PROBE_OUT)/test_tables: $(PROBE_DIR)/test_tables.c $(PROBE_DIR)/tables.c $(PROBE_DIR)/libmap.c $(PROBE_HDRS)
	@mkdir -p $(PROBE_OUT)
	gcc $(PROBE_CFLAGS) -o $@ $(filter %.c,$^) -ldl -lpthread

$(PROBE_OUT)/test_tables_tsan: $(PROBE_DIR)/test_tables.c $(PROBE_DIR)/tables.c $(PROBE_DIR)/libmap.c $(PROBE_HDRS)
	@mkdir -p $(PROBE_OUT)
	gcc $(PROBE_CFLAGS) -fsanitize=thread -o $@ $(filter %.c,$^) -ldl -lpthread

test-c: $(PROBE_OUT)/test_tables $(PROBE_OUT)/test_tables_tsan $(PROBE_SO)
	$(PROBE_OUT)/test_tables
	TSAN_OPTIONS=halt_on_error=1:exitcode=66 $(PROBE_OUT)/test_tables_tsan

# The driver, linked per interpreter (python3.X-config --embed, else sysconfig's LIBDIR).
$(PROBE_OUT)/teardown-embed-%: $(PROBE_DIR)/embed.c
	@mkdir -p $(PROBE_OUT)
	bash $(PROBE_DIR)/build_embed.sh "$(EMBED_PY)" $@ $<

embed: $(PROBE_SO)
	@status=0; for py in $(EMBED_PYTHONS); do \
	  tag=$$($$py -c 'import sys; assert sys.version_info >= (3, 9); print("py%d.%d" % sys.version_info[:2])' 2>/dev/null) || { echo "$$py: skipped: teardown_ref needs CPython 3.9+"; continue; }; \
	  where=$$(dirname $$(dirname $$py)); \
	  $(MAKE) --no-print-directory EMBED_PY=$$py $(PROBE_OUT)/teardown-embed-$$tag-$$(echo $$where | tr / _) >/dev/null || { echo "$$tag ($$py): cannot be embedded (see above)"; continue; }; \
	  bash $(PROBE_DIR)/run_embed.sh $$py $(PROBE_OUT)/teardown-embed-$$tag-$$(echo $$where | tr / _) $(EMBED_CYCLES) || status=1; \
	done; exit $$status

probe-bench: $(PROBE_SO)
	$(PYTHON) harness/c/bench_probe.py

# `make test` also runs the C unit tests, and the Python tests need the probe built.
test: test-c
