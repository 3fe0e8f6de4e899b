//! The connection is killed while the server commits (issue 5, point 7):
//! the adapter's retry resolves to exactly one booking. Three shapes: a
//! booking in one statement (autocommit, `medsched.commit_insert`) with an
//! idempotency key and without one (the adapter then looks for the
//! appointment it inserted), and a series, committed statement by
//! statement with an explicit COMMIT.
//!
//! The commit is made observable and slow in this test database only: a
//! deferred constraint trigger on `medsched.appointments` (deferred
//! triggers run while committing) sleeps the first time it fires, until
//! the test terminates it (at most a minute, so a test that never finds it
//! fails instead of hanging): the kill cannot miss its window however
//! slowly the killer is scheduled. "First time" is counted by a sequence,
//! which is not rolled back with the killed transaction, so only the first
//! attempt is slow.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use medsched_postgres::PgStore;
use medsched_storage::{
    Appointment, AppointmentStatus, Batch, Claim, Committed, Idempotency, Op, Store, TenantId,
};

use crate::pg::server;

/// How long the first firing of the trigger sleeps unless terminated.
const SLEEP_SECS: u64 = 60;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, hour, 0, 0).unwrap()
}

/// The backend found committing and terminated.
#[derive(Debug)]
struct Kill {
    pid: i32,
    query: String,
    wait_event: Option<String>,
    terminated: bool,
}

