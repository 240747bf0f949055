/* init.c: the probe's constructor and its identity functions. */
#define _GNU_SOURCE /* RTLD_NEXT (in interpose.h) */
#include "interpose.h"

atomic_int tp_ready_flag;

int tp_loaded(void) { return atomic_load(&tp_ready_flag); }
int tp_api_version(void) { return TP_API_VERSION; }

/* Priority 101: before ordinary constructors of later objects, so their threads are tracked. */
__attribute__((constructor(101))) static void tp_init(void)
{
    tp_resolve_threads();
    tp_resolve_fds();
    tp_resolve_sync();
    tp_tables_init();
    tp_libmap_init();
    tp_chaos_init();
    tp_watchdog_init();
    atomic_store_explicit(&tp_ready_flag, 1, memory_order_release);
}
