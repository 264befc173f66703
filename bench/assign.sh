#!/usr/bin/env bash
# assign.sh BIN -- `make bench-assign`: how fast arbiter answers assignment
# requests, measured against nginx answering a fixed JSON body of the same
# byte size on the same machine in the same run.
#
#   1. a private PostgreSQL (tests/harness/pg.sh) in a temporary directory
#   2. BIN serve on a free loopback port with generated tokens; 10 running
#      experiments created and started through the API (curl)
#   3. nginx (Debian nginx-light) with bench/nginx.conf.in, answering
#      /v1/assign with arbiter's exact answers as fixed strings
#   4. wrk -t2 -c64 -d5s (keep-alive, bench/assign_rate.lua) against both
#      servers for
#        get    GET  /v1/assign?experiment=exp-0&unit=user-4242
#        batch  POST /v1/assign {"unit":...,"attributes":{...}} (10 answers)
#      at three loads: 100 % (unpaced: each connection sends as soon as it
#      has its answer; nginx first, its rate defines the round's loads),
#      then 50 % and 90 % of that nginx rate, paced by a think time per
#      connection, arbiter and nginx alternating; BENCH_RUNS rounds
#   5. a table of requests/s, p50, p99 and p99.9 (wrk's whole histogram,
#      through the script's done() hook), arbiter's own request-duration
#      histogram for the same runs (from /metrics: where the tail is spent,
#      inside the server or before it), CPU per request, and the targets of
#      issue 17; everything is stopped on exit, whatever happens.
#
# CPU budget (the machine has 2 cores; wrk and the server compete): by
# default the server is pinned to CPU 0 and wrk to CPU 1 (taskset), and
# each server gets 1 worker (arbiter ARBITER_THREADS=1, nginx
# worker_processes 1): one core, one worker each, identical conditions.
# BENCH_PIN=0 runs unpinned with BENCH_WORKERS workers each instead.
#
# Environment: BENCH_RUNS (5), BENCH_DURATION (5s), BENCH_CONNECTIONS (64),
# BENCH_THREADS (wrk threads, 2), BENCH_PIN (1), BENCH_WORKERS (1 pinned,
# 2 unpinned), BENCH_CONN_MEMORY (arbiter ARBITER_CONN_MEMORY, default
# arbiter's own), BENCH_OUT (file: also write the report and every raw wrk
# output there), BENCH_STRICT (1: exit 1 when the GET target is not met),
# BENCH_KEEP (1: keep the temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-bin/arbiter}
[ -x "$BIN" ] || { echo "assign.sh: no $BIN (run make)" >&2; exit 1; }
for tool in wrk curl taskset /usr/sbin/nginx; do
    command -v "$tool" >/dev/null ||
        { echo "assign.sh: $tool missing (make deps)" >&2; exit 1; }
done

RUNS=${BENCH_RUNS:-5}
DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_THREADS:-2}
PIN=${BENCH_PIN:-1}
NCPU=$(nproc)
if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ]; then
    WORKERS=${BENCH_WORKERS:-1}
    SERVER_CPUS=0
    WRK_CPUS=1
    SERVER_RUN=(taskset -c "$SERVER_CPUS")
    WRK_RUN=(taskset -c "$WRK_CPUS")
else
    PIN=0
    WORKERS=${BENCH_WORKERS:-$NCPU}
    SERVER_RUN=()
    WRK_RUN=()
fi
# wrk runs at most this long past its duration (it stops by itself; this
# only bounds a wedged run)
dur_s=${DURATION%s}
WRK_LIMIT=$((dur_s + 30))