/// Polls `pg_stat_activity` of the database at `url` until a backend is
/// sleeping in the deferred trigger (so it is committing: COMMIT, or the
/// end of an autocommit statement), then terminates it. `None` if none was
/// seen within [`SLEEP_SECS`] (the trigger sleeps that long at most).
fn kill_at_commit(url: &str) -> Option<Kill> {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let deadline = Instant::now() + Duration::from_secs(SLEEP_SECS);
    while Instant::now() < deadline {
        let row = admin
            .query_opt(
                "SELECT pid, query, wait_event FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND backend_type = 'client backend'
                   AND state = 'active' AND wait_event = 'PgSleep'",
                &[],
            )
            .unwrap();
        if let Some(row) = row {
            let pid: i32 = row.get(0);
            let terminated: bool = admin
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                .unwrap()
                .get(0);
            return Some(Kill {
                pid,
                query: row.get(1),
                wait_event: row.get(2),
                terminated,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn appointment(id: &str, hour: u32) -> Appointment {
    Appointment {
        id: id.into(),
        type_id: None,
        patient: None,
        resources: vec!["room-1".into()],
        start: Some(at(hour)),
        end: Some(at(hour + 1)),
        status: AppointmentStatus::Booked,
        buffer_before_min: 0,
        buffer_after_min: 0,
        reason: None,
        notes: None,
    }
}

fn insert(a: Appointment) -> Op {
    Op::Insert {
        claims: vec![Claim {
            resource: "room-1".into(),
            capacity: 1,
        }],
        appointment: a,
        hold_expires_at: None,
        overbook: false,
    }
}

#[test]
fn one_statement_booking_with_key_killed_at_commit() {
    killed_at_commit("ck_key", true, &[9], "SELECT medsched.commit_insert(");
}

#[test]
fn one_statement_booking_without_key_killed_at_commit() {
    killed_at_commit("ck_nokey", false, &[9], "SELECT medsched.commit_insert(");
}

#[test]
fn series_killed_at_commit() {
    killed_at_commit("ck_series", true, &[9, 10], "COMMIT");
}

/// Books appointments `ck-<hour>` on room-1 in one batch (with an
/// idempotency key or not) while the first attempt's backend is terminated
/// during its commit; `query` is how that backend's statement starts.
#[allow(
    clippy::print_stdout,
    reason = "the evidence line, shown with --nocapture, as in the tests"
)]
fn killed_at_commit(name: &str, keyed: bool, hours: &[u32], query: &str) {
    let started = Instant::now();
    let url = server().fresh_database(name);
    // Superuser-connected, as in stress.rs: the trigger fires whatever the
    // row-level security policies say.
    let store = PgStore::connect(&url, 2).unwrap();
    store.migrate().unwrap();
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    raw.batch_execute(&format!(
        "CREATE SEQUENCE public.test_slow_commit_seq;
         CREATE FUNCTION public.medsched_test_slow_commit() RETURNS trigger
         LANGUAGE plpgsql AS $$
         BEGIN
             IF nextval('public.test_slow_commit_seq') = 1 THEN
                 PERFORM pg_sleep({SLEEP_SECS});
             END IF;
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER test_slow_commit
             AFTER INSERT ON medsched.appointments
             DEFERRABLE INITIALLY DEFERRED
             FOR EACH ROW EXECUTE FUNCTION public.medsched_test_slow_commit();"
    ))
    .unwrap();

    let t = TenantId(name.to_owned());
    let batch = Batch {
        now: at(8),
        idempotency: keyed.then(|| Idempotency {
            key: "key-ck-1".to_owned(),
            fingerprint: "fp-ck-1".to_owned(),
        }),
        ops: hours
            .iter()
            .map(|&h| insert(appointment(&format!("ck-{h}"), h)))
            .collect(),
    };
    let rows = i64::try_from(hours.len()).unwrap();

    let (kill, (committed, caller_tries)): (Option<Kill>, (Committed, u32)) =
        std::thread::scope(|s| {
            let killer = s.spawn(|| kill_at_commit(&url));
            let booker = s.spawn(|| {
                // The adapter retries a lost commit itself (the key, or the
                // look-up of the inserted appointment, makes it safe); a
                // caller would retry a temporary error, so the test does too.
                let mut tries = 0u32;
                loop {
                    tries += 1;
                    match store.commit(&t, batch.clone()) {
                        Ok(c) => break (c, tries),
                        Err(e) if e.is_temporary() && tries < 5 => continue,
                        Err(e) => panic!("commit: {} ({e})", e.code()),
                    }
                }
            });
            let booked = booker.join();
            let kill = killer.join().unwrap();
            match booked {
                Ok(b) => (kill, b),
                Err(p) => std::panic::resume_unwind(p),
            }
        });

    let kill = kill.expect("no backend was seen committing: the test proved nothing");
    assert!(
        kill.query.starts_with(query),
        "killed during {:?}, expected {query:?}",
        kill.query
    );
    assert_eq!(kill.wait_event.as_deref(), Some("PgSleep"));
    assert!(kill.terminated, "pg_terminate_backend({}) failed", kill.pid);

    // The terminated backend is gone (it may take a moment to exit; the
    // bound only keeps a backend that never exits from hanging the test).
    let gone_by = Instant::now() + Duration::from_secs(60);
    loop {
        let alive: i64 = raw
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&kill.pid],
            )
            .unwrap()
            .get(0);
        if alive == 0 {
            break;
        }
        assert!(Instant::now() < gone_by, "backend {} still alive", kill.pid);
        std::thread::sleep(Duration::from_millis(10));
    }

    // The trigger fired once in the killed attempt (it was killed in the
    // first firing) and once per appointment in one retry.
    let fired: i64 = raw
        .query_one("SELECT last_value FROM public.test_slow_commit_seq", &[])
        .unwrap()
        .get(0);
    assert_eq!(fired, 1 + rows, "trigger firings (attempts that inserted)");

    // The result names the one appointment. Termination inside the deferred
    // trigger aborts the transaction before its commit record, so nothing
    // of the first attempt survived and the retry applied afresh.
    assert_eq!(committed.appointments.len(), hours.len());
    let stored = &committed.appointments[0];
    assert_eq!(stored.appointment.id.0, format!("ck-{}", hours[0]));
    assert!(!committed.replayed, "nothing was committed to replay");

    let row = raw
        .query_one(
            "SELECT (SELECT count(*) FROM medsched.appointments WHERE tenant_id = $1),
                    (SELECT count(*) FROM medsched.appointments
                      WHERE tenant_id = $1 AND id = $3 AND key = $2),
                    (SELECT count(*) FROM medsched.active_bookings WHERE tenant_id = $1),
                    (SELECT count(*) FROM medsched.active_bookings
                      WHERE tenant_id = $1 AND appointment_key = $2
                        AND resource_id = 'room-1' AND hold_expires_at IS NULL),
                    (SELECT count(*) FROM medsched.idempotency WHERE tenant_id = $1),
                    (SELECT count(*) FROM medsched.idempotency
                      WHERE tenant_id = $1 AND key = 'key-ck-1')",
            &[
                &t.0.as_str(),
                &i64::try_from(stored.key).unwrap(),
                &stored.appointment.id.0.as_str(),
            ],
        )
        .unwrap();
    let counts: Vec<i64> = (0..6).map(|i| row.get(i)).collect();
    let keys = i64::from(keyed);
    assert_eq!(
        counts,
        vec![rows, 1, rows, 1, keys, keys],
        "appointments / bookings / keys"
    );

    if keyed {
        // A later retry with the same key replays the appointments.
        let again = store.commit(&t, batch).unwrap();
        assert!(again.replayed);
        assert_eq!(again.appointments.len(), hours.len());
        assert_eq!(again.appointments[0].key, stored.key);
    } else {
        // Without a key the same appointment cannot be inserted twice.
        let e = store.commit(&t, batch).unwrap_err();
        assert_eq!(e.code(), "duplicate_id", "{e}");
    }

    println!(
        "commit_kill {name}: terminated pid {} during {:?} (wait {:?}); caller tries \
         {caller_tries}, trigger firings {fired}, appointment key {} replayed {}; {:.2?}",
        kill.pid,
        kill.query.chars().take(40).collect::<String>(),
        kill.wait_event,
        stored.key,
        committed.replayed,
        started.elapsed()
    );
}
