#!/usr/bin/env bash
# Bookings per second through the PostgreSQL adapter versus a raw INSERT into
# a table with the same exclusion constraint, in one run (issue 5, point 8;
# see docs/benchmarks.md). Starts a throwaway PostgreSQL 15 (initdb into a
# temporary folder as the `postgres` OS user when run as root, 127.0.0.1, a
# free port), runs storage-postgres/examples/pg_bench.rs (release build) and
# removes the server on exit, also on failure or Ctrl-C.
#
#   bash benches/postgres/run.sh [seconds per case, default 4]
#
# MEDSCHED_PG_BIN overrides /usr/lib/postgresql/15/bin. The server runs with
# its default durability (fsync on, synchronous_commit on); set
# MEDSCHED_BENCH_PG_OPTS to pass other `-c` settings.
set -euo pipefail
cd "$(dirname "$0")/../.."

secs="${1:-4}"
pg_bin="${MEDSCHED_PG_BIN:-/usr/lib/postgresql/15/bin}"
extra_opts="${MEDSCHED_BENCH_PG_OPTS:-}"
for b in initdb pg_ctl; do
  [ -x "$pg_bin/$b" ] || { echo "missing $pg_bin/$b: apt-get install postgresql-15" >&2; exit 1; }
done

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

echo "== build (release)"
cargo build --release --locked -q -p medsched-postgres --example pg_bench

dir="$(mktemp -d /tmp/medsched-pgbench.XXXXXX)"
started=0
cleanup() {
  if [ "$started" = 1 ]; then
    as_pg "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop > /dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"

echo "== throwaway postgresql in $dir"
as_pg "$pg_bin/initdb" -D "$dir/data" -U postgres --auth=trust --locale=C --encoding=UTF8 > /dev/null

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2> /dev/null \
    || echo $((20000 + RANDOM % 40000))
}
for attempt in 1 2 3 4 5; do
  port="$(free_port)"
  # shellcheck disable=SC2086
  if as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=100 $extra_opts" \
      start > /dev/null; then
    started=1
    break
  fi
  [ "$attempt" = 5 ] && { cat "$dir/server.log" >&2; exit 1; }
done
as_pg "$pg_bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE bench" > /dev/null
"$pg_bin/postgres" --version
echo "fsync / synchronous_commit: $(as_pg "$pg_bin/psql" -At -h 127.0.0.1 -p "$port" -U postgres -d bench \
  -c "SELECT current_setting('fsync') || ' / ' || current_setting('synchronous_commit')")"

echo "== pg_bench, ${secs}s per case"
target/release/examples/pg_bench "host=127.0.0.1 port=$port user=postgres dbname=bench" "$secs"
