#!/usr/bin/env bash
# ingest.sh BIN TOOLDIR -- `make bench-ingest`: committed events per second
# through POST /v1/events, beside the raw libpq COPY ceiling of the same
# rows into the same PostgreSQL, in the same run.
#
#   1. a private PostgreSQL (tests/harness/pg.sh, fsync on, synchronous_commit on)
#      in a temporary directory
#   2. BIN serve on a free loopback port; BENCH_EXPERIMENTS running
#      experiments bench-0.. with two metrics each (click: binary, primary;
#      revenue: sum), created and started through the API (curl)
#   3. every round, from empty event tables (TRUNCATE, CHECKPOINT):
#      0. (BENCH_ASSIGN=1, the default; round 1 only, the exposures stay
#         for the later rounds) the assignment phase, not timed:
#         TOOLDIR/ingest_load --assign POSTs /v1/assign for every unit
#         u-0000000 .. u-<BENCH_UNITS - 1> (each is assigned in every
#         running experiment), the script waits until the exposure writer
#         has stored all of them, then VACUUM ANALYZE and CHECKPOINT: the
#         outcomes that follow belong to assigned units, as in production,
#         and the fold does the work production does. BENCH_ASSIGN=0 keeps
#         the never-assigned variant (the fold then creates an exposure
#         for every new unit it meets).
#      a. TOOLDIR/ingest_load: BENCH_CLIENTS keep-alive clients POST batches
#         of BENCH_BATCH events (JSON array, client event ids, units drawn
#         from BENCH_UNITS per experiment) for BENCH_DURATION seconds; it
#         counts the events of 202 answers, which arbiter sends only after
#         the commit. The script checks that events_raw holds exactly that
#         many rows and that nothing was spooled.
#      b. TOOLDIR/copy_ceiling: the rows arbiter stored in this round,
#         COPY'd by BENCH_COPY_CLIENTS libpq connections, BENCH_COPY_XACT
#         rows per transaction, into a fresh plain table of the same layout
#         and index (see bench/copy_ceiling.c for what that includes)
#      During (a) one psql session samples the fold's lag every 0.2 s
#      (arbiter.fold_lag()); after it the script waits until the leader's
#      fold has taken every committed event, and PostgreSQL's CPU is split
#      into the leader backend's (the fold; found by its advisory lock) and
#      the rest (the acknowledging writer, WAL writer, checkpointer,
#      autovacuum). The COPY target has both indexes of events_raw.
#   4. after the last round: arbiter.arm_stats against the from-scratch
#      arbiter.arm_stats_recompute() for bench-0 (the folded aggregates
#      must stay exact under load)
#   5. the client ceiling: ingest_load against its own in-process sink;
#      then the 202 latency with the load paced (ingest_load --rate) at
#      50 % and 90 % of the median measured rate
#   6. a table of medians over rounds (min..max): the ratio committed
#      events/s / COPY rows/s, and, since wall-clock rates on a shared
#      2-core machine move with whatever else runs, the CPU seconds per
#      event that each side spent (PostgreSQL: every process of the
#      cluster; arbiter; the clients), from /proc/PID/stat; the issue-11
#      targets (ratio >= 0.25, fold lag p99 <= 2 s, PostgreSQL CPU per
#      event <= 3x COPY's per row) met or not; last line `ratio 0.NN`.
#      Everything stops on exit.
#
# Environment: BENCH_RUNS (3), BENCH_DURATION (15), BENCH_CLIENTS (8),
# BENCH_BATCH (1000), BENCH_EXPERIMENTS (4), BENCH_UNITS (100000),
# BENCH_IDS (1: events carry client ids), BENCH_COPY_CLIENTS (2),
# BENCH_COPY_XACT (50000), BENCH_THREADS (arbiter ARBITER_THREADS, 2),
# BENCH_ASSIGN (1: assign every unit before the outcomes; 0: never),
# BENCH_ASSIGN_RATE (2000 assignments/s: what the exposure writer keeps up
# with here; faster, its rings drop exposures and a second pass is needed),
# BENCH_RECORD (1: write bench/results/ingest.md.raw), BENCH_KEEP (1: keep
# the temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-bin/arbiter}
TOOLS=${2:-build/bench}
for f in "$BIN" "$TOOLS/ingest_load" "$TOOLS/copy_ceiling"; do
    [ -x "$f" ] || { echo "ingest.sh: no $f (run make bench-ingest)" >&2; exit 1; }
