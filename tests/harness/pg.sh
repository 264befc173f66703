#!/usr/bin/env bash
# pg.sh -- a private, throw-away PostgreSQL cluster for tests and `make run`.
#
#   pg.sh start DIR [PORT]   initdb (first time) and start; prints the URL
#   pg.sh stop DIR           fast shutdown
#   pg.sh kill DIR           immediate shutdown (crash-like)
#   pg.sh url DIR            print the connection URL of a started cluster
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# unprivileged 'postgres' user (created if absent); DIR must then be a place
# that user can enter (pg.sh reach DIR tells; scripts/run.sh picks another
# directory when the checkout is private). It listens on 127.0.0.1 only,
# with trust authentication for the local user 'arbiter'. A cluster of an
# earlier run still running in DIR is stopped (with a message) and started
# again, so a `start` never fails on a stale server.
#
#   pg.sh reach DIR          exit 0 when the cluster's owner can use DIR
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PGBIN/initdb" ] || { echo "pg.sh: no PostgreSQL server binaries (apt-get install postgresql-15)" >&2; exit 1; }

cmd=${1:?usage: pg.sh start|stop|kill|url|reach DIR [PORT]}
dir=${2:?usage: pg.sh start|stop|kill|url|reach DIR [PORT]}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
        chown -R postgres: "$dir"
        # from /: the caller's directory may be private to root
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Whether the cluster's owner can enter and write DIR (as root: every
# parent directory must be searchable by 'postgres').
reachable() {
    [ "$(id -u)" -ne 0 ] && return 0
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    chown -R postgres: "$dir"
    runuser -u postgres -- test -x "$dir" -a -w "$dir" 2>/dev/null
}

# The pid of a postmaster running on DATA, empty when none.
running_pid() {
    [ -f "$data/postmaster.pid" ] || return 0
    local pid
    pid=$(head -1 "$data/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
        grep -q postgres "/proc/$pid/comm" 2>/dev/null; then
        echo "$pid"
    fi
}

free_port() {
    /usr/bin/python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

case "$cmd" in
reach)
    reachable
    ;;
start)
    if ! reachable; then
        echo "pg.sh: the 'postgres' user cannot enter $dir (a parent directory is private to root); put the cluster in a directory it can reach" >&2
        exit 1
    fi
    stale=$(running_pid)
    if [ -n "$stale" ]; then
        echo "pg.sh: a PostgreSQL of an earlier run is still running in $dir (pid $stale); stopping it and starting again" >&2
        as_owner "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null ||
            { echo "pg.sh: cannot stop it: run 'kill $stale'" >&2; exit 1; }
    fi
    port=${3:-}
    if [ -z "$port" ]; then
        if [ -f "$dir/port" ]; then port=$(cat "$dir/port"); else port=$(free_port); fi
    fi
    echo "$port" > "$dir/port"
    if [ ! -f "$data/PG_VERSION" ]; then
        as_owner "$PGBIN/initdb" -D "$data" -U arbiter --auth=trust \
            --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; exit 1; }
        cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
log_min_messages = warning
CONF
    fi
    # on failure, show only what this start wrote to the log
    logsize=$(stat -c %s "$dir/server.log" 2>/dev/null || echo 0)
    as_owner "$PGBIN/pg_ctl" -D "$data" -o "-p $port" -l "$dir/server.log" \
        -w -t 60 start >/dev/null ||
        { echo "pg.sh: PostgreSQL did not start in $dir (port $port); its log says:" >&2
          tail -c +$((logsize + 1)) "$dir/server.log" 2>/dev/null | tail -20 >&2
          exit 1; }
    as_owner "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U arbiter -d postgres -qAt \
        -c "SELECT 1 FROM pg_database WHERE datname='arbiter'" | grep -q 1 ||
        as_owner "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U arbiter arbiter
    echo "postgresql://arbiter@127.0.0.1:$port/arbiter"
    ;;
stop)
    [ -f "$data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
    ;;
kill)
    [ -f "$data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null || true
    ;;
url)
    echo "postgresql://arbiter@127.0.0.1:$(cat "$dir/port")/arbiter"
    ;;
*)
    echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
