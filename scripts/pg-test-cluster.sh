#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests: its own data directory and a free port on
# 127.0.0.1, run as an unprivileged user (nobody when started as root), trust authentication
# for the role `mailroom` on loopback only, no Unix socket.
#
#   scripts/pg-test-cluster.sh start DIR   # initdb into DIR/data (once), start, print the URL
#   scripts/pg-test-cluster.sh stop DIR    # stop it (immediate: the tests' data is throwaway)
#   scripts/pg-test-cluster.sh url DIR     # print the URL of the running cluster
#
# The server binaries come from PG_BIN, else the newest /usr/lib/postgresql/*/bin (Debian's
# postgresql package: `apt-get install postgresql`).
set -euo pipefail
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|url DIR" >&2
  exit 2
fi
bin=${PG_BIN:-}
if [ -z "$bin" ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL's server programs are not installed: apt-get install postgresql (Debian), or set PG_BIN to the directory holding initdb and pg_ctl" >&2
  exit 1
fi

# Runs a command as the cluster's owner: nobody when we are root (PostgreSQL refuses to run
# as root), else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then chown nobody "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    # --no-sync: a test cluster need not survive a power cut while it is being made.
    as_owner "$bin/initdb" -D "$dir/data" -U mailroom -A trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    # fsync stays on: the group-commit tests measure real commits. max_connections: two
    # nodes' pools plus the test's own connections, many databases at once.
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories= -c max_connections=300 -c shared_buffers=64MB" \
        start >/dev/null 2>&1; then
      url="postgres://mailroom@127.0.0.1:$port/postgres"
      echo "$url" >"$dir/url"
      echo "$url"
      exit 0
    fi
  done
  echo "could not start PostgreSQL in $dir; its log:" >&2
  tail -n 20 "$dir/log" >&2 || true
  exit 1
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -f "$dir/url"
  ;;
url)
  cat "$dir/url"
  ;;
*)
  echo "usage: $0 start|stop|url DIR" >&2
  exit 2
  ;;
esac