done
for tool in curl psql pgrep; do
    command -v "$tool" >/dev/null ||
        { echo "ingest.sh: $tool missing (make deps)" >&2; exit 1; }
done

RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-15}
CLIENTS=${BENCH_CLIENTS:-8}
BATCH=${BENCH_BATCH:-1000}
EXPERIMENTS=${BENCH_EXPERIMENTS:-4}
UNITS=${BENCH_UNITS:-100000}
IDS=${BENCH_IDS:-1}
COPY_CLIENTS=${BENCH_COPY_CLIENTS:-2}
COPY_XACT=${BENCH_COPY_XACT:-50000}
THREADS=${BENCH_THREADS:-2}
ASSIGN=${BENCH_ASSIGN:-1}
ASSIGN_RATE=${BENCH_ASSIGN_RATE:-2000}

tmp=$(mktemp -d /tmp/arbiter-bench-ingest.XXXXXX)
chmod 755 "$tmp"
arbiter_pid=
cleanup() {
    set +e
    [ -n "$arbiter_pid" ] && kill -TERM "$arbiter_pid" 2>/dev/null &&
        wait "$arbiter_pid" 2>/dev/null
    tests/harness/pg.sh stop "$tmp/pg" >/dev/null 2>&1
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "ingest.sh: kept $tmp" >&2
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
    echo "ingest.sh: nothing answers at $1" >&2
    return 1
}

# ---- 1. PostgreSQL --------------------------------------------------------
echo "bench: starting a private PostgreSQL in $tmp/pg" >&2
db_url=$(tests/harness/pg.sh start "$tmp/pg")
sql() { psql "$db_url" -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

# ---- 2. arbiter -----------------------------------------------------------
ADMIN=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
CLIENT=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
a_port=$(free_port)
a_url=http://127.0.0.1:$a_port
echo "bench: arbiter on $a_url, $THREADS HTTP worker thread(s)" >&2
env ARBITER_DATABASE_URL="$db_url" ARBITER_LISTEN="127.0.0.1:$a_port" \
    ARBITER_ADMIN_TOKEN="$ADMIN" ARBITER_CLIENT_TOKEN="$CLIENT" \
    ARBITER_THREADS="$THREADS" ARBITER_LOG_LEVEL=warn \
    ARBITER_SPOOL_DIR="$tmp/spool" \
    "$BIN" serve >"$tmp/arbiter.log" 2>&1 &
arbiter_pid=$!
wait_http "$a_url/healthz"

admin() { # METHOD PATH [BODY]: fail loudly on anything but 2xx
    local out
    out=$(curl -sS -X "$1" -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
        -w '\n%{http_code}' "$a_url$2")
    case "${out##*$'\n'}" in
    2??) ;;
    *) echo "ingest.sh: $1 $2 answered: $out" >&2; return 1 ;;
    esac
}

metrics='[{"name":"click","kind":"binary","role":"primary"},
          {"name":"revenue","kind":"sum","role":"secondary"}]'
arms='[{"name":"control","weight":50,"model":"ranker@41","control":true},
       {"name":"treatment","weight":50,"model":"ranker@42"}]'
for i in $(seq 0 $((EXPERIMENTS - 1))); do
    admin POST /v1/experiments \
        "{\"key\":\"bench-$i\",\"arms\":$arms,\"metrics\":$metrics}"
    admin POST "/v1/experiments/bench-$i/start"
