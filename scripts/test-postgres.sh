#!/usr/bin/env bash
# A private, throw-away PostgreSQL server on loopback for the store tests.
#
#   eval "$(bash scripts/test-postgres.sh start)"   # prints export lines, see below
#   bash scripts/test-postgres.sh down              # stop the server (data kept: a "crash")
#   bash scripts/test-postgres.sh up                # start it again, same data dir and port
#   bash scripts/test-postgres.sh restart-after 10  # down, wait 10 s, up
#   bash scripts/test-postgres.sh stop              # stop it and delete its data dir
#
# `start` runs Debian's PostgreSQL binaries in a fresh temporary data directory
# (never a system cluster), listening on 127.0.0.1 on a free port with password
# (scram-sha-256) authentication, and creates the database `lrtrack`. It prints:
#   export LRTRACK_TEST_PG_URL=postgresql+psycopg://lrtrack:<password>@127.0.0.1:<port>/lrtrack
#   export LRTRACK_TEST_PG_DIR=<the temporary directory>
# The other commands find the server through LRTRACK_TEST_PG_DIR. As root (CI),
# the server runs as Debian's `postgres` system user, since initdb refuses root.
set -euo pipefail

MARKER=.lrtrack-test-postgres  # only directories holding this file are ever stopped or deleted

die() { echo "test-postgres.sh: $*" >&2; exit 1; }

pg_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
  echo "$dir"
}

# Run a command as the user that owns the server: `postgres` when we are root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$PGROOT" && runuser -u postgres -- "$@")
  else
    (cd "$PGROOT" && "$@")
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_dir() {
  PGROOT=${LRTRACK_TEST_PG_DIR:-}
  [ -n "$PGROOT" ] || die "LRTRACK_TEST_PG_DIR is not set (eval the output of 'start' first)"
  [ -f "$PGROOT/$MARKER" ] || die "$PGROOT was not made by this script; refusing to touch it"
  BIN=$(cat "$PGROOT/bindir")
}

server_up() {
  as_owner "$BIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 60 start >/dev/null \
    || { cat "$PGROOT/server.log" >&2; die "the server did not start"; }
}

server_down() {
  # immediate: like a crash or a killed container; connections drop at once
  if [ -f "$PGROOT/data/postmaster.pid" ]; then
    as_owner "$BIN/pg_ctl" -D "$PGROOT/data" -m immediate -w -t 60 stop >/dev/null
  fi
}

start() {
  BIN=$(pg_bindir)
  if [ "$(id -u)" = 0 ]; then
    id -u postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the server"
  fi
  PGROOT=$(mktemp -d "${TMPDIR:-/tmp}/lrtrack-pg.XXXXXX")
  chmod 755 "$PGROOT"
  touch "$PGROOT/$MARKER"
  echo "$BIN" > "$PGROOT/bindir"
  local port password
  port=$(free_port)
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  printf '%s\n' "$password" > "$PGROOT/pwfile"
  chmod 600 "$PGROOT/pwfile"
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$PGROOT"; fi

  as_owner "$BIN/initdb" -D "$PGROOT/data" -U lrtrack --pwfile="$PGROOT/pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C >"$PGROOT/initdb.log" 2>&1 \
    || { cat "$PGROOT/initdb.log" >&2; die "initdb failed"; }
  cat >> "$PGROOT/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PGROOT'
max_connections = 200
fsync = off
full_page_writes = off
EOF
  # synchronous_commit stays on: the outage test stops the server with -m immediate,
  # and a commit acknowledged before its WAL was written would be lost (fsync off only
  # risks data on an operating-system crash, which a test server does not survive anyway).
  server_up
  PGPASSWORD=$password as_owner "$BIN/psql" -h 127.0.0.1 -p "$port" -U lrtrack -d postgres -qAt \
    -c "CREATE DATABASE lrtrack" >/dev/null || die "could not create the database"

  echo "export LRTRACK_TEST_PG_URL=postgresql+psycopg://lrtrack:$password@127.0.0.1:$port/lrtrack"
  echo "export LRTRACK_TEST_PG_DIR=$PGROOT"
}

stop() {
  server_dir
  server_down
  rm -rf -- "$PGROOT"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  down) server_dir; server_down ;;
  up) server_dir; server_up ;;
  restart-after)
    [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "restart-after needs a number of seconds"
    server_dir; server_down; sleep "$2"; server_up ;;
  *) echo "usage: $0 start|stop|down|up|restart-after SECONDS" >&2; exit 2 ;;
esac
