/* fault.h: fault injection. Each fault reproduces one historical teardown bug on demand, so the
 * harness can prove its checks fail. Selected by TEARDOWN_REF_FAULT (read at import, inherited
 * by subprocesses) or teardown_ref.set_fault(name). The default, TR_FAULT_NONE, is the correct
 * protocol; every fault branch in the code is marked `FAULT(...)`.
 *
 * Timing chaos (TEARDOWN_REF_CHAOS=<seed>[:<max_ms>]) adds seeded random delays at thread start,
 * before attaching and before joins, so rare interleavings (exit races) become frequent. */
#ifndef TR_FAULT_H
#define TR_FAULT_H

#include "core.h"

typedef enum {
    TR_FAULT_NONE = 0,
    TR_FAULT_IGNORE_TIMEOUT,      /* V0: the deadline is not enforced */
    TR_FAULT_RENDEZVOUS_DISPATCH, /* V1: dispatch waits, attached, until the worker receives */
    TR_FAULT_JOIN_HOLDING_GIL,    /* V2: teardown joins without releasing the GIL */
    TR_FAULT_ATTACH_AT_EXIT,      /* V3: no exit flag; threads woken at exit attach to clean up */
    TR_FAULT_HANDS_OFF,           /* V4a: no cancel, no join: threads finish after the drop */
    TR_FAULT_DEFERRED_LOOP_CLOSE, /* V4b: the loop is left to __del__/GC, fds held until then */
    TR_FAULT_NO_CANCEL,           /* teardown joins without cancelling: drop lasts the callback */
    TR_FAULT_NO_CLOSING_FLAG,     /* queued-but-unstarted calls still run during teardown */
    TR_FAULT_NO_REGISTRY,         /* per-execution loops unreachable: abandoned calls not cancelled */
    TR_FAULT_JOIN_SELF,           /* V5: a drop on the tool's own thread waits for that thread */
    TR_FAULT_RACY_FLAG,           /* the closing flag read and written without synchronization */
    TR_FAULT_COUNT
} tr_fault_id;

extern const char *const tr_fault_names[TR_FAULT_COUNT];
extern atomic_int tr_fault_current;

#define FAULT(id) (atomic_load_explicit(&tr_fault_current, memory_order_relaxed) == (id))

/* Returns the fault with that name, or -1. */
int tr_fault_lookup(const char *name);
/* Reads TEARDOWN_REF_FAULT and TEARDOWN_REF_CHAOS. Returns 0 or -1 with ValueError set. */
int tr_fault_init_from_env(void);
/* Timing chaos: a seeded random delay (no-op unless enabled). `site` names the call site. */
void tr_chaos_delay(const char *site);
/* Timing chaos: the full maximum delay (no-op unless enabled): after finalization, where the
 * point is to keep the process alive for late attaches, not to vary an interleaving. */
void tr_chaos_hold(void);

#endif