done
# the snapshot reload that makes them assignable is asynchronous
for _ in $(seq 100); do
    probe=$(curl -sS -H "Authorization: Bearer $CLIENT" \
        "$a_url/v1/assign?experiment=bench-$((EXPERIMENTS - 1))&unit=probe")
    grep -q '"in_experiment":true' <<<"$probe" && break
    sleep 0.1
done

# CPU seconds (user + system) from /proc/PID/stat, proc(5): of one process
# with its threads, and of the PostgreSQL cluster (the postmaster with its
# reaped children, plus every live child: backends, WAL writer,
# checkpointer, autovacuum)
TCK=$(getconf CLK_TCK)
proc_cpu() {
    awk -v t="$TCK" '{sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / t}' \
        "/proc/$1/stat"
}
minus() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a - b}'; }
pg_cpu() {
    local pm
    pm=$(head -1 "$tmp/pg/data/postmaster.pid")
    {
        echo "pm $(sed 's/^.*) //' "/proc/$pm/stat")"
        for c in $(pgrep -P "$pm"); do
            echo "ch $(sed 's/^.*) //' "/proc/$c/stat" 2>/dev/null)"
        done
    } | awk -v t="$TCK" '
        $1 == "pm" { s += $13 + $14 + $15 + $16; next }
        NF > 14 { s += $13 + $14 }
        END { printf "%.2f\n", s / t }'
}

# The same CPU split by process kind, to say where the acknowledging path's
# share goes: "name seconds" lines for the fold backend, arbiter's other
# backends, psql sessions (this script's samplers), autovacuum, the WAL
# writer, the checkpointer, the background writer, and children that exited
# (the postmaster's reaped time: autovacuum workers, short psql sessions).
pg_split() {
    local pm fold=$1 c kind psqls
    pm=$(head -1 "$tmp/pg/data/postmaster.pid")
    psqls=" $(sql "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
                   WHERE application_name = 'psql'") "
    {
        echo "exited $(sed 's/^.*) //' "/proc/$pm/stat" |
            awk '{print $14 + $15}')"
        for c in $(pgrep -P "$pm"); do
            kind=$(tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null) || continue
            case "$kind" in
            *autovacuum*) kind=autovacuum ;;
            *walwriter*) kind=walwriter ;;
            *checkpointer*) kind=checkpointer ;;
            *"background writer"*) kind=bgwriter ;;
            *) if [ "$c" = "$fold" ]; then kind=fold
               elif [[ "$psqls" == *" $c "* ]]; then kind=psql
               else kind=backends; fi ;;
            esac
            echo "$kind $(sed 's/^.*) //' "/proc/$c/stat" 2>/dev/null |
                awk '{print $12 + $13}')"
        done
    } | awk -v t="$TCK" 'NF == 2 {s[$1] += $2}
        END {for (k in s) printf "%s %.2f\n", k, s[k] / t}' | sort
}
split_delta() { # before after -> "kind=seconds ..." (kinds of either side)
    awk 'NR == FNR {a[$1] = $2; next} {b[$1] = $2}
         END {for (k in a) if (!(k in b)) b[k] = 0
              for (k in b) printf "%s=%.2f ", k, b[k] - a[k]}' "$1" "$2"
}

spooled() {
    curl -sS "$a_url/metrics" |
        awk '$1 == "arbiter_spooled_batches_total" {print $2}'
}

