//! Real concurrency: random book / cancel / reschedule from many threads,
//! checked afterwards by SQL, and connections killed under load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

/// Backends are terminated from a second session while 4 threads commit
/// idempotent bookings: every call still succeeds (the adapter retries on
/// a new connection; a retry after a lost COMMIT replays the key), and
/// each key gives exactly one appointment.
#[test]
fn killed_connections_are_retried_and_idempotent() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 60;
    let url = server().fresh_database("killed");
    let store = PgStore::connect(&url, 8).unwrap();
    store.migrate().unwrap();
    let t = TenantId("killed".to_owned());
    let done = AtomicBool::new(false);
    let killed = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut killed = 0i64;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(15));
                let n: i64 = admin
                    .query_one(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
                         FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()
                           AND backend_type = 'client backend'",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                killed += n;
            }
            killed
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|th| {
                let (store, t) = (&store, &t);
                s.spawn(move || {
                    for i in 0..PER_THREAD {
                        let id = format!("k-{th}-{i}");
                        let a = appt(&id, &format!("room-{th}"), i as i64 * 60, 30);
                        let batch = Batch {
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
                        };
                        // The adapter retries; callers would retry an
                        // `unavailable` with the same key too.
                        let mut tries = 0;
                        loop {
                            tries += 1;
                            match store.commit(t, batch.clone()) {
                                Ok(_) => break,
                                Err(e) if e.is_temporary() && tries < 5 => continue,
                                Err(e) => panic!("commit of `{id}`: {} ({e})", e.code()),
                            }
                        }
                    }
                })
            })
            .collect();
        // Stop the killer whatever the workers did, then report a failed
        // worker: a panicking worker must fail the test, not hang it.
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        done.store(true, Ordering::Relaxed);
        let killed = killer.join().unwrap();
        for r in results {
            if let Err(p) = r {
                std::panic::resume_unwind(p);
            }
        }
        killed
    });
    assert!(
        killed > 0,
        "no backend was terminated: the test proved nothing"
    );
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let (appointments, keys): (i64, i64) = {
        let row = raw
            .query_one(
                "SELECT (SELECT count(*) FROM medsched.appointments WHERE tenant_id = 'killed'),
                        (SELECT count(*) FROM medsched.idempotency WHERE tenant_id = 'killed')",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    let want = (THREADS * PER_THREAD) as i64;
    assert_eq!((appointments, keys), (want, want));
    println!("killed {killed} backends during {want} idempotent commits");
}
