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
# shellcheck source=benches/postgres/server.sh
. benches/postgres/server.sh
# shellcheck disable=SC2086
start_bench_server medsched-pgbench ${MEDSCHED_BENCH_PG_OPTS:-}
echo "fsync / synchronous_commit: $(as_pg "$pg_bin/psql" -At -h 127.0.0.1 -p "$port" -U postgres -d bench \
  -c "SELECT current_setting('fsync') || ' / ' || current_setting('synchronous_commit')")"

echo "== pg_bench, ${secs}s per case"
target/release/examples/pg_bench "host=127.0.0.1 port=$port user=postgres dbname=bench" "$secs"
