#!/usr/bin/env bash
# check-layers.sh -- the folder list is the architecture: every #include
# "folder/x.h" must point to the same folder or to a lower layer, and
# only api/ may include microhttpd.h, only sql/ libpq-fe.h.
#
#   cli -> api -> service -> {codec, sql, bandits, core} -> stats -> lib
#   sql -> lib
#
# Prints each violation and exits non-zero when there is one.
set -u
cd "$(dirname "$0")/.."

# allowed[from] = the folders 'from' may include (besides itself)
declare -A allowed=(
    [cli]="api service codec sql bandits core stats lib"
    [api]="service codec sql bandits core stats lib"
    [service]="codec sql bandits core stats lib"
    [codec]="core stats lib"
    [sql]="lib"
    [bandits]="stats lib"
    [core]="stats lib"
    [stats]="lib"
    [lib]=""
)
bad=0
for from in "${!allowed[@]}"; do
    for f in "$from"/*.[ch]; do
        [ -f "$f" ] || continue
        while IFS= read -r inc; do
            to=${inc%%/*}
            [ "$to" = "$from" ] && continue
            case " ${allowed[$from]} " in
            *" $to "*) ;;
            *) echo "layers: $f includes \"$inc\" ($from may not depend on $to)"; bad=1 ;;
            esac
        done < <(sed -n 's/^#include "\([a-z_]*\/[^"]*\)".*/\1/p' "$f")
        if grep -q '#include <microhttpd.h>' "$f" && [ "$from" != api ]; then
            echo "layers: $f includes microhttpd.h (only api/ knows HTTP)"; bad=1
        fi
        if grep -q '#include <libpq-fe.h>' "$f" && [ "$from" != sql ]; then
            echo "layers: $f includes libpq-fe.h (only sql/ knows libpq)"; bad=1
        fi
    done
done
# no top-level folder with C code outside the table
for d in */; do
    d=${d%/}
    case "$d" in tests|bench|docs|scripts|dashboards|build|bin|var) continue ;; esac
    ls "$d"/*.c >/dev/null 2>&1 || continue
    [ -n "${allowed[$d]+x}" ] || { echo "layers: $d/ is not in the layer table"; bad=1; }
done
[ $bad -eq 0 ] && echo "layers: ok"
exit $bad
