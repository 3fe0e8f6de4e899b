//! A connection plans its statements once and keeps the plans: the booking
//! functions force generic plans, and the adapter's prepared statements
//! settle on them. A plan made while a table was nearly empty must still be
//! an index look-up when the table has grown: otherwise every booking of
//! that connection reads the whole table until the statistics change.

use std::time::{Duration, Instant};

use medsched_postgres::PgStore;
use medsched_storage::{BookingsQuery, Store, TenantId};
use postgres::{Client, NoTls};

// Bookings as the engine commits them: the appointment, its booked event
// and its audit record (so the audit chain's head is looked up too).
use crate::combine::{at, booking};
use crate::pg::server;

const ROLE: &str = "medsched_plans_app";
const TENANT: &str = "plans";

/// Sequential scans of the busy rows and of the audit trail so far, as
/// the statistics of ended sessions count them.
fn seq_scans(admin: &mut Client) -> (i64, i64) {
    let rows = admin
        .query(
            "SELECT relname::text, seq_scan FROM pg_stat_user_tables
             WHERE schemaname = 'medsched' AND relname IN ('active_bookings', 'audit')",
            &[],
        )
        .unwrap();
    let of = |name: &str| {
        rows.iter()
            .find(|r| r.get::<_, String>(0) == name)
            .map_or(0, |r| r.get::<_, i64>(1))
    };
    (of("active_bookings"), of("audit"))
}

/// Waits until this database has no session but `admin`'s: a session
/// hands in its statistics when it ends.
fn sessions_ended(admin: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let others: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if others == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{others} sessions did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A connection whose first bookings were planned on an analysed, empty
/// database keeps booking, probing, appending to the audit chain and
/// reading availability by index once the tables hold thousands of rows.
#[test]
fn plans_made_on_empty_tables_stay_index_look_ups() {
    let owner_url = server().fresh_database("plans");
    PgStore::connect(&owner_url, 1).unwrap().migrate().unwrap();
    let mut admin = Client::connect(&owner_url, NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
        ))
        .unwrap();
    PgStore::connect(&owner_url, 1)
        .unwrap()
        .grant_runtime_role(ROLE)
        .unwrap();
    // As autovacuum leaves a new database: statistics of empty tables.
    admin
        .batch_execute("ANALYZE medsched.active_bookings, medsched.audit, medsched.appointments")
        .unwrap();
    sessions_ended(&mut admin);
    let before = seq_scans(&mut admin);

    let tenant = TenantId(TENANT.into());
    let store = PgStore::connect(
        &owner_url.replace("user=postgres", &format!("user={ROLE}")),
        1,
    )
    .unwrap();
    let read = |store: &PgStore| {
        let mut rows = Vec::new();
        store
            .bookings(
                &tenant,
                &BookingsQuery {
                    resources: &["room-1".into()],
                    from: at(0).timestamp(),
                    to: at(4).timestamp(),
                    now: at(-100).timestamp(),
                    type_id: None,
                },
                &mut rows,
            )
            .unwrap();
        rows.len()
    };
    // The connection plans its statements on empty tables...
    store
        .commit(&tenant, booking("first", "room-1", 0, None))
        .unwrap();
    assert_eq!(read(&store), 1);
    // ...the tables grow (another writer: the same rows a busy clinic
    // would have, far from the slots booked here)...
    admin
        .batch_execute(&format!(
            "SELECT set_config('medsched.tenant', '{TENANT}', false);
             INSERT INTO medsched.active_bookings
                 (tenant_id, resource_id, appointment_key, busy, busy_lo, busy_hi,
                  hold_expires_at, capacity_one)
             SELECT '{TENANT}', 'room-' || (g % 3 + 1), 1000000 + g,
                    tstzrange(t, t + interval '30 min'), t, t + interval '30 min', NULL, true
             FROM generate_series(1, 30000) g,
                  LATERAL (SELECT timestamptz '2032-01-01' + g * interval '1 hour' AS t) s;
             INSERT INTO medsched.audit (tenant_id, seq, at, actor, action, record, decision,
                                         reason_code, policy_version, break_glass, prev_hash,
                                         hash)
             SELECT 'elsewhere', g, now(), 'x', 'x', 'x', 'allow', 'x', 'v1', false, '', ''
             FROM generate_series(1, 30000) g;"
        ))
        .unwrap();
    // ...and the same connection books (without and with the probe: the
    // second booking of slot 1 is refused, then probed), appends to the
    // audit chain and reads availability again.
    store
        .commit(&tenant, booking("second", "room-1", 1, None))
        .unwrap();
    let e = store
        .commit(&tenant, booking("third", "room-1", 1, None))
        .unwrap_err();
    assert_eq!(e.code(), "slot_unavailable");
    store
        .commit(&tenant, booking("fourth", "room-1", 2, None))
        .unwrap();
    assert_eq!(read(&store), 3);
    drop(store);
    sessions_ended(&mut admin);

    // The shared calls (not made here: they need many concurrent callers)
    // plan under the same setting as the single ones.
    let set: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_proc
             WHERE pronamespace = 'medsched'::regnamespace
               AND proname IN ('commit_insert', 'commit_inserts', 'append_audits')
               AND 'enable_seqscan=off' = ANY (proconfig)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        set, 3,
        "booking functions planning without sequential scans"
    );

    let after = seq_scans(&mut admin);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (0, 0),
        "sequential scans of (active_bookings, audit) by the booking connection"
    );
}
