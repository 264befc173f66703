#!/usr/bin/env bash
# assign_callgrind.sh BIN -- instructions per assignment request (callgrind),
# the load-independent measure behind bench/results/assign.md: on a shared
# machine wall-clock benches swing by 2x, instruction counts do not.
#
#   1. a private PostgreSQL (tests/harness/pg.sh) and BIN serve under
#      valgrind --tool=callgrind --separate-threads=yes, ARBITER_THREADS=1,
#      with the ten experiments of bench/assign.sh (bench/assign_exps.sh)
#   2. for each kind (get, batch, ofrep): a warm-up, counters zeroed
#      (callgrind_control -z), a fixed number of requests
#      (bench/assign_drive.py: CG_CONNS keep-alive connections x CG_ROUNDS
#      rounds), a dump (callgrind_control -d)
#   3. prints, per kind, the instructions (Ir) per request of every thread
#      that ran, the HTTP thread's top functions (callgrind_annotate), and
#      the sum over threads
#
# Environment: CG_CONNS (16), CG_ROUNDS (200), CG_KINDS ("get batch ofrep"),
# CG_MODE (burst | serial: one request in flight at a time over CG_CONNS
# open connections, bench/assign_drive.py),
# CG_KEEP (1: keep the temporary directory with the dumps).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-bin/arbiter}
[ -x "$BIN" ] || { echo "assign_callgrind.sh: no $BIN (run make)" >&2; exit 1; }
CONNS=${CG_CONNS:-16}
ROUNDS=${CG_ROUNDS:-200}
KINDS=${CG_KINDS:-get batch ofrep}
MODE=${CG_MODE:-burst}

tmp=$(mktemp -d /tmp/arbiter-cg.XXXXXX)
chmod 755 "$tmp"
vg_pid=
cleanup() {
    set +e
    [ -n "$vg_pid" ] && kill -TERM "$vg_pid" 2>/dev/null &&
        wait "$vg_pid" 2>/dev/null
    tests/harness/pg.sh stop "$tmp/pg" >/dev/null 2>&1
    if [ "${CG_KEEP:-0}" = 1 ]; then
        echo "assign_callgrind.sh: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

db_url=$(tests/harness/pg.sh start "$tmp/pg")
ADMIN=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
CLIENT=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
port=$(/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
a_url=http://127.0.0.1:$port
env ARBITER_DATABASE_URL="$db_url" ARBITER_LISTEN="127.0.0.1:$port" \
    ARBITER_ADMIN_TOKEN="$ADMIN" ARBITER_CLIENT_TOKEN="$CLIENT" \
    ARBITER_THREADS=1 ARBITER_LOG_LEVEL=warn \
    ${CG_HTTP_POLL:+ARBITER_HTTP_POLL=$CG_HTTP_POLL} \
    valgrind --tool=callgrind --separate-threads=yes \
    --callgrind-out-file="$tmp/cg.out" "$BIN" serve >"$tmp/arbiter.log" 2>&1 &
vg_pid=$!
for _ in $(seq 600); do
    curl -s -o /dev/null "$a_url/healthz" && break
    sleep 0.1
done

admin() { # METHOD PATH [BODY]: fail loudly on anything but 2xx
    local out
    out=$(curl -sS -X "$1" -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
        -w '\n%{http_code}' "$a_url$2")
    case "${out##*$'\n'}" in
    2??) ;;
    *) echo "assign_callgrind.sh: $1 $2 answered: $out" >&2; return 1 ;;
    esac
}
. bench/assign_exps.sh

n=$((CONNS * ROUNDS))
echo "callgrind: $BIN, $CONNS connections x $ROUNDS rounds = $n requests per kind ($MODE)"
for kind in $KINDS; do
    bench/assign_drive.py "$port" "$CLIENT" "$kind" "$CONNS" 20
    sleep 0.5 # the exposure writer's flush of the warm-up
    callgrind_control -z "$vg_pid" >/dev/null
    bench/assign_drive.py "$port" "$CLIENT" "$kind" "$CONNS" "$ROUNDS" "$MODE"
    sleep 0.5 # and of the measured requests (5 ms cadence)
    callgrind_control -d "$kind" "$vg_pid" >/dev/null
    # one file per thread: cg.out.<n>-<thread>, moved to $tmp/<kind>/
    mkdir -p "$tmp/$kind"
    mv "$tmp"/cg.out.*-* "$tmp/$kind/"
    best= best_ir=0 total=0
    for f in "$tmp/$kind"/cg.out.*; do
        ir=$(awk '/^summary:/ { print $2 }' "$f")
        [ -n "$ir" ] || continue
        total=$((total + ir))
        [ "$ir" -gt 0 ] || continue
        printf '  %-6s thread %-3s %9.0f Ir/request\n' "$kind" \
            "${f##*-}" "$(echo "$ir / $n" | bc -l)"
        if [ "$ir" -gt "$best_ir" ]; then best=$f best_ir=$ir; fi
    done
    printf '%-6s all threads %9.0f Ir/request; busiest thread %.0f\n' "$kind" \
        "$(echo "$total / $n" | bc -l)" "$(echo "$best_ir / $n" | bc -l)"
    callgrind_annotate --threshold=100 --auto=no "$best" 2>/dev/null |
        sed -n '/file:function/,$p' | sed -n '4,200p' >"$tmp/top-$kind.txt"
    echo "  top functions of the busiest thread (self Ir over $n requests):"
    sed -n '1,25p' "$tmp/top-$kind.txt" | sed 's/^/    /'
done