tmp=$(mktemp -d /tmp/arbiter-bench.XXXXXX)
chmod 755 "$tmp"
arbiter_pid=
nginx_pid=
cleanup() {
    set +e
    [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null &&
        wait "$nginx_pid" 2>/dev/null
    [ -n "$arbiter_pid" ] && kill -TERM "$arbiter_pid" 2>/dev/null &&
        wait "$arbiter_pid" 2>/dev/null
    tests/harness/pg.sh stop "$tmp/pg" >/dev/null 2>&1
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "assign.sh: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # URL: up to 30 s for any HTTP answer
    for _ in $(seq 300); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "assign.sh: nothing answers at $1" >&2
    return 1
}

# ---- 1. PostgreSQL --------------------------------------------------------
echo "bench: starting a private PostgreSQL in $tmp/pg" >&2
db_url=$(tests/harness/pg.sh start "$tmp/pg")

# ---- 2. arbiter -----------------------------------------------------------
ADMIN=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
CLIENT=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
a_port=$(free_port)
a_url=http://127.0.0.1:$a_port
echo "bench: arbiter on $a_url, $WORKERS worker thread(s)" >&2
env ARBITER_DATABASE_URL="$db_url" ARBITER_LISTEN="127.0.0.1:$a_port" \
    ARBITER_ADMIN_TOKEN="$ADMIN" ARBITER_CLIENT_TOKEN="$CLIENT" \
    ARBITER_THREADS="$WORKERS" ARBITER_LOG_LEVEL=warn \
    ${BENCH_CONN_MEMORY:+ARBITER_CONN_MEMORY=$BENCH_CONN_MEMORY} \
    "${SERVER_RUN[@]}" "$BIN" serve >"$tmp/arbiter.log" 2>&1 &
arbiter_pid=$!
wait_http "$a_url/healthz"

admin() { # METHOD PATH [BODY]: fail loudly on anything but 2xx
    local out
    out=$(curl -sS -X "$1" -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
        -w '\n%{http_code}' "$a_url$2")
    case "${out##*$'\n'}" in
    2??) ;;
    *) echo "assign.sh: $1 $2 answered: $out" >&2; return 1 ;;
    esac
}

# the ten running experiments (bench/assign_exps.sh)
. bench/assign_exps.sh

get_path='/v1/assign?experiment=exp-0&unit=user-4242'
batch_body='{"unit":"user-4242","attributes":{"country":"de","app_version":"3.2.1"}}'
get_body=$(curl -sS -H "Authorization: Bearer $CLIENT" "$a_url$get_path")
post_body=$(curl -sS -H "Authorization: Bearer $CLIENT" \
    -H 'Content-Type: application/json' --data-binary "$batch_body" \
    "$a_url/v1/assign")
n_answers=$(grep -o '"experiment":' <<<"$post_body" | wc -l)
if [ "$n_answers" -ne 10 ] || ! grep -q '"in_experiment":true' <<<"$get_body"
then
    echo "assign.sh: unexpected answers:" >&2
    echo "  GET  $get_body" >&2
    echo "  POST $batch_body -> $post_body" >&2
    exit 1
