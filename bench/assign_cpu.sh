#!/usr/bin/env bash
# assign_cpu.sh BIN -- user and system CPU microseconds per assignment
# request of BIN serve (ARBITER_THREADS=1, pinned to CPU 0; wrk -t1 on CPU
# 1) for get, batch and ofrep, from /proc (utime, stime of every thread)
# over CPU_DURATION (3s) of unpaced wrk: where a request's CPU goes, in the
# process or in the kernel. Wall-clock measures on a shared machine are
# noisy; give `uptime` beside the numbers. Then the same for nginx (one
# worker, pinned to CPU 0, bench/nginx.conf.in) answering get and batch
# with arbiter's bodies: with the server on one core, requests/s at full
# load is the inverse of CPU per request, so the ratio of the two is the
# throughput ratio of `make bench-assign` at 100 %.
#
# CPU_RATE=N paces wrk to about N requests/s (bench/assign_rate.lua);
# CPU_SCHED=1 adds, for each arbiter run, every thread's time on the CPU
# and time runnable but waiting for it (/proc/PID/task/TID/schedstat),
# in microseconds per request: whether requests wait behind arbiter's own
# background threads on the server's core.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-bin/arbiter}
DURATION=${CPU_DURATION:-3s}
CONNS=${CPU_CONNS:-16}
tmp=$(mktemp -d /tmp/arbiter-cpu.XXXXXX)
chmod 755 "$tmp"
a_pid=
n_pid=
cleanup() {
    set +e
    [ -n "$n_pid" ] && kill -QUIT "$n_pid" 2>/dev/null && wait "$n_pid" 2>/dev/null
    [ -n "$a_pid" ] && kill -TERM "$a_pid" 2>/dev/null && wait "$a_pid" 2>/dev/null
    tests/harness/pg.sh stop "$tmp/pg" >/dev/null 2>&1
    rm -rf "$tmp"
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
    taskset -c 0 "$BIN" serve >"$tmp/arbiter.log" 2>&1 &
a_pid=$!
for _ in $(seq 300); do
    curl -s -o /dev/null "$a_url/healthz" && break
    sleep 0.1
done
admin() {
    local out
    out=$(curl -sS -X "$1" -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
        -w '\n%{http_code}' "$a_url$2")
    case "${out##*$'\n'}" in
    2??) ;;
    *) echo "assign_cpu.sh: $1 $2 answered: $out" >&2; return 1 ;;
    esac
}
. bench/assign_exps.sh
ticks() { # PID...: utime stime over every thread
    local p
    for p in "$@"; do cat /proc/"$p"/task/*/stat; done |
        awk '{ u += $14; s += $15 } END { print u, s }'
}
HZ=$(getconf CLK_TCK)
batch_body='{"unit":"user-4242","attributes":{"country":"de","app_version":"3.2.1"}}'
sched() { # PID: "tid comm run_ns wait_ns" per thread
    local t
    for t in /proc/"$1"/task/*; do
        echo "${t##*/} $(tr -d ' ' <"$t/comm") $(cut -d' ' -f1,2 "$t/schedstat")"
    done 2>/dev/null | sort
}
measure() { # NAME KIND URL PID...
    local name=$1 kind=$2 url=$3 out n u0 s0 u1 s1
    shift 3
    sched "$1" >"$tmp/sched0"
    read -r u0 s0 < <(ticks "$@")
    out=$(BENCH_TOKEN=$CLIENT BENCH_BODY=$batch_body BENCH_KIND=$kind \
        BENCH_CONNS=$CONNS BENCH_RATE=${CPU_RATE:-0} taskset -c 1 wrk -t1 \
        -c"$CONNS" -d"$DURATION" --latency -s bench/assign_rate.lua "$url")
    read -r u1 s1 < <(ticks "$@")
    sched "$1" >"$tmp/sched1"
    n=$(grep -o ' n=[0-9]*' <<<"$out" | cut -d= -f2)
    grep -qE 'errors=0 status=0' <<<"$out" || { echo "$out" >&2; exit 1; }
    awk -v k="$name $kind" -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
        -v hz="$HZ" 'BEGIN { printf "%-14s %7d requests  user %5.2f us  system %5.2f us  total %5.2f us per request\n",
            k, n, u * 1e6 / hz / n, s * 1e6 / hz / n, (u + s) * 1e6 / hz / n }'
    grep -o 'p50=[0-9]* p90=[0-9]* p99=[0-9]* p999=[0-9]* max=[0-9]*' \
        <<<"$out" | sed 's/^/    wrk latency (us): /'
    if [ "${CPU_SCHED:-0}" = 1 ]; then
        join "$tmp/sched0" "$tmp/sched1" | awk -v n="$n" '{
            run = ($6 - $3) / 1e3 / n; wait = ($7 - $4) / 1e3 / n
            if (run + wait > 0.005)
                printf "    thread %-7s %-16s on CPU %7.3f us  waiting for it %7.3f us per request\n",
                    $1, $2, run, wait }'
    fi
}
for kind in ${CPU_KINDS:-get batch ofrep}; do
    measure arbiter "$kind" "$a_url" "$a_pid"
done

# nginx answering arbiter's bodies (get and batch)
get_body=$(curl -sS -H "Authorization: Bearer $CLIENT" \
    "$a_url/v1/assign?experiment=exp-0&unit=user-4242")
post_body=$(curl -sS -H "Authorization: Bearer $CLIENT" \
    -H 'Content-Type: application/json' --data-binary "$batch_body" \
    "$a_url/v1/assign")
n_port=$(/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/nginx"
nginx_escape() { sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" <<<"$1"; }
sed -e "s|@WORKERS@|1|" -e "s|@DIR@|$tmp/nginx|g" -e "s|@PORT@|$n_port|" \
    bench/nginx.conf.in >"$tmp/nginx/nginx.conf.tmp"
GET_BODY=$(nginx_escape "$get_body") POST_BODY=$(nginx_escape "$post_body") \
    /usr/bin/python3 -c 'import os, sys
t = open(sys.argv[1]).read()
t = t.replace("@GET_BODY@", os.environ["GET_BODY"])
t = t.replace("@POST_BODY@", os.environ["POST_BODY"])
open(sys.argv[2], "w").write(t)' "$tmp/nginx/nginx.conf.tmp" \
    "$tmp/nginx/nginx.conf"
taskset -c 0 /usr/sbin/nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" \
    -e "$tmp/nginx/error.log" &
n_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$n_port/v1/assign" && break
    sleep 0.1
done
for kind in ${CPU_KINDS:-get batch}; do
    [ "$kind" = ofrep ] && continue
    # shellcheck disable=SC2046
    measure nginx "$kind" "http://127.0.0.1:$n_port" "$n_pid" $(pgrep -P "$n_pid")
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
