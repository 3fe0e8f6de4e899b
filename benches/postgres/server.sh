# Sourced by the PostgreSQL benchmark scripts (run.sh, pieces.sh): builds
# pg_bench and starts a throwaway PostgreSQL 15 with a database `bench`
# (initdb into a temporary folder as the `postgres` OS user when run as root,
# 127.0.0.1, a free port), removed on exit, also on failure or Ctrl-C.
#
#   start_bench_server <folder prefix> [extra `-c` settings...]
#
# Sets pg_bin, dir and port. MEDSCHED_PG_BIN overrides
# /usr/lib/postgresql/15/bin.

pg_bin="${MEDSCHED_PG_BIN:-/usr/lib/postgresql/15/bin}"
for b in initdb pg_ctl psql; do
  [ -x "$pg_bin/$b" ] || { echo "missing $pg_bin/$b: apt-get install postgresql-15" >&2; exit 1; }
done

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2> /dev/null \
    || echo $((20000 + RANDOM % 40000))
}

bench_server_started=0
cleanup_bench_server() {
  if [ "$bench_server_started" = 1 ]; then
    as_pg "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop > /dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

start_bench_server() {
  local prefix="$1"
  shift
  echo "== build (release)"
  cargo build --release --locked -q -p medsched-postgres --example pg_bench

  dir="$(mktemp -d "/tmp/$prefix.XXXXXX")"
  trap cleanup_bench_server EXIT
  trap 'exit 130' INT TERM
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"

  echo "== throwaway postgresql in $dir"
  as_pg "$pg_bin/initdb" -D "$dir/data" -U postgres --auth=trust --locale=C --encoding=UTF8 > /dev/null
  local attempt
  for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    if as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=100 $*" \
        start > /dev/null; then
      bench_server_started=1
      break
    fi
    [ "$attempt" = 5 ] && { cat "$dir/server.log" >&2; exit 1; }
  done
  as_pg "$pg_bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE bench" > /dev/null
  "$pg_bin/postgres" --version
}
