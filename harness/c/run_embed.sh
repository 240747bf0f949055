#!/bin/bash
# run_embed.sh PYTHON DRIVER CYCLES: run the teardown_ref scenarios with DRIVER, finding
# teardown_ref in the interpreter's project venv (.venv/py3.X, read-only) or its build/lib dir.
set -uo pipefail
py=$1 driver=$2 cycles=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tag=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
site=$(ls -d "$root/.venv/py$tag/lib/python$tag/site-packages" 2>/dev/null | head -1)
if [ -z "$site" ] || ! ls "$site"/teardown_ref*.so >/dev/null 2>&1; then
    echo "py$tag ($py): skipped: teardown_ref is not installed in .venv/py$tag (make install PYTHON=$py)"
    exit 0
fi
status=0
for scenario in embed_alive embed_module_level; do
    n=$cycles; [ $scenario = embed_module_level ] && [ $n -gt 10 ] && n=10  # informational; 2 s settle per leaky cycle
    out=$(PYTHONPATH="$site" PYTHONNOUSERSITE=1 timeout --kill-after=5 $((n * 10 + 30)) \
          "$driver" -n "$n" -t 30 "$here/$scenario.py" 2>&1)
    rc=$?
    echo "py$tag ($py) $scenario: rc=$rc: $(echo "$out" | tail -1)"
    [ $rc -eq 0 ] || { echo "$out" | head -12 | sed 's/^/    /'; [ $scenario = embed_alive ] && status=1; }
done
exit $status
