/* libmap.c: which shared object an address belongs to, and the lineage rule.
 *
 * Lineage: a thread created by a thread of library X belongs to X, so the pool of a pool, or
 * the asyncio executor threads a native loop thread starts, stay the extension's. The
 * interpreter itself ("host": libpython, the executable, TEARDOWN_PROBE_HOST substrings) does
 * not propagate: a Python thread creating a native tool must not make the tool's threads
 * "libpython's". For a host (or root) thread the creating call site decides. Call sites inside
 * "transparent" objects (libc, libstdc++, libgcc_s, the probe: wrappers such as std::thread)
 * are skipped by walking further up the stack. */
#define _GNU_SOURCE /* dladdr, dl_iterate_phdr, RTLD_NEXT are GNU extensions */
#include "probe_internal.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread int tp_self_lib __attribute__((tls_model("initial-exec"))) = -1;
__thread int tp_self_slot __attribute__((tls_model("initial-exec"))) = -1;
static __thread int cached_tid __attribute__((tls_model("initial-exec")));
static uintptr_t main_base;
static int main_base_known;
/* The object defining Py_Initialize: libpython, or the executable of a static interpreter
 * (Debian's python3.11d, non-PIE, where dlpi_addr and dli_fbase of the executable differ). */
static uintptr_t python_base;
static int python_base_known;
static char host_extra[512];

int tp_gettid(void)
{
    if (cached_tid == 0) {
        cached_tid = (int)syscall(SYS_gettid);
    }
    return cached_tid;
}

/* After fork the child's only thread has a new tid. */
static void reset_tid_in_child(void) { cached_tid = 0; }

static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    main_base = info->dlpi_addr; /* the executable is always reported first */
    main_base_known = 1;
    return 1;
}

void tp_libmap_init(void)
{
    dl_iterate_phdr(first_object, NULL);
    Dl_info python;
    void *init = dlsym(RTLD_DEFAULT, "Py_Initialize");
    if (init != NULL && dladdr(init, &python) != 0) {
        python_base = (uintptr_t)python.dli_fbase;
        python_base_known = 1;
    }
    const char *extra = getenv("TEARDOWN_PROBE_HOST");
    if (extra != NULL) {
        strncpy(host_extra, extra, sizeof(host_extra) - 1);
    }
    pthread_atfork(NULL, NULL, reset_tid_in_child);
    void *frames[4];
    backtrace(frames, 4); /* pre-warm: the first call loads libgcc_s (malloc, locks) */
}

static int is_host_path(const char *path, uintptr_t base)
{
    if ((main_base_known && base == main_base) || path[0] == '\0' ||
        strstr(path, "libpython") != NULL) {
        return 1;
    }
    /* Colon-separated substrings. */
    const char *p = host_extra;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char part[128];
        if (len > 0 && len < sizeof(part)) {
            memcpy(part, p, len);
            part[len] = '\0';
            if (strstr(path, part) != NULL) {
                return 1;
            }
        }
        p += len + (end ? 1 : 0);
    }
    return 0;
}

static int is_transparent_path(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    static const char *const names[] = {"libc.so", "libpthread", "libstdc++", "libgcc_s",
                                        "ld-linux", "libteardown_probe"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strncmp(base, names[i], strlen(names[i])) == 0) {
            return 1;
        }
    }
    return 0;
}

typedef struct {
    uintptr_t base, lo, hi;
} range_query;

static int find_range(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    range_query *q = data;
    if (info->dlpi_addr != q->base) {
        return 0;
    }
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uintptr_t start = info->dlpi_addr + ph->p_vaddr;
            lo = start < lo ? start : lo;
            hi = start + ph->p_memsz > hi ? start + ph->p_memsz : hi;
        }
    }
    q->lo = lo;
    q->hi = hi;
    return 1;
}

int tp_lib_for_addr(const void *addr)
{
    int lib = tp_lib_by_addr((uintptr_t)addr);
    if (lib >= 0) {
        return lib;
    }
    /* First sight of this object: slow path (takes the loader's recursive lock). */
    Dl_info info;
    if (addr == NULL || dladdr(addr, &info) == 0) {
        return TP_LIB_UNKNOWN;
    }
    range_query q = {(uintptr_t)info.dli_fbase, 0, 0};
    dl_iterate_phdr(find_range, &q);
    if (q.hi == 0) {
        q.lo = q.hi = (uintptr_t)addr; /* unknown extent: never matches by range again */
        q.hi++;
    }
    const char *path = info.dli_fname ? info.dli_fname : "";
    char exe[TP_PATH_MAX];
    if (q.base == main_base) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = '\0';
        path = exe;
    }
    int host = is_host_path(path, q.base) ||
               (python_base_known && (uintptr_t)info.dli_fbase == python_base);
    return tp_lib_add(q.base, q.lo, q.hi, path, host, is_transparent_path(path));
}

int tp_lib_of_address(const void *addr) { return tp_lib_for_addr(addr); }

int tp_lib_is_host(int lib) { return lib <= TP_LIB_UNKNOWN || tp_libs[lib].host; }

int tp_attribute(const void *ret)
{
    if (tp_self_lib > TP_LIB_UNKNOWN && !tp_libs[tp_self_lib].host) {
        return tp_self_lib; /* lineage */
    }
    int lib = tp_lib_for_addr(ret);
    if (lib > TP_LIB_UNKNOWN && !tp_libs[lib].transparent) {
        return lib;
    }
    /* The direct caller is a wrapper (libc, libstdc++): the first non-transparent frame. */
    void *frames[16];
    int n = backtrace(frames, 16);
    for (int i = 1; i < n; i++) {
        int l = tp_lib_for_addr(frames[i]);
        if (l > TP_LIB_UNKNOWN && !tp_libs[l].transparent) {
            return l;
        }
    }
    return lib;
}
