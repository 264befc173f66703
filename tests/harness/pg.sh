#!/usr/bin/env bash
# pg.sh -- a private, throw-away PostgreSQL cluster for tests and `make run`.
#
#   pg.sh start DIR [PORT]   initdb (first time) and start; prints the URL
#   pg.sh stop DIR           fast shutdown
#   pg.sh kill DIR           immediate shutdown (crash-like)
#   pg.sh url DIR            print the connection URL of a started cluster
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# unprivileged 'postgres' user (created if absent). It listens on 127.0.0.1
# only, with trust authentication for the local user 'arbiter'.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PGBIN/initdb" ] || { echo "pg.sh: no PostgreSQL server binaries (apt-get install postgresql-15)" >&2; exit 1; }

cmd=${1:?usage: pg.sh start|stop|kill|url DIR [PORT]}
dir=${2:?usage: pg.sh start|stop|kill|url DIR [PORT]}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
        chown -R postgres: "$dir"
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    /usr/bin/python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

case "$cmd" in
start)
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
    as_owner "$PGBIN/pg_ctl" -D "$data" -o "-p $port" -l "$dir/server.log" \
        -w -t 60 start >/dev/null ||
        { tail -20 "$dir/server.log" >&2; exit 1; }
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
