#!/bin/bash
# build_embed.sh PYTHON OUT SOURCE: link the embedding driver against PYTHON's libpython.
# Prefer `python3.X-config --embed` next to the interpreter; else sysconfig (LIBDIR, LDLIBRARY).
# A static-only libpython (no Py_ENABLE_SHARED) still links (libpython3.X.a) but then extension
# modules resolve their Py* symbols against the driver: it must export them (-rdynamic).
set -euo pipefail
py=$1 out=$2 src=$3
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
abi=$("$py" -c 'import sys; print(sys.abiflags)')  # "d" for a debug build: libpython3.Xd
cfg=$(dirname "$py")/python$ver$abi-config
if [ -x "$cfg" ]; then
    cflags=$("$cfg" --includes)
    ldflags="$("$cfg" --embed --ldflags)"
else
    cflags="-I$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    ldflags=$("$py" -c 'import sysconfig as s; v=s.get_config_var; print("-L%s -lpython%s%s %s" % (v("LIBDIR"), v("VERSION"), v("ABIFLAGS") or "", v("LIBS") or ""))')
fi
libdir=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
shared=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED") or 0)')
if [ ! -e "$libdir/libpython$ver$abi.so" ] && [ ! -e "$libdir/libpython$ver$abi.a" ]; then
    echo "no libpython$ver$abi.so or .a in $libdir (Py_ENABLE_SHARED=$shared)" >&2
    exit 1
fi
# -Werror only on our code's warnings; Python.h of old versions is clean with these flags.
gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g $cflags -o "$out" "$src" \
    -rdynamic -Wl,-rpath,"$libdir" $ldflags
