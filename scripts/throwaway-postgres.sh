#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster (Debian's postgresql package) in a temporary directory
# on a free port, and prints `export` lines for it:
#
#   eval "$(scripts/throwaway-postgres.sh)"   # sets TEST_DATABASE_URL and PG_THROWAWAY_DIR
#   ...                                        # run tests
#   scripts/throwaway-postgres.sh stop         # stops it and removes the directory
#
# PG_MAX_CONNECTIONS sets the server's max_connections (300 by default: the test suite runs
# many databases at once); scripts/connection-storm.sh starts one with 20.
#
# Runs as root (the server runs as the `postgres` user) or as an ordinary user.
set -euo pipefail

pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [[ -z "$bin" ]]; then
        echo "error: PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)" >&2
        exit 1
    fi
    echo "$bin"
}

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [[ "${1:-start}" == "stop" ]]; then
    dir="${PG_THROWAWAY_DIR:?PG_THROWAWAY_DIR is not set}"
    as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
    exit 0
fi

BIN=$(pg_bin)
DIR=$(mktemp -d /tmp/pg-throwaway.XXXXXX)
chmod 755 "$DIR"
[[ $(id -u) -eq 0 ]] && chown postgres:postgres "$DIR"
# A free port: ask the kernel for one.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

as_owner "$BIN/initdb" -D "$DIR/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
# fsync off: a test cluster trades durability for speed.
as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=${PG_MAX_CONNECTIONS:-300}" \
    start >/dev/null || { cat "$DIR/server.log" >&2; exit 1; }

echo "export PG_THROWAWAY_DIR=$DIR"
echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
