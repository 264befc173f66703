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
#   4. wrk -t2 -c64 -d10s --latency, keep-alive, against both servers for
#        get    GET  /v1/assign?experiment=exp-0&unit=user-4242
#        batch  POST /v1/assign {"unit":...,"attributes":{...}} (10 answers)
#      BENCH_RUNS rounds, each round running the four targets back to back
#      (arbiter and nginx alternate, so drift hits both alike)
#   5. a table of requests/s, p50 and p99 per target (median over rounds,
#      min..max in brackets) and the ratios arbiter / nginx; everything is
#      stopped on exit, whatever happens.
#
# CPU budget (the machine has 2 cores; wrk and the server compete): by
# default the server is pinned to CPU 0 and wrk to CPU 1 (taskset), and
# each server gets 1 worker (arbiter ARBITER_THREADS=1, nginx
# worker_processes 1): one core, one worker each, identical conditions.
# BENCH_PIN=0 runs unpinned with BENCH_WORKERS workers each instead.
#
# Environment: BENCH_RUNS (3), BENCH_DURATION (10s), BENCH_CONNECTIONS (64),
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

RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-10s}
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

# Ten running experiments of the kinds a model team runs side by side;
# every one of them includes user-4242 (coverage 1, targeting it meets), so
# the batch answers ten assignments.
arms2='[{"name":"control","weight":50,"model":"ranker@41","control":true},
        {"name":"treatment","weight":50,"model":"ranker@42"}]'
arms3='[{"name":"control","weight":34,"model":"retrieval@7","control":true},
        {"name":"wide","weight":33,"model":"retrieval@8-wide"},
        {"name":"deep","weight":33,"model":"retrieval@8-deep"}]'
canary='[{"name":"stable","weight":95,"model":"fraud@2024.11","control":true},
         {"name":"canary","weight":5,"model":"fraud@2024.12"}]'
target='[{"attribute":"country","op":"in","values":["de","fr","nl"]},
         {"attribute":"app_version","op":"semver_ge","value":"3.0.0"}]'
defs=(
    "{\"key\":\"exp-0\",\"arms\":$arms2}"
    "{\"key\":\"exp-1\",\"arms\":$arms3}"
    "{\"key\":\"exp-2\",\"strategy\":\"canary\",\"arms\":$canary}"
    "{\"key\":\"exp-3\",\"arms\":$arms2,\"targeting\":$target}"
    "{\"key\":\"exp-4\",\"strategy\":\"bandit\",\"arms\":$arms3}"
    "{\"key\":\"exp-5\",\"arms\":$arms2,\"salt\":\"s5\",\"bucket_version\":2}"
    "{\"key\":\"exp-6\",\"strategy\":\"shadow\",\"arms\":$arms2}"
    "{\"key\":\"exp-7\",\"arms\":$arms3,\"targeting\":$target}"
    "{\"key\":\"exp-8\",\"strategy\":\"canary\",\"arms\":$canary}"
    "{\"key\":\"exp-9\",\"arms\":$arms2,\"forced\":{\"qa-1\":\"treatment\"}}"
)
for i in "${!defs[@]}"; do
    admin POST /v1/experiments "${defs[$i]}"
    admin POST "/v1/experiments/exp-$i/start"
done

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

# prints "rps p50_us p99_us cpu_us_per_request" from wrk's report; fails on
# errors or non-2xx answers
run_wrk() { # NAME URL SCRIPT PID
    local out=$tmp/wrk-$1.txt c0 c1
    c0=$(cpu_ticks "$4")
    BENCH_TOKEN=$CLIENT BENCH_BODY=$batch_body timeout -k 5 "$WRK_LIMIT" "${WRK_RUN[@]}" wrk \
        -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$3" "$2" \
        >"$out" 2>&1 || { cat "$out" >&2; return 1; }
    c1=$(cpu_ticks "$4")
    { echo "== $1"; cat "$out"; } >>"$tmp/wrk-all.txt"
    if grep -q 'Non-2xx' "$out" ||
        grep -E 'Socket errors' "$out" | grep -qvE 'connect 0, read 0, write 0,'
    then
        echo "assign.sh: $1 had errors:" >&2
        cat "$out" >&2
        return 1
    fi
    if grep -q 'Socket errors' "$out"; then
        # only wrk's 2 s timeouts: the run stalled (seen for nginx and
        # arbiter alike when the shared machine froze); retried once
        echo "timeouts"
        return 0
    fi
    awk -v ticks=$((c1 - c0)) -v hz="$TICK_HZ" '
    function us(v) {
        if (v ~ /us$/) return v + 0;
        if (v ~ /ms$/) return v * 1000;
        if (v ~ /s$/) return v * 1000000;
        return v;
    }
    /Requests\/sec:/ { rps = $2 }
    / requests in / { n = $1 }
    $1 == "50%" { p50 = us($2) }
    $1 == "99%" { p99 = us($2) }
    END { printf "%.0f %.1f %.1f %.2f\n", rps, p50, p99,
                 n ? ticks * 1e6 / hz / n : 0 }' "$out"
}