# The leader's PostgreSQL backend: it runs the fold (and the other leader
# jobs, idle here); its CPU is the fold's share of PostgreSQL's.
fold_pid() {
    local p
    for _ in $(seq 100); do
        # the session holding the leader lock (service/leader.h: 7243520)
        p=$(sql "SELECT pid FROM pg_locks WHERE locktype = 'advisory'
                 AND classid = 0 AND objid = 7243520 AND objsubid = 1
                 AND granted LIMIT 1")
        [ -n "$p" ] && { echo "$p"; return; }
        sleep 0.1
    done
    echo "ingest.sh: no fold backend found" >&2
    return 1
}
backend_cpu() {
    awk -v t="$TCK" '{sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / t}' \
        "/proc/$1/stat" 2>/dev/null || echo 0
}

# ---- 3. rounds ------------------------------------------------------------
: >"$tmp/results.txt"
for round in $(seq "$RUNS"); do
    # assigned: the exposures of the assignment phase stay (round 1 makes
    # them); never assigned: every round starts without any
    exposures=", arbiter.exposure_units, arbiter.exposure_arm_totals"
    [ "$ASSIGN" = 1 ] && exposures=
    sql "TRUNCATE arbiter.events_raw, arbiter.unit_metrics,
                  arbiter.arm_metric_totals, arbiter.event_ids,
                  arbiter.ingest_batches, arbiter.attr_moved,
                  arbiter.arm_population, arbiter.attr_units,
                  arbiter.attr_held $exposures;
         UPDATE arbiter.fold_state SET epoch = epoch + 1; CHECKPOINT"
    if [ "$ASSIGN" = 1 ] && [ "$round" = 1 ]; then
        # the exposure writer drops what its per-thread rings cannot hold
        # (arbiter_exposures_dropped_total): a unit whose exposure was
        # dropped is assigned again by the next pass (up to 8, until 99 %
        # of the exposures are stored; each pass takes only the units
        # still missing), as a real unit would be on its next request
        want=$((EXPERIMENTS * UNITS))
        have=0
        only=()
        for pass in 1 2 3 4 5 6 7 8; do
            assigned=$("$TOOLS/ingest_load" --assign --port "$a_port" \
                --token "$CLIENT" --clients 2 --units "$UNITS" \
                --rate "$ASSIGN_RATE" "${only[@]}")
            last=-1
            for _ in $(seq 600); do # until the writer has drained
                have=$(sql "SELECT count(*) FROM arbiter.exposure_units")
                [ "$have" -ge "$want" ] || [ "$have" = "$last" ] && break
                last=$have
                sleep 0.5
            done
            # 99 %: the rest are units whose outcomes come before their
            # exposure is stored, as some do in production
            [ "$((have * 100))" -ge "$((want * 99))" ] && break
            # the next pass assigns only the units still missing somewhere
            sql "SELECT g FROM generate_series(0, $UNITS - 1) g
                  WHERE (SELECT count(*) FROM arbiter.exposure_units x
                          WHERE x.unit = 'u-' || lpad(g::text, 7, '0'))
                        < $EXPERIMENTS" >"$tmp/missing"
            only=(--only "$tmp/missing")
        done
        assigned="$assigned (pass $pass)"
        if [ "$((have * 100))" -lt "$((want * 95))" ]; then
            echo "ingest.sh: $have of $want exposures stored" >&2
            exit 1
        fi
        sql "VACUUM ANALYZE arbiter.exposure_units"
        sql "CHECKPOINT"
        echo "bench:   assign: $assigned; $have exposures stored" >&2
    fi
    echo "bench: round $round/$RUNS: $CLIENTS clients x $BATCH events," \
        "${DURATION} s" >&2
    fpid=$(fold_pid)
    pg_split "$fpid" >"$tmp/split0"
    pg0=$(pg_cpu)
    ar0=$(proc_cpu "$arbiter_pid")
    fo0=$(backend_cpu "$fpid")
    # fold lag while the load runs: one psql session sampling every 0.2 s
    printf '%s\n' "SELECT arbiter.fold_lag(), 0" \
        '\watch 0.2' | psql "$db_url" -X -qAt >"$tmp/lag.$round" 2>/dev/null &
    sampler=$!
    load=$("$TOOLS/ingest_load" --port "$a_port" --token "$CLIENT" \
        --clients "$CLIENTS" --batch "$BATCH" --seconds "$DURATION" \
        --experiments "$EXPERIMENTS" --units "$UNITS" --ids "$IDS" \
        --run "r$round")
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    # the fold's work on this round's events counts too: wait for it
    t_end=$(date +%s.%N)
    for _ in $(seq 600); do
        [ "$(sql "SELECT pending_events FROM arbiter.fold_status()")" = 0 ] &&
            break
        sleep 0.1
    done
    catchup=$(awk -v a="$t_end" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
    pg1=$(pg_cpu)
    pg_split "$fpid" >"$tmp/split1"
    ar1=$(proc_cpu "$arbiter_pid")
    fo1=$(backend_cpu "$fpid")
    lag=$(awk -F'|' 'NF == 2 {print $1}' "$tmp/lag.$round" | sort -g |
        awk '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1;
             printf "%.2f %.2f\n", v[i], v[NR]}')
    echo "bench:   http: $load" >&2
    echo "bench:   http: PostgreSQL cpu $(minus "$pg1" "$pg0") s" \
        "(fold backend $(minus "$fo1" "$fo0") s), arbiter cpu" \
        "$(minus "$ar1" "$ar0") s; fold lag p99/max ${lag/ //} s;" \
        "fold caught up ${catchup} s after the load" >&2
    echo "bench:   http: PostgreSQL cpu by process kind (s):" \
        "$(split_delta "$tmp/split0" "$tmp/split1")" >&2
    accepted=$(sed -n 's/.* accepted=\([0-9]*\).*/\1/p' <<<"$load")
    stored=$(sql "SELECT count(*) FROM arbiter.events_raw")
    if [ "$stored" != "$accepted" ]; then
        echo "ingest.sh: acknowledged $accepted events, stored $stored" >&2
        exit 1
    fi
    if [ "$(spooled)" != 0 ]; then
        echo "ingest.sh: batches were spooled; the rate is not of commits" >&2
        exit 1
    fi
    copy=$("$TOOLS/copy_ceiling" --url "$db_url" --clients "$COPY_CLIENTS" \
        --rows-per-xact "$COPY_XACT" \
        --pg-pid "$(head -1 "$tmp/pg/data/postmaster.pid")")
    echo "bench:   copy: $copy" >&2
    eps=$(sed -n 's/.* eps=\([0-9]*\).*/\1/p' <<<"$load")
    p50=$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$load")
    p99=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$load")
    rps=$(sed -n 's/.* rps=\([0-9]*\).*/\1/p' <<<"$copy")
    load_cpu=$(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' <<<"$load")
    copy_cpu=$(sed -n 's/.* cpu_s=\([0-9.]*\) .*/\1/p' <<<"$copy")
    copy_pg=$(sed -n 's/.* pg_cpu_s=\([0-9.-]*\).*/\1/p' <<<"$copy")
    echo "$round $eps $rps $p50 $p99 $accepted $(minus "$pg1" "$pg0")" \
        "$(minus "$ar1" "$ar0") $load_cpu $copy_pg $copy_cpu" \
        "$(minus "$fo1" "$fo0") $lag $catchup" >>"$tmp/results.txt"
done

# ---- 4. the aggregates are exact -------------------------------------------
# On the last round's data of experiment bench-0 (a quarter of the events:
# arm_stats_recompute() of all four took minutes on the loaded 2-core
# machine -- a scan of the experiment's raw events plus JIT compilation per
# call -- and the check only needs to see the incremental path under
# concurrent load). Each side is materialized once: a join of the view with
# the function would re-run the recomputation per row.
check=$(psql "$db_url" -X -qAt -v ON_ERROR_STOP=1 <<'SQL'
CREATE TEMP TABLE rc AS
    SELECT r.* FROM arbiter.experiments e,
           LATERAL arbiter.arm_stats_recompute(e.key) r
     WHERE e.key = 'bench-0';
CREATE TEMP TABLE st AS
    SELECT * FROM arbiter.arm_stats WHERE experiment = 'bench-0';
SELECT count(*) FILTER (WHERE s.experiment IS NULL
           OR s.n <> r.n OR s.units_with_events <> r.units_with_events
           OR abs(s.sum - r.sum) > 1e-9 * greatest(1, abs(r.sum))
           OR abs(s.sum_sq - r.sum_sq) > 1e-9 * greatest(1, abs(r.sum_sq)))
       || ' ' || count(*)
  FROM rc r LEFT JOIN st s
    ON (s.experiment, s.metric, s.arm) = (r.experiment, r.metric, r.arm);
SQL
)
bad=${check% *}
checked=${check#* }
if [ "$bad" != 0 ] || [ "$checked" -lt 4 ]; then
    echo "ingest.sh: arm_stats differ from the recomputation" \
        "($bad of $checked rows)" >&2
    exit 1
fi
echo "bench: arm_stats equal arm_stats_recompute() ($checked rows)" >&2

# ---- 5. client ceiling ------------------------------------------------------
sink=$("$TOOLS/ingest_load" --sink --clients "$CLIENTS" --batch "$BATCH" \
    --seconds 3 --experiments "$EXPERIMENTS" --units "$UNITS" --ids "$IDS")
sink_eps=$(sed -n 's/.* eps=\([0-9]*\).*/\1/p' <<<"$sink")
echo "bench: client ceiling (in-process sink): $sink" >&2

# ---- 5b. acknowledgement latency at 50 % and 90 % of the measured rate ------
med_eps=$(awk '{print $2}' "$tmp/results.txt" | sort -n |
    awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
: >"$tmp/paced.txt"
for pct in 50 90; do
    rate=$(awk -v e="$med_eps" -v p="$pct" 'BEGIN {printf "%d", e * p / 100}')
    paced=$("$TOOLS/ingest_load" --port "$a_port" --token "$CLIENT" \
        --clients "$CLIENTS" --batch "$BATCH" --seconds "$DURATION" \
        --experiments "$EXPERIMENTS" --units "$UNITS" --ids "$IDS" \
        --run "paced$pct" --rate "$rate")
    echo "bench: paced at $pct % ($rate events/s): $paced" >&2
    echo "$pct $rate $(sed -n 's/.* eps=\([0-9]*\).*/\1/p' <<<"$paced")" \
        "$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$paced")" \
        "$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$paced")" \
        >>"$tmp/paced.txt"
done

# ---- 6. report --------------------------------------------------------------
report=$(/usr/bin/python3 - "$tmp/results.txt" "$sink_eps" "$tmp/paced.txt" <<'PY'
import statistics, sys
rows = [[float(x) for x in line.split()] for line in open(sys.argv[1])]
paced = [line.split() for line in open(sys.argv[3])]
col = lambda i: [r[i] for r in rows]
eps, rps, p50, p99, n = col(1), col(2), col(3), col(4), col(5)
pg_h = [r[6] / r[5] * 1e6 for r in rows]    # us of CPU per event
ar_h = [r[7] / r[5] * 1e6 for r in rows]
ld_h = [r[8] / r[5] * 1e6 for r in rows]
pg_c = [r[9] / r[5] * 1e6 for r in rows]    # us of CPU per row
cl_c = [r[10] / r[5] * 1e6 for r in rows]
ratio = [e / c for e, c in zip(eps, rps)]
cpu_ratio = [(a + b) / (c + d) for a, b, c, d in zip(pg_c, cl_c, pg_h, ar_h)]
def cell(v, fmt):
    return (fmt % statistics.median(v)) + " (" + (fmt % min(v)) + ".." + \
        (fmt % max(v)) + ")"
print("| measure | median (min..max) |")
print("|---|---|")
print("| arbiter: committed events/s | %s |" % cell(eps, "%.0f"))
print("| raw COPY: rows/s (ceiling) | %s |" % cell(rps, "%.0f"))
print("| **ratio arbiter / COPY** | %s |" % cell(ratio, "%.3f"))
print("| arbiter: request latency p50 ms | %s |" % cell(p50, "%.1f"))
print("| arbiter: request latency p99 ms | %s |" % cell(p99, "%.1f"))
print("| arbiter: PostgreSQL CPU us/event | %s |" % cell(pg_h, "%.1f"))
print("| arbiter: arbiter process CPU us/event | %s |" % cell(ar_h, "%.1f"))
print("| arbiter: load generator CPU us/event | %s |" % cell(ld_h, "%.1f"))
print("| COPY: PostgreSQL CPU us/row | %s |" % cell(pg_c, "%.1f"))
print("| COPY: client CPU us/row | %s |" % cell(cl_c, "%.1f"))
print("| CPU cost ratio COPY / arbiter (server side) | %s |"
      % cell(cpu_ratio, "%.3f"))
fold_h = [r[11] / r[5] * 1e6 for r in rows]      # fold backend us/event
ack_h = [a - f for a, f in zip(pg_h, fold_h)]    # everything else
mult = [a / c for a, c in zip(pg_h, pg_c)]
lag99, lagmax, catch = col(12), col(13), col(14)
print("| PostgreSQL CPU us/event: acknowledging path (all but the fold) | %s |"
      % cell(ack_h, "%.1f"))
print("| PostgreSQL CPU us/event: fold (leader backend) | %s |"
      % cell(fold_h, "%.1f"))
print("| PostgreSQL CPU us/event, everything / COPY us/row | %s |"
      % cell(mult, "%.2f"))
print("| fold lag p99 s (sampled every 0.2 s under load) | %s |"
      % cell(lag99, "%.2f"))
print("| fold lag max s | %s |" % cell(lagmax, "%.2f"))
print("| fold caught up, s after the load stopped | %s |" % cell(catch, "%.2f"))
print("| client ceiling events/s (in-process sink) | %.0f |"
      % float(sys.argv[2]))
for p in paced:
    print("| paced at %s %% of the median rate (%s events/s, got %s): 202 "
          "latency p50 / p99 ms | %s / %s |" % (p[0], p[1], p[2], p[3], p[4]))
print()
r = statistics.median(ratio)
m = statistics.median(mult)
l99 = statistics.median(lag99)
print("ratio of medians %.3f; per round %s" % (
    statistics.median(eps) / statistics.median(rps),
    " ".join("%.3f" % x for x in ratio)))
print("targets: ratio >= 0.25 %s; fold lag p99 <= 2 s %s (%.2f s); "
      "PostgreSQL CPU per event <= 3x COPY's per row %s (%.2fx)" % (
          "met" if r >= 0.25 else "NOT met",
          "met" if l99 <= 2 else "NOT met", l99,
          "met" if m <= 3 else "NOT met", m))
print("ratio %.2f" % r)
PY
)
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
header="$RUNS round(s); HTTP: $CLIENTS clients x $BATCH events/request, ${DURATION} s per round, $EXPERIMENTS experiments x $UNITS units ($([ "$ASSIGN" = 1 ] && echo "every unit assigned through POST /v1/assign before its outcomes, not timed" || echo "never assigned: the fold creates their exposures")), client event ids $([ "$IDS" = 1 ] && echo on || echo off), arbiter ARBITER_THREADS=$THREADS; COPY: $COPY_CLIENTS connection(s), $COPY_XACT rows per transaction. PostgreSQL $(sql 'SHOW server_version'), fsync on, synchronous_commit on. $(nproc) x $cpu; $(uname -r)."
echo
echo "$header"
echo
echo "$report"

if [ "${BENCH_RECORD:-0}" = 1 ]; then
    mkdir -p bench/results
    {
        echo "# bench-ingest: raw result"
        echo
        echo "Recorded $(date -u '+%Y-%m-%d %H:%M UTC') at commit" \
            "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
            "by \`make bench-ingest BENCH_RECORD=1 BENCH_RUNS=$RUNS\`."
        echo
        echo "$header"
        echo
        echo "$report"
        echo
        echo "Per round: round, events/s, COPY rows/s, p50 ms, p99 ms," \
            "events, then CPU seconds of PostgreSQL and arbiter during the" \
            "HTTP run, of the load generator, of PostgreSQL and the client" \
            "during the COPY:"
        echo
        echo '```'
        cat "$tmp/results.txt"
        echo '```'
    } >bench/results/ingest.md.raw
    echo "bench: raw result written to bench/results/ingest.md.raw" >&2
fi
