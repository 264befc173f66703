#!/usr/bin/env bash
# run.sh BIN -- `make run`: start arbiter on 127.0.0.1:8080 (ARBITER_LISTEN
# overrides). Without ARBITER_DATABASE_URL it creates (first time) and starts
# a private PostgreSQL cluster under var/pg, owned by an unprivileged user,
# and stops it when the service exits. Tokens: ARBITER_ADMIN_TOKEN and
# ARBITER_CLIENT_TOKEN, or generated once into var/admin.token and
# var/client.token (mode 600).
#
# As root the cluster belongs to the 'postgres' user; when that user cannot
# enter this checkout (a clone under a private home or temporary
# directory), the cluster lives in /var/tmp/arbiter-pg-<hash of the
# checkout path> instead, and run.sh says so. A cluster left running by an
# earlier run (its shell killed) is stopped and started again, with a
# message. Prints "run: ready" once GET /readyz answers 200. SIGINT,
# SIGTERM and SIGHUP (a closed terminal) stop arbiter gracefully, then the
# private cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/arbiter}
mkdir -p var
export ARBITER_LISTEN=${ARBITER_LISTEN:-127.0.0.1:8080}
say() { echo "run: $*" >&2 || true; } # the terminal may be gone (SIGHUP)

# one `make run` per checkout: a second one would share the cluster
if [ -f var/run.pid ] && kill -0 "$(cat var/run.pid)" 2>/dev/null &&
    grep -q run.sh "/proc/$(cat var/run.pid)/cmdline" 2>/dev/null; then
    say "another 'make run' (pid $(cat var/run.pid)) is running from this checkout; stop it first"
    exit 1
fi
echo $$ > var/run.pid
pgdir=
stop_cluster() {
    if [ -n "$pgdir" ]; then
        tests/harness/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
        say "private PostgreSQL stopped"
        pgdir=
    fi
    rm -f var/run.pid
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

for kind in admin client; do
    var=ARBITER_${kind^^}_TOKEN
    if [ -z "${!var:-}" ] && [ -z "$(printenv "${var}_FILE" || true)" ]; then
        f=var/$kind.token
        if [ ! -s "$f" ]; then
            (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$f")
        fi
        export "${var}_FILE=$PWD/$f"
        say "$kind token in $f"
    fi
done

if [ -z "${ARBITER_DATABASE_URL:-}" ]; then
    dir=var/pg
    if ! tests/harness/pg.sh reach "$dir"; then
        dir=/var/tmp/arbiter-pg-$(printf %s "$PWD" | sha256sum | cut -c1-12)
        say "the postgres user cannot enter $PWD, so the private PostgreSQL lives in $dir"
        rmdir var/pg 2>/dev/null || true
    fi
    pgdir=$dir
    ARBITER_DATABASE_URL=$(tests/harness/pg.sh start "$pgdir")
    export ARBITER_DATABASE_URL
    say "private PostgreSQL at $ARBITER_DATABASE_URL (data in $pgdir)"
fi

code=0
"$bin" serve "${@:2}" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM HUP

# readiness: /readyz answers 200 once the snapshot is loaded
host=${ARBITER_LISTEN%:*}; port=${ARBITER_LISTEN##*:}
case "$host" in ''|0.0.0.0|'[::]'|'::'|'*') host=127.0.0.1 ;; esac
for _ in $(seq 600); do
    kill -0 $pid 2>/dev/null || break
    if curl -sf -o /dev/null --max-time 1 "http://$host:$port/readyz"; then
        say "ready: http://$host:$port (admin token in var/admin.token, client token in var/client.token)"
        break
    fi
    sleep 0.1
done

set +e
wait $pid; code=$?
while kill -0 $pid 2>/dev/null; do # a trapped signal ended the wait
    wait $pid; code=$?
done
exit $code # the EXIT trap stops the cluster