fi
get_len=${#get_body}
post_len=${#post_body}

# ---- 3. nginx -------------------------------------------------------------
n_port=$(free_port)
n_url=http://127.0.0.1:$n_port
mkdir -p "$tmp/nginx"
nginx_escape() { sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" <<<"$1"; }
sed -e "s|@WORKERS@|$WORKERS|" \
    -e "s|@DIR@|$tmp/nginx|g" -e "s|@PORT@|$n_port|" \
    bench/nginx.conf.in >"$tmp/nginx/nginx.conf.tmp"
GET_BODY=$(nginx_escape "$get_body") POST_BODY=$(nginx_escape "$post_body") \
    /usr/bin/python3 -c 'import os, sys
t = open(sys.argv[1]).read()
t = t.replace("@GET_BODY@", os.environ["GET_BODY"])
t = t.replace("@POST_BODY@", os.environ["POST_BODY"])
open(sys.argv[2], "w").write(t)' "$tmp/nginx/nginx.conf.tmp" \
    "$tmp/nginx/nginx.conf"
echo "bench: nginx on $n_url, $WORKERS worker process(es)" >&2
"${SERVER_RUN[@]}" /usr/sbin/nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" \
    -e "$tmp/nginx/error.log" &
nginx_pid=$!
wait_http "$n_url/v1/assign"
n_get=$(curl -sS "$n_url$get_path")
n_post=$(curl -sS -X POST --data-binary "$batch_body" "$n_url/v1/assign")
if [ "${#n_get}" -ne "$get_len" ] || [ "${#n_post}" -ne "$post_len" ]; then
    echo "assign.sh: nginx bodies differ in size from arbiter's" \
        "(${#n_get}/$get_len, ${#n_post}/$post_len)" >&2
    exit 1
fi
echo "bench: bodies: GET $get_len bytes, batch $post_len bytes" >&2

# ---- 4. wrk ---------------------------------------------------------------
# CPU time (user + system, clock ticks) of a process and its children's
# threads: arbiter's every thread (HTTP, exposure writer, listener), or
# nginx's master and workers. Divided by the requests served it gives CPU
# microseconds per request, which other load on the machine disturbs far
# less than requests per second do.
cpu_ticks() { # PID
    local pids=("$1") t
    mapfile -t -O 1 pids < <(pgrep -P "$1")
    for t in "${pids[@]}"; do cat /proc/"$t"/task/*/stat 2>/dev/null; done |
        awk '{ sum += $14 + $15 } END { print sum + 0 }'
}
TICK_HZ=$(getconf CLK_TCK)

# arbiter's own latency histogram of the assign route (all methods, status
# 200), cumulative counts per bucket bound: "le count" lines
server_hist() {
    curl -sS -H "Authorization: Bearer $ADMIN" "$a_url/metrics" |
        awk -F'[{}]' '/^arbiter_http_request_duration_seconds_bucket/ &&
            /route="\/v1\/assign"/ && /status="200"/ {
                split($2, kv, ","); le = "";
                for (i in kv) if (kv[i] ~ /^le=/) {
                    le = kv[i]; gsub(/le=|"/, "", le) }
                split($3, v, " "); sum[le] += v[1] }
            END { for (le in sum) print le, sum[le] }' | sort -g
}

# the bound of the histogram bucket holding quantile q of the requests
# between two server_hist snapshots (in microseconds; "inf" past the last)
server_quantile() { # BEFORE AFTER Q
    /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys
def read(f):
    d = {}
    for line in open(f):
        le, n = line.split()
        d[le] = float(n)
    return d
a, b, q = read(sys.argv[1]), read(sys.argv[2]), float(sys.argv[3])
les = sorted((x for x in b if x != "+Inf"), key=float) + ["+Inf"]
total = b.get("+Inf", 0) - a.get("+Inf", 0)
if total <= 0:
    print("na"); sys.exit()
for le in les:
    if b.get(le, 0) - a.get(le, 0) >= q * total:
        print("inf" if le == "+Inf" else "%g" % (float(le) * 1e6)); break
PY
}

# prints "rps p50 p90 p99 p999 max cpu_us_per_request srv_p99 srv_p999"
# (latencies in microseconds, from wrk; srv_* from arbiter's histogram:
# the upper bound of the bucket, "-" for nginx); "timeouts" when wrk saw
# only timeouts (a stall); fails on errors or non-2xx answers
run_wrk() { # NAME URL KIND RATE PID
    local out=$tmp/wrk-$1.txt c0 c1 h0=$tmp/h0 h1=$tmp/h1 sp99=- sp999=-
    case $1 in arbiter-*) server_hist >"$h0" ;; esac
    c0=$(cpu_ticks "$5")
    BENCH_TOKEN=$CLIENT BENCH_BODY=$batch_body BENCH_KIND=$3 BENCH_RATE=$4 \
        BENCH_CONNS=$CONNS timeout -k 5 "$WRK_LIMIT" "${WRK_RUN[@]}" wrk \
        -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency \
        -s bench/assign_rate.lua "$2" >"$out" 2>&1 ||
        { cat "$out" >&2; return 1; }
    c1=$(cpu_ticks "$5")
    case $1 in arbiter-*)
        server_hist >"$h1"
        sp99=$(server_quantile "$h0" "$h1" 0.99)
        sp999=$(server_quantile "$h0" "$h1" 0.999) ;;
    esac
    { echo "== $1 (rate ${4:-0}/s)"; cat "$out"; } >>"$tmp/wrk-all.txt"
    local res
    res=$(grep '^RESULT ' "$out") || { cat "$out" >&2; return 1; }
    if grep -qE 'errors=[1-9]|status=[1-9]' <<<"$res"; then
        echo "assign.sh: $1 had errors:" >&2
        cat "$out" >&2
        return 1
    fi
    if grep -qE 'timeouts=[1-9]' <<<"$res"; then
        echo "timeouts"
        return 0
    fi
    awk -v ticks=$((c1 - c0)) -v hz="$TICK_HZ" -v sp99="$sp99" \
        -v sp999="$sp999" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%.0f %d %d %d %d %d %.2f %s %s\n", v["rps"], v["p50"],
            v["p90"], v["p99"], v["p999"], v["max"],
            v["n"] ? ticks * 1e6 / hz / v["n"] : 0, sp99, sp999 }' <<<"$res"
}

run_target() { # NAME URL KIND RATE PID ROUND LOAD: run (once more after a stall), record
    local r
    echo "bench: round $6/$RUNS: $1 at $7 ($DURATION, rate ${4:-max})" >&2
    r=$(run_wrk "$1" "$2" "$3" "$4" "$5")
    if [ "$r" = timeouts ]; then
        echo "bench:   wrk timeouts (a stall); running $1 again" >&2
        echo "$6 $1 $7" >>"$tmp/stalls.txt"
        r=$(run_wrk "$1" "$2" "$3" "$4" "$5")
        if [ "$r" = timeouts ]; then
            echo "assign.sh: $1 stalled twice in a row" >&2
            exit 1
        fi
    fi
    echo "$6 $1 $7 $r" >>"$tmp/results.txt"
    echo "bench:   $r (req/s, p50 p90 p99 p99.9 max us, CPU us/req, server p99 p99.9 us)" >&2
    LAST_RPS=${r%% *}
}

: >"$tmp/results.txt"
: >"$tmp/stalls.txt"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
loads=()
for round in $(seq "$RUNS"); do
    for kind in get batch; do
        # 100 %: unpaced, each server at its own maximum; nginx first, its
        # rate sets the paced loads of this round
        run_target "nginx-$kind" "$n_url" "$kind" 0 "$nginx_pid" "$round" 100
        nmax=$LAST_RPS
        run_target "arbiter-$kind" "$a_url" "$kind" 0 "$arbiter_pid" "$round" 100
        for pct in 50 90; do
            rate=$((nmax * pct / 100))
            run_target "arbiter-$kind" "$a_url" "$kind" "$rate" \
                "$arbiter_pid" "$round" "$pct"
            run_target "nginx-$kind" "$n_url" "$kind" "$rate" "$nginx_pid" \
                "$round" "$pct"
        done
    done
    loads+=("$(cut -d' ' -f1-3 /proc/loadavg)")
done
arbiter_rss=$(awk '/VmHWM/ {print $2}' "/proc/$arbiter_pid/status")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 5. report --------------------------------------------------------------
report=$(/usr/bin/python3 - "$tmp/results.txt" "$RUNS" <<'PY'
import statistics, sys
runs = int(sys.argv[2])
rows = {}  # (server, kind, load) -> {round: (rps, p50, p90, p99, p999, max, cpu, sp99, sp999)}
for line in open(sys.argv[1]):
    f = line.split()
    rnd, name, load = int(f[0]), f[1], int(f[2])
    server, kind = name.split("-")
    vals = [float(x) for x in f[3:10]] + f[10:12]
    rows.setdefault((server, kind, load), {})[rnd] = vals

def med(key, i):
    return statistics.median(v[i] for v in rows[key].values())

def ms(us):
    return "%.2f" % (us / 1000.0)

def cell(key, i, f=ms):
    v = sorted(x[i] for x in rows[key].values())
    if len(v) == 1:
        return f(v[0])
    return "%s (%s..%s)" % (f(statistics.median(v)), f(v[0]), f(v[-1]))

print("| kind | load | server | requests/s | p50 ms | p99 ms | p99.9 ms "
      "| server-side p99 / p99.9 (us, bucket bound) | CPU us/request |")
print("|---|---|---|---|---|---|---|---|---|")
for kind in ("get", "batch"):
    for load in (50, 90, 100):
        for server in ("arbiter", "nginx"):
            key = (server, kind, load)
            if key not in rows:
                continue
            srv = "-"
            if server == "arbiter":
                srv = " ".join("%s/%s" % (v[7], v[8])
                               for _, v in sorted(rows[key].items()))
            print("| %s | %d %% | %s | %s | %s | %s | %s | %s | %s |" % (
                kind, load, server, cell(key, 0, lambda x: "%.0f" % x),
                cell(key, 1), cell(key, 3), cell(key, 4), srv,
                cell(key, 6, lambda x: "%.1f" % x)))
print()
print("Medians over rounds, (min..max) in brackets; server-side quantiles "
      "per round. Ratios arbiter/nginx:")
print()
ok = True
for kind, rps_target in (("get", 0.95), ("batch", 0.8)):
    a, n = rows[("arbiter", kind, 100)], rows[("nginx", kind, 100)]
    per = [a[r][0] / n[r][0] for r in sorted(a) if r in n]
    rr = med(("arbiter", kind, 100), 0) / med(("nginx", kind, 100), 0)
    met = rr >= rps_target
    ok = ok and met
    print("- %s, requests/s at 100 %%: %.3f (per round: %s); target >= %.2f: "
          "%s" % (kind, rr, " ".join("%.2f" % x for x in per), rps_target,
                  "met" if met else "NOT met"))
    for load in (50, 90, 100):
        a, n = rows[("arbiter", kind, load)], rows[("nginx", kind, load)]
        r99 = [a[r][3] / max(n[r][3], 1) for r in sorted(a) if r in n]
        r999 = [a[r][4] / max(n[r][4], 1) for r in sorted(a) if r in n]
        good = sum(1 for x, y in zip(r99, r999) if x <= 1.5 and y <= 3.0)
        line = ("  - %s at %d %%: p99 ratio per round %s; p99.9 ratio per "
                "round %s; rounds with p99 <= 1.5x and p99.9 <= 3x: %d of %d"
                % (kind, load, " ".join("%.2f" % x for x in r99),
                   " ".join("%.2f" % x for x in r999), good, len(r99)))
        if load in (50, 90):
            need = max(len(r99) - 1, 1) if len(r99) >= 5 else len(r99)
            met = good >= need
            if kind == "get":
                ok = ok and met
            line += " (target %d: %s)" % (need, "met" if met else "NOT met")
        print(line)
print()
print("TARGET_MET=%d" % ok)
PY
)
target_met=${report##*TARGET_MET=}
report=${report%TARGET_MET=*}
if [ -s "$tmp/stalls.txt" ]; then
    report+="Runs repeated after wrk timeouts (the whole run stalled): $(
        awk '{ printf "%sround %s %s at %s %%", (NR > 1 ? ", " : ""), $1, $2, $3 }' \
            "$tmp/stalls.txt"); the stalled runs are in the raw output."
    report+=$'\n'
fi

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
if [ "$PIN" = 1 ]; then
    budget="server pinned to CPU $SERVER_CPUS with $WORKERS worker(s) (arbiter ARBITER_THREADS=$WORKERS, nginx worker_processes $WORKERS), wrk pinned to CPU $WRK_CPUS"
else
    budget="unpinned; $WORKERS worker(s) each (arbiter ARBITER_THREADS, nginx worker_processes)"
fi
header="wrk -t$WRK_THREADS -c$CONNS -d$DURATION, keep-alive, $RUNS round(s); loads 50 % and 90 % of the round's unpaced nginx rate (think time per connection, bench/assign_rate.lua) and 100 % (unpaced); $budget. Bodies: GET $get_len bytes, batch $post_len bytes (10 assignments). $NCPU x $cpu; $(uname -r). arbiter peak RSS ${arbiter_rss} kB. Load average before: $load_before; after each round: ${loads[*]}; after: $load_after (other work on the shared machine competes with both servers alike)."
echo
echo "$header"
echo
echo "$report"

if [ -n "${BENCH_OUT:-}" ]; then
    {
        echo "$header"
        echo
        echo "$report"
        echo "Raw wrk output of every run, in order:"
        echo
        echo '```'
        cat "$tmp/wrk-all.txt"
        echo '```'
    } >"$BENCH_OUT"
    echo "bench: report and raw wrk output written to $BENCH_OUT" >&2
fi
if [ "${BENCH_STRICT:-0}" = 1 ] && [ "$target_met" != 1 ]; then
    echo "bench: target not met" >&2
    exit 1
fi
