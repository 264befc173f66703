#!/usr/bin/env bash
# run.sh BIN -- `make run`: start arbiter on 127.0.0.1:8080 (ARBITER_LISTEN
# overrides). Without ARBITER_DATABASE_URL it creates (first time) and starts
# a private PostgreSQL cluster under var/pg, owned by an unprivileged user,
# and stops it when the service exits. Tokens: ARBITER_ADMIN_TOKEN and
# ARBITER_CLIENT_TOKEN, or generated once into var/admin.token and
# var/client.token (mode 600).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/arbiter}
mkdir -p var
export ARBITER_LISTEN=${ARBITER_LISTEN:-127.0.0.1:8080}

for kind in admin client; do
    var=ARBITER_${kind^^}_TOKEN
    if [ -z "${!var:-}" ] && [ -z "$(printenv "${var}_FILE" || true)" ]; then
        f=var/$kind.token
        if [ ! -s "$f" ]; then
            (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$f")
        fi
        export "${var}_FILE=$PWD/$f"
        echo "run: $kind token in $f" >&2
    fi
done

private=0
if [ -z "${ARBITER_DATABASE_URL:-}" ]; then
    private=1
    ARBITER_DATABASE_URL=$(tests/harness/pg.sh start var/pg)
    export ARBITER_DATABASE_URL
    echo "run: private PostgreSQL at $ARBITER_DATABASE_URL (data in var/pg)" >&2
fi

code=0
"$bin" serve "${@:2}" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM
wait $pid || code=$?
# wait again: the first wait returns when the trap fires
wait $pid 2>/dev/null || true
if [ $private -eq 1 ]; then
    tests/harness/pg.sh stop var/pg
    echo "run: private PostgreSQL stopped" >&2
fi
exit $code
