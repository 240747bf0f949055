/* interpose_fds.c: the fd creators and closers through the probe.
 *
 * Each created fd is attributed with tp_attribute (lineage of the calling thread, else the
 * call site). A close is booked BEFORE the real close: once the kernel has freed the number,
 * another thread may get it back at once, and booking afterwards could erase that new fd.
 * Both the plain and the 64-bit names are interposed: CPython is built with
 * _FILE_OFFSET_BITS=64 and calls open64/openat64/fcntl64. */
#define _GNU_SOURCE /* RTLD_NEXT, open64, accept4, dup3, pipe2: GNU extensions */
#include "interpose.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
int close_range(unsigned int first, unsigned int last, int flags);

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_open_2)(const char *, int);
static int (*real_open64_2)(const char *, int);
static int (*real_openat_2)(int, const char *, int);
static int (*real_openat64_2)(int, const char *, int);
static int (*real_socket)(int, int, int);
static int (*real_socketpair)(int, int, int, int[2]);
static int (*real_pipe)(int[2]);
static int (*real_pipe2)(int[2], int);
static int (*real_eventfd)(unsigned int, int);
static int (*real_epoll_create)(int);
static int (*real_epoll_create1)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_accept)(int, __SOCKADDR_ARG, socklen_t *);
static int (*real_accept4)(int, __SOCKADDR_ARG, socklen_t *, int);
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);
static int (*real_close)(int);
static int (*real_close_range)(unsigned int, unsigned int, int);

void tp_resolve_fds(void)
{
    TP_RESOLVE(real_open, "open");
    TP_RESOLVE(real_open64, "open64");
    TP_RESOLVE(real_openat, "openat");
    TP_RESOLVE(real_openat64, "openat64");
    TP_RESOLVE(real_open_2, "__open_2");
    TP_RESOLVE(real_open64_2, "__open64_2");
    TP_RESOLVE(real_openat_2, "__openat_2");
    TP_RESOLVE(real_openat64_2, "__openat64_2");
    TP_RESOLVE(real_socket, "socket");
    TP_RESOLVE(real_socketpair, "socketpair");
    TP_RESOLVE(real_pipe, "pipe");
    TP_RESOLVE(real_pipe2, "pipe2");
    TP_RESOLVE(real_eventfd, "eventfd");
    TP_RESOLVE(real_epoll_create, "epoll_create");
    TP_RESOLVE(real_epoll_create1, "epoll_create1");
    TP_RESOLVE(real_dup, "dup");
    TP_RESOLVE(real_dup2, "dup2");
    TP_RESOLVE(real_dup3, "dup3");
    TP_RESOLVE(real_accept, "accept");
    TP_RESOLVE(real_accept4, "accept4");
    TP_RESOLVE(real_fcntl, "fcntl");
    TP_RESOLVE(real_fcntl64, "fcntl64");
    TP_RESOLVE(real_close, "close");
    TP_RESOLVE(real_close_range, "close_range");
}

static int booked(int fd, int kind, const void *ret)
{
    if (fd >= 0 && tp_ready) {
        tp_fd_opened(fd, tp_attribute(ret), kind, tp_gettid());
    }
    return fd;
}

static void booked_pair(int rc, const int fds[2], int kind, const void *ret)
{
    if (rc == 0) {
        booked(fds[0], kind, ret);
        booked(fds[1], kind, ret);
    }
}

#define RET __builtin_return_address(0)

/* The mode argument exists only with O_CREAT or O_TMPFILE. */
#define MODE_ARG(flags, mode)                                                                  \
    mode_t mode = 0;                                                                           \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                                                     \
        va_list ap;                                                                            \
        va_start(ap, flags);                                                                   \
        mode = (mode_t)va_arg(ap, int);                                                        \
        va_end(ap);                                                                            \
    }

int open(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    TP_RESOLVE(real_open, "open");
    return booked(real_open(path, flags, mode), TP_FD_FILE, RET);
}

int open64(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    TP_RESOLVE(real_open64, "open64");
    return booked(real_open64(path, flags, mode), TP_FD_FILE, RET);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    TP_RESOLVE(real_openat, "openat");
    return booked(real_openat(dirfd, path, flags, mode), TP_FD_FILE, RET);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    TP_RESOLVE(real_openat64, "openat64");
    return booked(real_openat64(dirfd, path, flags, mode), TP_FD_FILE, RET);
}

/* _FORTIFY_SOURCE entry points. */
int __open_2(const char *path, int flags)
{
    TP_RESOLVE(real_open_2, "__open_2");
    return booked(real_open_2(path, flags), TP_FD_FILE, RET);
}