targets=(arbiter-get nginx-get arbiter-batch nginx-batch)
declare -A url=([arbiter-get]=$a_url [nginx-get]=$n_url
    [arbiter-batch]=$a_url [nginx-batch]=$n_url)
declare -A pid=([arbiter-get]=$arbiter_pid [nginx-get]=$nginx_pid
    [arbiter-batch]=$arbiter_pid [nginx-batch]=$nginx_pid)
declare -A script=([arbiter-get]=bench/assign_get.lua
    [nginx-get]=bench/assign_get.lua
    [arbiter-batch]=bench/assign_batch.lua
    [nginx-batch]=bench/assign_batch.lua)
: >"$tmp/results.txt"
: >"$tmp/stalls.txt"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$RUNS"); do
    for t in "${targets[@]}"; do
        echo "bench: round $round/$RUNS: $t ($DURATION)" >&2
        r=$(run_wrk "$t" "${url[$t]}" "${script[$t]}" "${pid[$t]}")
        if [ "$r" = timeouts ]; then
            echo "bench:   wrk timeouts (a stall); running $t again" >&2
            echo "$round $t" >>"$tmp/stalls.txt"
            r=$(run_wrk "$t" "${url[$t]}" "${script[$t]}" "${pid[$t]}")
            if [ "$r" = timeouts ]; then
                echo "assign.sh: $t stalled twice in a row" >&2
                exit 1
            fi
        fi
        echo "$round $t $r" >>"$tmp/results.txt"
        echo "bench:   $r (req/s, p50 us, p99 us, server CPU us/request)" >&2
    done
done
arbiter_rss=$(awk '/VmHWM/ {print $2}' "/proc/$arbiter_pid/status")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 5. report --------------------------------------------------------------
report=$(/usr/bin/python3 - "$tmp/results.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    rnd, t, rps, p50, p99, cpu = line.split()
    rows.setdefault(t, []).append((float(rps), float(p50) / 1000,
                                   float(p99) / 1000, float(cpu)))

def med(t, i):
    return statistics.median(r[i] for r in rows[t])

def cell(t, i, fmt):
    v = [r[i] for r in rows[t]]
    if len(v) == 1:
        return fmt % v[0]
    return (fmt + " (" + fmt + ".." + fmt + ")") % (med(t, i), min(v),
                                                     max(v))

print("| target | requests/s | p50 ms | p99 ms | server CPU us/request |")
print("|---|---|---|---|---|")
for t in ["arbiter-get", "nginx-get", "arbiter-batch", "nginx-batch"]:
    print("| %s | %s | %s | %s | %s |" % (
        t, cell(t, 0, "%.0f"), cell(t, 1, "%.2f"), cell(t, 2, "%.2f"),
        cell(t, 3, "%.1f")))
print()
print("Medians over rounds, (min..max) in brackets. Ratios arbiter/nginx:")
print()
ok = True
for kind, has_target in [("get", True), ("batch", False)]:
    a, n = rows["arbiter-" + kind], rows["nginx-" + kind]
    rr = med("arbiter-" + kind, 0) / med("nginx-" + kind, 0)
    pr = med("arbiter-" + kind, 2) / med("nginx-" + kind, 2)
    cr = med("arbiter-" + kind, 3) / med("nginx-" + kind, 3)
    per = " ".join("%.2f" % (x[0] / y[0]) for x, y in zip(a, n))
    line = ("- %s: requests/s %.3f (per round: %s), p99 %.2fx, CPU per "
            "request %.2fx" % (kind, rr, per, pr, cr))
    if has_target:
        met = rr >= 0.9 and pr <= 1.5
        ok = ok and met
        line += "; target (requests/s >= 0.9, p99 <= 1.5x): %s" % (
            "met" if met else "NOT met")
    print(line)
print()
print("TARGET_MET=%d" % ok)
PY
)
target_met=${report##*TARGET_MET=}
report=${report%TARGET_MET=*}
if [ -s "$tmp/stalls.txt" ]; then
    report+="Runs repeated after wrk timeouts (the whole run stalled): $(
        awk '{ printf "%sround %s %s", (NR > 1 ? ", " : ""), $1, $2 }' \
            "$tmp/stalls.txt"); the stalled runs are in the raw output."
    report+=$'\n'
fi

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
if [ "$PIN" = 1 ]; then
    budget="server pinned to CPU $SERVER_CPUS with $WORKERS worker(s) (arbiter ARBITER_THREADS=$WORKERS, nginx worker_processes $WORKERS), wrk pinned to CPU $WRK_CPUS"
else
    budget="unpinned; $WORKERS worker(s) each (arbiter ARBITER_THREADS, nginx worker_processes)"
fi
header="wrk -t$WRK_THREADS -c$CONNS -d$DURATION --latency, keep-alive, $RUNS round(s); $budget. Bodies: GET $get_len bytes, batch $post_len bytes (10 assignments). $NCPU x $cpu; $(uname -r). arbiter peak RSS ${arbiter_rss} kB. Load average before/after: $load_before / $load_after (other work on the machine competes with both servers alike)."
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
