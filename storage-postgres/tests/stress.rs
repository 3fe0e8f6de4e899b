//! Real concurrency: random book / cancel / reschedule from many threads,
//! checked afterwards by SQL, and connections killed under load.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use medsched_postgres::PgStore;
use medsched_storage::{
    Appointment, AppointmentStatus, Batch, Claim, Idempotency, Op, StorageErrorKind, Store,
    TenantId,
};

use crate::pg::server;

fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 0, 0, 0).unwrap() + TimeDelta::minutes(min)
}

fn appt(id: &str, resource: &str, start: i64, len: i64) -> Appointment {
    Appointment {
        id: id.into(),
        type_id: None,
        patient: None,
        resources: vec![resource.into()],
        start: Some(at(start)),
        end: Some(at(start + len)),
        status: AppointmentStatus::Booked,
        buffer_before_min: 0,
        buffer_after_min: 5,
        reason: None,
        notes: None,
    }
}

fn claims(a: &Appointment) -> Vec<Claim> {
    a.resources
        .iter()
        .map(|r| Claim {
            resource: r.clone(),
            capacity: 1,
        })
        .collect()
}

/// A tiny deterministic RNG (splitmix64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_4762_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// 16 threads x 500 attempts of random book / cancel / reschedule on 3
/// providers with overlapping ranges: every failure is classified
/// (slot taken or version conflict), none is `storage_unavailable`, and a SQL self-join finds no overlapping
/// capacity-one rows afterwards.
#[test]
fn random_book_cancel_reschedule_never_overlaps() {
    const THREADS: usize = 16;
    const ATTEMPTS: usize = 500;
    let url = server().fresh_database("stress");
    let store = PgStore::connect(&url, 16).unwrap();
    store.migrate().unwrap();
    let t = TenantId("stress".to_owned());
    let now = at(-60);
    let counts: Vec<[usize; 3]> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|th| {
                let (store, t) = (&store, &t);
                s.spawn(move || {
                    let mut rng = Rng(0xABCD + th as u64);
                    // ok, slot taken, version conflict
                    let mut n = [0usize; 3];
                    let mut mine: Vec<String> = Vec::new();
                    for i in 0..ATTEMPTS {
                        let mut inserted = None;
                        let resource = format!("provider-{}", rng.below(3));
                        let start = rng.below(96) as i64 * 5;
                        let len = 15 + rng.below(4) as i64 * 15;
                        let action = rng.below(3);
                        let op = if action == 0 || mine.is_empty() {
                            let id = format!("s-{th}-{i}");
                            inserted = Some(id.clone());
                            let a = appt(&id, &resource, start, len);
                            Op::Insert {
                                claims: claims(&a),
                                appointment: a,
                                hold_expires_at: None,
                                overbook: false,
                            }
                        } else {
                            let id = &mine[rng.below(mine.len() as u64) as usize];
                            let current = store.appointment(t, &id.as_str().into()).unwrap();
                            let mut a = current.appointment.clone();
                            if action == 1 {
                                a.status = AppointmentStatus::Cancelled;
                            } else {
                                a.status = AppointmentStatus::Booked;
                                a.resources = vec![resource.as_str().into()];
                                a.start = Some(at(start));
                                a.end = Some(at(start + len));
                            }
                            Op::Update {
                                claims: claims(&a),
                                appointment: a,
                                expected_version: current.version,
                                hold_expires_at: None,
                                overbook: false,
                            }
                        };
                        let r = store.commit(
                            t,
                            Batch {
                                now,
                                idempotency: None,
                                ops: vec![op],
                            },
                        );
                        match r {
                            Ok(_) => {
                                n[0] += 1;
                                mine.extend(inserted);
                            }
                            Err(e) => match e.kind() {
                                StorageErrorKind::SlotTaken => n[1] += 1,
                                StorageErrorKind::VersionConflict => n[2] += 1,
                                _ => panic!("unclassified failure: {} ({e})", e.code()),
                            },
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = counts.iter().fold([0usize; 3], |mut acc, n| {
        for (a, b) in acc.iter_mut().zip(n) {
            *a += b;
        }
        acc
    });
    println!(
        "stress: ok {} / slot taken {} / version conflict {}",
        total[0], total[1], total[2]
    );
    assert!(total[0] > 0 && total[1] > 0, "the race never contended");

    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let overlapping: i64 = raw
        .query_one(
            "SELECT count(*) FROM medsched.active_bookings x
             JOIN medsched.active_bookings y
               ON x.tenant_id = y.tenant_id AND x.resource_id = y.resource_id
              AND x.appointment_key < y.appointment_key AND x.busy && y.busy
             WHERE x.hold_expires_at IS NULL AND y.hold_expires_at IS NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(overlapping, 0, "overlapping active rows");
    // Every active row belongs to an appointment that holds time there.
    let stray: i64 = raw
        .query_one(
            "SELECT count(*) FROM medsched.active_bookings b
             JOIN medsched.appointments a
               ON a.tenant_id = b.tenant_id AND a.key = b.appointment_key
             WHERE a.status NOT IN ('booked') OR NOT (b.resource_id = ANY(a.resources))",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stray, 0, "active rows of cancelled or moved appointments");
}

/// What the callers saw of one idempotency key.
#[derive(Debug, Default)]
struct KeyLog {
    /// Appointment keys returned by successful commits, in order.
    results: Vec<u64>,
    /// Temporary failures (`storage_unavailable`) during the storm.
    temporary: usize,
}

/// One idempotent booking per key: `k-<thread>-<i>` on `room-<thread>`.
fn killed_batch(th: usize, i: usize) -> Batch {
    let id = format!("k-{th}-{i}");
    let a = appt(&id, &format!("room-{th}"), i as i64 * 60, 30);
    Batch {
        now: at(-60),
        idempotency: Some(Idempotency {
            key: format!("key-{id}"),
            fingerprint: "fp".to_owned(),
        }),
        ops: vec![Op::Insert {
            claims: claims(&a),
            appointment: a,
            hold_expires_at: None,
            overbook: false,
        }],
    }
}

/// Backends are terminated from a second session every 15 ms while 4
/// threads commit idempotent bookings. During the storm a commit may give
/// up, but only with a typed temporary error (`storage_unavailable`); any
/// other answer (slot taken, duplicate id: a lost commit applied twice)
/// fails the test. The storm lasts until every key was tried and at least
/// `MIN_BUSY_KILLS` backends were killed inside a statement or transaction.
/// Once it stops, a retry of every key succeeds, every success of a key
/// names the same appointment (retries return the first result), and the
/// database holds exactly one appointment, one active row and one
/// idempotency record per key.
#[test]
fn killed_connections_are_retried_and_idempotent() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 60;
    /// Kills that must land in a busy backend for the test to mean something.
    const MIN_BUSY_KILLS: i64 = 20;
    /// Bounds the storm if kills never land (then the test fails).
    const STORM_LIMIT: Duration = Duration::from_secs(120);
    /// Tries of one key during the storm, as a caller retrying a temporary
    /// error with the same key would.
    const STORM_TRIES: usize = 3;
    /// Tries of one key after the storm (temporary errors only).
    const AFTER_TRIES: usize = 10;

    let url = server().fresh_database("killed");
    let store = PgStore::connect(&url, 8).unwrap();
    store.migrate().unwrap();
    let t = TenantId("killed".to_owned());
    let done = AtomicBool::new(false);
    let killer_gone = AtomicBool::new(false);
    let busy_kills = AtomicI64::new(0);
    let storm_end = Instant::now() + STORM_LIMIT;

    // Kills (all, inside a statement or transaction), per-key logs, and the
    // non-temporary failures seen during the storm.
    let (killed, busy, logs, wrong) = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            // However the killer ends, the workers stop storming.
            struct Stop<'a>(&'a AtomicBool);
            impl Drop for Stop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _stop = Stop(&killer_gone);
            let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut killed = 0i64;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(15));
                // Materialized, so that the filters run before the kills
                // (a flattened query may terminate this very session).
                let row = admin
                    .query_one(
                        "WITH b AS MATERIALIZED (
                             SELECT pid, state FROM pg_stat_activity
                             WHERE datname = current_database() AND pid <> pg_backend_pid()
                               AND backend_type = 'client backend'),
                         k AS MATERIALIZED (
                             SELECT state, pg_terminate_backend(pid) AS gone FROM b)
                         SELECT count(*) FILTER (WHERE gone),
                                count(*) FILTER (WHERE gone AND state <> 'idle')
                         FROM k",
                        &[],
                    )
                    .unwrap();
                killed += row.get::<_, i64>(0);
                busy_kills.fetch_add(row.get::<_, i64>(1), Ordering::Relaxed);
            }
            killed
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|th| {
                let (store, t, busy_kills, killer_gone) = (&store, &t, &busy_kills, &killer_gone);
                s.spawn(move || {
                    let mut logs: Vec<KeyLog> =
                        (0..PER_THREAD).map(|_| KeyLog::default()).collect();
                    let mut wrong: Vec<String> = Vec::new();
                    // Every key once, then again (replays) while too few
                    // kills have landed.
                    for pass in 0.. {
                        if pass > 0
                            && (busy_kills.load(Ordering::Relaxed) >= MIN_BUSY_KILLS
                                || Instant::now() >= storm_end
                                || killer_gone.load(Ordering::Relaxed))
                        {
                            break;
                        }
                        for (i, log) in logs.iter_mut().enumerate() {
                            for _ in 0..STORM_TRIES {
                                match store.commit(t, killed_batch(th, i)) {
                                    Ok(c) => {
                                        log.results.extend(c.appointments.iter().map(|a| a.key));
                                        break;
                                    }
                                    Err(e)
                                        if e.is_temporary()
                                            && e.code() == "storage_unavailable" =>
                                    {
                                        log.temporary += 1;
                                    }
                                    Err(e) => {
                                        wrong.push(format!(
                                            "commit of k-{th}-{i}: {} ({e})",
                                            e.code()
                                        ));
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    (logs, wrong)
                })
            })
            .collect();
        // Stop the killer whatever the workers did, then report a failed
        // worker: a panicking worker must fail the test, not hang it.
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        done.store(true, Ordering::Relaxed);
        let killed = killer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let (mut logs, mut wrong) = (Vec::new(), Vec::new());
        for r in results {
            match r {
                Ok((l, w)) => {
                    logs.push(l);
                    wrong.extend(w);
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        (killed, busy_kills.load(Ordering::Relaxed), logs, wrong)
    });
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "non-temporary failures during the storm"
    );
    assert!(
        busy >= MIN_BUSY_KILLS,
        "only {busy} of {killed} kills hit a busy backend in {STORM_LIMIT:?}: the test proved nothing"
    );

    // The storm is over: every key is retried until it succeeds.
    let mut logs = logs;
    let mut after_storm = 0;
    for (th, per_thread) in logs.iter_mut().enumerate() {
        for (i, log) in per_thread.iter_mut().enumerate() {
            let first_known = !log.results.is_empty();
            let mut tries = 0;
            let c = loop {
                tries += 1;
                match store.commit(&t, killed_batch(th, i)) {
                    Ok(c) => break c,
                    Err(e) if e.is_temporary() && tries < AFTER_TRIES => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => panic!("retry of k-{th}-{i} after the storm: {} ({e})", e.code()),
                }
            };
            assert_eq!(c.appointments.len(), 1, "k-{th}-{i}: {c:?}");
            assert_eq!(c.appointments[0].appointment.id.0, format!("k-{th}-{i}"));
            if first_known {
                assert!(
                    c.replayed,
                    "k-{th}-{i}: committed during the storm, applied again"
                );
            } else {
                after_storm += 1;
            }
            log.results.push(c.appointments[0].key);
            // And once more: now it must be a replay in any case.
            let again = store.commit(&t, killed_batch(th, i)).unwrap();
            assert!(again.replayed, "k-{th}-{i}: a committed key applied again");
            log.results.extend(again.appointments.iter().map(|a| a.key));
            let first = log.results[0];
            assert!(
                log.results.iter().all(|k| *k == first),
                "k-{th}-{i}: retries returned other appointments: {:?}",
                log.results
            );
        }
    }

    // Exactly one appointment, one active row and one key per booking, and
    // the appointment is the one every retry returned.
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let stored: std::collections::BTreeMap<String, i64> = raw
        .query(
            "SELECT a.id, a.key FROM medsched.appointments a WHERE a.tenant_id = 'killed'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let row = raw
        .query_one(
            "SELECT (SELECT count(*) FROM medsched.appointments WHERE tenant_id = 'killed'),
                    (SELECT count(*) FROM medsched.active_bookings WHERE tenant_id = 'killed'),
                    (SELECT count(*) FROM medsched.idempotency WHERE tenant_id = 'killed')",
            &[],
        )
        .unwrap();
    let counts: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let want = (THREADS * PER_THREAD) as i64;
    assert_eq!(
        counts,
        (want, want, want),
        "appointments / active rows / keys"
    );
    for (th, per_thread) in logs.iter().enumerate() {
        for (i, log) in per_thread.iter().enumerate() {
            let id = format!("k-{th}-{i}");
            assert_eq!(
                stored.get(&id).copied(),
                Some(i64::try_from(log.results[0]).unwrap()),
                "{id}: the stored appointment is not the one the retries returned"
            );
        }
    }
    let temporary: usize = logs.iter().flatten().map(|l| l.temporary).sum();
    println!(
        "killed {killed} backends ({busy} busy) during {want} idempotent commits: \
         {temporary} temporary failures in the storm, {after_storm} keys first answered after it"
    );
}