int __open64_2(const char *path, int flags)
{
    TP_RESOLVE(real_open64_2, "__open64_2");
    return booked(real_open64_2(path, flags), TP_FD_FILE, RET);
}

int __openat_2(int dirfd, const char *path, int flags)
{
    TP_RESOLVE(real_openat_2, "__openat_2");
    return booked(real_openat_2(dirfd, path, flags), TP_FD_FILE, RET);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
    TP_RESOLVE(real_openat64_2, "__openat64_2");
    return booked(real_openat64_2(dirfd, path, flags), TP_FD_FILE, RET);
}

int socket(int domain, int type, int protocol)
{
    TP_RESOLVE(real_socket, "socket");
    return booked(real_socket(domain, type, protocol), TP_FD_SOCKET, RET);
}

int socketpair(int domain, int type, int protocol, int sv[2])
{
    TP_RESOLVE(real_socketpair, "socketpair");
    int rc = real_socketpair(domain, type, protocol, sv);
    booked_pair(rc, sv, TP_FD_SOCKET, RET);
    return rc;
}

int pipe(int fds[2])
{
    TP_RESOLVE(real_pipe, "pipe");
    int rc = real_pipe(fds);
    booked_pair(rc, fds, TP_FD_PIPE, RET);
    return rc;
}

int pipe2(int fds[2], int flags)
{
    TP_RESOLVE(real_pipe2, "pipe2");
    int rc = real_pipe2(fds, flags);
    booked_pair(rc, fds, TP_FD_PIPE, RET);
    return rc;
}

int eventfd(unsigned int initval, int flags)
{
    TP_RESOLVE(real_eventfd, "eventfd");
    return booked(real_eventfd(initval, flags), TP_FD_EVENTFD, RET);
}

int epoll_create(int size)
{
    TP_RESOLVE(real_epoll_create, "epoll_create");
    return booked(real_epoll_create(size), TP_FD_EPOLL, RET);
}

int epoll_create1(int flags)
{
    TP_RESOLVE(real_epoll_create1, "epoll_create1");
    return booked(real_epoll_create1(flags), TP_FD_EPOLL, RET);
}

int dup(int fd)
{
    TP_RESOLVE(real_dup, "dup");
    return booked(real_dup(fd), TP_FD_DUP, RET);
}

/* dup2/dup3 replace newfd: its previous file is closed implicitly, so book that close. */
int dup2(int oldfd, int newfd)
{
    TP_RESOLVE(real_dup2, "dup2");
    int rc = real_dup2(oldfd, newfd);
    if (rc >= 0 && oldfd != newfd) {
        tp_fd_closing(newfd);
        booked(rc, TP_FD_DUP, RET);
    }
    return rc;
}

int dup3(int oldfd, int newfd, int flags)
{
    TP_RESOLVE(real_dup3, "dup3");
    int rc = real_dup3(oldfd, newfd, flags);
    if (rc >= 0) {
        tp_fd_closing(newfd);
        booked(rc, TP_FD_DUP, RET);
    }
    return rc;
}

int accept(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
    TP_RESOLVE(real_accept, "accept");
    return booked(real_accept(fd, addr, len), TP_FD_SOCKET, RET);
}

int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len, int flags)
{
    TP_RESOLVE(real_accept4, "accept4");
    return booked(real_accept4(fd, addr, len, flags), TP_FD_SOCKET, RET);
}

/* fcntl's third argument is an int or a pointer depending on cmd; both travel in one register
 * on x86_64/aarch64, so forwarding it as a pointer is what every interposer does. */
#define FCNTL_BODY(real, name)                                                                 \
    va_list ap;                                                                                \
    va_start(ap, cmd);                                                                         \
    void *arg = va_arg(ap, void *);                                                            \
    va_end(ap);                                                                                \
    TP_RESOLVE(real, name);                                                                    \
    int rc = real(fd, cmd, arg);                                                               \
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {                                            \
        booked(rc, TP_FD_DUP, RET);                                                            \
    }                                                                                          \
    return rc;

int fcntl(int fd, int cmd, ...) { FCNTL_BODY(real_fcntl, "fcntl") }
int fcntl64(int fd, int cmd, ...) { FCNTL_BODY(real_fcntl64, "fcntl64") }

int close(int fd)
{
    TP_RESOLVE(real_close, "close");
    tp_fd_closing(fd);
    return real_close(fd);
}

int close_range(unsigned int first, unsigned int last, int flags)
{
    TP_RESOLVE(real_close_range, "close_range");
    if (!(flags & CLOSE_RANGE_CLOEXEC)) {
        for (unsigned int fd = first; fd <= last && fd < TP_MAX_FDS; fd++) {
            tp_fd_closing((int)fd);
        }
    }
    return real_close_range(first, last, flags);
}
