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

# TLS, as RDS offers it: a certificate authority of this cluster's own signs the server's
# certificate (for 127.0.0.1 and localhost). Tests verify against it (TEST_DATABASE_CA), and
# check that another authority (the Amazon RDS bundle) is refused.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=starter throwaway test CA" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$DIR/data/server.key" -out "$DIR/server.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$DIR/san.ext"
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 2 -extfile "$DIR/san.ext" -out "$DIR/data/server.crt" >/dev/null 2>&1
chmod 600 "$DIR/data/server.key"
[[ $(id -u) -eq 0 ]] && chown postgres:postgres "$DIR/data/server.key" "$DIR/data/server.crt"
chmod 644 "$DIR/ca.pem"

# Members of password_login must give their password (SCRAM), as on RDS; everyone else is
# trusted. Tests of password rotation make such a role.
{ echo "host all +password_login 127.0.0.1/32 scram-sha-256"; cat "$DIR/data/pg_hba.conf"; } >"$DIR/pg_hba.conf"
as_owner cp "$DIR/pg_hba.conf" "$DIR/data/pg_hba.conf"

# fsync off: a test cluster trades durability for speed.
as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=${PG_MAX_CONNECTIONS:-300} -c ssl=on" \
    start >/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
"$BIN/psql" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "create role password_login nologin" >/dev/null

echo "export PG_THROWAWAY_DIR=$DIR"
# sslmode=disable: the suite's connections stay plaintext (TLS is tested on its own).
echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"
echo "export TEST_DATABASE_CA=$DIR/ca.pem"
