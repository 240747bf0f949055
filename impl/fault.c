/* fault.c: fault selection and seeded timing chaos. */
#include "fault.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const tr_fault_names[TR_FAULT_COUNT] = {
    "none",
    "ignore_timeout",
    "rendezvous_dispatch",
    "join_holding_gil",
    "attach_at_exit",
    "hands_off",
    "deferred_loop_close",
    "no_cancel",
    "no_closing_flag",
    "no_registry",
    "join_self",
    "racy_flag",
};

atomic_int tr_fault_current;

static atomic_uint chaos_seed;    /* 0: chaos off */
static atomic_uint chaos_max_us;
static atomic_uint chaos_threads; /* gives each thread its own reproducible stream */
static _Thread_local unsigned chaos_state;

int tr_fault_lookup(const char *name)
{
    for (int i = 0; i < TR_FAULT_COUNT; i++) {
        if (strcmp(name, tr_fault_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int tr_fault_init_from_env(void)
{
    const char *fault = getenv("TEARDOWN_REF_FAULT");
    if (fault != NULL && *fault != '\0') {
        int id = tr_fault_lookup(fault);
        if (id < 0) {
            PyErr_Format(PyExc_ValueError, "TEARDOWN_REF_FAULT=%s is not a known fault "
                                           "(see teardown_ref.FAULTS)", fault);
            return -1;
        }
        atomic_store(&tr_fault_current, id);
    }
    const char *chaos = getenv("TEARDOWN_REF_CHAOS");
    if (chaos != NULL && *chaos != '\0') {
        char *end;
        unsigned long seed = strtoul(chaos, &end, 10);
        unsigned long max_ms = 20;
        if (*end == ':') {
            max_ms = strtoul(end + 1, &end, 10);
        }
        if (*end != '\0' || seed == 0 || max_ms == 0 || max_ms > 10000) {
            PyErr_Format(PyExc_ValueError,
                         "TEARDOWN_REF_CHAOS=%s: expected <seed>[:<max_ms>], seed >= 1, "
                         "1 <= max_ms <= 10000", chaos);
            return -1;
        }
        atomic_store(&chaos_seed, (unsigned)seed);
        atomic_store(&chaos_max_us, (unsigned)(max_ms * 1000));
    }
    return 0;
}

void tr_chaos_hold(void)
{
    if (atomic_load_explicit(&chaos_seed, memory_order_relaxed) != 0) {
        usleep(atomic_load_explicit(&chaos_max_us, memory_order_relaxed));
    }
}

void tr_chaos_delay(const char *site)
{
    unsigned seed = atomic_load_explicit(&chaos_seed, memory_order_relaxed);
    if (seed == 0) {
        return;
    }
    if (chaos_state == 0) {
        chaos_state = seed * 2654435761u + atomic_fetch_add(&chaos_threads, 1) + 1;
    }
    for (const char *c = site; *c; c++) {
        chaos_state = chaos_state * 31u + (unsigned char)*c;
    }
    chaos_state ^= chaos_state << 13; /* xorshift32 */
    chaos_state ^= chaos_state >> 17;
    chaos_state ^= chaos_state << 5;
    usleep(chaos_state % atomic_load_explicit(&chaos_max_us, memory_order_relaxed));
}
