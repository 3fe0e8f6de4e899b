//! Migrations and the database-level guarantees.

use medsched_postgres::{PgStore, SetupError, SCHEMA_VERSION};

use crate::pg::server;

#[test]
fn migrations_apply_once_and_refuse_a_newer_schema() {
    let url = server().fresh_database("migrations");
    let store = PgStore::connect(&url, 2).unwrap();
    assert_eq!(store.schema_version().unwrap(), 0);
    assert_eq!(store.migrate().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.migrate().unwrap(), SCHEMA_VERSION, "second run");
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);

    // Concurrent migrations of one database serialize on the lock.
    let url2 = server().fresh_database("migrations_race");
    std::thread::scope(|s| {
        for _ in 0..4 {
            let url2 = &url2;
            s.spawn(move || {
                let st = PgStore::connect(url2, 1).unwrap();
                assert_eq!(st.migrate().unwrap(), SCHEMA_VERSION);
            });
        }
    });

    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    raw.execute(
        "INSERT INTO medsched.schema_version (version) VALUES ($1)",
        &[&(SCHEMA_VERSION + 1)],
    )
    .unwrap();
    let too_new = SetupError::SchemaTooNew {
        found: SCHEMA_VERSION + 1,
        known: SCHEMA_VERSION,
    };
    let e = store.migrate().unwrap_err();
    assert_eq!(e, too_new);
    assert_eq!(e.code(), "schema_too_new");
    assert_eq!(
        e.to_string(),
        format!(
            "database schema version {} is newer than this adapter knows ({SCHEMA_VERSION})",
            SCHEMA_VERSION + 1
        )
    );
    assert_eq!(PgStore::connect(&url, 1).unwrap_err(), too_new);
}

#[test]
fn bad_connections_are_typed_errors() {
    let e = PgStore::connect("port=not-a-number", 1).unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    // Nobody listens on port 1.
    let e =
        PgStore::connect("host=127.0.0.1 port=1 user=postgres connect_timeout=2", 1).unwrap_err();
    assert_eq!(e.code(), "storage_unavailable", "{e}");
}

/// The exclusion constraint holds for every writer, not only this adapter:
/// a raw overlapping insert of a capacity-one row is refused with 23P01,
/// while rows outside the constraint (capacity above one) may overlap.
#[test]
fn exclusion_constraint_binds_raw_sql_writers() {
    let url = server().fresh_database("exclusion");
    let store = PgStore::connect(&url, 2).unwrap();
    store.migrate().unwrap();
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    raw.batch_execute(
        "INSERT INTO medsched.appointments (tenant_id, id, version, status, buffer_before_min,
             buffer_after_min, resources)
         VALUES ('t', 'a', 1, 'booked', 0, 0, '{r}'), ('t', 'b', 1, 'booked', 0, 0, '{r}')",
    )
    .unwrap();
    let insert = |raw: &mut postgres::Client, id: &str, one: bool| {
        raw.execute(
            "INSERT INTO medsched.active_bookings
                 (tenant_id, resource_id, appointment_key, busy, busy_lo, busy_hi, capacity_one)
             SELECT 't', 'r', key, tstzrange('2030-01-07 10:00Z', '2030-01-07 11:00Z', '[)'),
                    '2030-01-07 10:00Z', '2030-01-07 11:00Z', $2
             FROM medsched.appointments WHERE tenant_id = 't' AND id = $1",
            &[&id, &one],
        )
    };
    insert(&mut raw, "a", true).unwrap();
    let e = insert(&mut raw, "b", true).unwrap_err();
    assert_eq!(
        e.code(),
        Some(&postgres::error::SqlState::EXCLUSION_VIOLATION)
    );
    insert(&mut raw, "b", false).unwrap();
}
