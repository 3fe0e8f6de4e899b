#!/usr/bin/env bash
# Where a booking's time goes, next to a raw INSERT (docs/benchmarks.md, "A
# second look"): `pgbench` calls medsched.commit_insert directly (the call the
# adapter makes for a booking with one event, not probing) and runs the raw
# INSERT of benches/postgres/run.sh, against a throwaway PostgreSQL 15, and
# prints for each
#   - with 1 client: calls per second and the server's CPU time per call;
#   - with 4 clients: calls per second, the mean `fdatasync` of the WAL
#     (track_wal_io_timing), commits per flush and WAL bytes per flush.
# Tables are emptied and checkpointed before every case; the cases alternate.
#
#   bash benches/postgres/pieces.sh [seconds per case, default 4] [rounds, default 3]
#
# MEDSCHED_PG_BIN overrides /usr/lib/postgresql/15/bin. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."

secs="${1:-4}"
rounds="${2:-3}"
# shellcheck source=benches/postgres/server.sh
. benches/postgres/server.sh
[ -x "$pg_bin/pgbench" ] || { echo "missing $pg_bin/pgbench: apt-get install postgresql-15" >&2; exit 1; }
start_bench_server medsched-pieces -c track_wal_io_timing=on
psql() { "$pg_bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres "$@"; }

# The schema, the runtime role and the raw table, as pg_bench prepares them
# (it runs no case here).
PG_BENCH_ONLY=none target/release/examples/pg_bench \
  "host=127.0.0.1 port=$port user=postgres dbname=bench" 1 > /dev/null

# The scripts: a booking of 30 minutes at a random half hour of a wide
# calendar on the client's own resource, with its booked event; the raw row.
cat > "$dir/booking.sql" << 'EOF'
\set s random(1, 1000000000)
SELECT medsched.commit_insert('bench', now(), NULL, NULL, NULL, 'pb-' || :client_id || '-' || :s, NULL, 'booked', '2030-01-01'::timestamptz + :s * interval '30 min', '2030-01-01'::timestamptz + (:s + 1) * interval '30 min', 0, 0, ARRAY['pb-r' || :client_id], NULL, NULL, NULL, NULL, NULL, '2030-01-01'::timestamptz + :s * interval '30 min', '2030-01-01'::timestamptz + (:s + 1) * interval '30 min', ARRAY['pb-r' || :client_id], '{booked}', ARRAY[now()], ARRAY['pb-' || :client_id || '-' || :s], ARRAY[jsonb_build_object('start', '2030-01-07T00:00:00Z', 'appointment', 'pb-' || :client_id || '-' || :s)], NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false);
EOF
cat > "$dir/raw.sql" << 'EOF'
\set s random(1, 1000000000)
INSERT INTO bench.raw_bookings (tenant_id, resource_id, busy) VALUES ('bench', 'res-' || :client_id, tstzrange('2030-01-01'::timestamptz + :s * interval '30 min', '2030-01-01'::timestamptz + (:s + 1) * interval '30 min'));
EOF

postmaster_cpu() { # CPU ticks of the server's processes, ended backends included
  local pm
  pm="$(head -1 "$dir/data/postmaster.pid")"
  awk '{ s += $14 + $15 + $16 + $17 } END { print s }' "/proc/$pm/stat" \
    $(pgrep -P "$pm" | sed 's|.*|/proc/&/stat|') 2> /dev/null
}
fresh() {
  psql -d bench -c "TRUNCATE medsched.appointments, medsched.active_bookings, medsched.outbox,
                            bench.raw_bookings" -c CHECKPOINT -c "SELECT pg_stat_reset_shared('wal')" > /dev/null
}
run() { # case clients -> "calls/s processed"
  local user=medsched_bench_app
  [ "$1" = raw ] && user=postgres
  "$pg_bin/pgbench" -h 127.0.0.1 -p "$port" -U "$user" -n -M prepared -c "$2" -j "$2" -T "$secs" \
    -f "$dir/$1.sql" bench 2>&1 |
    awk '/^tps/ { tps = $3 } /actually processed/ { n = $NF } END { printf "%d %d", tps, n }'
}
tick="$(getconf CLK_TCK)"

echo "== 1 client: calls/s, server CPU µs per call"
for r in $(seq "$rounds"); do
  for c in booking raw; do
    fresh
    before="$(postmaster_cpu)"
    read -r tps n <<< "$(run "$c" 1)"
    sleep 0.3
    after="$(postmaster_cpu)"
    echo "round $r $c: ${tps}/s, $(((after - before) * 1000000 / tick / n)) µs"
  done
done

echo "== 4 clients: calls/s, mean WAL fdatasync, commits and bytes per flush"
for r in $(seq "$rounds"); do
  for c in booking raw; do
    fresh
    read -r tps n <<< "$(run "$c" 4)"
    psql -d bench -At -c "SELECT 'round $r $c: ${tps}/s, fdatasync '
                            || round(wal_sync_time * 1000 / greatest(wal_sync, 1)) || ' µs, '
                            || round($n::numeric / greatest(wal_sync, 1), 2) || ' commits and '
                            || round(wal_bytes / greatest(wal_sync, 1)) || ' bytes per flush'
                          FROM pg_stat_wal"
  done
done
